"""Tests specific to M3Net: agreement with an edge-list definition, the unprojected text input, input
errors and the default config. The backbone interface (shapes, padding/batch invariance, exact context
removal, modalities, losses, save/load, training) is tested in ``test_backbone_contract.py``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from merc_hf.models.base import build_context_mask
from merc_hf.models.m3net import M3NetConfig, M3NetModel

from .test_backbone_contract import BACKBONES, prepared_inputs

small_model = BACKBONES["m3net"]  # the tiny M3Net of the backbone contract
DIMS = small_model.dims


# ------------------------------------------------------------------------------------------ loops


def _reference_repr(model: M3NetModel, x1: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """M3Net's graph part for one dialogue written with explicit hyperedge and edge lists (the reference's
    sparse formulation). ``x1`` is ``(M, n, H)`` after ``fc1``; ``context`` an equivalence-relation mask."""
    num_modalities, n, hidden = x1.shape
    hg = model.hypergraph

    def node(m: int, i: int) -> int:
        return m * n + i

    classes = sorted({tuple(row.nonzero().squeeze(-1).tolist()) for row in context})
    hyperedges = [
        ([node(m, i) for i in cls], hg.modality_edge_weight[m])
        for m in range(num_modalities)
        for cls in classes
    ]
    hyperedges += [
        ([node(m, i) for m in range(num_modalities)], hg.utterance_edge_weight[0]) for i in range(n)
    ]
    x = x1.reshape(num_modalities * n, hidden)
    for layer in range(hg.num_layers):
        out = torch.zeros_like(x)
        degree = torch.zeros(x.shape[0])
        for members, weight in hyperedges:
            feature = x[members].sum(0) / sum(hg.node_weight[v // n] for v in members)
            for v in members:
                out[v] += weight * feature
                degree[v] += weight
        x = F.leaky_relu(out / degree[:, None] + hg.bias[layer])
    hyper = x

    edges = [
        (node(m, j), node(m, i))
        for m in range(num_modalities)
        for i in range(n)
        for j in range(n)
        if i != j and context[i, j]
    ]
    edges += [
        (node(m2, i), node(m, i))
        for i in range(n)
        for m in range(num_modalities)
        for m2 in range(num_modalities)
        if m != m2
    ]
    in_degree = torch.zeros(num_modalities * n)
    for _, dst in edges:
        in_degree[dst] += 1
    g = x1.reshape(num_modalities * n, hidden)
    for conv in model.frequency_layers:
        out = torch.zeros_like(g)
        for src, dst in edges:
            gate = torch.tanh(conv.gate(torch.cat([g[dst], g[src]])))
            out[dst] += in_degree[dst] ** -0.5 * in_degree[src] ** -0.5 * gate * g[src]
        g = g + out
    per_node = torch.cat([hyper, g], dim=-1).reshape(num_modalities, n, 2 * hidden)
    return per_node.permute(1, 0, 2).reshape(n, -1)


@pytest.mark.parametrize("view", ["full", "O"])
def test_dense_model_matches_edge_list_definition(make_batch, view):
    model = small_model()
    batch = make_batch([5], DIMS, n_speakers=3, speakers=[[0, 1, 0, 2, 1]])
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    with torch.no_grad():
        out = model(**batch, context_mask=context)
        inputs = prepared_inputs(model, batch, context)
        x1 = model.node_projection(model._encode_modalities(inputs))[0]
        expected = _reference_repr(model, x1, inputs.context_mask[0])
    torch.testing.assert_close(out.utterance_repr[0], expected, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ inputs


def test_text_without_projection_and_missing_modality_error(make_batch):
    model = small_model(text_dim=16, text_projection=False)
    assert model.text_projection is None
    batch = make_batch([3], {"text": 16, "audio": 10, "visual": 8}, n_speakers=3)
    assert model(**batch).logits.shape == (1, 3, 6)
    with pytest.raises(ValueError, match="lacks"):
        model(text=batch["text"], audio=batch["audio"], utterance_mask=batch["utterance_mask"])
    with pytest.raises(ValueError):
        small_model(text_dim=12, text_projection=False)
    with pytest.raises(ValueError, match="speaker"):
        model(**{**batch, "speakers": torch.full_like(batch["speakers"], 5)})
    with pytest.raises(ValueError, match="speakers"):
        model(text=batch["text"], audio=batch["audio"], visual=batch["visual"])
    no_speaker_model = small_model(text_dim=16, text_projection=False, use_speaker_embeddings=False)
    assert no_speaker_model(
        text=batch["text"], audio=batch["audio"], visual=batch["visual"]
    ).logits.shape == (1, 3, 6)


def test_default_config_is_the_iemocap_setting():
    config = M3NetConfig()
    assert (config.text_dim, config.audio_dim, config.visual_dim) == (1024, 1582, 342)
    assert (config.hidden_size, config.graph_hidden_size, config.num_L, config.num_K) == (512, 512, 3, 4)
    assert config.num_labels == 6 and config.label2id["fru"] == 5
    fresh = M3NetModel(small_model.config())
    assert torch.equal(fresh.hypergraph.node_weight, torch.ones(3))
    assert torch.equal(fresh.hypergraph.bias, torch.zeros(3, 8))
    with pytest.raises(ValueError):
        M3NetConfig(hidden_size=15)
    with pytest.raises(ValueError):
        M3NetConfig(num_K=-1)
