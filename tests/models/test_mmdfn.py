"""Tests specific to MM-DFN: the speaker recurrence and the dynamic-fusion stack against explicit loops,
speaker inputs, the reference defaults, speaker weights and config validation. The backbone interface
(shapes, padding/batch invariance, exact context removal, modalities, losses, save/load, training) is tested
in ``test_backbone_contract.py``; the multimodal adjacency it shares with MMGCN in ``test_mmgcn.py``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from merc_hf.models.base import build_context_mask, resolve_context_mask
from merc_hf.models.layers import ContextMaskedRNN, MultimodalGraphModel, symmetric_normalize
from merc_hf.models.mmdfn import (
    IEMOCAP_SPEAKER_WEIGHTS,
    MELD_SPEAKER_WEIGHTS,
    MMDFNConfig,
    MMDFNModel,
    parse_speaker_weights,
)

from .test_backbone_contract import BACKBONES, prepared_inputs
from .test_mmgcn import _loop_adjacency

small_model = BACKBONES["mmdfn"]  # the tiny MM-DFN of the backbone contract
DIMS = small_model.dims
SPEAKERS = [[0, 1, 0, 2, 1, 0, 0], [1, 1, 0, 1]]


# ------------------------------------------------------------------------------------------ speaker GRU


def _as_torch_gru(rnn: ContextMaskedRNN) -> nn.GRU:
    """An ``nn.GRU(num_layers=2, bidirectional=True)`` with the weights of ``rnn``."""
    first = rnn.forward_layers[0]
    gru = nn.GRU(first.input_size, first.hidden_size, num_layers=rnn.num_layers, bidirectional=True)
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            for direction, modules in (("", rnn.forward_layers), ("_reverse", rnn.backward_layers)):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(gru, f"{name}_l{layer}{direction}").copy_(getattr(modules[layer], f"{name}_l0"))
    return gru


def _loop_speaker_states(gru: nn.GRU, e: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """The reference's speaker recurrence for one dialogue and one modality: each group of utterances (in time
    order) is gathered, run through the BiGRU alone and scattered back. ``e`` ``(n, W)``."""
    out = torch.zeros(e.shape[0], 2 * gru.hidden_size)
    for group in groups:
        states, _ = gru(e[group][:, None, :])  # (len, 1, 2·D_e), time-major
        for position, utterance in enumerate(group):
            out[utterance] = states[position, 0]
    return out


@pytest.mark.parametrize("view", ["full", "O", "X"])
def test_speaker_recurrence_matches_a_per_speaker_loop(make_batch, view):
    weights = {"text": 1.0, "audio": 0.0, "visual": -0.5}  # a zero weight skips the GRU for that modality
    model = small_model(speaker_weights=weights)
    batch = make_batch([7, 4], DIMS, n_speakers=3, speakers=SPEAKERS, seed=1)
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    gru = _as_torch_gru(model.speaker_rnn)
    with torch.no_grad():
        inputs = prepared_inputs(model, batch, context)
        nodes = model._encode_modalities(inputs)  # (B, M, T, W)
        encoded = MultimodalGraphModel._encode_unimodal(model, inputs)  # before the speaker GRU
        for b, n in enumerate([7, 4]):
            speakers = batch["speakers"][b, :n].tolist()
            if view == "X":  # no same-speaker context: every utterance is its own sequence
                groups = [[i] for i in range(n)]
            else:  # "O" keeps exactly the same-speaker context, so both views give the per-speaker loop
                groups = [[i for i in range(n) if speakers[i] == s] for s in sorted(set(speakers))]
            for m, name in enumerate(model.modalities):
                e = encoded[name][b, :n]
                expected = e + weights[name] * _loop_speaker_states(gru, e, groups)
                torch.testing.assert_close(nodes[b, m, :n], expected, atol=1e-6, rtol=1e-5)
    assert nodes[1, :, 4:].abs().sum() == 0


def test_speaker_recurrence_can_be_switched_off(make_batch):
    batch = make_batch([5], DIMS, n_speakers=3, seed=2)
    model = small_model(use_crn_speaker=False)
    assert model.speaker_rnn is None
    with torch.no_grad():
        inputs = prepared_inputs(model, batch)
        encoded = MultimodalGraphModel._encode_unimodal(model, inputs)  # before the speaker GRU
        nodes = model._encode_modalities(inputs)
    torch.testing.assert_close(nodes, torch.stack([encoded[m] for m in model.modalities], dim=1))


# ------------------------------------------------------------------------------------------ dynamic fusion


def _loop_lstm_step(lstm: nn.LSTM, x: torch.Tensor, r: torch.Tensor, c: torch.Tensor):
    """One step of a 1-layer LSTM for one node, gate by gate (PyTorch's gate order i, f, g, o)."""
    gates = lstm.weight_ih_l0 @ x + lstm.bias_ih_l0 + lstm.weight_hh_l0 @ r + lstm.bias_hh_l0
    i, f, g, o = gates.chunk(4)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _loop_dynamic_fusion(model: MMDFNModel, x: torch.Tensor, adjacency: list[list[float]]) -> torch.Tensor:
    """The dynamic-fusion stack over one dialogue, node by node and layer by layer::

    (r_l, c_l) = LSTM(h_{l−1}; r_{l−1}, c_{l−1}),   P_l = Â r_l,
    h_l = h_{l−1} + ReLU(θ_l [P_l ‖ h_0] W_l + (1 − θ_l)((1 − α) P_l + α h_0))   (no dropout)."""
    size = len(adjacency)
    a = torch.tensor(adjacency, dtype=x.dtype)
    inv_sqrt_degree = a.sum(1).rsqrt()
    norm = inv_sqrt_degree[:, None] * a * inv_sqrt_degree[None, :]
    graph = model.graph
    hidden = graph.input_projection.out_features
    h0 = F.relu(graph.input_projection(x))
    h = h0
    r = [torch.zeros(hidden) for _ in range(size)]
    c = [torch.zeros(hidden) for _ in range(size)]
    for depth, layer in enumerate(graph.layers, start=1):
        theta = math.log(graph.lamda / depth + 1)
        for node in range(size):
            r[node], c[node] = _loop_lstm_step(graph.fusion_lstm, h[node], r[node], c[node])
        p = [sum(norm[i, j] * r[j] for j in range(size)) for i in range(size)]
        h = torch.stack(
            [
                h[i]
                + F.relu(
                    theta * (torch.cat([p[i], h0[i]]) @ layer.weight)
                    + (1 - theta) * ((1 - graph.alpha) * p[i] + graph.alpha * h0[i])
                )
                for i in range(size)
            ]
        )
    return h


@pytest.mark.parametrize("view", ["full", "O", "X"])
def test_dynamic_fusion_stack_matches_loop_definition(make_batch, view):
    model = small_model(alpha=0.3, lamda=0.7, num_layers=4)
    batch = make_batch([5], {"text": 4}, n_speakers=3, speakers=[SPEAKERS[0][:5]], seed=3)
    view_mask = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    context = resolve_context_mask(view_mask, batch["utterance_mask"])[0]
    nodes = torch.randn(3, 5, 2 * 4, generator=torch.Generator().manual_seed(0))  # (M, T, 2·D_e)
    adjacency = _loop_adjacency(nodes, context, 5)
    with torch.no_grad():
        normalized = symmetric_normalize(torch.tensor(adjacency))
        x, h = model.graph(nodes.reshape(1, 15, -1), normalized[None], torch.ones(1, 15, 1))
        expected = _loop_dynamic_fusion(model, nodes.reshape(15, -1), adjacency)
    torch.testing.assert_close(x[0], nodes.reshape(15, -1))
    torch.testing.assert_close(h[0], expected, atol=1e-5, rtol=1e-5)


def test_without_residue_the_repr_is_the_graph_output_only(make_batch):
    batch = make_batch([5, 3, 1], DIMS, n_speakers=3)
    assert small_model(use_residue=False)(**batch).utterance_repr.shape == (3, 5, 3 * 8)


# ------------------------------------------------------------------------------------------ inputs


def test_speakers_are_required_by_the_speaker_recurrence_and_embeddings(make_batch):
    batch = make_batch([3], DIMS, n_speakers=3)
    features = {k: batch[k] for k in DIMS}
    with pytest.raises(ValueError, match="speakers"):
        small_model()(**features)
    with pytest.raises(ValueError, match="speakers"):
        small_model(use_crn_speaker=False, use_speaker_embeddings=True)(**features)
    assert small_model(use_crn_speaker=False)(**features).logits.shape == (1, 3, 6)
    assert small_model(use_speaker_embeddings=True, text_dim=None).speaker_embeddings is None


# ------------------------------------------------------------------------------------------ config


def test_default_config_is_the_reference_iemocap_setting():
    config = MMDFNConfig()
    assert (config.text_dim, config.audio_dim, config.visual_dim) == (100, 1582, 342)
    assert (config.D_e, config.graph_hidden_size, config.num_layers) == (100, 100, 16)
    assert (config.alpha, config.lamda, config.dropout) == (0.2, 0.5, 0.4)
    assert (config.loss_type, config.focal_gamma) == ("focal", 0.5)
    assert config.use_crn_speaker and config.use_residue and not config.use_speaker_embeddings
    assert config.speaker_weights == IEMOCAP_SPEAKER_WEIGHTS == {"audio": 3.0, "visual": 0.0, "text": 1.0}
    assert config.n_speakers == 2 and config.num_labels == 6 and config.label2id["fru"] == 5
    model = MMDFNModel(config)
    assert model.classifier.in_features == 900  # 3 × (200 + 100)
    assert model.text_rnn.output_size == 200 and isinstance(model.text_rnn.forward_layers[0], nn.GRU)
    assert model.speaker_rnn.output_size == 200 and isinstance(model.speaker_rnn.forward_layers[1], nn.GRU)
    assert len(model.graph.layers) == 16 and model.graph.layers[0].weight.shape == (200, 100)
    lstm = model.graph.fusion_lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (100, 100, 1)


def test_speaker_weights():
    assert parse_speaker_weights("3-0-1") == IEMOCAP_SPEAKER_WEIGHTS
    assert (
        parse_speaker_weights("0.5-0.5-1.5")
        == MELD_SPEAKER_WEIGHTS
        == {"audio": 0.5, "visual": 0.5, "text": 1.5}
    )
    assert MMDFNConfig(speaker_weights="0.5-0.5-1.5").speaker_weights == MELD_SPEAKER_WEIGHTS
    assert MMDFNConfig(speaker_weights={"text": 2, "audio": 0, "visual": 1}).speaker_weights == {
        "text": 2.0,
        "audio": 0.0,
        "visual": 1.0,
    }
    for bad in (
        "3-0",
        "a-b-c",
        "3-0-1-2",
        {"text": 1.0, "audio": 1.0},
        {"text": 1, "audio": 1, "visual": "x"},
    ):
        with pytest.raises(ValueError, match="speaker_weights"):
            MMDFNConfig(speaker_weights=bad)


@pytest.mark.parametrize(
    "overrides",
    [
        {"D_e": 0},
        {"graph_hidden_size": 2.5},
        {"num_layers": 0},
        {"alpha": 1.5},
        {"lamda": float("inf")},
        {"lamda": -1.0},
        {"use_crn_speaker": 1},
        {"use_speaker_embeddings": "no"},
        {"speaker_weights": {"text": 1.0, "audio": float("nan"), "visual": 0.0}},
        {"loss_type": "nll"},
    ],
)
def test_config_validation(overrides):
    with pytest.raises(ValueError):
        MMDFNConfig(**overrides)
