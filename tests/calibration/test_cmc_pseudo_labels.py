"""PLGM (CMC's pseudo-label generation): momentum schedule, reversed labels against a brute-force nearest
one-hot search, α and candidates on hand-worked values, the EMA updates, the method object's batch
preparation and state, and the per-modality EMA teacher."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from merc_hf.calibration.cmc_pseudo_labels import (
    PseudoLabelGeneration,
    ema_update,
    momentum,
    pseudo_label_candidates,
    reversal_weight,
    reversed_labels,
)
from merc_hf.models.cmc import CMCConfig, CMCModel

MODALITIES = ("text", "audio", "visual")


def tiny_cmc(seed: int = 0) -> CMCModel:
    torch.manual_seed(seed)
    config = CMCConfig(
        text_dim=4,
        audio_dim=3,
        visual_dim=2,
        embed_dim=4,
        feedforward_dim=8,
        num_layers=1,
        num_heads=1,
        stage="multimodal",
    )
    return CMCModel(config)


# ------------------------------------------------------------------------------------------ functions


def test_momentum_schedule_hand_values():
    assert momentum(1, 0.8, 0.5) == pytest.approx(0.8)
    assert momentum(4, 0.8, 0.5) == pytest.approx(0.9)  # 1 − 0.2 / √4
    assert momentum(2, 0.6, 2.0) == pytest.approx(0.9)  # 1 − 0.4 / 4
    assert momentum(10, 0.99, 0.0) == pytest.approx(0.99)
    for bad in ({"epoch": 0}, {"epoch": 1.5}, {"epoch": True}, {"m0": 1.2}, {"m0": -0.1}, {"gamma": -1.0}):
        args = {"epoch": 1, "m0": 0.8, "gamma": 0.5, **bad}
        with pytest.raises(ValueError):
            momentum(**args)


def test_reversed_label_is_the_nearest_one_hot_brute_force():
    generator = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(500, 3, generator=generator), dim=-1)
    eye = torch.eye(3)
    for p, got in zip(probs, reversed_labels(probs)):
        # the reference's search: the first candidate one-hot with the smallest L2 distance
        distances = [float(torch.linalg.vector_norm(p - eye[c])) for c in range(3)]
        best = min(range(3), key=lambda c: (distances[c], c))
        assert got.tolist() == eye[best].tolist()
    # batched shape (B, modalities, classes) and ties to the first class
    assert reversed_labels(torch.tensor([[[0.4, 0.4, 0.2]]])).tolist() == [[[1.0, 0.0, 0.0]]]


def test_alpha_and_candidate_hand_worked():
    p = torch.tensor([0.5, 0.3, 0.2])
    pseudo = torch.tensor([0.2, 0.7, 0.1])  # hard pseudo label: class 1
    # y_base = (0,1,0), y_rev = (1,0,0); ‖p − y_base‖² = 0.25 + 0.49 + 0.04 = 0.78,
    # ‖p − y_rev‖² = 0.25 + 0.09 + 0.04 = 0.38; α = (√0.78 − √0.38) / (√0.78 + √0.38)
    alpha = (math.sqrt(0.78) - math.sqrt(0.38)) / (math.sqrt(0.78) + math.sqrt(0.38))
    assert alpha == pytest.approx(0.177868, abs=1e-6)  # (0.883176 − 0.616441) / 1.499618
    got = reversal_weight(p, torch.tensor([0.0, 1.0, 0.0]), torch.tensor([1.0, 0.0, 0.0]))
    assert got.item() == pytest.approx(alpha, rel=1e-6)
    candidate = pseudo_label_candidates(p[None], pseudo[None])[0]
    torch.testing.assert_close(candidate, torch.tensor([alpha, 1 - alpha, 0.0]))
    # prediction agrees with the pseudo label: α = 0, the candidate is y_base
    same = pseudo_label_candidates(torch.tensor([[0.1, 0.6, 0.3]]), pseudo[None])
    torch.testing.assert_close(same, torch.tensor([[0.0, 1.0, 0.0]]))
    # 0/0: p is exactly the one-hot y_base = y_rev
    exact = torch.tensor([[0.0, 1.0, 0.0]])
    assert reversal_weight(exact, exact, exact).item() == 0.0
    torch.testing.assert_close(pseudo_label_candidates(exact, exact), exact)
    # a confident contrary prediction moves the candidate almost all the way
    flipped = pseudo_label_candidates(torch.tensor([[1.0, 0.0, 0.0]]), pseudo[None])
    torch.testing.assert_close(flipped, torch.tensor([[1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="one shape"):
        pseudo_label_candidates(p[None], pseudo[None, :2])


def test_ema_update_values():
    pseudo = torch.tensor([[0.0, 1.0, 0.0]])
    candidate = torch.tensor([[0.5, 0.5, 0.0]])
    torch.testing.assert_close(ema_update(pseudo, candidate, 0.8), torch.tensor([[0.1, 0.9, 0.0]]))
    per_modality = torch.tensor([0.5, 1.0, 0.0])[None, :, None]
    stacked = ema_update(pseudo.expand(3, 3)[None], candidate.expand(3, 3)[None], per_modality)[0]
    torch.testing.assert_close(stacked, torch.tensor([[0.25, 0.75, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]))


# ------------------------------------------------------------------------------------------ method object


def test_initialize_and_prepare_inputs_pick_rows_by_sample_index():
    plgm = PseudoLabelGeneration(n_samples=4)
    plgm.initialize(torch.tensor([2, 0, 1, 2]))
    assert plgm.pseudo_labels().shape == (4, 3, 3)
    torch.testing.assert_close(plgm.pseudo_labels()[1], torch.tensor([[1.0, 0, 0]] * 3))
    plgm.pseudo[3, 1] = torch.tensor([0.1, 0.6, 0.3])  # audio of sample 3 now says neutral
    inputs = {"sample_index": torch.tensor([3, 1]), "labels": torch.tensor([2, 0]), "text": torch.zeros(2)}
    prepared = plgm.prepare_inputs(inputs)
    assert prepared["unimodal_labels"].tolist() == [[2, 1, 2], [0, 0, 0]]
    assert prepared["unimodal_labels"].dtype == torch.long
    assert "unimodal_labels" not in inputs and prepared["text"] is inputs["text"]
    assert plgm.hard_pseudo_labels().tolist() == [[2, 2, 2], [0, 0, 0], [1, 1, 1], [2, 1, 2]]
    with pytest.raises(ValueError, match="sample_index"):
        plgm.prepare_inputs({"labels": torch.tensor([0])})
    with pytest.raises(ValueError, match="n_samples is 4"):
        plgm.initialize(torch.tensor([0, 1]))


def test_samples_are_initialised_lazily_from_the_batch_labels():
    plgm = PseudoLabelGeneration()
    prepared = plgm.prepare_inputs({"sample_index": torch.tensor([5, 2]), "labels": torch.tensor([1, 2])})
    assert prepared["unimodal_labels"].tolist() == [[1, 1, 1], [2, 2, 2]]
    assert plgm.hard_pseudo_labels()[0].tolist() == [-100, -100, -100]  # never seen
    # a known sample keeps its (evolved) pseudo label whatever the batch says
    plgm.pseudo[5, 0] = torch.tensor([0.0, 0.2, 0.8])
    again = plgm.prepare_inputs({"sample_index": torch.tensor([5]), "labels": torch.tensor([1])})
    assert again["unimodal_labels"].tolist() == [[2, 1, 1]]
    with pytest.raises(ValueError, match="no pseudo label"):
        plgm.prepare_inputs({"sample_index": torch.tensor([7])})
    with pytest.raises(ValueError, match="must be in \\[0, 3\\)"):
        plgm.prepare_inputs({"sample_index": torch.tensor([8]), "labels": torch.tensor([-100])})


def test_training_loss_updates_the_batch_pseudo_labels():
    plgm = PseudoLabelGeneration(n_samples=3)
    plgm.initialize(torch.tensor([1, 2, 0]))
    plgm.on_epoch_begin(4)
    logits = torch.randn(2, 3, 3, requires_grad=True)
    outputs = SimpleNamespace(modality_logits=logits, logits=logits.sum(1))
    inputs = {"sample_index": torch.tensor([2, 0]), "labels": torch.tensor([0, 1])}
    before = plgm.pseudo_labels()
    loss, parts = plgm.training_loss(None, inputs, outputs)
    assert loss.item() == 0.0 and loss.requires_grad
    probs = torch.softmax(logits.detach(), -1)
    m = torch.tensor([momentum(4, 0.8, 0.5), momentum(4, 0.99, 0.5), momentum(4, 0.99, 0.5)])
    for row, b in ((2, 0), (0, 1)):
        for i in range(3):
            candidate = pseudo_label_candidates(probs[b, i][None], before[row, i][None])[0]
            expected = m[i] * before[row, i] + (1 - m[i]) * candidate
            torch.testing.assert_close(plgm.pseudo[row, i], expected)
    torch.testing.assert_close(plgm.pseudo[1], before[1])  # not in the batch
    assert set(parts) == {"plgm_flip_text", "plgm_flip_audio", "plgm_flip_visual", "plgm_alpha"}
    assert all(0.0 <= v <= 1.0 for v in parts.values())


def test_pseudo_labels_flip_under_consistent_disagreement():
    plgm = PseudoLabelGeneration(n_samples=1)
    plgm.initialize(torch.tensor([0]))
    # the text expert keeps predicting "positive" with certainty; audio/visual agree with the label
    logits = torch.tensor([[[-20.0, -20.0, 20.0], [20.0, -20.0, -20.0], [20.0, -20.0, -20.0]]])
    outputs = SimpleNamespace(modality_logits=logits, logits=logits.sum(1))
    inputs = {"sample_index": torch.tensor([0]), "labels": torch.tensor([0])}
    for _ in range(3):  # text momentum 0.8 at epoch 1: 1 − 0.8³ = 0.488 of the way after 3 steps
        plgm.training_loss(None, inputs, outputs)
    assert plgm.hard_pseudo_labels().tolist() == [[0, 0, 0]]
    _, parts = plgm.training_loss(None, inputs, outputs)  # 1 − 0.8⁴ = 0.5904 > 1/2
    assert plgm.hard_pseudo_labels().tolist() == [[2, 0, 0]]
    assert parts["plgm_flip_text"] == 1.0 and parts["plgm_flip_audio"] == 0.0
    assert plgm.flip_rates() == {"plgm_flip_text": 1.0, "plgm_flip_audio": 0.0, "plgm_flip_visual": 0.0}


def test_state_dict_round_trip_through_safetensors(tmp_path):
    model = tiny_cmc()
    plgm = PseudoLabelGeneration(n_samples=3)
    plgm.initialize(torch.tensor([1, 2, 0]))
    plgm.on_train_begin(model)
    plgm.on_epoch_begin(3)
    logits = torch.randn(2, 3, 3)
    plgm.training_loss(
        None,
        {"sample_index": torch.tensor([0, 2]), "labels": torch.tensor([1, 0])},
        SimpleNamespace(modality_logits=logits, logits=logits.sum(1)),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    plgm.on_step_end(model)
    path = tmp_path / "state.safetensors"
    save_file({k: v.contiguous() for k, v in plgm.state_dict().items()}, str(path))
    restored = PseudoLabelGeneration()
    restored.load_state_dict(load_file(str(path)))
    torch.testing.assert_close(restored.pseudo_labels(), plgm.pseudo_labels())
    assert restored.hard_pseudo_labels().tolist() == plgm.hard_pseudo_labels().tolist()
    assert restored.epoch == 3 and restored.labels.tolist() == [1, 2, 0]
    assert restored.teacher.keys() == plgm.teacher.keys()
    for name, value in plgm.teacher.items():
        torch.testing.assert_close(restored.teacher[name], value)
    # a resumed run continues exactly
    fresh = tiny_cmc(seed=1)
    fresh.load_state_dict(model.state_dict())
    for method, target in ((plgm, model), (restored, fresh)):
        method.on_train_begin(target)  # keeps the restored teachers
        method.on_step_end(target)
        method.on_train_end(target)
    for (name, a), b in zip(model.named_parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b, msg=name)


# ------------------------------------------------------------------------------------------ teacher


def test_teacher_ema_per_modality_prefix_and_on_train_end_copies():
    model = tiny_cmc()
    plgm = PseudoLabelGeneration()
    plgm.on_train_begin(model)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert set(plgm.teacher) == {n for n in start if n.startswith(("encoders.", "heads."))}
    assert not any(n.startswith("router.") for n in plgm.teacher)
    plgm.on_epoch_begin(2)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator))
    student = {n: p.detach().clone() for n, p in model.named_parameters()}
    plgm.on_step_end(model)
    rates = {
        "text": 1 - 0.2 / 2**2.5,  # teacher (m0, γ): text (0.8, 2.5), audio (0.9, 5.0), visual (0.6, 2.0)
        "audio": 1 - 0.1 / 2**5.0,
        "visual": 1 - 0.4 / 2**2.0,
    }
    for name, ema in plgm.teacher.items():
        modality = name.split(".")[1]
        assert name.startswith((f"encoders.{modality}.", f"heads.{modality}."))
        rate = rates[modality]
        torch.testing.assert_close(ema, rate * start[name] + (1 - rate) * student[name])
    # the step left the model alone; the end of training copies the teachers in, router untouched
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), student[name])
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    plgm.on_train_end(model)
    for name, p in model.named_parameters():
        expected = plgm.teacher[name] if name in plgm.teacher else student[name]
        torch.testing.assert_close(p.detach(), expected)
    for name, b in model.named_buffers():
        torch.testing.assert_close(b, buffers[name])


def test_teacher_looks_through_ddp_style_wrappers_and_validates():
    model = tiny_cmc()
    wrapper = torch.nn.Module()
    wrapper.module = model
    plgm = PseudoLabelGeneration()
    plgm.on_step_end(wrapper)  # no on_train_begin: the teachers start from the current parameters
    assert "encoders.text.projection.weight" in plgm.teacher
    torch.testing.assert_close(
        plgm.teacher["heads.audio.classifier.bias"], model.heads["audio"].classifier.bias
    )
    with pytest.raises(ValueError, match="encoders.text"):
        PseudoLabelGeneration().on_train_begin(torch.nn.Linear(2, 2))
    PseudoLabelGeneration().on_train_end(model)  # no teachers: nothing happens


@pytest.mark.parametrize(
    "kwargs",
    [
        {"label_momentum": (0.8, 0.99)},
        {"label_momentum": (0.8, 1.5, 0.9)},
        {"teacher_gamma": (1.0, -1.0, 1.0)},
        {"n_samples": -1},
    ],
)
def test_constructor_validation(kwargs):
    with pytest.raises(ValueError):
        PseudoLabelGeneration(**kwargs)


def test_epoch_validation_and_defaults():
    plgm = PseudoLabelGeneration()
    assert plgm.needs_sample_index and plgm.epoch == 1
    assert plgm.to_dict()["teacher_momentum"] == [0.8, 0.9, 0.6]
    with pytest.raises(ValueError, match="counted from 1"):
        plgm.on_epoch_begin(0)
