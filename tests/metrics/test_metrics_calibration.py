"""ECE / MCE / RMSCE: hand-worked edge cases (Guo et al. convention) and torchmetrics cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from merc_hf.metrics import calibration_errors, reliability_bins
from merc_hf.metrics.calibration import _bin_statistics

NORMS = {"ece": "l1", "mce": "max", "rmsce": "l2"}


def torchmetrics_errors(probs, labels, n_bins):
    probs, labels = torch.as_tensor(probs), torch.as_tensor(labels)
    return {
        key: MulticlassCalibrationError(num_classes=probs.shape[1], n_bins=n_bins, norm=norm)(
            probs, labels
        ).item()
        for key, norm in NORMS.items()
    }


def test_reference_example_039_vs_torchmetrics_047(make_binary_probs):
    # hf_stack_conventions.md §4.4: confidences 0.5 ✓, 0.75 ✓, 0.6 ✓, 1.0 ✗, 0.8 ✓, n_bins = 4.
    # (lo, hi] bins: (0.25, 0.5] = {0.5 ✓}: gap 0.5; (0.5, 0.75] = {0.75 ✓, 0.6 ✓}: acc 1, conf 0.675,
    # gap 0.325; (0.75, 1] = {1.0 ✗, 0.8 ✓}: acc 0.5, conf 0.9, gap 0.4.
    probs, labels = make_binary_probs([0.5, 0.75, 0.6, 1.0, 0.8], [1, 1, 1, 0, 1])
    errors = calibration_errors(probs, labels, n_bins=4)
    assert errors["ece"] == pytest.approx(0.2 * 0.5 + 0.4 * 0.325 + 0.4 * 0.4)  # 0.39
    assert errors["ece"] == pytest.approx(0.39)
    assert errors["mce"] == pytest.approx(0.5)
    assert errors["rmsce"] == pytest.approx(math.sqrt(0.2 * 0.25 + 0.4 * 0.325**2 + 0.4 * 0.16))
    # torchmetrics: [lo, hi) bins and a bin of its own for 1.0: 0.2·1 + 0.4·0.45 + 0.4·0.225 = 0.47.
    reference = torchmetrics_errors(probs, labels, 4)
    assert reference["ece"] == pytest.approx(0.47, abs=1e-6)
    assert reference["mce"] == pytest.approx(1.0, abs=1e-6)


def test_confidence_exactly_one_goes_in_last_bin(make_binary_probs):
    # 1.0 ✗ and 0.92 ✓ share the bin (0.9, 1]: acc 0.5, conf 0.96 → ECE = MCE = RMSCE = 0.46.
    probs, labels = make_binary_probs([1.0, 0.92], [0, 1])
    errors = calibration_errors(probs, labels, n_bins=10)
    assert errors == pytest.approx({"ece": 0.46, "mce": 0.46, "rmsce": 0.46})
    bins = reliability_bins(probs, labels, n_bins=10)
    assert bins["count"].tolist() == [0] * 9 + [2]
    # torchmetrics keeps 1.0 apart: 0.5·|0 − 1| + 0.5·|1 − 0.92| = 0.54.
    assert torchmetrics_errors(probs, labels, 10)["ece"] == pytest.approx(0.54, abs=1e-6)


def test_empty_bins_are_skipped():
    # Three classes, confidences 0.35 ✓, 0.35 ✗, 0.85 ✗ with 10 bins: 8 bins are empty.
    # (0.3, 0.4]: acc 1/2, conf 0.35, gap 0.15, weight 2/3; (0.8, 0.9]: acc 0, conf 0.85, gap 0.85, weight 1/3.
    probs = [[0.35, 0.33, 0.32], [0.35, 0.33, 0.32], [0.85, 0.1, 0.05]]
    labels = [0, 1, 2]
    errors = calibration_errors(probs, labels, n_bins=10)
    assert errors["ece"] == pytest.approx(2 / 3 * 0.15 + 1 / 3 * 0.85)
    assert errors["mce"] == pytest.approx(0.85)  # the max runs over non-empty bins only
    assert errors["rmsce"] == pytest.approx(math.sqrt(2 / 3 * 0.15**2 + 1 / 3 * 0.85**2))
    bins = reliability_bins(probs, labels, n_bins=10)
    assert np.isnan(bins["accuracy"][0]) and np.isnan(bins["confidence"][5])
    assert bins["count"].sum() == 3


def test_ties_at_bin_edges_belong_to_the_lower_bin():
    # Four classes: confidence 0.25 (✓) lies on the edge 0.25 and 0.5 (✗) on the edge 0.5. With (lo, hi]
    # bins they fall in (0, 0.25] and (0.25, 0.5]; torchmetrics ([lo, hi)) would use bins 1 and 2.
    probs = [[0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]]
    labels = [0, 1]
    bins = reliability_bins(probs, labels, n_bins=4)
    assert bins["count"].tolist() == [1, 1, 0, 0]
    errors = calibration_errors(probs, labels, n_bins=4)
    assert errors["ece"] == pytest.approx(0.5 * 0.75 + 0.5 * 0.5)
    assert errors["mce"] == pytest.approx(0.75)


def test_confidence_zero_goes_in_first_bin():
    stats = _bin_statistics(np.array([0.0, 0.05, 1.0]), np.array([False, True, True]), 10)
    assert stats["count"].tolist() == [2] + [0] * 8 + [1]
    assert stats["accuracy"][0] == 0.5


def test_perfectly_calibrated_bins_give_zero(make_binary_probs):
    # 0.75-confidence bin with 3 of 4 right, 1.0-confidence bin all right.
    probs, labels = make_binary_probs([0.75] * 4 + [1.0] * 2, [1, 1, 1, 0, 1, 1])
    assert calibration_errors(probs, labels, n_bins=4) == pytest.approx(
        {"ece": 0.0, "mce": 0.0, "rmsce": 0.0}
    )


@pytest.mark.parametrize(("seed", "n_bins"), [(0, 15), (1, 10), (2, 7), (3, 20)])
def test_matches_torchmetrics_on_continuous_data(make_random_probs, seed, n_bins):
    probs, labels = make_random_probs(seed, n=2000, k=6)
    ours = calibration_errors(probs, labels, n_bins=n_bins)
    reference = torchmetrics_errors(probs, labels, n_bins)
    for key in NORMS:
        assert abs(ours[key] - reference[key]) < 1e-6, key


def test_values_are_fractions(make_random_probs):
    probs, labels = make_random_probs(4)
    errors = calibration_errors(probs, labels)
    assert all(0.0 <= value <= 1.0 for value in errors.values())
    assert errors["ece"] <= errors["rmsce"] <= errors["mce"]
