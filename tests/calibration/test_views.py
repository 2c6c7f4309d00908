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


@pytest.mark.parametrize("view_mode", ["exact", "reference"])
@pytest.mark.parametrize("views_per_pass", [None, 1, 2, 5])
def test_batched_views_equal_one_at_a_time(model_and_batch, views_per_pass, view_mode):
    """Stacked views, and one view per pass with the unimodal encodings shared (M3Net's stages), equal a
    full forward pass per view."""
    model, batch = model_and_batch
    model.config.logit_temperature = 1.3  # the shared path divides by it as forward does
    model.train()  # views must run in eval mode regardless, and restore the mode
    views = removal_view_logits(model, batch, views_per_pass=views_per_pass, view_mode=view_mode)
    assert model.training and set(views) == {"A", "V", "T", "X", "O"}
    model.eval()
    real = batch["utterance_mask"]  # logits at padding are meaningless
    with torch.no_grad():
        for removal, index in (("T", 0), ("A", 1), ("V", 2)):
            keep = torch.ones(5, 3)
            keep[:, index] = 0
            expected = model(**batch, modality_mask=keep, view_mode=view_mode).logits
            torch.testing.assert_close(views[removal][real], expected[real], atol=1e-5, rtol=1e-5)
        for removal in ("X", "O"):
            mask = build_context_mask(removal, batch["same_speaker"], batch["utterance_mask"])
            expected = model(**batch, context_mask=mask, view_mode=view_mode).logits
            torch.testing.assert_close(views[removal][real], expected[real], atol=1e-5, rtol=1e-5)
    model.config.logit_temperature = 1.0
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


def _reference_padded_mean(x: torch.Tensor, utterance_mask: torch.Tensor) -> torch.Tensor:
    """The reference's modality removal, written as its loop: every real utterance gets the mean of the
    dialogue's features over the batch's padded time axis (padding frames count as zeros)."""
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        padded = x[b] * utterance_mask[b, :, None]
        for t in range(x.shape[1]):
            if utterance_mask[b, t]:
                out[b, t] = padded.sum(0) / x.shape[1]
    return out


def test_reference_modality_views_use_the_padded_mean(model_and_batch):
    model, batch = model_and_batch
    model.eval()
    mask = batch["utterance_mask"]
    assert mask.sum(1).min() < mask.shape[1]  # some dialogue is padded, so padded and real means differ
    views = removal_view_logits(model, batch, ("A", "T"), view_mode="reference")
    for removal, name in (("A", "audio"), ("T", "text")):
        replaced = {**batch, name: _reference_padded_mean(batch[name], mask)}
        with torch.no_grad():
            expected = model(**replaced).logits
        torch.testing.assert_close(views[removal][mask], expected[mask], atol=1e-5, rtol=1e-5)
    exact = removal_view_logits(model, batch, ("A",), view_mode="exact")["A"]
    assert not torch.allclose(exact[mask], views["A"][mask], atol=1e-4)


def _reference_m3net_context_view(model: M3NetModel, batch: dict, view: str) -> torch.Tensor:
    """CMERC's ``mask_context`` written out: the text GRU and the hypergraph see the whole dialogue; only
    the intra-modal GNN edges between two utterances of the same ("X" drops them) or different ("O" drops
    them) speakers are removed, edge by edge."""
    full = model.prepare_inputs(
        batch["text"], batch["audio"], batch["visual"], batch["speakers"], batch["utterance_mask"], None, None
    )
    nodes = model._encode_modalities(full)
    node_mask = full.utterance_mask[:, None, :, None].to(nodes.dtype)
    x = model.node_projection(nodes) * node_mask
    real = full.utterance_mask
    batch_size, length = real.shape
    edges = torch.zeros(batch_size, length, length)
    for b in range(batch_size):
        for i in range(length):
            for j in range(length):
                same = bool(batch["speakers"][b, i] == batch["speakers"][b, j])
                keep = (not same) if view == "X" else same
                edges[b, i, j] = float(real[b, i] and real[b, j] and i != j and keep)
    n_modalities = len(model.modalities)
    degree = edges.sum(-1) + (n_modalities - 1) * real
    inv_sqrt = torch.where(degree > 0, degree.clamp_min(1e-12) ** -0.5, torch.zeros_like(degree))
    intra = inv_sqrt[:, :, None] * edges * inv_sqrt[:, None, :]
    off_diagonal = 1.0 - torch.eye(n_modalities)
    cross = off_diagonal[None, :, :, None] * (inv_sqrt * inv_sqrt * real)[:, None, None, :]
    whole = (real[:, :, None] & real[:, None, :]).float()
    hyper = model.hypergraph(x, whole / whole.sum(-1, keepdim=True).clamp_min(1), node_mask)
    gnn = x
    for layer in model.frequency_layers:
        gnn = gnn + layer(gnn, intra, cross)
    representation = torch.cat([hyper, gnn], dim=-1).permute(0, 2, 1, 3).reshape(batch_size, length, -1)
    return model.classifier(torch.relu(representation))


@pytest.mark.parametrize("view", ["X", "O"])
def test_reference_context_views_mask_only_m3net_gnn_edges(model_and_batch, view):
    model, batch = model_and_batch
    model.eval()
    mask = batch["utterance_mask"]
    with torch.no_grad():
        expected = _reference_m3net_context_view(model, batch, view)
    got = removal_view_logits(model, batch, (view,), view_mode="reference")[view]
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-5)
    exact = removal_view_logits(model, batch, (view,), view_mode="exact")[view]
    assert not torch.allclose(exact[mask], got[mask], atol=1e-4)  # exact also masks the GRU and hypergraph
