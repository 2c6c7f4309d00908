"""Tests specific to DialogueRNN: the batched recurrence against an explicit per-dialogue, per-step loop of
the equations (full context for every attention type, with and without active listeners and emotion
attention; views "O", "X" and an arbitrary mask with the loop run over each target's subsequence), listener
states, one run per dialogue for full context, the concatenated input, speaker inputs and speaker renaming,
reference defaults, config validation and each dropout. The backbone interface (shapes, padding/batch
invariance, exact context removal, modalities, losses, save/load, training) is tested in
``test_backbone_contract.py``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from merc_hf.models.base import build_context_mask
from merc_hf.models.dialoguernn import CONTEXT_ATTENTIONS, DialogueRNNConfig, DialogueRNNModel

from .test_backbone_contract import BACKBONES, prepared_inputs

small_model = BACKBONES["dialoguernn"]  # the tiny DialogueRNN of the backbone contract
DIMS = small_model.dims
SPEAKERS = [[0, 1, 0, 2, 1, 1, 0], [1, 1, 0, 1]]


# ------------------------------------------------------------------------------------------ loops


def _gru(cell: nn.GRUCell, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The GRU cell equations written out: r, z gates and the candidate n, ``h' = (1 − z) n + z h``."""
    w_ir, w_iz, w_in = cell.weight_ih.chunk(3)
    w_hr, w_hz, w_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = torch.sigmoid(w_ir @ x + b_ir + w_hr @ h + b_hr)
    z = torch.sigmoid(w_iz @ x + b_iz + w_hz @ h + b_hz)
    n = torch.tanh(w_in @ x + b_in + r * (w_hn @ h + b_hn))
    return (1 - z) * n + z * h


def _score(attention: nn.Module, query: torch.Tensor, entry: torch.Tensor) -> torch.Tensor:
    """The score of one memory entry for one query, per attention type."""
    kind = attention.kind
    if kind == "simple":
        return attention.scorer.weight[0] @ entry
    if kind == "dot":
        return query @ entry
    if kind == "general":
        return (attention.transform.weight @ query) @ entry
    if kind == "general2":
        return (attention.transform.weight @ query + attention.transform.bias) @ entry
    hidden = torch.tanh(attention.transform.weight @ torch.cat([entry, query]))
    return attention.vector.weight[0] @ hidden


def _attend(attention: nn.Module, query: torch.Tensor, memory: list[torch.Tensor]) -> torch.Tensor:
    weights = torch.softmax(torch.stack([_score(attention, query, entry) for entry in memory]), dim=0)
    return sum(w * entry for w, entry in zip(weights, memory))


def _loop_direction(rnn: nn.Module, us: list[torch.Tensor], speakers: list[int]) -> list[torch.Tensor]:
    """One direction, step by step: ``g_t``, ``c_t``, the speaker's ``q``, listeners, ``e_t``."""
    g = torch.zeros(rnn.D_g)
    q = [torch.zeros(rnn.D_p) for _ in range(rnn.n_speakers)]
    e = torch.zeros(rnn.D_e)
    history, emotions = [], []
    for u, s in zip(us, speakers):
        g = _gru(rnn.global_cell, torch.cat([u, q[s]]), g)
        c = _attend(rnn.attention, u, history) if history else torch.zeros(rnn.D_g)
        speaker_state = _gru(rnn.party_cell, torch.cat([u, c]), q[s])
        for k in range(rnn.n_speakers):
            if k == s:
                q[k] = speaker_state
            elif rnn.listener_cell is not None:
                q[k] = _gru(rnn.listener_cell, torch.cat([u, speaker_state]), q[k])
        e = _gru(rnn.emotion_cell, speaker_state, e)
        history.append(g)
        emotions.append(e)
    return emotions


def _loop_model(model: DialogueRNNModel, us: list[torch.Tensor], speakers: list[int]) -> list[torch.Tensor]:
    """``utterance_repr`` of one (sub)sequence: both directions, emotion attention and the hidden layer."""
    forward = _loop_direction(model.forward_rnn, us, speakers)
    backward = _loop_direction(model.backward_rnn, us[::-1], speakers[::-1])[::-1]
    emotions = [torch.cat([f, b]) for f, b in zip(forward, backward)]
    if model.emotion_attention is not None:
        emotions = [_attend(model.emotion_attention, e, emotions) for e in emotions]
    return [torch.relu(model.hidden.weight @ e + model.hidden.bias) for e in emotions]


def _check_against_loop(model: DialogueRNNModel, batch: dict, context: torch.Tensor | None) -> None:
    """The model's outputs equal, for every target ``i``, the loop run over ``S_i`` (all of the dialogue
    for full context), taken at ``i``'s position in ``S_i``."""
    with torch.no_grad():
        out = model(**batch, context_mask=context)
        inputs = prepared_inputs(model, batch, context)
        x = torch.cat([inputs.features[m] for m in model.modalities], dim=-1)
        for b, n in enumerate(batch["utterance_mask"].sum(1).tolist()):
            speakers = batch["speakers"][b].tolist()
            for i in range(n):
                subsequence = [j for j in range(n) if context is None or inputs.context_mask[b, i, j]]
                reprs = _loop_model(model, [x[b, j] for j in subsequence], [speakers[j] for j in subsequence])
                expected = reprs[subsequence.index(i)]
                torch.testing.assert_close(out.utterance_repr[b, i], expected, atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(out.logits[b, i], model.classifier(expected), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", CONTEXT_ATTENTIONS)
def test_full_context_matches_loop_definition(make_batch, attention):
    sizes = {"D_g": sum(DIMS.values())} if attention == "dot" else {}  # "dot" needs D_m == D_g
    model = small_model(context_attention=attention, **sizes)
    batch = make_batch([7, 4], DIMS, n_speakers=3, speakers=SPEAKERS, seed=1)
    _check_against_loop(model, batch, None)


@pytest.mark.parametrize(
    "overrides", [{"active_listener": True}, {"emotion_attention": False}], ids=["listener", "no-att2"]
)
def test_variants_match_loop_definition(make_batch, overrides):
    model = small_model(**overrides)
    batch = make_batch([7, 4], DIMS, n_speakers=3, speakers=SPEAKERS, seed=2)
    _check_against_loop(model, batch, None)
    _check_against_loop(model, batch, build_context_mask("X", batch["same_speaker"], batch["utterance_mask"]))


@pytest.mark.parametrize("view", ["O", "X", "random"])
def test_context_masks_match_loop_over_each_subsequence(make_batch, view):
    model = small_model()
    batch = make_batch([7, 4], DIMS, n_speakers=3, speakers=SPEAKERS, seed=3)
    if view == "random":  # any mask, neither symmetric nor transitive
        generator = torch.Generator().manual_seed(0)
        context = torch.rand(2, 7, 7, generator=generator) < 0.5
    else:
        context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    _check_against_loop(model, batch, context)


# ------------------------------------------------------------------------------------------ states


@pytest.mark.parametrize("active_listener", [False, True])
def test_only_the_speaker_state_changes_without_active_listener(active_listener):
    rnn = small_model(active_listener=active_listener).forward_rnn
    generator = torch.Generator().manual_seed(4)
    n, parties = 3, rnn.n_speakers
    u = torch.randn(n, sum(DIMS.values()), generator=generator)
    speaker = torch.tensor([0, 2, 1])
    g = torch.randn(n, rnn.D_g, generator=generator)
    q = torch.randn(n, parties, rnn.D_p, generator=generator)
    e = torch.randn(n, rnn.D_e, generator=generator)
    memory = torch.randn(n, 2, rnn.D_g, generator=generator)
    with torch.no_grad():
        _, new_q, _ = rnn.step(rnn.project_utterances(u), speaker, g, q, e, memory)
    is_speaker = torch.nn.functional.one_hot(speaker, parties).bool()
    assert (new_q[is_speaker] - q[is_speaker]).abs().min() > 0
    if active_listener:
        assert (new_q[~is_speaker] - q[~is_speaker]).abs().amax(-1).min() > 0
    else:
        assert torch.equal(new_q[~is_speaker], q[~is_speaker])


def test_full_context_runs_one_sequence_per_dialogue(make_batch, monkeypatch):
    """Full context is one ordinary pass (one group per dialogue); view "O" one group per speaker."""
    model = small_model()
    batch = make_batch([7, 4], DIMS, n_speakers=3, speakers=SPEAKERS, seed=5)
    seen = []
    original = model.forward_rnn.forward

    def record(u, index, speakers, lengths):
        seen.append(lengths.tolist())
        return original(u, index, speakers, lengths)

    monkeypatch.setattr(model.forward_rnn, "forward", record)
    with torch.no_grad():
        model(**batch)
        model(**batch, context_mask=build_context_mask("O", batch["same_speaker"], batch["utterance_mask"]))
    assert seen[0] == [7, 4]
    assert sorted(seen[1]) == [1, 1, 3, 3, 3]  # dialogue 0: speakers 0/1/2 (3, 3, 1); dialogue 1 (3, 1)


# ------------------------------------------------------------------------------------------ inputs


def test_recurrence_reads_the_concatenated_configured_modalities():
    for dims in ({"text": 6}, {"audio": 5, "visual": 4}, {"text": 6, "visual": 4}):
        model = small_model(**{f"{m}_dim": dims.get(m) for m in DIMS})
        d_m = sum(dims.values())
        assert model.config.input_size == d_m
        assert model.forward_rnn.global_cell.input_size == d_m + 12  # [u_t ‖ q_{s(t), t−1}]
        assert model.backward_rnn.party_cell.input_size == d_m + 12  # [u_t ‖ c_t]


def test_speakers_are_required_and_only_the_turn_structure_matters(make_batch):
    """Every party starts from the same zero state with shared cells, so renaming the speakers of a dialogue
    changes nothing, while another assignment of turns to speakers does."""
    model = small_model()
    batch = make_batch([6, 4], DIMS, n_speakers=3, speakers=[[0, 1, 0, 2, 1, 0], [0, 1, 1, 0]], seed=6)
    with pytest.raises(ValueError, match="uses speaker information"):
        model(**{k: batch[k] for k in DIMS})
    with pytest.raises(ValueError, match="speaker indices"):
        model(**{**batch, "speakers": torch.full_like(batch["speakers"], 3)})
    renamed = torch.tensor([2, 0, 1])[batch["speakers"]]  # 0 -> 2, 1 -> 0, 2 -> 1
    reassigned = batch["speakers"].clone()
    reassigned[0, 2] = 1
    mask = batch["utterance_mask"]
    with torch.no_grad():
        original = model(**batch).logits[mask]
        torch.testing.assert_close(model(**{**batch, "speakers": renamed}).logits[mask], original)
        assert (model(**{**batch, "speakers": reassigned}).logits[mask] - original).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------ config


def test_default_config_is_the_reference_iemocap_setting():
    config = DialogueRNNConfig()
    assert (config.text_dim, config.audio_dim, config.visual_dim) == (100, None, None)
    assert (config.D_g, config.D_p, config.D_e, config.D_h, config.D_a) == (500, 500, 300, 300, 100)
    assert config.context_attention == "general" and not config.active_listener and config.emotion_attention
    assert (config.dropout, config.rec_dropout) == (0.1, 0.1)
    assert config.emotion_dropout == pytest.approx(0.25)  # the reference's dropout + 0.15
    assert config.n_speakers == 2 and config.num_labels == 6 and config.label2id["fru"] == 5
    model = DialogueRNNModel(config)
    rnn = model.forward_rnn
    assert (rnn.global_cell.input_size, rnn.global_cell.hidden_size) == (600, 500)
    assert (rnn.party_cell.input_size, rnn.party_cell.hidden_size) == (600, 500)
    assert (rnn.emotion_cell.input_size, rnn.emotion_cell.hidden_size) == (500, 300)
    assert rnn.listener_cell is None and rnn.attention.transform.bias is None
    assert rnn.attention.transform.weight.shape == (500, 100)
    assert model.emotion_attention.transform.weight.shape == (600, 600)
    assert model.emotion_attention.transform.bias is not None  # "general2"
    assert model.hidden.weight.shape == (600, 600) and model.classifier.in_features == 600
    assert rnn.global_cell.weight_hh.abs().max() <= 500**-0.5 and rnn.global_cell.weight_hh.std() > 0.01
    assert DialogueRNNConfig(dropout=0.3).emotion_dropout == pytest.approx(0.45)
    meld = DialogueRNNConfig(text_dim=600, audio_dim=300, D_g=150, D_p=150, D_e=100, D_h=100, n_speakers=9)
    assert meld.input_size == 900


def test_explicit_emotion_dropout_survives_save_and_load(tmp_path):
    """An explicit value equal to the default's 0.25 must not be re-derived from another dropout on load."""
    DialogueRNNConfig(dropout=0.3, emotion_dropout=0.25).save_pretrained(tmp_path)
    loaded = DialogueRNNConfig.from_pretrained(tmp_path)
    assert (loaded.dropout, loaded.emotion_dropout) == (0.3, 0.25)


@pytest.mark.parametrize(
    "overrides",
    [
        {"D_g": 0},
        {"D_p": 1.5},
        {"D_a": True},
        {"context_attention": "additive"},
        {"context_attention": "dot"},  # D_m = 100 != D_g = 500
        {"active_listener": 1},
        {"emotion_attention": "yes"},
        {"rec_dropout": 1.0},
        {"emotion_dropout": -0.1},
        {"dropout": 0.9},  # emotion_dropout would be 1.05
        {"text_dim": None},
        {"n_speakers": 0},
    ],
)
def test_config_validation(overrides):
    with pytest.raises(ValueError):
        DialogueRNNConfig(**overrides)
    assert DialogueRNNConfig(context_attention="dot", D_g=100).context_attention == "dot"


# ------------------------------------------------------------------------------------------ training


@pytest.mark.parametrize("name", ["rec_dropout", "emotion_dropout", "dropout"])
def test_each_dropout_is_active_in_training_only(make_batch, name):
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=13)
    model = small_model(**{name: 0.5})
    outputs = {}
    with torch.no_grad():
        for mode, seed in (("eval", 0), ("eval", 1), ("train", 0), ("train", 1)):
            model.train(mode == "train")
            torch.manual_seed(seed)
            outputs[mode, seed] = model(**batch).logits
    torch.testing.assert_close(outputs["eval", 0], outputs["eval", 1])
    assert (outputs["train", 0] - outputs["train", 1]).abs().max() > 1e-4
