"""Tests specific to DialogueGCN: the model without nodal attention, parameters independent of the
dialogue length, the window/relation-type construction and the whole graph part against explicit loops,
the BiLSTM input, speaker inputs, the text-only default, reference defaults and config validation. The
backbone interface (shapes, padding/batch invariance, exact context removal, modalities, losses, save/load,
training) is tested in ``test_backbone_contract.py``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig

import merc_hf  # noqa: F401  (registers the Auto classes)
from merc_hf.models.base import build_context_mask
from merc_hf.models.dialoguegcn import DialogueGCNConfig, DialogueGCNModel, relation_types, window_mask

from .test_backbone_contract import BACKBONES, prepared_inputs

small_model = BACKBONES["dialoguegcn"]  # the tiny DialogueGCN of the backbone contract
DIMS = small_model.dims


# ------------------------------------------------------------------------------------------ basics


def test_without_nodal_attention(make_batch):
    batch = make_batch([5, 3, 1], DIMS, n_speakers=3)
    without_attention = small_model(nodal_attention=False)
    assert without_attention.nodal_attention is None
    assert without_attention(**batch).logits.shape == (3, 5, 6)


def test_no_parameter_depends_on_the_dialogue_length(make_batch):
    model = small_model()
    assert model.edge_attention.scorer.out_features == 2 + 1 + 1
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    long = make_batch([40, 3], DIMS, n_speakers=3, seed=1)
    out = model(**long)
    assert out.logits.shape == (2, 40, 6) and torch.isfinite(out.logits).all()
    assert shapes == {k: v.shape for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------------ loops


def _loop_edges(n: int, p: int, f: int, context: torch.Tensor) -> dict[int, list[int]]:
    """Senders of every receiver ``i``: the window ``[i − p, i + f]`` within the dialogue and the context."""
    return {i: [j for j in range(max(0, i - p), min(n, i + f + 1)) if context[i, j]] for i in range(n)}


def _loop_relation(speakers: list[int], i: int, j: int, n_speakers: int) -> int:
    """The reference's ``edge_type_mapping[str(s_sender) + str(s_receiver) + direction]`` for the edge
    ``j -> i``: keys enumerated sender-speaker-major, direction "0" when the sender is strictly before."""
    mapping: dict[str, int] = {}
    for a in range(n_speakers):
        for b in range(n_speakers):
            mapping[f"{a}{b}0"] = len(mapping)
            mapping[f"{a}{b}1"] = len(mapping)
    return mapping[f"{speakers[j]}{speakers[i]}{0 if j < i else 1}"]


@pytest.mark.parametrize("view", ["full", "O", "X"])
def test_window_and_relation_types_match_loops(make_batch, view):
    model = small_model()
    speakers = [[0, 1, 0, 2, 1, 1, 0], [1, 0, 0]]
    batch = make_batch([7, 3], DIMS, n_speakers=3, speakers=speakers, seed=2)
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    inputs = prepared_inputs(model, batch, context)
    edges = model.graph_edges(inputs)
    relation = relation_types(inputs.speakers, 3)
    assert relation.max() < model.config.num_relations == 18
    for b, n in enumerate([7, 3]):
        expected = _loop_edges(n, 2, 1, inputs.context_mask[b])
        spk = inputs.speakers[b].tolist()
        for i in range(7):
            row = [j for j in range(7) if edges[b, i, j]]
            assert row == expected.get(i, [])
            for j in row:
                assert int(relation[b, i, j]) == _loop_relation(spk, i, j, 3)
            if i < n:
                assert i in row  # the self loop is always an edge
    window = window_mask(5, 2, 1)
    assert window.tolist() == [[-2 <= j - i <= 1 for j in range(5)] for i in range(5)]


def _loop_forward(model: DialogueGCNModel, h: torch.Tensor, speakers: list[int], context: torch.Tensor):
    """DialogueGCN's graph part and classifier for one dialogue, node by node (module docstring steps
    4–9). ``h`` ``(n, 2·D_e)`` are the BiLSTM outputs."""
    n = h.shape[0]
    config = model.config
    p, f, n_speakers = config.window_past, config.window_future, config.n_speakers
    edges = _loop_edges(n, p, f, context)
    conv = model.relational_conv
    weights = [
        sum(conv.coefficients[r, k] * conv.basis[k] for k in range(config.num_bases))
        for r in range(config.num_relations)
    ]
    g = []
    for i in range(n):
        scores = model.edge_attention.scorer(h[i])
        alpha = torch.softmax(torch.stack([scores[j - i + p] for j in edges[i]]), dim=0)
        message = sum(
            alpha[k] * (h[j] @ weights[_loop_relation(speakers, i, j, n_speakers)])
            for k, j in enumerate(edges[i])
        )
        g.append(message + h[i] @ conv.root + conv.bias)
    g = torch.stack(g)
    graph_conv = model.graph_conv
    o = torch.stack(
        [graph_conv.neighbours(sum(g[j] for j in edges[i])) + graph_conv.root(g[i]) for i in range(n)]
    )
    e = torch.cat([h, o], dim=-1)
    attended = []
    for i in range(n):
        allowed = [j for j in range(n) if context[i, j]]
        query = model.nodal_attention.transform(e[i])
        beta = torch.softmax(torch.stack([torch.tanh(query @ e[j]) for j in allowed]), dim=0)
        attended.append(sum(beta[k] * e[j] for k, j in enumerate(allowed)))
    z = F.relu(model.hidden(torch.stack(attended)))
    return z, model.classifier(z)


@pytest.mark.parametrize("view", ["full", "O", "X"])
def test_dense_model_matches_loop_definition(make_batch, view):
    model = small_model()
    speakers = [[0, 1, 0, 2, 1, 1, 0]]
    batch = make_batch([7], DIMS, n_speakers=3, speakers=speakers, seed=3)
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    with torch.no_grad():
        out = model(**batch, context_mask=context)
        inputs = prepared_inputs(model, batch, context)
        x = torch.cat([inputs.features[m] for m in ("text", "audio", "visual")], dim=-1)
        h = model.rnn(x, inputs.utterance_mask, inputs.context_mask if context is not None else None)[0]
        z, logits = _loop_forward(model, h, inputs.speakers[0].tolist(), inputs.context_mask[0])
    torch.testing.assert_close(out.utterance_repr[0], z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits[0], logits, atol=1e-5, rtol=1e-5)


def test_edge_weights_sum_to_one_over_each_receivers_edges(make_batch):
    model = small_model()
    batch = make_batch([6, 2], DIMS, n_speakers=3, seed=4)
    inputs = prepared_inputs(model, batch)
    edges = model.graph_edges(inputs)
    h = torch.randn(2, 6, 8)
    alpha = model.edge_attention(h, edges)
    mask = batch["utterance_mask"]
    torch.testing.assert_close(alpha.sum(-1)[mask], torch.ones(int(mask.sum())))
    assert alpha[~edges].abs().sum() == 0 and alpha[~mask].abs().sum() == 0


# ------------------------------------------------------------------------------------------ inputs


def test_rnn_reads_the_concatenated_configured_modalities():
    for dims in ({"text": 6}, {"audio": 5, "visual": 4}, {"text": 6, "visual": 4}):
        model = small_model(**{f"{m}_dim": dims.get(m) for m in DIMS})
        assert model.rnn.forward_layers[0].input_size == sum(dims.values())


def test_speakers_are_required(make_batch):
    model = small_model()
    batch = make_batch([3], DIMS, n_speakers=3)
    with pytest.raises(ValueError, match="speakers"):
        model(**{k: batch[k] for k in DIMS})
    with pytest.raises(ValueError, match="speaker"):
        model(**{**batch, "speakers": torch.full_like(batch["speakers"], 3)})
    with pytest.raises(ValueError, match="lacks"):
        model(text=batch["text"], audio=batch["audio"], speakers=batch["speakers"])


# ------------------------------------------------------------------------------------------ hub


def test_text_only_default_round_trips(tmp_path):
    torch.manual_seed(0)
    model = DialogueGCNModel(DialogueGCNConfig(D_e=4, graph_hidden_size=8, num_bases=2))
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.modalities == ("text",) and config.text_dim == 100


def test_default_config_is_the_reference_iemocap_setting():
    config = DialogueGCNConfig()
    assert (config.text_dim, config.audio_dim, config.visual_dim) == (100, None, None)
    assert (config.D_e, config.graph_hidden_size, config.num_bases) == (100, 100, 30)
    assert (config.window_past, config.window_future, config.n_speakers) == (10, 10, 2)
    assert config.nodal_attention and config.dropout == 0.4
    assert config.num_relations == 8 and config.num_labels == 6
    model = DialogueGCNModel(config)
    assert model.rnn.output_size == 200
    assert model.relational_conv.basis.shape == (30, 200, 100)
    assert model.relational_conv.coefficients.shape == (8, 30)
    assert model.edge_attention.scorer.weight.shape == (21, 200) and model.edge_attention.scorer.bias is None
    assert model.nodal_attention.transform.in_features == 300 and model.hidden.out_features == 100
    bound = 1 / (30 * 200) ** 0.5
    assert model.relational_conv.basis.abs().max() <= bound and model.relational_conv.basis.std() > bound / 4
    assert DialogueGCNConfig(n_speakers=9).num_relations == 162


@pytest.mark.parametrize(
    "overrides",
    [
        {"D_e": 0},
        {"graph_hidden_size": 1.5},
        {"num_bases": 0},
        {"window_past": -1},
        {"window_future": True},
        {"nodal_attention": 1},
        {"text_dim": None},
        {"n_speakers": 0},
    ],
)
def test_config_validation(overrides):
    with pytest.raises(ValueError):
        DialogueGCNConfig(**overrides)
