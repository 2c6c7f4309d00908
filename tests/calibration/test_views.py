"""Batched removal views equal the same removals run one at a time, without autograd."""

from __future__ import annotations

import pytest
import torch

import merc_hf
from merc_hf.calibration import applicable_removals, removal_view_logits, stack_views
from merc_hf.data import DialogueCollator
from merc_hf.models.base import build_context_mask
from merc_hf.models.m3net.configuration_m3net import M3NetConfig
from merc_hf.models.m3net.modeling_m3net import M3NetModel


@pytest.fixture(scope="module")
def model_and_batch():
    torch.manual_seed(0)
    data = merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=12, seed=2, dims={"text": 12, "audio": 8, "visual": 8}
    )
    batch = DialogueCollator()([data["train"][i] for i in range(5)])
    config = M3NetConfig(
        text_dim=12,
        audio_dim=8,
        visual_dim=8,
        hidden_size=16,
        graph_hidden_size=16,
        n_speakers=9,
        dropout=0.3,
        id2label=dict(enumerate("abcdefg")),
    )
    return M3NetModel(config), batch


@pytest.mark.parametrize("views_per_pass", [None, 1, 2, 5])
def test_batched_views_equal_one_at_a_time(model_and_batch, views_per_pass):
    model, batch = model_and_batch
    model.train()  # views must run in eval mode regardless, and restore the mode
    views = removal_view_logits(model, batch, views_per_pass=views_per_pass)
    assert model.training and set(views) == {"A", "V", "T", "X", "O"}
    model.eval()
    with torch.no_grad():
        for removal, index in (("T", 0), ("A", 1), ("V", 2)):
            keep = torch.ones(5, 3)
            keep[:, index] = 0
            torch.testing.assert_close(
                views[removal], model(**batch, modality_mask=keep).logits, atol=1e-5, rtol=1e-5
            )
        for removal in ("X", "O"):
            mask = build_context_mask(removal, batch["same_speaker"], batch["utterance_mask"])
            torch.testing.assert_close(
                views[removal], model(**batch, context_mask=mask).logits, atol=1e-5, rtol=1e-5
            )
    assert not views["A"].requires_grad


def test_views_per_pass_must_be_positive(model_and_batch):
    model, batch = model_and_batch
    with pytest.raises(ValueError, match="views_per_pass"):
        removal_view_logits(model, batch, views_per_pass=0)


def test_views_skip_missing_modalities(model_and_batch):
    _, batch = model_and_batch
    text_only = {k: v for k, v in batch.items() if k not in ("audio", "visual")}
    assert applicable_removals(text_only) == ("T", "X", "O")
    stacked = stack_views(text_only, ("T", "X"))
    assert stacked["text"].shape[0] == 10 and stacked["modality_mask"][:5, 0].eq(0).all()
    with pytest.raises(ValueError, match="unknown removal"):
        applicable_removals(batch, ("Z",))


def test_views_skip_modalities_the_model_does_not_use(model_and_batch):
    """A model configured without audio/visual gets no A/V views even when the batch carries them."""
    from merc_hf.models.m3net.configuration_m3net import M3NetConfig
    from merc_hf.models.m3net.modeling_m3net import M3NetModel

    model, batch = model_and_batch
    text_only = M3NetModel(
        M3NetConfig(**{**model.config.to_dict(), "audio_dim": None, "visual_dim": None})
    ).eval()
    assert set(removal_view_logits(text_only, batch)) == {"T", "X", "O"}
