"""Emotion–cause pair metrics: hand-computed Pair-F1, SemEval scorer semantics, AUPRC, RPCL diagnostics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from merc_hf.metrics import pair_auprc, pair_confidence_diagnostics, pair_f1, semeval_pair_f1

# ---------------------------------------------------------------------------------------------------
# Set-based Pair-F1


def test_pair_f1_hand_worked():
    predicted = {"c1": [(2, 1), (2, 2), (3, 1), (2, 1)], "c2": [(1, 0)], "c3": [(0, 0)]}
    gold = {"c1": [(2, 1), (3, 3)], "c2": [(1, 0), (1, 1)]}
    # predicted set (duplicate (2, 1) counted once): 5 pairs, 1 of them in a conversation without gold;
    # gold: 4 pairs; correct: (c1, 2, 1) and (c2, 1, 0).
    result = pair_f1(predicted, gold)
    assert result["n_predicted"] == 5 and result["n_gold"] == 4 and result["n_correct"] == 2
    assert result["precision"] == pytest.approx(2 / 5)
    assert result["recall"] == pytest.approx(2 / 4)
    assert result["f1"] == pytest.approx(2 * 0.4 * 0.5 / 0.9)


def test_pair_f1_aligned_sequences_equal_mapping():
    predicted = [[(2, 1), (2, 2)], [(1, 0)]]
    gold = [[(2, 1)], [(1, 0), (1, 1)]]
    assert pair_f1(predicted, gold) == pair_f1(dict(enumerate(predicted)), dict(enumerate(gold)))
    assert pair_f1(predicted, gold)["f1"] == pytest.approx(2 / 3)
    # numpy arrays per conversation work too
    assert pair_f1([np.array([[2, 1], [2, 2]]), np.array([[1, 0]])], gold)["n_correct"] == 2


def test_pair_f1_ignores_emotion_unless_asked():
    predicted = {"d": [(2, 1, "joy"), (3, 3, "anger")]}
    gold = {"d": [(2, 1, "joy"), (3, 3, "sadness")]}
    assert pair_f1(predicted, gold, with_emotion=True)["f1"] == pytest.approx(0.5)
    stripped = {conv: [pair[:2] for pair in pairs] for conv, pairs in predicted.items()}
    assert pair_f1(stripped, {"d": [(2, 1), (3, 3)]})["f1"] == 1.0


def test_pair_f1_empty_predictions_and_gold():
    assert pair_f1({"a": []}, {"a": [(1, 0)]}) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "n_predicted": 0,
        "n_gold": 1,
        "n_correct": 0,
    }
    assert pair_f1({"a": [(1, 0)]}, {"a": []})["precision"] == 0.0


def test_pairs_outside_conversation_are_errors():
    with pytest.raises(
        ValueError,
        match=r"predicted\['a'\]\[1\] points outside the conversation: emotion utterance 3 is not in \[0, 2\]",
    ):
        pair_f1({"a": [(1, 0), (3, 0)]}, {"a": [(1, 0)]}, conversation_lengths={"a": 3})
    with pytest.raises(ValueError, match=r"cause utterance 3 is not in \[1, 2\]"):
        pair_f1([[(1, 3)]], [[(1, 1)]], conversation_lengths=[2], index_base=1)
    with pytest.raises(ValueError, match="cause utterance -1 is not in >= 0"):
        pair_f1([[(1, -1)]], [[(1, 1)]])
    with pytest.raises(ValueError, match="missing from conversation_lengths"):
        pair_f1({"a": [(1, 0)]}, {"a": [], "b": [(0, 0)]}, conversation_lengths={"a": 3})
    # within range: no error
    assert pair_f1({"a": [(2, 0)]}, {"a": [(2, 0)]}, conversation_lengths={"a": 3})["f1"] == 1.0


@pytest.mark.parametrize(
    ("predicted", "gold", "message"),
    [
        ({"a": [(1, 0)]}, [[(1, 0)]], "predicted and gold must both be mappings"),
        ([[(1, 0)]], [[(1, 0)], []], "predicted has 1 conversations but gold has 2"),
        ({"a": [(1, 0, 2)]}, {"a": []}, r"predicted\['a'\]\[0\] must have 2 items"),
        ({"a": [(1.5, 0)]}, {"a": []}, r"predicted\['a'\]\[0\]\[0\] must be an integer utterance index"),
        ({"a": "10"}, {"a": []}, r"predicted\['a'\] must be an iterable of pairs"),
        ("pairs", "pairs", "predicted must be a mapping conversation_id -> pairs or a sequence"),
    ],
)
def test_pair_f1_bad_input(predicted, gold, message):
    with pytest.raises(ValueError, match=message):
        pair_f1(predicted, gold)


# ---------------------------------------------------------------------------------------------------
# SemEval-2024 Task 3 scorer

SEMEVAL_GOLD = {"1": [(2, 1, "joy"), (2, 2, "joy"), (4, 3, "anger"), (5, 5, "sadness")]}
SEMEVAL_PRED = {
    "1": [
        (2, 1, "joy"),  # correct → M[joy, joy]
        (2, 2, "surprise"),  # wrong emotion → M[neutral, surprise]; gold (2, 2, joy) missed → M[joy, neutral]
        (4, 3, "neutral"),  # predicted neutral → M[0, 0], ignored; gold (4, 3, anger) missed
        (5, 4, "sadness"),  # wrong pair → M[0, sadness]; gold (5, 5, sadness) missed
        (6, 6, "anger"),  # wrong pair → M[0, anger]
        (2, 1, "joy"),  # duplicate, removed
    ]
}


def test_semeval_hand_worked():
    result = semeval_pair_f1(SEMEVAL_PRED, SEMEVAL_GOLD)
    joy = result["per_emotion"]["joy"]
    assert (joy["precision"], joy["recall"], joy["f1"], joy["support"]) == pytest.approx((1.0, 0.5, 2 / 3, 2))
    for name in ("anger", "sadness", "surprise", "disgust", "fear"):
        assert result["per_emotion"][name]["f1"] == 0.0
    assert (
        result["per_emotion"]["anger"]["support"] == 1 and result["per_emotion"]["surprise"]["support"] == 0
    )
    # weights: joy 2/4, anger 1/4, sadness 1/4
    assert result["weighted_f1"] == pytest.approx(0.5 * 2 / 3)
    assert result["weighted_precision"] == pytest.approx(0.5)
    assert result["weighted_recall"] == pytest.approx(0.25)
    # micro over emotions 1..6: 1 correct / 4 non-neutral predictions, 1 correct / 4 gold
    assert result["micro_precision"] == pytest.approx(0.25)
    assert result["micro_recall"] == pytest.approx(0.25)
    assert result["micro_f1"] == pytest.approx(0.25)
    # the emotion-independent set Pair-F1 of the same lists: 3 of 5 predicted pairs, 3 of 4 gold
    stripped = {conv: [p[:2] for p in pairs] for conv, pairs in SEMEVAL_PRED.items()}
    plain = pair_f1(stripped, {conv: [p[:2] for p in pairs] for conv, pairs in SEMEVAL_GOLD.items()})
    assert (plain["precision"], plain["recall"]) == pytest.approx((3 / 5, 3 / 4))


def test_semeval_predicted_neutral_is_not_a_false_positive():
    gold = {"1": [(2, 1, "joy")]}
    base = semeval_pair_f1({"1": [(2, 1, "joy")]}, gold)
    with_neutral = semeval_pair_f1({"1": [(2, 1, "joy"), (3, 0, "neutral"), (3, 1, "neutral")]}, gold)
    assert with_neutral["micro_precision"] == base["micro_precision"] == 1.0
    assert with_neutral["weighted_f1"] == base["weighted_f1"] == 1.0


def test_semeval_emotion_ids_and_names():
    meld_names = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
    by_id = semeval_pair_f1({"1": [(2, 1, 4)]}, {"1": [(2, 1, 4), (3, 3, 6)]}, emotion_names=meld_names)
    by_name = semeval_pair_f1({"1": [(2, 1, "joy")]}, {"1": [(2, 1, "joy"), (3, 3, "anger")]})
    assert by_id == by_name
    assert by_name["weighted_f1"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    # default ids follow the scorer's order: 4 = joy
    assert semeval_pair_f1({"1": [(2, 1, 4)]}, {"1": [(2, 1, "joy")]})["weighted_f1"] == 1.0


def test_semeval_conversation_handling():
    gold = {"1": [(2, 1, "joy")]}
    # extra predicted conversations are ignored (the scorer only iterates over gold)
    assert semeval_pair_f1({"1": [(2, 1, "joy")], "99": [(0, 0, "anger")]}, gold)["micro_precision"] == 1.0
    with pytest.raises(ValueError, match=r"predicted has no entry for gold conversation\(s\) \['1'\]"):
        semeval_pair_f1({"2": []}, gold)
    with pytest.raises(ValueError, match=r"gold\['1'\]: unknown emotion 'happy'"):
        semeval_pair_f1({"1": []}, {"1": [(2, 1, "happy")]})
    with pytest.raises(ValueError, match="is neither a name nor an index"):
        semeval_pair_f1({"1": [(2, 1, 9)]}, gold)
    with pytest.raises(ValueError, match="points outside the conversation"):
        semeval_pair_f1({"1": [(7, 1, "joy")]}, gold, conversation_lengths={"1": 5})
    # no non-neutral gold pair: the weights are 0/0
    assert math.isnan(semeval_pair_f1({"1": []}, {"1": [(1, 0, "neutral")]})["weighted_f1"])


# ---------------------------------------------------------------------------------------------------
# Pair AUPRC and RPCL diagnostics

SCORES = {"a": {(1, 0): 0.9, (1, 1): 0.8, (2, 0): 0.7, (2, 1): 0.3}}
GOLD = {"a": [(1, 0), (2, 0), (2, 3)]}  # (2, 3) is a future cause, not a candidate


def test_pair_auprc_hand_worked():
    # ranking 0.9 ✓ (P 1, R 1/3), 0.8 ✗, 0.7 ✓ (P 2/3, R 2/3), 0.3 ✗; recall is over all 3 gold pairs.
    assert pair_auprc(SCORES, GOLD) == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)
    # The same through the triple form and with aligned sequences.
    triples = [[(emo, cause, s) for (emo, cause), s in SCORES["a"].items()]]
    assert pair_auprc(triples, [GOLD["a"]]) == pytest.approx(5 / 9)


def test_pair_auprc_is_bounded_by_candidate_recall():
    perfect = {"a": {(1, 0): 0.9, (2, 0): 0.8, (1, 1): 0.1}}
    assert pair_auprc(perfect, GOLD) == pytest.approx(2 / 3)  # candidate recall 2/3
    assert pair_auprc({"a": {}}, GOLD) == 0.0
    assert pair_auprc({"b": {(0, 0): 0.5}}, GOLD) == 0.0  # gold conversation never scored
    assert math.isnan(pair_auprc(SCORES, {"a": []}))


@pytest.mark.parametrize("seed", range(3))
def test_pair_auprc_matches_sklearn_times_coverage(seed):
    rng = np.random.default_rng(seed)
    scores, gold, labels, values = {}, {}, [], []
    n_gold = 0
    for conv in range(20):
        length = int(rng.integers(3, 9))
        candidates = [(i, j) for i in range(length) for j in range(i + 1)]  # lower triangle
        gold_pairs = {(i, j) for i in range(length) for j in range(length) if rng.random() < 0.08}
        gold[conv] = sorted(gold_pairs)
        n_gold += len(gold_pairs)
        scores[conv] = {pair: float(np.round(rng.random(), 2)) for pair in candidates}  # rounded: ties
        labels += [pair in gold_pairs for pair in candidates]
        values += list(scores[conv].values())
    coverage = sum(labels) / n_gold
    expected = average_precision_score(labels, values) * coverage
    assert pair_auprc(scores, gold) == pytest.approx(expected, abs=1e-12)


def test_pair_diagnostics_hand_worked():
    scores = {
        "a": {
            (1, 0): 0.9,  # row 1: gold 0.9 vs negative 0.88 → Δ 0.02 (violates m = 0.05 by 0.03)
            (1, 1): 0.88,
            (2, 0): 0.7,  # row 2: gold 0.7 vs negative 0.3 → Δ 0.4
            (2, 1): 0.3,
            (3, 2): 0.6,  # row 3: gold 0.6; negatives 0.65 (hardest), 0.5
            (3, 0): 0.5,
            (3, 1): 0.65,
            (4, 4): 0.2,  # row 4: no gold cause among the candidates → skipped
        }
    }
    gold = {"a": [(1, 0), (2, 0), (3, 2), (2, 3)]}
    top1 = pair_confidence_diagnostics(scores, gold, k=1)
    deltas = np.array([0.02, 0.4, -0.05])
    assert top1["n_rows"] == 3 and top1["n_triplets"] == 3
    assert top1["gold_negative_gap"] == pytest.approx(deltas.mean())
    assert top1["margin_violation_severity"] == pytest.approx((0.03 + 0.0 + 0.1) / 3)
    assert top1["margin_violation_rate"] == pytest.approx(2 / 3)
    assert top1["candidate_recall"] == pytest.approx(3 / 4)
    top8 = pair_confidence_diagnostics(scores, gold)  # k = 8: row 3 also uses the 0.5 negative
    deltas = np.array([0.02, 0.4, -0.05, 0.1])
    assert top8["n_triplets"] == 4
    assert top8["gold_negative_gap"] == pytest.approx(deltas.mean())
    assert top8["margin_violation_severity"] == pytest.approx((0.03 + 0.1) / 4)
    assert top8["margin_violation_rate"] == pytest.approx(2 / 4)


def test_pair_diagnostics_edge_cases_and_errors():
    no_rows = pair_confidence_diagnostics({"a": {(1, 0): 0.9}}, {"a": [(1, 0)]})  # no negative at all
    assert no_rows["n_rows"] == 0 and math.isnan(no_rows["gold_negative_gap"])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        pair_confidence_diagnostics(SCORES, GOLD, k=0)
    with pytest.raises(ValueError, match="margin must be a finite number >= 0"):
        pair_confidence_diagnostics(SCORES, GOLD, margin=-1.0)
    with pytest.raises(ValueError, match=r"scores\['a'\]: the score of pair \(1, 0\) is NaN or infinite"):
        pair_auprc({"a": {(1, 0): float("nan")}}, GOLD)
    with pytest.raises(ValueError, match=r"scores\['a'\]: pair \(1, 0\) is scored more than once"):
        pair_auprc({"a": [(1, 0, 0.5), (1, 0, 0.7)]}, GOLD)
    with pytest.raises(ValueError, match=r"scores\['a'\] key \(5, 0\) points outside the conversation"):
        pair_auprc({"a": {(5, 0): 0.5}}, GOLD, conversation_lengths={"a": 4})
