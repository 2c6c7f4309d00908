"""CMERC confidence boosts, CEL and uncertain-sample rates on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from merc_hf.metrics import cel, confidence_boosts, uncertain_sample_rates

LABELS = np.array([0, 1, 2])
K = 3


def with_gold(gold_confidences):
    """Rows whose gold-class probability is given; the rest is spread evenly over the other classes."""
    rows = np.zeros((len(gold_confidences), K))
    for i, (label, value) in enumerate(zip(LABELS, gold_confidences)):
        rows[i] = (1.0 - value) / (K - 1)
        rows[i, label] = value
    return rows


FULL = with_gold([0.5, 0.6, 0.8])
MASKED = {
    "A": with_gold([0.6, 0.5, 0.8]),  # +0.1, −0.1, equal (not a rise)
    "V": with_gold([0.4, 0.7, 0.9]),  # −, +0.1, +0.1
    "T": with_gold([0.5, 0.6, 0.7]),  # no rise at all
    "X": with_gold([0.7, 0.6, 0.8]),  # +0.2, =, =
    "O": with_gold([0.5, 0.65, 0.8]),  # =, +0.05, =
}


def test_confidence_boosts_hand_worked():
    boosts = confidence_boosts(FULL, MASKED, LABELS)
    assert list(boosts) == ["A", "V", "T", "X", "O"]
    expected = {
        "A": [0.1, 0.0, 0.0],
        "V": [0.0, 0.1, 0.1],
        "T": [0.0, 0.0, 0.0],
        "X": [0.2, 0.0, 0.0],
        "O": [0.0, 0.05, 0.0],
    }
    for key, values in expected.items():
        np.testing.assert_allclose(boosts[key], values, atol=1e-12)


def test_cel_is_the_raw_sum():
    # 0.1 (A) + 0.2 (V) + 0 (T) + 0.2 (X) + 0.05 (O)
    assert cel(FULL, MASKED, LABELS) == pytest.approx(0.55)
    assert cel(FULL, {"A": MASKED["A"]}, LABELS) == pytest.approx(0.1)
    # Not normalised: duplicating the utterances doubles it.
    doubled = {key: np.vstack([value, value]) for key, value in MASKED.items()}
    assert cel(np.vstack([FULL, FULL]), doubled, np.r_[LABELS, LABELS]) == pytest.approx(1.1)


def test_uncertain_rates_hand_worked():
    rates = uncertain_sample_rates(FULL, MASKED, LABELS)
    # rises: A [1,0,0], V [0,1,1], T [0,0,0], X [1,0,0], O [0,1,0]
    # M = A|V|T = [1,1,1]; C = X|O = [1,1,0]; MC = [1,1,1]
    expected = {
        "A": 100 / 3,
        "V": 200 / 3,
        "T": 0.0,
        "X": 100 / 3,
        "O": 100 / 3,
        "M": 100.0,
        "C": 200 / 3,
        "MC": 100.0,
    }
    assert rates == pytest.approx(expected)


def test_unions_only_over_given_removals():
    rates = uncertain_sample_rates(FULL, {"T": MASKED["T"], "X": MASKED["X"]}, LABELS)
    assert rates == pytest.approx({"T": 0.0, "X": 100 / 3, "M": 0.0, "C": 100 / 3, "MC": 100 / 3})
    rates = uncertain_sample_rates(FULL, {"V": MASKED["V"], "A": MASKED["A"]}, LABELS)
    assert rates == pytest.approx({"A": 100 / 3, "V": 200 / 3, "M": 100.0})
    assert list(rates) == ["A", "V", "M"]  # canonical order, no C / MC without a context removal
    rates = uncertain_sample_rates(FULL, {"O": MASKED["O"]}, LABELS)
    assert rates == pytest.approx({"O": 100 / 3, "C": 100 / 3})


def test_identical_inputs_have_no_uncertain_samples():
    assert uncertain_sample_rates(FULL, {"A": FULL.copy()}, LABELS) == {"A": 0.0, "M": 0.0}
    assert cel(FULL, {"A": FULL.copy()}, LABELS) == 0.0


def test_from_logits_and_torch_inputs():
    full_logits = np.log(FULL) + 3.0  # softmax(log p + c) = p
    masked_logits = {key: torch.tensor(np.log(value) - 1.0) for key, value in MASKED.items()}
    assert cel(full_logits, masked_logits, torch.tensor(LABELS), from_logits=True) == pytest.approx(0.55)
