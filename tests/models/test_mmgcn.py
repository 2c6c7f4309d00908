"""Tests specific to MMGCN: the representation without residue, agreement of the adjacency and the GCNII
stack with explicit loops, speaker inputs, reference defaults, config validation and dropout. The backbone
interface (shapes, padding/batch invariance, exact context removal, modalities, losses, save/load, training)
is tested in ``test_backbone_contract.py``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from merc_hf.models.base import build_context_mask
from merc_hf.models.mmgcn import MMGCNConfig, MMGCNModel, angular_similarity, multimodal_adjacency

from .test_backbone_contract import BACKBONES, prepared_inputs

small_model = BACKBONES["mmgcn"]  # the tiny MMGCN of the backbone contract
DIMS = small_model.dims


# ------------------------------------------------------------------------------------------ basics


def test_without_residue_the_repr_is_the_graph_output_only(make_batch):
    batch = make_batch([5, 3, 1], DIMS, n_speakers=3)
    no_residue = small_model(use_residue=False)
    assert no_residue(**batch).utterance_repr.shape == (3, 5, 3 * 8)


# ------------------------------------------------------------------------------------------ loops


def _loop_adjacency(nodes: torch.Tensor, context: torch.Tensor, n: int) -> list[list[float]]:
    """The unnormalised adjacency of one dialogue, entry by entry with ``math`` (as the reference's
    ``create_big_adj`` describes it, restricted to ``context``). ``nodes`` ``(M, T, D)``; only the first
    ``n`` utterances are real."""
    num_modalities, length, _ = nodes.shape

    def weight(x: torch.Tensor, y: torch.Tensor) -> float:
        cos = float(x @ y) / (float(x.norm()) * float(y.norm()))
        return 1.0 - math.acos(max(-0.99999, min(0.99999, cos * 0.99999))) / math.pi

    size = num_modalities * length
    adjacency = [[0.0] * size for _ in range(size)]
    for m in range(num_modalities):
        for i in range(n):
            for m2 in range(num_modalities):
                for j in range(n):
                    row, col = m * length + i, m2 * length + j
                    if m == m2 and i == j:
                        adjacency[row][col] = 1.0
                    elif m == m2 and context[i, j]:
                        adjacency[row][col] = weight(nodes[m, i], nodes[m, j])
                    elif m != m2 and i == j:
                        adjacency[row][col] = weight(nodes[m, i], nodes[m2, i])
    return adjacency


@pytest.mark.parametrize("view", ["full", "O", "X"])
def test_adjacency_matches_loop_definition(make_batch, view):
    batch = make_batch([5, 3], {"text": 4}, n_speakers=3, speakers=[[0, 1, 0, 2, 1], [1, 1, 0]], seed=1)
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    context = context if context is not None else batch["same_speaker"] | ~batch["same_speaker"]
    context = context & batch["utterance_mask"][:, :, None] & batch["utterance_mask"][:, None, :]
    generator = torch.Generator().manual_seed(0)
    nodes = torch.randn(2, 3, 5, 7, generator=generator, dtype=torch.float64)
    adjacency = multimodal_adjacency(nodes, context, batch["utterance_mask"])
    assert adjacency.shape == (2, 15, 15)
    for b, n in enumerate([5, 3]):
        expected = torch.tensor(_loop_adjacency(nodes[b], context[b], n), dtype=torch.float64)
        torch.testing.assert_close(adjacency[b], expected, atol=1e-12, rtol=0)
    if view == "full":  # the reference connects every pair of a modality, i.e. a symmetric matrix
        torch.testing.assert_close(adjacency, adjacency.transpose(1, 2))
    assert float(angular_similarity(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(
        1 - math.acos(0.99999) / math.pi
    )
    assert float(angular_similarity(torch.tensor(-1.0, dtype=torch.float64))) == pytest.approx(
        math.acos(0.99999) / math.pi
    )


def _loop_graph_output(model: MMGCNModel, x: torch.Tensor, adjacency: list[list[float]]) -> torch.Tensor:
    """GCNII over one dialogue with a Python loop over target nodes: symmetric normalisation and
    ``h_i <- ReLU(θ [Σ_j Â_ij h_j ‖ h0_i] W + (1 − θ)((1 − α) Σ_j Â_ij h_j + α h0_i))``."""
    size = len(adjacency)
    degree = [sum(row) for row in adjacency]
    norm = [
        [adjacency[i][j] / math.sqrt(degree[i] * degree[j]) if adjacency[i][j] else 0.0 for j in range(size)]
        for i in range(size)
    ]
    graph = model.graph
    h0 = F.relu(graph.input_projection(x))
    h = h0
    for depth, layer in enumerate(graph.layers, start=1):
        theta = math.log(graph.lamda / depth + 1)
        rows = []
        for i in range(size):
            propagated = sum(norm[i][j] * h[j] for j in range(size))
            support = torch.cat([propagated, h0[i]])
            mixed = (1 - graph.alpha) * propagated + graph.alpha * h0[i]
            rows.append(F.relu(theta * (support @ layer.weight) + (1 - theta) * mixed))
        h = torch.stack(rows)
    return h


@pytest.mark.parametrize("view", ["full", "O"])
def test_graph_stack_matches_loop_definition(make_batch, view):
    model = small_model(alpha=0.3, lamda=0.7)
    batch = make_batch([5], DIMS, n_speakers=3, speakers=[[0, 1, 0, 2, 1]], seed=2)
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    with torch.no_grad():
        out = model(**batch, context_mask=context)
        inputs = prepared_inputs(model, batch, context)
        nodes = model._encode_modalities(inputs)[0]  # (M, T, W)
        adjacency = _loop_adjacency(nodes, inputs.context_mask[0], 5)
        flat = nodes.reshape(3 * 5, -1)
        h = _loop_graph_output(model, flat, adjacency)
        per_node = torch.cat([flat, h], dim=-1).reshape(3, 5, -1)
        expected = per_node.permute(1, 0, 2).reshape(5, -1)
    torch.testing.assert_close(out.utterance_repr[0], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits[0], model.classifier(F.relu(expected)), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ inputs


def test_speakers_are_required_only_with_speaker_embeddings(make_batch):
    batch = make_batch([3], DIMS, n_speakers=3)
    features = {k: batch[k] for k in DIMS}
    model = small_model()
    with pytest.raises(ValueError, match="speakers"):
        model(**features)
    with pytest.raises(ValueError, match="speaker"):
        model(**{**batch, "speakers": torch.full_like(batch["speakers"], 5)})
    with pytest.raises(ValueError, match="lacks"):
        model(text=batch["text"], audio=batch["audio"], speakers=batch["speakers"])
    assert small_model(use_speaker_embeddings=False)(**features).logits.shape == (1, 3, 6)
    no_text = small_model(text_dim=None)
    assert no_text.speaker_embeddings is None
    assert no_text(**features).logits.shape == (1, 3, 6)


# ------------------------------------------------------------------------------------------ config


def test_default_config_is_the_reference_iemocap_setting():
    config = MMGCNConfig()
    assert (config.text_dim, config.audio_dim, config.visual_dim) == (100, 1582, 342)
    assert (config.D_e, config.graph_hidden_size, config.num_layers) == (100, 100, 64)
    assert (config.alpha, config.lamda, config.dropout) == (0.1, 0.5, 0.4)
    assert config.use_speaker_embeddings and config.use_residue
    assert config.n_speakers == 2 and config.num_labels == 6 and config.label2id["fru"] == 5
    model = MMGCNModel(config)
    assert model.classifier.in_features == 900  # 3 × (200 + 100), the reference's Linear(300·M, C)
    assert model.text_rnn.output_size == 200 and len(model.graph.layers) == 64
    assert model.graph.layers[0].weight.shape == (200, 100)
    assert model.graph.layers[0].weight.abs().max() <= 0.1  # U(±1/√100)


@pytest.mark.parametrize(
    "overrides",
    [
        {"D_e": 0},
        {"graph_hidden_size": 2.5},
        {"num_layers": 0},
        {"num_layers": True},
        {"alpha": 1.5},
        {"alpha": float("nan")},
        {"lamda": 0.0},
        {"use_residue": "yes"},
        {"text_dim": None, "audio_dim": None, "visual_dim": None},
        {"dropout": 1.0},
    ],
)
def test_config_validation(overrides):
    with pytest.raises(ValueError):
        MMGCNConfig(**overrides)


# ------------------------------------------------------------------------------------------ training


def test_dropout_is_active_in_training_only(make_batch):
    model = small_model(dropout=0.5)
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=13)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, model(**batch).logits)
        model.train()
        torch.manual_seed(0)
        first = model(**batch).logits
        torch.manual_seed(1)
        second = model(**batch).logits
    assert (first - second).abs().max() > 1e-4
