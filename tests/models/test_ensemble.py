"""Tests of the deep-ensemble checkpoint: averaged probabilities and NLL against hand computations, the
removal views through the members, from_members validation, save/load through the Auto classes and the
CMERC metrics on an ensemble."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

import merc_hf
from merc_hf.calibration import REMOVALS, TemperatureScaling, removal_view_logits
from merc_hf.inference import predict_dataset
from merc_hf.metrics import cel, uncertain_sample_rates
from merc_hf.models.base import EmotionRecognitionOutput, build_context_mask
from merc_hf.models.ensemble import MercEnsembleConfig, MercEnsembleModel
from merc_hf.models.m3net import M3NetConfig, M3NetModel

DIMS = {"text": 6, "audio": 5, "visual": 4}


def member_config(**overrides) -> M3NetConfig:
    values = dict(
        text_dim=DIMS["text"],
        audio_dim=DIMS["audio"],
        visual_dim=DIMS["visual"],
        hidden_size=8,
        graph_hidden_size=8,
        num_L=1,
        num_K=1,
        n_speakers=3,
        dropout=0.0,
        id2label=dict(enumerate("abcdef")),
    )
    values.update(overrides)
    return M3NetConfig(**values)


def members(n: int = 2, **overrides) -> list[M3NetModel]:
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(M3NetModel(member_config(**overrides)).eval())
    return out


def inputs_of(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


def test_probabilities_are_the_mean_of_the_members_probabilities(make_batch):
    first, second = members()
    ensemble = MercEnsembleModel.from_members([first, second])
    batch = make_batch([4, 2], DIMS, n_speakers=3)
    with torch.no_grad():
        out = ensemble(**batch)
        p1 = torch.softmax(first(**batch).logits, -1)
        p2 = torch.softmax(second(**batch).logits, -1)
        r1, r2 = first(**batch).utterance_repr, second(**batch).utterance_repr
    assert isinstance(out, EmotionRecognitionOutput)
    torch.testing.assert_close(torch.softmax(out.logits, -1), (p1 + p2) / 2, atol=1e-6, rtol=0)
    # the logits are already normalised log-probabilities: log Σ_c p̄_c = 0
    torch.testing.assert_close(out.logits.logsumexp(-1), torch.zeros(2, 4), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.utterance_repr, (r1 + r2) / 2)
    assert out.utterance_repr[1, 2:].abs().sum() == 0
    as_tuple = ensemble(**batch, return_dict=False)
    assert len(as_tuple) == 3 and torch.equal(as_tuple[1], out.logits)
    assert ensemble(**inputs_of(batch)).loss is None


def test_loss_is_the_nll_of_the_averaged_probabilities(make_batch):
    first, second = members()
    ensemble = MercEnsembleModel.from_members([first, second])
    batch = make_batch([3, 2], DIMS, n_speakers=3, seed=4)
    batch["labels"][0, 1] = -100  # an unlabelled real utterance is ignored as well as padding
    with torch.no_grad():
        loss = ensemble(**batch).loss
        p1 = torch.softmax(first(**batch).logits, -1)
        p2 = torch.softmax(second(**batch).logits, -1)
    terms = []
    for b, t in [(0, 0), (0, 2), (1, 0), (1, 1)]:
        gold = int(batch["labels"][b, t])
        terms.append(-math.log((float(p1[b, t, gold]) + float(p2[b, t, gold])) / 2))
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_masks_reach_every_member(make_batch):
    first, second = members()
    ensemble = MercEnsembleModel.from_members([first, second])
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=2)
    context = build_context_mask("O", batch["same_speaker"], batch["utterance_mask"])
    keep = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    kwargs = dict(context_mask=context, modality_mask=keep)
    with torch.no_grad():
        got = torch.softmax(ensemble(**inputs_of(batch), **kwargs).logits, -1)
        expected = sum(torch.softmax(m(**inputs_of(batch), **kwargs).logits, -1) for m in (first, second)) / 2
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_removal_views_work_on_an_ensemble(make_batch):
    first, second = members()
    ensemble = MercEnsembleModel.from_members([first, second])
    batch = make_batch([4, 3], DIMS, n_speakers=3, seed=5)
    ensemble.train()
    views = removal_view_logits(ensemble, batch)
    assert ensemble.training  # restored
    assert list(views) == list(REMOVALS)
    assert all(v.shape == (2, 4, 6) and torch.isfinite(v).all() for v in views.values())
    with torch.no_grad():
        member_views = [removal_view_logits(m, batch, ("A",))["A"] for m in (first, second)]
    expected = sum(torch.softmax(v, -1) for v in member_views) / 2
    real = batch["utterance_mask"]  # logits at padding are meaningless
    torch.testing.assert_close(torch.softmax(views["A"], -1)[real], expected[real], atol=1e-6, rtol=0)


def test_cmerc_metrics_on_an_ensemble():
    data = merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=12, seed=1, dims={"text": 6, "audio": 5, "visual": 4}
    )
    config = dict(n_speakers=9, id2label=dict(enumerate("abcdefg")))
    ensemble = MercEnsembleModel.from_members(members(**config))
    predictions = predict_dataset(ensemble, data["validation"], removals=REMOVALS, show_progress=False)
    assert set(predictions.masked_probs) == set(REMOVALS)
    np.testing.assert_allclose(predictions.probs.sum(1), 1.0, atol=1e-5)
    rates = uncertain_sample_rates(predictions.probs, predictions.masked_probs, predictions.references)
    assert set(rates) == {*REMOVALS, "M", "C", "MC"} and all(0 <= v <= 100 for v in rates.values())
    assert math.isfinite(cel(predictions.probs, predictions.masked_probs, predictions.references))


def test_temperature_scaling_of_an_ensemble():
    data = merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=12, seed=1, dims={"text": 6, "audio": 5, "visual": 4}
    )
    ensemble = MercEnsembleModel.from_members(members(n_speakers=9, id2label=dict(enumerate("abcdefg"))))
    t = TemperatureScaling().fit(ensemble, data["validation"])
    assert ensemble.config.logit_temperature == t
    assert ensemble.config.calibration["base"] == {"name": "ensemble", "n_members": 2, "seeds": None}


def test_temperature_divides_the_ensemble_logits(make_batch):
    ensemble = MercEnsembleModel.from_members(members())
    batch = make_batch([3], DIMS, n_speakers=3)
    with torch.no_grad():
        plain = ensemble(**inputs_of(batch)).logits
        ensemble.config.logit_temperature = 2.0
        assert torch.equal(ensemble(**inputs_of(batch)).logits, plain / 2.0)


# ------------------------------------------------------------------------------------- from_members


def test_from_members_copies_the_weights_and_records_the_seeds():
    models = members(3)
    ensemble = MercEnsembleModel.from_members(models, seeds=[10, 11, 12])
    assert not ensemble.training
    assert ensemble.config.n_members == 3 and len(ensemble.members) == 3
    assert ensemble.config.calibration == {"name": "ensemble", "n_members": 3, "seeds": [10, 11, 12]}
    assert ensemble.config.id2label == models[0].config.id2label
    assert ensemble.config.modalities == ("text", "audio", "visual")
    assert isinstance(ensemble.config.member_config, M3NetConfig)
    for member, model in zip(ensemble.members, models):
        state = member.state_dict()
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        models[0].classifier.weight.add_(1.0)  # a copy, not shared storage
    assert not torch.equal(ensemble.members[0].classifier.weight, models[0].classifier.weight)
    assert MercEnsembleModel.from_members(models[:1]).config.calibration["seeds"] is None


def test_from_members_validates_its_arguments(tmp_path):
    first, second = members()
    with pytest.raises(ValueError, match="at least one"):
        MercEnsembleModel.from_members([])
    with pytest.raises(ValueError, match="PreTrainedModel"):
        MercEnsembleModel.from_members([first, torch.nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="'dropout'"):
        MercEnsembleModel.from_members([first, M3NetModel(member_config(dropout=0.3))])
    with pytest.raises(ValueError, match="'hidden_size'"):
        MercEnsembleModel.from_members([first, M3NetModel(member_config(hidden_size=10))])
    with pytest.raises(ValueError, match="seeds"):
        MercEnsembleModel.from_members([first, second], seeds=[1])
    # save/load metadata (_name_or_path, architectures, dtype) is not part of the architecture
    second.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32)
    assert MercEnsembleModel.from_members([first, reloaded]).config.n_members == 2


def test_config_validation():
    with pytest.raises(ValueError, match="n_members"):
        MercEnsembleConfig(member=member_config().to_dict(), n_members=0)
    with pytest.raises(ValueError, match="model_type"):
        MercEnsembleConfig(member={"text_dim": 6})
    with pytest.raises(ValueError, match="temperature"):
        MercEnsembleConfig(member=member_config().to_dict(), logit_temperature=-1.0)
    placeholder = MercEnsembleConfig()
    assert placeholder.member is None and placeholder.modalities == ()
    with pytest.raises(ValueError, match="no member config"):
        placeholder.member_config  # noqa: B018
    config = MercEnsembleConfig(member=member_config().to_dict(), n_members=3)
    assert config.calibration == {"name": "ensemble", "n_members": 3, "seeds": None}
    assert config.label2id == {name: i for i, name in enumerate("abcdef")}


# --------------------------------------------------------------------------------------- save / load


def test_save_and_load_through_the_auto_classes(make_batch, tmp_path):
    ensemble = MercEnsembleModel.from_members(members(), seeds=[0, 1])
    ensemble.config.logit_temperature = 1.5
    batch = make_batch([4, 2], DIMS, n_speakers=3, seed=7)
    ensemble.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["model.safetensors"]
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, MercEnsembleConfig) and config.model_type == "merc_ensemble"
    assert config.member == ensemble.config.member and config.logit_temperature == 1.5
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert isinstance(loaded, MercEnsembleModel) and isinstance(loaded.members[1], M3NetModel)
    assert loaded.config.calibration == {"name": "ensemble", "n_members": 2, "seeds": [0, 1]}
    state = loaded.state_dict()
    assert state.keys() == ensemble.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in ensemble.state_dict().items())
    # same weights; memory-mapped tensors may change the last bit of a few kernels (see test_backbone_contract)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, ensemble(**batch).logits, atol=1e-6, rtol=0)
