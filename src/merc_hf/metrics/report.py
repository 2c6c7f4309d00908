"""One JSON-serialisable dictionary with every reliability metric that applies to a prediction set."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._checks import check_masked_probs, check_n_bins, check_probs_and_labels
from .calibration import calibration_errors, reliability_bins
from .classification import classification_scores
from .cmerc import cel, confidence_boosts, uncertain_sample_rates
from .failure import failure_prediction
from .pairs import decode_pairs, pair_auprc, pair_confidence_diagnostics, pair_f1, semeval_pair_f1


def _jsonable(value: Any) -> Any:
    """Plain Python containers and numbers; NaN/inf become ``None`` so strict JSON works."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def reliability_report(
    probs: Any,
    references: Any,
    label_names: Sequence[str],
    masked_probs: Mapping[str, Any] | None = None,
    n_bins: int = 15,
    *,
    from_logits: bool = False,
) -> dict[str, Any]:
    """Classification, calibration, failure-prediction and (optionally) CMERC metrics in one dict.

    Sections of the result:

    * ``classification``: :func:`~merc_hf.metrics.classification_scores` of ``argmax(probs)``;
    * ``calibration``: :func:`~merc_hf.metrics.calibration_errors` (ECE/MCE/RMSCE, Guo et al.
      equal-width ``(lo, hi]`` bins) plus the per-bin ``count``/``accuracy``/``confidence`` of
      :func:`~merc_hf.metrics.reliability_bins` and the bin ``edges``;
    * ``failure_prediction``: :func:`~merc_hf.metrics.failure_prediction` (correct = positive);
    * ``cmerc`` (only with ``masked_probs``): ``cel`` (CMERC Eq. 10, raw sum), the per-removal sum and
      mean of the confidence boosts (Eq. 4) and the uncertain-sample rates in % (Table 2).

    Every value is a fraction in ``[0, 1]`` except CEL (a raw sum of probabilities), the uncertain
    rates (percentages) and counts; tables usually show ECE/F1/AUROC × 100 and AURC × 1000. The result
    holds only dicts, lists, str, int, float and ``None`` (undefined values such as the AUROC of an
    all-correct model, or empty bins, are ``None``), so ``json.dumps(report, allow_nan=False)`` works.
    """
    n_bins = check_n_bins(n_bins)
    p, y = check_probs_and_labels(probs, references, from_logits=from_logits)
    names = [str(name) for name in label_names]
    if len(names) != p.shape[1]:
        raise ValueError(f"label_names has {len(names)} names but probs has {p.shape[1]} classes")
    masked = (
        None if masked_probs is None else check_masked_probs(masked_probs, p.shape, from_logits=from_logits)
    )

    bins = reliability_bins(p, y, n_bins)
    report: dict[str, Any] = {
        "n_samples": p.shape[0],
        "n_classes": p.shape[1],
        "label_names": names,
        "classification": classification_scores(p.argmax(axis=1), y, names),
        "calibration": {
            **calibration_errors(p, y, n_bins),
            "n_bins": n_bins,
            "binning": "equal-width (lo, hi] bins, confidence 1.0 in the last bin (Guo et al. 2017)",
            "bins": bins,
        },
        "failure_prediction": failure_prediction(p, y),
    }
    if masked is not None:
        boosts = confidence_boosts(p, masked, y)
        report["cmerc"] = {
            "cel": cel(p, masked, y),
            "confidence_boost_sum": {key: boost.sum() for key, boost in boosts.items()},
            "confidence_boost_mean": {key: boost.mean() for key, boost in boosts.items()},
            "uncertain_sample_rates": uncertain_sample_rates(p, masked, y),
        }
    return _jsonable(report)


def pair_extraction_report(
    scores: Mapping[Any, Mapping[tuple[int, int], float]],
    gold: Mapping[Any, Sequence[Sequence[int]]],
    threshold: float,
    *,
    predicted_emotions: Mapping[Any, Sequence[int]] | None = None,
    gold_emotions: Mapping[Any, Sequence[int]] | None = None,
    emotion_names: Sequence[str] | None = None,
    k: int = 8,
    margin: float = 0.05,
) -> dict[str, Any]:
    """Emotion–cause pair metrics of one split as a JSON-serialisable dict.

    Args:
        scores: ``conversation -> {(emotion_utt, cause_utt): pair probability}`` over the model's
            candidate space (0-based utterance indices).
        gold: ``conversation -> [(emotion_utt, cause_utt), ...]``.
        threshold: decision threshold (pairs with ``score >= threshold`` are predicted), normally chosen
            on validation with :func:`~merc_hf.metrics.pairs.best_pair_threshold`.
        predicted_emotions, gold_emotions: per-utterance emotion ids; when both are given the SemEval-2024
            emotion-dependent variant is added (a predicted pair carries the predicted emotion of its
            emotion utterance).
        emotion_names: names of the emotion ids for the SemEval variant (default the SemEval order).
        k, margin: of :func:`~merc_hf.metrics.pairs.pair_confidence_diagnostics`.

    Returns:
        ``{"threshold", "pairs": {precision, recall, f1, n_*}, "pair_auprc", "diagnostics": {...},
        "semeval": {...}}`` (``semeval`` only with emotions).
    """
    decoded = decode_pairs(scores, threshold)
    report: dict[str, Any] = {
        "threshold": threshold,
        "pairs": pair_f1(decoded, gold),
        "pair_auprc": pair_auprc(scores, gold),
        "diagnostics": pair_confidence_diagnostics(scores, gold, k=k, margin=margin),
    }
    if predicted_emotions is not None and gold_emotions is not None:
        report["semeval"] = semeval_pair_f1(
            {c: [(i, j, predicted_emotions[c][i]) for i, j in pairs] for c, pairs in decoded.items()},
            {c: [(i, j, gold_emotions[c][i]) for i, j in pairs] for c, pairs in gold.items()},
            emotion_names=emotion_names,
        )
    return _jsonable(report)


def pair_report_table(report: Mapping[str, Any]) -> str:
    """A markdown table of the headline numbers of a :func:`pair_extraction_report`."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.2f}%"

    def num(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    pairs, diagnostics = report["pairs"], report["diagnostics"]
    rows = [
        ("Pair-F1", pct(pairs["f1"])),
        ("Pair precision", pct(pairs["precision"])),
        ("Pair recall", pct(pairs["recall"])),
        ("Pair-AUPRC", pct(report["pair_auprc"])),
        ("SemEval weighted Pair-F1", pct(report.get("semeval", {}).get("weighted_f1"))),
        ("decision threshold", num(report["threshold"])),
        ("gold − hard-negative gap", num(diagnostics["gold_negative_gap"])),
        ("margin-violation severity", num(diagnostics["margin_violation_severity"])),
        ("candidate recall (ceiling)", pct(diagnostics["candidate_recall"])),
    ]
    return "\n".join(["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
