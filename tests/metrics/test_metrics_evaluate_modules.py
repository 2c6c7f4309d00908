"""The evaluate wrappers load offline from the package and give the same numbers as merc_hf.metrics."""

from __future__ import annotations

import math

import evaluate
import numpy as np
import pytest

import merc_hf
from merc_hf.evaluate_modules import available_metrics, metric_path
from merc_hf.metrics import (
    calibration_errors,
    cel,
    failure_prediction,
    pair_f1,
    semeval_pair_f1,
    uncertain_sample_rates,
)

NAMES = ["ece", "failure_prediction", "cel", "uncertain_samples", "pair_f1"]


@pytest.fixture(scope="module")
def modules():
    return {name: evaluate.load(metric_path(name), keep_in_memory=True) for name in NAMES}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 60)
    masked = {key: np.roll(probs, shift, axis=0) for shift, key in enumerate("AVX", start=1)}
    return probs, labels, masked


def test_metric_path():
    assert set(NAMES) <= set(available_metrics())
    assert merc_hf.metric_path("ece") == metric_path("ece")
    assert metric_path("ece").endswith("ece")
    with pytest.raises(ValueError, match=r"unknown merc_hf metric 'accuracy'; available metrics: cel, ece, "):
        metric_path("accuracy")


def test_modules_have_cards(modules):
    for name, module in modules.items():
        assert module.description and module.citation and module.inputs_description, name
        assert "@" in module.citation


def test_ece_module(modules, data):
    probs, labels, _ = data
    result = modules["ece"].compute(predictions=probs, references=labels, n_bins=10)
    assert result == pytest.approx(calibration_errors(probs, labels, n_bins=10), abs=1e-12)
    # add_batch + compute, and logits
    for start in range(0, 60, 25):
        modules["ece"].add_batch(
            predictions=np.log(probs[start : start + 25]), references=labels[start : start + 25]
        )
    assert modules["ece"].compute(n_bins=10, from_logits=True) == pytest.approx(result, abs=1e-12)


def test_failure_prediction_module(modules, data):
    probs, labels, _ = data
    result = modules["failure_prediction"].compute(predictions=probs.tolist(), references=labels.tolist())
    assert result == pytest.approx(failure_prediction(probs, labels), abs=1e-12)


def test_cmerc_modules(modules, data):
    probs, labels, masked = data
    result = modules["cel"].compute(predictions=probs, references=labels, masked_probs=masked)
    assert result == {"cel": pytest.approx(cel(probs, masked, labels))}
    rates = modules["uncertain_samples"].compute(predictions=probs, references=labels, masked_probs=masked)
    expected = uncertain_sample_rates(probs, masked, labels)
    assert rates == pytest.approx({f"uncertain_rate_{key}": value for key, value in expected.items()})
    assert set(rates) == {f"uncertain_rate_{key}" for key in ("A", "V", "X", "M", "C", "MC")}
    with pytest.raises(ValueError, match="cel needs masked_probs"):
        modules["cel"].compute(predictions=probs, references=labels)


def test_pair_f1_module(modules):
    predicted = [[[2, 1], [2, 2]], [], [[1, 0]]]
    gold = [[[2, 1]], [[0, 0]], [[1, 0], [1, 1]]]
    result = modules["pair_f1"].compute(predictions=predicted, references=gold)
    assert result == pair_f1(predicted, gold)
    assert result["f1"] == pytest.approx(2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4))
    with pytest.raises(ValueError, match="points outside the conversation"):
        modules["pair_f1"].compute(predictions=predicted, references=gold, conversation_lengths=[3, 3, 1])

    emotion_pred = [[[2, 1, 4], [2, 2, 6]]]  # scorer ids: 4 = joy, 6 = surprise
    emotion_gold = [[[2, 1, 4], [2, 2, 4]]]
    semeval = modules["pair_f1"].compute(predictions=emotion_pred, references=emotion_gold, variant="semeval")
    expected = semeval_pair_f1(emotion_pred, emotion_gold)
    assert semeval["weighted_f1"] == pytest.approx(expected["weighted_f1"]) == pytest.approx(2 / 3)
    aware = modules["pair_f1"].compute(predictions=emotion_pred, references=emotion_gold, with_emotion=True)
    assert aware["f1"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="variant must be 'set' or 'semeval'"):
        modules["pair_f1"].compute(predictions=predicted, references=gold, variant="strict")


def test_combine(modules, data):
    probs, labels, masked = data
    combined = evaluate.combine([modules["ece"], modules["failure_prediction"]])
    result = combined.compute(predictions=probs, references=labels)
    assert result["ece"] == pytest.approx(calibration_errors(probs, labels)["ece"])
    assert result["auroc"] == pytest.approx(failure_prediction(probs, labels)["auroc"])
    cmerc = evaluate.combine([modules["cel"], modules["uncertain_samples"]])
    result = cmerc.compute(predictions=probs, references=labels, masked_probs=masked)
    assert result["cel"] == pytest.approx(cel(probs, masked, labels))
    assert "uncertain_rate_MC" in result


def test_empty_input_is_a_clear_error(modules):
    with pytest.raises(ValueError, match="empty"):
        modules["ece"].compute(predictions=[], references=[])


def test_all_correct_gives_nan(modules):
    result = modules["failure_prediction"].compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[0, 1])
    assert math.isnan(result["auroc"]) and result["aurc"] == 0.0
