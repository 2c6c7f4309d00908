"""Helpers shared by the metric tests."""

from __future__ import annotations

import numpy as np
import pytest


def binary_probs(confidences, correct) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities whose top-label confidence is ``confidences[i]`` (≥ 0.5) and whose
    prediction (class 0) is right exactly when ``correct[i]``."""
    conf = np.asarray(confidences, dtype=np.float64)
    probs = np.stack([conf, 1.0 - conf], axis=1)
    labels = np.where(np.asarray(correct, dtype=bool), 0, 1)
    return probs, labels


def random_probs(seed: int, n: int = 500, k: int = 5, temperature: float = 1.5):
    """Softmax outputs with labels drawn from them (so confidence carries information about correctness)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * temperature
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=row) for row in probs])
    return probs, labels


@pytest.fixture
def make_binary_probs():
    return binary_probs


@pytest.fixture
def make_random_probs():
    return random_probs
