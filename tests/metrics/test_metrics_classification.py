"""Accuracy / F1: a hand-worked example and scikit-learn cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from merc_hf.metrics import classification_scores


def test_hand_worked_example():
    # refs  a a b b c ; preds a b b b a
    # a: tp 1, support 2, predicted 2 → F1 = 2/4;  b: tp 2, support 2, predicted 3 → 4/5;
    # c: tp 0, support 1, predicted 0 → 0;  d: absent everywhere → undefined (NaN), not in the macro.
    scores = classification_scores([0, 1, 1, 1, 0], [0, 0, 1, 1, 2], ["a", "b", "c", "d"])
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["per_class_f1"]["a"] == pytest.approx(0.5)
    assert scores["per_class_f1"]["b"] == pytest.approx(0.8)
    assert scores["per_class_f1"]["c"] == 0.0
    assert math.isnan(scores["per_class_f1"]["d"])
    assert scores["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 1 * 0.0) / 5)
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    references = rng.integers(0, k, size=int(rng.integers(5, 300)))
    predictions = np.where(rng.random(references.size) < 0.5, references, rng.integers(0, k, references.size))
    names = [f"class{i}" for i in range(k)]
    scores = classification_scores(predictions, references, names)
    assert scores["accuracy"] == pytest.approx(accuracy_score(references, predictions), abs=1e-12)
    for average in ("weighted", "macro"):
        expected = f1_score(references, predictions, average=average)
        assert scores[f"{average}_f1"] == pytest.approx(expected, abs=1e-12)
    present = np.union1d(references, predictions)
    per_class = f1_score(references, predictions, labels=present, average=None)
    for label, value in zip(present, per_class):
        assert scores["per_class_f1"][names[label]] == pytest.approx(value, abs=1e-12)
