"""MercTrainer's evaluation metrics for sentiment models against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss
from transformers.trainer_utils import EvalPrediction

from merc_hf.training.trainer import sentiment_metrics


def test_sentiment_metrics_against_sklearn():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=50)
    unimodal = np.full((50, 3), -100)
    scores = sentiment_metrics(EvalPrediction(logits, (labels, unimodal, rng.normal(size=50))))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert scores["nll"] == pytest.approx(log_loss(labels, probs, labels=[0, 1, 2]), rel=1e-5)
    assert scores["accuracy"] == pytest.approx(accuracy_score(labels, probs.argmax(1)))
    assert scores["weighted_f1"] == pytest.approx(f1_score(labels, probs.argmax(1), average="weighted"))
    # SIMS Has0: non-positive (classes 0, 1) vs positive, predicted by p_positive > p_negative
    has0 = ((probs[:, 2] > probs[:, 0]) == (labels == 2)).mean()
    assert scores["has0_acc_2"] == pytest.approx(has0)
