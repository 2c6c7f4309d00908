"""Emotion–cause pair extraction metrics (MECPE / ECF, SemEval-2024 Task 3) and RPCL diagnostics.

A pair is ``(emotion_utterance, cause_utterance)`` inside one conversation; utterance indices are
0-based by default (``index_base=1`` for the raw 1-based ids of the SemEval JSON files). Every function
accepts either a mapping ``conversation_id -> iterable of pairs`` or a sequence of per-conversation pair
lists aligned by conversation (both arguments must use the same form). When ``conversation_lengths``
is given (mapping or aligned sequence of utterance counts), a pair pointing outside its conversation is
a ``ValueError``; indices below ``index_base`` are always an error.

Definitions compared in ``mecpe_rpcl_and_chsims_cmc.md`` §4.6: :func:`pair_f1` is the
emotion-independent, set-based micro Pair-F1 of HiLo (``WHULACC/hilo: src/trainer.py``) and BridgeProt
(``xiay9/BridgeProt: core/metrics.py``), the convention of the RPCL authors' group;
:func:`semeval_pair_f1` reproduces the official SemEval-2024 Task 3 Subtask 2 scorer.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from ._checks import (
    check_conversation_lengths,
    check_pair_lists,
    check_pair_scores,
    check_same_container_kind,
)
from ._ranking import average_precision

#: Emotion order of the SemEval-2024 Task 3 scorer (``NUSTM/SemEval-2024_ECAC:
#: CodaLab/evaluation/evaluate.py``). Note that it differs from MELD's label map.
SEMEVAL_EMOTIONS = ("neutral", "anger", "disgust", "fear", "joy", "sadness", "surprise")


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, 0 when the denominator is 0 (no predictions / no gold)."""
    return float(numerator / denominator) if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2.0 * precision * recall / (precision + recall) if precision + recall else 0.0


def _validated_pairs(
    predicted: Any, gold: Any, *, size: int, conversation_lengths: Any, index_base: int
) -> tuple[dict[Hashable, list[tuple]], dict[Hashable, list[tuple]]]:
    check_same_container_kind(predicted, gold, ("predicted", "gold"))
    lengths = check_conversation_lengths(conversation_lengths)
    return tuple(
        check_pair_lists(value, name, size=size, lengths=lengths, index_base=index_base)
        for value, name in ((predicted, "predicted"), (gold, "gold"))
    )


def pair_f1(
    predicted: Any,
    gold: Any,
    *,
    with_emotion: bool = False,
    conversation_lengths: Any = None,
    index_base: int = 0,
) -> dict[str, float | int]:
    """Set-based micro precision / recall / F1 of emotion–cause pairs.

    Pairs are identified by ``(conversation, emotion_utt, cause_utt)``; duplicates within a list count
    once (set semantics). With ``S_p`` / ``S_g`` the predicted / gold sets over all conversations:
    ``P = |S_p ∩ S_g| / |S_p|``, ``R = |S_p ∩ S_g| / |S_g|``, ``F1 = 2PR / (P + R)`` (each 0 when its
    denominator is 0). The emotion category is ignored: this is the HiLo / BridgeProt convention used by
    the RPCL authors (Pan et al. 2026) and NUSTM's ``prf_2nd_step``.

    ``with_emotion=True`` gives the emotion-aware variant: pairs are ``(emo_utt, cause_utt, emotion)``
    triples and the emotion (any hashable label) must match too; still a single micro average (for
    the SemEval emotion-weighted average see :func:`semeval_pair_f1`).

    A conversation present only in ``predicted`` contributes false positives; one present only in
    ``gold`` contributes misses.

    Returns:
        ``{"precision", "recall", "f1", "n_predicted", "n_gold", "n_correct"}``.
    """
    pred, ref = _validated_pairs(
        predicted,
        gold,
        size=3 if with_emotion else 2,
        conversation_lengths=conversation_lengths,
        index_base=index_base,
    )
    sets = []
    for name, lists in (("predicted", pred), ("gold", ref)):
        try:
            sets.append({(conv, *pair) for conv, pairs in lists.items() for pair in pairs})
        except TypeError:
            raise ValueError(f"{name} has an emotion label that is not hashable (use str or int)") from None
    pred_set, gold_set = sets
    n_correct = len(pred_set & gold_set)
    precision = _ratio(n_correct, len(pred_set))
    recall = _ratio(n_correct, len(gold_set))
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "n_predicted": len(pred_set),
        "n_gold": len(gold_set),
        "n_correct": n_correct,
    }


#: MECAD's names for two of the same six emotions (``Happy``, ``Sad``); names are matched case-insensitively.
_EMOTION_ALIASES = {"happy": "joy", "sad": "sadness"}


def _semeval_emotion(label: Any, names: Sequence[str], where: str) -> int:
    """Map an emotion name, or an index into ``names``, to the scorer's index in SEMEVAL_EMOTIONS.

    Names given directly must be the scorer's (it aborts on any other); names looked up in a dataset's
    label map (``names``) are matched case-insensitively, with MECAD's aliases."""
    if isinstance(label, str):
        name = canonical = label
    else:
        try:
            name = names[int(label)]
        except (TypeError, ValueError, IndexError):
            raise ValueError(
                f"{where}: emotion {label!r} is neither a name nor an index into {list(names)}"
            ) from None
        canonical = _EMOTION_ALIASES.get(str(name).lower(), str(name).lower())
    if canonical not in SEMEVAL_EMOTIONS:
        raise ValueError(
            f"{where}: unknown emotion {name!r}; the SemEval scorer knows {list(SEMEVAL_EMOTIONS)}"
        )
    return SEMEVAL_EMOTIONS.index(canonical)


def semeval_pair_f1(
    predicted: Any,
    gold: Any,
    *,
    emotion_names: Sequence[str] | None = None,
    conversation_lengths: Any = None,
    index_base: int = 0,
) -> dict[str, Any]:
    """Emotion-dependent Pair-F1 of the official SemEval-2024 Task 3 Subtask 2 scorer.

    Reproduces ``evaluate_2_2`` / ``cal_prf_pair_emocate`` of ``NUSTM/SemEval-2024_ECAC:
    CodaLab/evaluation/evaluate.py`` as described in ``mecpe_rpcl_and_chsims_cmc.md`` §4.2. Pairs are
    ``(emo_utt, cause_utt, emotion)``; ``emotion`` is a name from :data:`SEMEVAL_EMOTIONS` or an integer
    index into ``emotion_names`` (default: the scorer's order ``neutral, anger, disgust, fear, joy,
    sadness, surprise``; pass e.g. MELD's class names when the ids follow MELD's label map). Names in
    ``emotion_names`` are matched case-insensitively, and MECAD's ``Happy`` / ``Sad`` are read as ``joy`` /
    ``sadness``; names given directly in the pairs must be the scorer's own, as in the official script.

    Scoring (after removing duplicates within each list):

    * a 7×7 matrix ``M`` (rows = gold emotion, columns = predicted emotion, index 0 = neutral): a
      predicted pair that is in gold (emotion included) adds 1 to ``M[e, e]``; any other predicted
      pair adds 1 to ``M[0, e_pred]``; a gold pair that was not predicted adds 1 to ``M[e_gold, 0]``;
    * per emotion ``e``: ``P_e = M[e, e] / Σ_r M[r, e]``, ``R_e = M[e, e] / Σ_c M[e, c]``,
      ``F1_e = 2 P_e R_e / (P_e + R_e)``;
    * **main metric** ``weighted_f1 = Σ_{e=1..6} F1_e · n_e / Σ_{e'=1..6} n_e'`` with ``n_e`` the
      number of gold pairs of emotion ``e`` (same weights for ``weighted_precision/recall``);
    * ``micro_*``: ``Σ_{e≥1} M[e, e]`` over the column sums (precision) or row sums (recall) of
      emotions 1..6.

    A prediction may give one emotion utterance several emotions (in different triples, even for the same
    cause): the scorer checks nothing of the kind, and each triple is scored on its own.
    ``merc_hf.data.readers.ecf.semeval_pairs`` builds this input from SemEval gold or prediction records.

    Consequences of the matrix layout: **pairs predicted with emotion neutral land in column 0 and are
    ignored** (they are neither true nor false positives), while the gold pair they may have been meant
    for still counts as missed; a pair predicted with the wrong emotion is a false positive of the
    predicted emotion *and* a miss of the gold one; gold pairs labelled neutral are ignored.

    Conversations: as in the scorer, only conversations of ``gold`` are scored (extra predicted
    conversations are ignored) and a gold conversation missing from ``predicted`` is an error (pass an
    empty list for a conversation without predictions).

    Zero divisions: the scorer adds 1e-8 to every denominator; here ratios are exact and 0 when the
    denominator is 0, which changes results by < 1e-7. ``weighted_*`` are NaN when gold has no
    non-neutral pair (the scorer's weights are then 0/0).

    Returns:
        ``{"weighted_precision", "weighted_recall", "weighted_f1", "micro_precision", "micro_recall",
        "micro_f1", "per_emotion": {name: {"precision", "recall", "f1", "support"}}}`` for the six
        non-neutral emotions.
    """
    names = list(SEMEVAL_EMOTIONS if emotion_names is None else emotion_names)
    pred, ref = _validated_pairs(
        predicted, gold, size=3, conversation_lengths=conversation_lengths, index_base=index_base
    )
    missing = [conv for conv in ref if conv not in pred]
    if missing:
        raise ValueError(
            f"predicted has no entry for gold conversation(s) {missing[:5]}; the SemEval scorer requires "
            "every gold conversation (use an empty list when nothing is predicted)"
        )

    def as_set(lists: dict[Hashable, list[tuple]], name: str) -> set[tuple]:
        return {
            (conv, emo, cause, _semeval_emotion(emotion, names, f"{name}[{conv!r}]"))
            for conv, pairs in lists.items()
            if conv in ref
            for emo, cause, emotion in pairs
        }

    pred_set, gold_set = as_set(pred, "predicted"), as_set(ref, "gold")
    matrix = np.zeros((7, 7))
    for pair in pred_set:
        emotion = pair[3]
        matrix[emotion if pair in gold_set else 0, emotion] += 1
    for pair in gold_set - pred_set:
        matrix[pair[3], 0] += 1

    diagonal, col_sum, row_sum = np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1)
    per_emotion = {}
    for e in range(1, 7):
        precision, recall = _ratio(diagonal[e], col_sum[e]), _ratio(diagonal[e], row_sum[e])
        per_emotion[SEMEVAL_EMOTIONS[e]] = {
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "support": int(row_sum[e]),
        }
    n_gold = row_sum[1:].sum()
    weights = {
        name: scores["support"] / n_gold if n_gold else math.nan for name, scores in per_emotion.items()
    }
    weighted = {
        metric: float(sum(weights[name] * scores[metric] for name, scores in per_emotion.items()))
        for metric in ("precision", "recall", "f1")
    }
    micro_precision = _ratio(diagonal[1:].sum(), col_sum[1:].sum())
    micro_recall = _ratio(diagonal[1:].sum(), n_gold)
    return {
        "weighted_precision": weighted["precision"],
        "weighted_recall": weighted["recall"],
        "weighted_f1": weighted["f1"],
        "micro_precision": micro_precision,
        "micro_recall": micro_recall,
        "micro_f1": _f1(micro_precision, micro_recall),
        "per_emotion": per_emotion,
    }


def _scored_candidates(
    scores: Any, gold: Any, conversation_lengths: Any, index_base: int
) -> tuple[dict[Hashable, dict[tuple[int, int], float]], dict[Hashable, set[tuple[int, int]]]]:
    check_same_container_kind(scores, gold, ("scores", "gold"))
    lengths = check_conversation_lengths(conversation_lengths)
    candidates = check_pair_scores(scores, "scores", lengths=lengths, index_base=index_base)
    gold_lists = check_pair_lists(gold, "gold", size=2, lengths=lengths, index_base=index_base)
    return candidates, {conv: set(pairs) for conv, pairs in gold_lists.items()}


def pair_auprc(scores: Any, gold: Any, *, conversation_lengths: Any = None, index_base: int = 0) -> float:
    """Area under the precision–recall curve of scored candidate pairs (average precision).

    ``scores[conv]`` is a mapping ``(emo_utt, cause_utt) -> score`` or an iterable of
    ``(emo_utt, cause_utt, score)`` triples over the model's candidate space; a candidate is positive
    when it is a gold pair of that conversation. ``AP = Σ_i (R_i − R_{i−1}) · P_i`` over the distinct
    score thresholds (step-wise, as ``sklearn.metrics.average_precision_score``), where the recall
    denominator is **the number of all gold pairs**: gold pairs that are not among the scored candidates
    (e.g. future causes outside a lower-triangular candidate space) count as misses that no threshold
    recovers, so AUPRC ≤ candidate recall. Equivalently, ``sklearn AP over the candidates × (gold pairs
    covered / all gold pairs)``. "Pair AUPRC" is reported by RPCL (Pan et al. 2026).

    Returns NaN when gold has no pair at all, 0.0 when nothing is scored.
    """
    candidates, gold_sets = _scored_candidates(scores, gold, conversation_lengths, index_base)
    n_gold = sum(len(pairs) for pairs in gold_sets.values())
    if n_gold == 0:
        return math.nan
    positive = [pair in gold_sets.get(conv, ()) for conv, scored in candidates.items() for pair in scored]
    if not positive:
        return 0.0
    values = np.array([s for scored in candidates.values() for s in scored.values()])
    return average_precision(np.array(positive), values, n_positives=n_gold)


def pair_confidence_diagnostics(
    scores: Any,
    gold: Any,
    *,
    k: int = 8,
    margin: float = 0.05,
    conversation_lengths: Any = None,
    index_base: int = 0,
) -> dict[str, float | int]:
    """RPCL's pair-confidence diagnostics: gold-vs-hard-negative gap and margin-violation severity.

    Definitions (from the CDMR term of RPCL, Pan et al., arXiv 2606.18893, as summarised in
    ``mecpe_rpcl_and_chsims_cmc.md`` §3.4; the paper reports these diagnostics without formulas, so
    the following are this package's definitions):

    * a **row** is an emotion utterance ``i`` of a conversation with at least one gold cause ``j+``
      among its scored candidates and at least one non-gold candidate (rows without a negative are
      skipped);
    * its **hard negatives** ``j−`` are the ``k`` highest-scoring non-gold candidates of the row (fewer
      when the row is short; ties broken by lower cause index); ``k = 8`` as in the paper;
    * over all triplets ``(row, j+, j−)``, with ``Δ = s(i, j+) − s(i, j−)``:
      ``gold_negative_gap = mean Δ``; ``margin_violation_severity = mean max(0, m − Δ)`` (the CDMR
      hinge with the constant margin ``m = m0 = 0.05``; the paper's adaptive margin needs
      cause-classifier probabilities and is a training-time quantity); ``margin_violation_rate`` =
      fraction of triplets with ``Δ < m``.

    Higher gap and lower severity mean gold pairs are separated more robustly. Also returned:
    ``candidate_recall`` (gold pairs among the candidates / all gold pairs), ``n_rows``, ``n_triplets``.
    Gap, severity and rate are NaN when no row qualifies; ``candidate_recall`` is NaN without gold.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    candidates, gold_sets = _scored_candidates(scores, gold, conversation_lengths, index_base)

    gaps, n_rows, n_covered = [], 0, 0
    for conv, scored in candidates.items():
        gold_pairs = gold_sets.get(conv, set())
        n_covered += len(gold_pairs & scored.keys())
        rows: dict[int, dict[int, float]] = {}
        for (emo, cause), score in scored.items():
            rows.setdefault(emo, {})[cause] = score
        for emo, row in rows.items():
            positives = [s for cause, s in row.items() if (emo, cause) in gold_pairs]
            negative_causes = sorted(
                (c for c in row if (emo, c) not in gold_pairs), key=lambda c: (-row[c], c)
            )
            negatives = [row[c] for c in negative_causes[:k]]
            if positives and negatives:
                n_rows += 1
                gaps.append((np.array(positives)[:, None] - np.array(negatives)[None, :]).ravel())
    n_gold = sum(len(pairs) for pairs in gold_sets.values())
    delta = np.concatenate(gaps) if gaps else np.array([])
    empty = delta.size == 0
    return {
        "gold_negative_gap": math.nan if empty else float(delta.mean()),
        "margin_violation_severity": math.nan if empty else float(np.maximum(0.0, margin - delta).mean()),
        "margin_violation_rate": math.nan if empty else float((delta < margin).mean()),
        "candidate_recall": n_covered / n_gold if n_gold else math.nan,
        "n_rows": n_rows,
        "n_triplets": int(delta.size),
    }


def best_pair_threshold(
    scores: Any, gold: Any, *, conversation_lengths: Any = None, index_base: int = 0
) -> dict[str, float]:
    """The decision threshold on candidate scores that maximises set-based Pair-F1 on ``(scores, gold)``.

    Predicting every candidate with ``score >= t`` for each distinct score ``t``, with ``n`` predictions
    of which ``c`` are gold: ``F1 = 2c / (n + |gold|)`` (recall counts all gold pairs, as
    :func:`pair_f1`). The best ``t`` (the highest one on ties) is reported as the midpoint between it and
    the next lower distinct score, so that the same predictions are made on this data while leaving a
    margin for new data (``t`` itself when the midpoint rounds onto the lower score, and the lowest score
    when the best set is every candidate). RPCL selects its thresholds this way on the validation split
    and keeps them fixed on test.

    Returns:
        ``{"threshold", "f1", "precision", "recall"}``; with no gold pair, threshold 0.5, F1 NaN and
        precision / recall 0.
    """
    candidates, gold_sets = _scored_candidates(scores, gold, conversation_lengths, index_base)
    n_gold = sum(len(pairs) for pairs in gold_sets.values())
    values = np.array([s for scored in candidates.values() for s in scored.values()], dtype=float)
    if n_gold == 0 or values.size == 0:
        return {"threshold": 0.5, "f1": math.nan if n_gold == 0 else 0.0, "precision": 0.0, "recall": 0.0}
    positive = np.array(
        [pair in gold_sets.get(conv, ()) for conv, scored in candidates.items() for pair in scored],
        dtype=float,
    )
    order = np.argsort(-values, kind="stable")
    values, positive = values[order], positive[order]
    last_of_tie = np.r_[values[1:] != values[:-1], True]
    correct = np.cumsum(positive)[last_of_tie]
    predicted = np.arange(1, values.size + 1)[last_of_tie]
    distinct = values[last_of_tie]
    f1 = 2 * correct / (predicted + n_gold)
    best = int(np.argmax(f1))
    threshold = distinct[best]
    if best + 1 < distinct.size:
        midpoint = (distinct[best] + distinct[best + 1]) / 2
        threshold = midpoint if midpoint > distinct[best + 1] else distinct[best]
    return {
        "threshold": float(threshold),
        "f1": float(f1[best]),
        "precision": float(correct[best] / predicted[best]),
        "recall": float(correct[best] / n_gold),
    }


def decode_pairs(
    scores: dict[Hashable, dict[tuple[int, int], float]], threshold: float
) -> dict[Hashable, list]:
    """The candidates with ``score >= threshold``, per conversation (every conversation kept, maybe empty)."""
    return {
        conv: sorted(pair for pair, score in scored.items() if score >= threshold)
        for conv, scored in scores.items()
    }
