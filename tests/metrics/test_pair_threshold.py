"""Pair decision threshold (best_pair_threshold against brute force, ties, edge cases), decode_pairs and
pair_extraction_report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from merc_hf.metrics import (
    best_pair_threshold,
    decode_pairs,
    pair_auprc,
    pair_confidence_diagnostics,
    pair_extraction_report,
    pair_f1,
)

# ---------------------------------------------------------------------------------------------------
# best_pair_threshold


def random_problem(seed: int):
    """A few conversations with random lower-triangular candidate subsets, scores on a 0.1 grid (many
    ties), gold pairs anywhere in the conversation (so some lie outside the scored candidates) and one
    conversation that has gold but no scored candidate at all."""
    rng = np.random.default_rng(seed)
    scores, gold = {}, {}
    for conv in range(int(rng.integers(2, 5))):
        length = int(rng.integers(2, 8))
        lower = [(i, j) for i in range(length) for j in range(i + 1)]
        keep = rng.random(len(lower)) < 0.7
        scores[f"c{conv}"] = {pair: float(rng.integers(0, 11)) / 10 for pair, k in zip(lower, keep) if k}
        everywhere = [(i, j) for i in range(length) for j in range(length)]
        chosen = rng.random(len(everywhere)) < 0.15
        gold[f"c{conv}"] = [pair for pair, g in zip(everywhere, chosen) if g]
    gold["only_gold"] = [(1, 0)]
    return scores, gold


def brute_force(scores, gold):
    """``{t: pair_f1(decode_pairs(scores, t), gold)}`` for every distinct score ``t``."""
    distinct = sorted({s for scored in scores.values() for s in scored.values()}, reverse=True)
    return {t: pair_f1(decode_pairs(scores, t), gold) for t in distinct}


@pytest.mark.parametrize("seed", range(12))
def test_best_pair_threshold_matches_brute_force(seed):
    scores, gold = random_problem(seed)
    result = best_pair_threshold(scores, gold)
    by_threshold = brute_force(scores, gold)
    best_f1 = max(r["f1"] for r in by_threshold.values())
    assert result["f1"] == pytest.approx(best_f1, abs=1e-12)

    # the returned threshold reproduces the chosen predictions on this data
    decoded = pair_f1(decode_pairs(scores, result["threshold"]), gold)
    assert decoded["f1"] == pytest.approx(result["f1"], abs=1e-12)
    assert decoded["precision"] == pytest.approx(result["precision"], abs=1e-12)
    assert decoded["recall"] == pytest.approx(result["recall"], abs=1e-12)

    # highest score among the (near-)equal best options, reported as the midpoint to the next one
    distinct = sorted(by_threshold, reverse=True)
    chosen = max(t for t, r in by_threshold.items() if r["f1"] >= best_f1 - 1e-12)
    position = distinct.index(chosen)
    assert by_threshold[chosen]["precision"] == pytest.approx(result["precision"], abs=1e-12)
    if position + 1 < len(distinct):
        lower = distinct[position + 1]
        assert lower < result["threshold"] < chosen
        assert result["threshold"] == pytest.approx((chosen + lower) / 2, abs=1e-12)
    else:
        assert result["threshold"] == chosen == min(distinct)


def test_best_pair_threshold_ties_pick_the_highest_threshold():
    """3 gold pairs, one outside the candidates. Predicting {a} gives 2·1/(1+3) = 0.5, and predicting
    {a, b, c, d, e} gives 2·2/(5+3) = 0.5 as well: the higher threshold 0.9 wins, reported as the
    midpoint (0.9 + 0.8) / 2 = 0.85."""
    scores = {"x": {(1, 0): 0.9, (1, 1): 0.8, (2, 0): 0.7, (2, 1): 0.6, (2, 2): 0.5}}
    gold = {"x": [(1, 0), (2, 2), (0, 1)]}
    # thresholds: 0.9 -> 2/4 = 0.5; 0.8 -> 2/5; 0.7 -> 2/6; 0.6 -> 2/7; 0.5 -> 4/8 = 0.5
    result = best_pair_threshold(scores, gold)
    assert result["f1"] == pytest.approx(0.5)
    assert result["threshold"] == pytest.approx(0.85)
    assert result["precision"] == pytest.approx(1.0)
    assert result["recall"] == pytest.approx(1 / 3)


def test_best_pair_threshold_tied_scores_are_predicted_together():
    """Three candidates share the score 0.7 (two gold, one not): they are in or out together.
    0.7 -> 2·2/(3+2) = 0.8; 0.2 -> 4/6; 0.1 -> 4/7. Threshold (0.7 + 0.2) / 2 = 0.45."""
    scores = {"x": {(1, 0): 0.7, (1, 1): 0.7, (2, 1): 0.7, (2, 0): 0.2, (2, 2): 0.1}}
    gold = {"x": [(1, 0), (1, 1)]}
    result = best_pair_threshold(scores, gold)
    assert result["threshold"] == pytest.approx(0.45)
    assert result["f1"] == pytest.approx(0.8)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(1.0)


def test_best_pair_threshold_all_candidates_gives_the_lowest_score():
    """When predicting every candidate is best, the threshold is the lowest score (so that it also works
    for scores below 0, such as logits)."""
    scores = {"x": {(1, 0): 0.7, (1, 1): 0.2}, "y": {(0, 0): 0.4}}
    gold = {"x": [(1, 0), (1, 1)], "y": [(0, 0)]}
    result = best_pair_threshold(scores, gold)
    assert result == {"threshold": 0.2, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    # also when the lowest score sits in a tie group, and for negative scores
    scores = {"x": {(1, 0): -0.3, (1, 1): -0.3}}
    assert best_pair_threshold(scores, {"x": [(1, 0), (1, 1)]})["threshold"] == -0.3


def test_best_pair_threshold_without_gold_or_candidates():
    """No gold at all: threshold 0.5 and NaN F1. Gold but nothing scored: F1 0."""
    no_gold = best_pair_threshold({"x": {(1, 0): 0.9}}, {"x": []})
    assert no_gold["threshold"] == 0.5 and math.isnan(no_gold["f1"])
    assert math.isnan(best_pair_threshold({"x": {}}, {"x": []})["f1"])
    nothing_scored = best_pair_threshold({"x": {}}, {"x": [(1, 0)]})
    assert nothing_scored["threshold"] == 0.5
    assert (
        nothing_scored["f1"] == 0.0 and nothing_scored["precision"] == 0.0 and nothing_scored["recall"] == 0.0
    )


def test_best_pair_threshold_midpoint_of_adjacent_scores():
    """The midpoint of two adjacent floats rounds onto the lower one; the chosen score is used instead."""
    below = float(np.nextafter(0.3, 0.0))
    scores = {"x": {(1, 0): 0.3, (1, 1): below}}
    gold = {"x": [(1, 0)]}
    result = best_pair_threshold(scores, gold)
    assert result["f1"] == 1.0  # predicting (1, 0) alone
    assert pair_f1(decode_pairs(scores, result["threshold"]), gold)["f1"] == result["f1"]


# ---------------------------------------------------------------------------------------------------
# decode_pairs


def test_decode_pairs_keeps_every_conversation_and_includes_ties_with_threshold():
    scores = {
        "a": {(2, 1): 0.5, (1, 0): 0.7, (2, 2): 0.49},
        "b": {(0, 0): 0.1},
        "c": {},
    }
    assert decode_pairs(scores, 0.5) == {"a": [(1, 0), (2, 1)], "b": [], "c": []}
    assert decode_pairs(scores, 0.0) == {"a": [(1, 0), (2, 1), (2, 2)], "b": [(0, 0)], "c": []}
    assert decode_pairs(scores, 0.71) == {"a": [], "b": [], "c": []}


# ---------------------------------------------------------------------------------------------------
# pair_extraction_report


def report_inputs():
    scores = {
        "a": {(0, 0): 0.2, (1, 0): 0.8, (1, 1): 0.6, (2, 0): 0.3, (2, 1): 0.55, (2, 2): 0.9},
        "b": {(0, 0): 0.4, (1, 0): 0.1, (1, 1): 0.7},
    }
    gold = {"a": [(1, 0), (2, 2), (0, 2)], "b": [(1, 1)]}
    predicted_emotions = {"a": [0, 4, 1], "b": [0, 5]}
    gold_emotions = {"a": [3, 4, 1], "b": [0, 5]}
    return scores, gold, predicted_emotions, gold_emotions


def test_pair_extraction_report_sections_and_consistency():
    scores, gold, predicted_emotions, gold_emotions = report_inputs()
    report = pair_extraction_report(scores, gold, 0.58)
    assert set(report) == {"threshold", "pairs", "pair_auprc", "diagnostics"}
    assert report["threshold"] == 0.58
    decoded = decode_pairs(scores, 0.58)
    assert report["pairs"] == pair_f1(decoded, gold)
    # predicted: a (1,0) (1,1) (2,2), b (1,1); correct: (a,1,0) (a,2,2) (b,1,1); gold 4
    assert report["pairs"]["f1"] == pytest.approx(2 * 3 / (4 + 4))
    assert report["pair_auprc"] == pytest.approx(pair_auprc(scores, gold))
    assert report["diagnostics"] == pytest.approx(pair_confidence_diagnostics(scores, gold))
    json.dumps(report, allow_nan=False)

    with_emotions = pair_extraction_report(
        scores, gold, 0.58, predicted_emotions=predicted_emotions, gold_emotions=gold_emotions
    )
    assert set(with_emotions) == {"threshold", "pairs", "pair_auprc", "diagnostics", "semeval"}
    assert {"weighted_f1", "micro_f1", "per_emotion"} <= set(with_emotions["semeval"])
    assert with_emotions["pairs"] == report["pairs"]
    json.dumps(with_emotions, allow_nan=False)

    # only one of the two emotion dicts: no SemEval section
    assert "semeval" not in pair_extraction_report(scores, gold, 0.58, predicted_emotions=predicted_emotions)
    assert "semeval" not in pair_extraction_report(scores, gold, 0.58, gold_emotions=gold_emotions)


def test_pair_extraction_report_is_strict_json_when_metrics_are_undefined():
    """Without gold, AUPRC and the diagnostics are NaN; the report carries them as None."""
    scores = {"a": {(0, 0): 0.2, (1, 0): 0.8}}
    report = pair_extraction_report(scores, {"a": []}, 0.5)
    assert report["pair_auprc"] is None
    assert report["diagnostics"]["gold_negative_gap"] is None
    assert report["diagnostics"]["candidate_recall"] is None
    json.dumps(report, allow_nan=False)
    with_emotions = pair_extraction_report(
        scores, {"a": []}, 0.5, predicted_emotions={"a": [1, 2]}, gold_emotions={"a": [1, 2]}
    )
    json.dumps(with_emotions, allow_nan=False)


def test_semeval_variant_accepts_mecad_emotion_names():
    """MECAD labels ("Neutral", "Happy", "Sad", ...) map onto the scorer's emotions case-insensitively."""
    from merc_hf.metrics import semeval_pair_f1

    mecad = ["Neutral", "Anger", "Disgust", "Fear", "Happy", "Sad", "Surprise"]
    gold = {"c": [(1, 0, 4), (2, 2, 5)]}
    predicted = {"c": [(1, 0, 4), (2, 1, 5)]}
    as_mecad = semeval_pair_f1(predicted, gold, emotion_names=mecad)
    as_names = semeval_pair_f1(
        {"c": [(1, 0, "joy"), (2, 1, "sadness")]}, {"c": [(1, 0, "joy"), (2, 2, "sadness")]}
    )
    assert as_mecad == as_names and as_mecad["per_emotion"]["joy"]["f1"] == 1.0
