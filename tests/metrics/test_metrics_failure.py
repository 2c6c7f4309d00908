"""Failure prediction: a hand-worked example, scikit-learn cross-checks and the degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from merc_hf.metrics import failure_prediction


def test_hand_worked_example(make_binary_probs):
    # confidence 0.9 ✓, 0.8 ✗, 0.7 ✓, 0.6 ✓, 0.5 ✗ (3 correct = positives, 2 errors)
    probs, labels = make_binary_probs([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 1, 0])
    result = failure_prediction(probs, labels)
    # AUROC: 4 of the 6 (correct, wrong) pairs are ranked correctly.
    assert result["auroc"] == pytest.approx(4 / 6)
    # PR points (recall, precision): (0,1) (1/3,1) (1/3,1/2) (2/3,2/3) (1,3/4) (1,3/5); trapezoids:
    # 1/3·1 + 0 + 1/3·(1/2 + 2/3)/2 + 1/3·(2/3 + 3/4)/2 = 55/72.
    assert result["aupr_success"] == pytest.approx(55 / 72)
    # Errors positive, score −confidence: 0.5 ✗ first (P = 1, R = 1/2), then 0.8 ✗ at P = 2/4.
    assert result["aupr_error"] == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    # ROC corners tpr (0, 1/3, 1/3, 1, 1) / fpr (0, 0, 1/2, 1/2, 1): tpr closest to 0.95 is 1 → fpr 1/2.
    assert result["fpr_at_95tpr"] == pytest.approx(0.5)
    # Risk of the k most confident: 0, 1/2, 1/3, 1/4, 2/5.
    aurc = (0 + 1 / 2 + 1 / 3 + 1 / 4 + 2 / 5) / 5
    assert result["aurc"] == pytest.approx(aurc)
    assert result["eaurc"] == pytest.approx(aurc - (0.4 + 0.6 * math.log(0.6)))
    assert (result["n_correct"], result["n_errors"]) == (3, 2)


def _sklearn_reference(probs, labels):
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(int)
    precision, recall, _ = precision_recall_curve(correct, confidence)
    fpr, tpr, _ = roc_curve(correct, confidence)
    return {
        "auroc": roc_auc_score(correct, confidence),
        "aupr_success": auc(recall, precision),
        "aupr_error": average_precision_score(1 - correct, -confidence),
        "fpr_at_95tpr": fpr[np.argmin(np.abs(tpr - 0.95))],
    }


@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_on_random_data(make_random_probs, seed):
    probs, labels = make_random_probs(seed, n=800, k=4)
    result = failure_prediction(probs, labels)
    for key, expected in _sklearn_reference(probs, labels).items():
        assert result[key] == pytest.approx(expected, abs=1e-12), key


@pytest.mark.parametrize("seed", [75, 3, 11])
def test_matches_sklearn_with_tied_confidences(make_binary_probs, seed):
    # Rounded confidences create ties and collinear ROC runs; with seed 75 dropping the intermediate
    # ROC points (sklearn's roc_curve default, used by FMFP) changes FPR@95TPR from 0.933 to 0.867.
    rng = np.random.default_rng(seed)
    correct = rng.integers(0, 2, 40)
    confidence = 0.5 + np.round(rng.random(40), 1) / 2
    probs, labels = make_binary_probs(confidence, correct)
    result = failure_prediction(probs, labels)
    for key, expected in _sklearn_reference(probs, labels).items():
        assert result[key] == pytest.approx(expected, abs=1e-12), key


def test_aurc_ties_keep_input_order(make_binary_probs):
    # Two samples with equal confidence, the wrong one first: risks 1, 1/2 → AURC 3/4.
    probs, labels = make_binary_probs([0.7, 0.7], [0, 1])
    assert failure_prediction(probs, labels)["aurc"] == pytest.approx(0.75)
    probs, labels = make_binary_probs([0.7, 0.7], [1, 0])
    assert failure_prediction(probs, labels)["aurc"] == pytest.approx(0.25)


@pytest.mark.parametrize(("correct", "aurc"), [([1, 1, 1], 0.0), ([0, 0, 0], 1.0)])
def test_all_correct_or_all_wrong_gives_nan_not_an_error(make_binary_probs, correct, aurc):
    probs, labels = make_binary_probs([0.9, 0.7, 0.6], correct)
    result = failure_prediction(probs, labels)
    for key in ("auroc", "aupr_success", "aupr_error", "fpr_at_95tpr"):
        assert math.isnan(result[key]), key
    assert result["aurc"] == pytest.approx(aurc)
    assert result["eaurc"] == pytest.approx(0.0)
