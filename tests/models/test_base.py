"""Tests of the shared backbone interface: context masks, modality removal, losses, class weights and the
context-masked RNN."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from merc_hf.models.base import (
    MercConfig,
    build_context_mask,
    emotion_loss,
    full_context_mask,
    inter_speaker_removed_mask,
    intra_speaker_removed_mask,
    inverse_frequency_class_weights,
    remove_modalities,
    resolve_context_mask,
)
from merc_hf.models.layers import ContextMaskedRNN, context_subsequences


def _same_speaker(speakers: torch.Tensor, utterance_mask: torch.Tensor) -> torch.Tensor:
    valid = utterance_mask[:, :, None] & utterance_mask[:, None, :]
    return (speakers[:, :, None] == speakers[:, None, :]) & valid


# ---------------------------------------------------------------------------------------------- masks


def test_context_views_on_a_hand_example():
    speakers = torch.tensor([[0, 1, 0, 0]])
    utterance_mask = torch.tensor([[True, True, True, False]])
    same = _same_speaker(speakers, utterance_mask)
    full = full_context_mask(utterance_mask)
    o_view = inter_speaker_removed_mask(same, utterance_mask)
    x_view = intra_speaker_removed_mask(same, utterance_mask)
    assert full[0].int().tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert o_view[0].int().tolist() == [[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert x_view[0].int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert build_context_mask("full", same, utterance_mask) is None
    assert torch.equal(build_context_mask("O", same, utterance_mask), o_view)
    assert torch.equal(build_context_mask("X", same, utterance_mask), x_view)
    with pytest.raises(ValueError):
        build_context_mask("Y", same, utterance_mask)


def test_resolve_context_mask_drops_padding_and_keeps_self():
    utterance_mask = torch.tensor([[True, True, False]])
    nothing = torch.zeros(1, 3, 3, dtype=torch.bool)
    assert resolve_context_mask(nothing, utterance_mask)[0].int().tolist() == [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 0],
    ]
    everything = torch.ones(1, 3, 3, dtype=torch.bool)
    assert torch.equal(resolve_context_mask(everything, utterance_mask), full_context_mask(utterance_mask))
    assert torch.equal(resolve_context_mask(None, utterance_mask), full_context_mask(utterance_mask))
    with pytest.raises(ValueError):
        resolve_context_mask(torch.ones(1, 2, 2, dtype=torch.bool), utterance_mask)


def test_single_speaker_x_view_is_self_only():
    utterance_mask = torch.ones(1, 3, dtype=torch.bool)
    same = _same_speaker(torch.zeros(1, 3, dtype=torch.long), utterance_mask)
    assert torch.equal(intra_speaker_removed_mask(same, utterance_mask)[0], torch.eye(3, dtype=torch.bool))
    assert torch.equal(inter_speaker_removed_mask(same, utterance_mask), full_context_mask(utterance_mask))


# ------------------------------------------------------------------------------------ modality removal


def test_remove_modalities_mean_and_zero():
    utterance_mask = torch.tensor([[True, True, False], [True, True, True]])
    text = torch.tensor([[[1.0], [3.0], [100.0]], [[1.0], [2.0], [3.0]]])
    audio = torch.tensor([[[5.0], [7.0], [-9.0]], [[0.0], [0.0], [6.0]]])
    modality_mask = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    out = remove_modalities(
        {"text": text, "audio": audio, "visual": None}, modality_mask, utterance_mask, "mean"
    )
    assert out["visual"] is None
    # dialogue 0: text removed -> mean over the 2 real utterances (padding 100 ignored), padding row zeroed
    assert out["text"][0, :, 0].tolist() == [2.0, 2.0, 0.0]
    assert out["text"][1, :, 0].tolist() == [1.0, 2.0, 3.0]
    assert out["audio"][0, :, 0].tolist() == [5.0, 7.0, 0.0]
    assert out["audio"][1, :, 0].tolist() == [2.0, 2.0, 2.0]
    zero = remove_modalities({"text": text, "audio": audio}, modality_mask, utterance_mask, "zero")
    assert zero["text"][0].abs().sum() == 0 and zero["audio"][1].abs().sum() == 0
    assert zero["text"][1, :, 0].tolist() == [1.0, 2.0, 3.0]
    kept = remove_modalities({"text": text}, None, utterance_mask)
    assert kept["text"][0, :, 0].tolist() == [1.0, 3.0, 0.0]


def test_remove_modalities_mean_respects_context():
    utterance_mask = torch.ones(1, 3, dtype=torch.bool)
    same = _same_speaker(torch.tensor([[0, 1, 0]]), utterance_mask)
    text = torch.tensor([[[1.0], [50.0], [3.0]]])
    out = remove_modalities(
        {"text": text},
        torch.tensor([[0.0, 1.0, 1.0]]),
        utterance_mask,
        "mean",
        context_mask=inter_speaker_removed_mask(same, utterance_mask),
    )
    assert out["text"][0, :, 0].tolist() == [2.0, 50.0, 2.0]


# -------------------------------------------------------------------------------------------- losses


def _tiny_problem() -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [9.0, 9.0, 9.0]]])
    labels = torch.tensor([[0, 2, -100]])
    return logits, labels


def _log_softmax_rows(logits: torch.Tensor) -> list[list[float]]:
    rows = []
    for row in logits.reshape(-1, logits.shape[-1]).tolist():
        norm = math.log(sum(math.exp(v) for v in row))
        rows.append([v - norm for v in row])
    return rows


def test_weighted_cross_entropy_matches_hand_value():
    logits, labels = _tiny_problem()
    lp = _log_softmax_rows(logits)
    weights = [0.5, 1.0, 3.0]
    expected = (0.5 * -lp[0][0] + 3.0 * -lp[1][2]) / (0.5 + 3.0)
    loss = emotion_loss(logits, labels, "cross_entropy", class_weights=weights)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    plain = emotion_loss(logits, labels, "cross_entropy")
    assert plain.item() == pytest.approx((-lp[0][0] - lp[1][2]) / 2, rel=1e-6)


def test_focal_with_gamma_zero_is_cross_entropy():
    logits, labels = _tiny_problem()
    for weights in (None, [0.5, 1.0, 3.0]):
        ce = emotion_loss(logits, labels, "cross_entropy", class_weights=weights)
        focal = emotion_loss(logits, labels, "focal", class_weights=weights, focal_gamma=0.0)
        assert focal.item() == pytest.approx(ce.item(), rel=1e-6)


def test_focal_matches_hand_value():
    logits, labels = _tiny_problem()
    lp = _log_softmax_rows(logits)
    gamma, weights = 2.0, [0.5, 1.0, 3.0]
    terms = [(0.5, lp[0][0]), (3.0, lp[1][2])]
    expected = sum(a * (1 - math.exp(v)) ** gamma * -v for a, v in terms) / (0.5 + 3.0)
    loss = emotion_loss(logits, labels, "focal", class_weights=weights, focal_gamma=gamma)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_reference_focal_matches_hand_value():
    logits, labels = _tiny_problem()
    lp = _log_softmax_rows(logits)
    gamma = 2.5
    entries = []
    for row, y in zip(lp[:2], [0, 2]):
        for c, v in enumerate(row):
            entries.append(-((1 - (v if c == y else 0.0)) ** gamma) * v)
    expected = sum(entries) / len(entries)
    loss = emotion_loss(logits, labels, "reference_focal", focal_gamma=gamma)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_loss_ignores_padding_and_handles_no_labels():
    logits, labels = _tiny_problem()
    mask = torch.tensor([[True, False, False]])
    masked = emotion_loss(logits, labels, utterance_mask=mask)
    assert masked.item() == pytest.approx(-_log_softmax_rows(logits)[0][0], rel=1e-6)
    logits = logits.clone().requires_grad_(True)
    empty = emotion_loss(logits, torch.full_like(labels, -100))
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError):
        emotion_loss(logits, torch.tensor([[0, 5, -100]]))


def test_focal_gradient_is_finite_for_saturated_predictions():
    logits = torch.tensor([[[200.0, 0.0, 0.0]]], requires_grad=True)
    emotion_loss(logits, torch.tensor([[0]]), "focal", focal_gamma=0.5).backward()
    assert torch.isfinite(logits.grad).all()


def test_inverse_frequency_class_weights():
    weights = inverse_frequency_class_weights([[0, 0, 1, -100], [2, 0]], num_labels=4)
    assert weights == [5 / 3, 5.0, 5.0, 0.0]
    tensor_weights = inverse_frequency_class_weights(torch.tensor([[0, 0, 1, -100], [2, 0, -100, -100]]), 4)
    assert tensor_weights == weights
    with pytest.raises(ValueError):
        inverse_frequency_class_weights([7], num_labels=4)


# ------------------------------------------------------------------------------------------- config


def test_merc_config_validation():
    with pytest.raises(ValueError):
        MercConfig(text_dim=None, audio_dim=None, visual_dim=None)
    with pytest.raises(ValueError):
        MercConfig(loss_type="hinge")
    with pytest.raises(ValueError):
        MercConfig(modality_removal="noise")
    with pytest.raises(ValueError):
        MercConfig(class_weights=[1.0, 2.0])  # 6 IEMOCAP labels by default
    config = MercConfig(audio_dim=None, id2label={0: "neg", 1: "pos"})
    assert config.modalities == ("text", "visual")
    assert config.label2id == {"neg": 0, "pos": 1} and config.num_labels == 2


# --------------------------------------------------------------------------------- context-masked RNN


def _equivalent_torch_rnn(rnn: ContextMaskedRNN, cell: str) -> nn.RNNBase:
    """The ``nn.GRU``/``nn.LSTM`` with the same weights as ``rnn``."""
    first = rnn.forward_layers[0]
    module = (nn.GRU if cell == "gru" else nn.LSTM)(
        first.input_size,
        first.hidden_size,
        num_layers=rnn.num_layers,
        bidirectional=rnn.bidirectional,
        batch_first=True,
    )
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            for direction, suffix in ((rnn.forward_layers, ""), (rnn.backward_layers, "_reverse")):
                if direction is None:
                    continue
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(module, f"{name}_l{layer}{suffix}").copy_(getattr(direction[layer], f"{name}_l0"))
    return module


@pytest.mark.parametrize("view", ["full", "O", "X"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(2, True), (1, True), (3, False)])
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_context_masked_rnn_runs_each_target_over_its_subsequence(
    view, cell, num_layers, bidirectional, grad
):
    # without gradients the subsequences run packed, the first layer projected once per utterance and the
    # last layer truncated at the targets; with gradients through nn.GRU/nn.LSTM in length buckets
    torch.manual_seed(0)
    rnn = ContextMaskedRNN(4, 3, num_layers=num_layers, bidirectional=bidirectional, cell=cell).eval()
    reference = _equivalent_torch_rnn(rnn, cell).eval()
    speakers = torch.tensor([[0, 1, 1, 0, 2, 0, 1], [0, 0, 1, 0, 0, 0, 0]])
    utterance_mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    same = _same_speaker(speakers, utterance_mask)
    context = build_context_mask(view, same, utterance_mask)
    x = torch.randn(2, 7, 4)
    x[1, 4:] = 1e3  # padding must not matter
    with torch.set_grad_enabled(grad):
        out = rnn(x, utterance_mask, context)
    with torch.no_grad():
        resolved = resolve_context_mask(context, utterance_mask)
        for b in range(2):
            for i in range(int(utterance_mask[b].sum())):
                idx = resolved[b, i].nonzero().squeeze(-1)
                expected = reference(x[b, idx][None])[0][0][(idx == i).nonzero().item()]
                torch.testing.assert_close(out[b, i], expected, atol=1e-6, rtol=1e-5)
    assert out[1, 4:].abs().sum() == 0
    assert out.requires_grad == grad


def test_context_subsequence_groups():
    speakers = torch.tensor([[0, 1, 0, 1, 0]])
    utterance_mask = torch.ones(1, 5, dtype=torch.bool)
    same = _same_speaker(speakers, utterance_mask)
    assert context_subsequences(full_context_mask(utterance_mask), utterance_mask).lengths.tolist() == [5]
    o_plan = context_subsequences(inter_speaker_removed_mask(same, utterance_mask), utterance_mask)
    assert sorted(o_plan.lengths.tolist()) == [2, 3]
    x_plan = context_subsequences(intra_speaker_removed_mask(same, utterance_mask), utterance_mask)
    assert len(x_plan.lengths) == 5


def test_context_masked_rnn_full_context_equals_packed_torch_rnn():
    torch.manual_seed(1)
    rnn = ContextMaskedRNN(4, 3, num_layers=2, bidirectional=True)
    reference = _equivalent_torch_rnn(rnn, "gru")
    x = torch.randn(2, 5, 4)
    utterance_mask = torch.tensor([[True] * 5, [True] * 2 + [False] * 3])
    out = rnn(x, utterance_mask)
    explicit = rnn(x, utterance_mask, full_context_mask(utterance_mask))
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 2]), batch_first=True)
    expected, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=5)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(explicit, expected)
    unidirectional = ContextMaskedRNN(4, 3, num_layers=1, bidirectional=False)
    assert unidirectional(x, utterance_mask).shape == (2, 5, 3)
