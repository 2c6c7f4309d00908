"""Temperature scaling (Guo et al., ICML 2017): the fit on known optima and hand cases, its input checks,
``MercConfig.logit_temperature`` in the forward pass, and :class:`TemperatureScaling` on a tiny M3Net over
synthetic MELD-like dialogues (fit, save/load, refit, no fitting on test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

import merc_hf
from merc_hf.calibration import TemperatureScaling, fit_temperature
from merc_hf.calibration.posthoc import MIN_TEMPERATURE
from merc_hf.data import DialogueCollator
from merc_hf.models.m3net import M3NetConfig, M3NetModel
from merc_hf.models.pair_scorer import PairScorerConfig, PairScorerModel


def mean_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean NLL of softmax(logits / T), written out in numpy."""
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    log_p = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


# ------------------------------------------------------------------------------------ fit_temperature


def test_fit_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20000, 5)) * 3.0
    p = np.exp(z / 2.5)
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    assert fit_temperature(z, labels) == pytest.approx(2.5, abs=0.1)


def test_fit_is_a_stationary_point_of_the_nll_on_two_samples():
    # one confident right prediction and one wrong one: the NLL has an interior minimum
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    labels = np.array([0, 0])
    t = fit_temperature(logits, labels)
    h = 1e-5
    derivative = (mean_nll(logits, labels, t + h) - mean_nll(logits, labels, t - h)) / (2 * h)
    assert abs(derivative) < 1e-7
    assert mean_nll(logits, labels, t) < min(
        mean_nll(logits, labels, 0.9 * t), mean_nll(logits, labels, 1.1 * t)
    )


def test_fit_ignores_minus_100_and_accepts_torch_and_log_probabilities():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 4)) * 2.0
    labels = rng.integers(0, 4, size=200)
    reference = fit_temperature(z, labels)
    padded_z = np.concatenate([z, rng.normal(size=(30, 4)) * 50.0])
    padded_labels = np.concatenate([labels, np.full(30, -100)])
    assert fit_temperature(padded_z, padded_labels) == reference
    as_torch = fit_temperature(torch.tensor(z, dtype=torch.float32), torch.tensor(labels))
    assert as_torch == pytest.approx(reference, rel=1e-5)
    log_probs = torch.log_softmax(torch.tensor(z), dim=-1).numpy()
    assert fit_temperature(log_probs, labels) == pytest.approx(reference, rel=1e-6)


def test_fit_allows_zero_probabilities_except_for_the_gold_class():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    with_zero = logits.copy()
    with_zero[0, 2] = -np.inf  # probability exactly 0 for a non-gold class
    t = fit_temperature(with_zero, np.array([0, 0]))
    assert math.isfinite(t) and t > 0
    with pytest.raises(ValueError, match="gold"):
        fit_temperature(with_zero, np.array([2, 0]))


def test_fit_sharpens_towards_zero_when_every_prediction_is_right():
    # no interior optimum: the NLL falls towards 0 as T -> 0; the fit stops once it is flat in float64
    logits = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, -1.0]])
    labels = np.array([0, 1, 0])
    t = fit_temperature(logits, labels)
    assert MIN_TEMPERATURE <= t < 0.1
    assert mean_nll(logits, labels, t) < 1e-9


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.zeros(4), np.zeros(4, dtype=int), "logits must have shape"),
        (np.zeros((4, 1)), np.zeros(4, dtype=int), "at least 2 classes"),
        (np.zeros((4, 3)), np.zeros(3, dtype=int), "labels must have shape"),
        (np.zeros((4, 3)), np.zeros((4, 1), dtype=int), "labels must have shape"),
        (np.zeros((4, 3)), np.zeros(4), "integer"),
        (np.zeros((4, 3)), np.full(4, -100), "-100"),
        (np.zeros((4, 3)), np.array([0, 1, 2, 3]), r"\[0, 3\)"),
        (np.full((4, 3), np.nan), np.zeros(4, dtype=int), "NaN"),
    ],
)
def test_fit_rejects_bad_inputs(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        fit_temperature(logits, labels)


def test_fit_rejects_bad_max_iter():
    with pytest.raises(ValueError, match="max_iter"):
        fit_temperature(np.zeros((2, 2)), np.array([0, 1]), max_iter=0)
    with pytest.raises(ValueError, match="max_iter"):
        TemperatureScaling(max_iter=0)


# ------------------------------------------------------------------------------- config.logit_temperature


@pytest.fixture(scope="module")
def meld_like():
    return merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=20, seed=0, dims={"text": 6, "audio": 5, "visual": 5}
    )


def tiny_config(**overrides) -> M3NetConfig:
    # the meld-like synthetic corpus has 7 classes and up to 9 speakers per dialogue
    values = dict(
        text_dim=6,
        audio_dim=5,
        visual_dim=None,
        hidden_size=8,
        graph_hidden_size=8,
        num_L=1,
        num_K=1,
        n_speakers=9,
        dropout=0.0,
        id2label=dict(enumerate(["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"])),
    )
    values.update(overrides)
    return M3NetConfig(**values)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, "2", True])
def test_config_temperature_is_validated(bad):
    with pytest.raises(ValueError, match="temperature"):
        tiny_config(logit_temperature=bad)
    assert tiny_config().logit_temperature == 1.0


def test_forward_divides_the_logits_by_the_temperature_before_the_loss(meld_like):
    torch.manual_seed(0)
    model = M3NetModel(tiny_config()).eval()
    batch = DialogueCollator()([meld_like["train"][i] for i in range(3)])
    with torch.no_grad():
        plain = model(**batch)
        model.config.logit_temperature = 2.0
        scaled = model(**batch)
    assert torch.equal(scaled.logits, plain.logits / 2.0)
    valid = batch["labels"] != -100
    expected = F.cross_entropy(plain.logits[valid] / 2.0, batch["labels"][valid])
    torch.testing.assert_close(scaled.loss, expected)


# ------------------------------------------------------------------------------ TemperatureScaling


def tiny_model() -> M3NetModel:
    torch.manual_seed(0)
    return M3NetModel(tiny_config()).eval()


def full_logits(model: M3NetModel, dataset) -> torch.Tensor:
    batch = DialogueCollator()([dataset[i] for i in range(len(dataset))])
    batch.pop("labels")
    with torch.no_grad():
        return model(**batch).logits


def test_temperature_scaling_fit_records_the_temperature(meld_like, tmp_path):
    model = tiny_model()
    validation = meld_like["validation"]
    unscaled = full_logits(model, validation)
    method = TemperatureScaling()
    assert method.to_dict() == {"name": "temperature_scaling", "max_iter": 100}
    t = method.fit(model, validation, split_name="validation", batch_size=1)
    assert t > 0 and t != 1.0
    assert model.config.logit_temperature == t
    assert model.config.calibration == {
        "name": "temperature_scaling",
        "temperature": t,
        "fitted_on": "validation",
        "base": None,
    }
    assert torch.equal(full_logits(model, validation), unscaled / t)

    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert loaded.config.logit_temperature == t
    assert loaded.config.calibration == model.config.calibration
    # same weights; memory-mapped tensors may change the last bit of a few kernels (see test_backbone_contract)
    torch.testing.assert_close(full_logits(loaded, validation), unscaled / t, atol=1e-6, rtol=0)


def test_temperature_scaling_refit_is_idempotent_and_keeps_the_base(meld_like):
    model = tiny_model()
    model.config.calibration = {"name": "cmerc", "gamma_m": 0.05}
    model.train()
    method = TemperatureScaling()
    first = method.fit(model, meld_like["validation"])
    record = dict(model.config.calibration)
    assert record["base"] == {"name": "cmerc", "gamma_m": 0.05}
    assert model.training  # the mode is restored
    second = method.fit(model, meld_like["validation"])
    assert second == first
    assert model.config.calibration == record


def test_temperature_scaling_refuses_the_test_split(meld_like):
    model = tiny_model()
    model.config.logit_temperature = 1.7
    for name in ("test", "Test"):
        with pytest.raises(ValueError, match="split_name"):
            TemperatureScaling().fit(model, meld_like["test"], split_name=name)
    assert model.config.logit_temperature == 1.7 and model.config.calibration is None


def test_temperature_scaling_needs_a_model_that_applies_the_temperature(meld_like):
    with pytest.raises(ValueError, match="applies config.logit_temperature"):
        TemperatureScaling().fit(torch.nn.Linear(2, 2), meld_like["validation"])
    pair_scorer = PairScorerModel(PairScorerConfig(text_dim=6, audio_dim=5, visual_dim=None, n_speakers=9))
    with pytest.raises(ValueError, match="PairScorerModel"):
        TemperatureScaling().fit(pair_scorer, meld_like["validation"])
