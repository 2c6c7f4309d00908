"""Input validation: every bad input is a ValueError naming the argument and the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from merc_hf.metrics import (
    calibration_errors,
    cel,
    classification_scores,
    failure_prediction,
    reliability_report,
    uncertain_sample_rates,
)

GOOD = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]
LABELS = [0, 1, 1]


@pytest.mark.parametrize("metric", [calibration_errors, failure_prediction])
def test_accepts_numpy_torch_and_lists(metric):
    expected = metric(np.array(GOOD), np.array(LABELS))
    assert metric(GOOD, LABELS) == expected
    assert metric(torch.tensor(GOOD, dtype=torch.float64), torch.tensor(LABELS)) == expected
    # float32 / bfloat16 tensors with gradients are detached and upcast.
    result = metric(torch.tensor(GOOD, requires_grad=True), torch.tensor(LABELS))
    assert result == pytest.approx(expected, abs=1e-6)
    metric(torch.tensor(GOOD, dtype=torch.bfloat16), torch.tensor(LABELS))


def test_from_logits_applies_softmax():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.2]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert calibration_errors(logits, LABELS, from_logits=True) == pytest.approx(
        calibration_errors(probs, LABELS)
    )
    with pytest.raises(ValueError, match=r"probs must contain probabilities in \[0, 1\].*from_logits=True"):
        calibration_errors(logits, LABELS)


@pytest.mark.parametrize(
    ("probs", "labels", "message"),
    [
        (
            [[0.7, 0.2], [0.5, 0.5], [0.5, 0.5]],
            LABELS,
            r"probs rows must sum to 1 \(tolerance 0.001\); row 0 sums to 0.9",
        ),
        ([0.7, 0.3], [0], r"probs must be a 2-D array of shape \(N, K\), got shape \(2,\)"),
        (np.zeros((0, 3)), [], r"probs is empty \(0 samples\)"),
        ([[1.0], [1.0]], [0, 0], "probs must have at least 2 classes"),
        ([[np.nan, 1.0], [0.5, 0.5]], [0, 0], "probs contains NaN or infinite values"),
        ([[1.2, -0.2], [0.5, 0.5]], [0, 0], r"probs must contain probabilities in \[0, 1\]"),
        (GOOD, [0, 1], r"references has 2 entries but 3 were expected \(shape mismatch\)"),
        (GOOD, [0, 1, 3], r"references contains label 3, outside the valid range \[0, 2\]"),
        (GOOD, [0, 1, -1], "references contains label -1, outside the valid range"),
        (GOOD, [0, 1, 1.5], "references must hold integer class ids, got non-integral values"),
        (GOOD, [[0, 1, 1]], "references must be a 1-D array"),
        (GOOD, [True, False, True], "references must hold integer class ids, got booleans"),
        (GOOD, ["a", "b", "c"], "references must be numeric"),
        ([[0.5, 0.5], [1.0]], [0, 0], "probs could not be converted to an array.*ragged"),
    ],
)
def test_bad_probs_and_labels(probs, labels, message):
    with pytest.raises(ValueError, match=message):
        calibration_errors(probs, labels)


def test_sum_tolerance_is_1e_3():
    calibration_errors([[0.6, 0.4, 0.0009]] * 3, LABELS)  # sums to 1.0009: accepted
    with pytest.raises(ValueError, match="row 0 sums to 1.0011"):
        calibration_errors([[0.6, 0.4, 0.0011]] * 3, LABELS)


def test_integral_float_labels_are_accepted():
    assert calibration_errors(GOOD, [0.0, 1.0, 1.0]) == calibration_errors(GOOD, LABELS)


@pytest.mark.parametrize("n_bins", [0, -3, 2.5, True, "15"])
def test_bad_n_bins(n_bins):
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        calibration_errors(GOOD, LABELS, n_bins=n_bins)


def test_classification_errors():
    with pytest.raises(ValueError, match=r"predictions has 2 entries but 3 were expected"):
        classification_scores([0, 1], [0, 1, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"predictions contains label 2, outside the valid range \[0, 1\]"):
        classification_scores([0, 1, 2], [0, 1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="label_names must name at least 2 classes"):
        classification_scores([0], [0], ["a"])
    with pytest.raises(ValueError, match="label_names contains duplicates"):
        classification_scores([0], [0], ["a", "a"])
    with pytest.raises(ValueError, match=r"references is empty \(0 samples\)"):
        classification_scores([], [], ["a", "b"])


def test_masked_probs_errors():
    with pytest.raises(ValueError, match=r"masked_probs has unknown removal type 'Z'; expected one of \('A'"):
        cel(GOOD, {"Z": GOOD}, LABELS)
    with pytest.raises(
        ValueError, match=r"masked_probs\['A'\] has shape \(2, 3\) but full_probs has shape \(3, 3\)"
    ):
        cel(GOOD, {"A": GOOD[:2]}, LABELS)
    with pytest.raises(ValueError, match="masked_probs is empty"):
        uncertain_sample_rates(GOOD, {}, LABELS)
    with pytest.raises(ValueError, match="masked_probs must be a mapping"):
        uncertain_sample_rates(GOOD, [GOOD], LABELS)
    with pytest.raises(ValueError, match=r"masked_probs\['T'\] rows must sum to 1"):
        cel(GOOD, {"T": [[0.5, 0.1, 0.1]] * 3}, LABELS)
    with pytest.raises(ValueError, match=r"full_probs contains NaN"):
        cel([[np.nan, 0.5, 0.5]] * 3, {"T": GOOD}, LABELS)


def test_report_checks_label_names():
    with pytest.raises(ValueError, match="label_names has 2 names but probs has 3 classes"):
        reliability_report(GOOD, LABELS, ["a", "b"])
