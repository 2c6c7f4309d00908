"""CRL (correctness ranking loss) and FMFP (SAM + SWA): hand-worked values, and their Trainer hooks
(sample index, sharpness-aware steps, weight averaging, calibration state across checkpoint/resume)."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import merc_hf
from merc_hf.calibration.crl import CRL, correctness_ranking_loss
from merc_hf.calibration.fmfp import FMFP, sam_perturbation
from merc_hf.data import DialogueCollator
from merc_hf.training import MercTrainer
from merc_hf.training.trainer import CALIBRATION_STATE

from ..training.test_trainer import _StopAfter, make_args, tiny_model


@pytest.fixture(scope="module")
def tiny_data():
    return merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=24, seed=1, dims={"text": 12, "audio": 8, "visual": 8}
    )


def test_correctness_ranking_loss_hand_value():
    # pairs (0,1), (1,2), (2,0) of the cyclic shift
    confidence = torch.tensor([0.9, 0.6, 0.7], requires_grad=True)
    history = torch.tensor([1.0, 0.5, 0.5])
    # (0,1): c0 > c1, margin 0.5: max(0, -(0.9 - 0.6) + 0.5) = 0.2
    # (1,2): equal history: max(0, 0 + 0) = 0
    # (2,0): c2 < c0 (sign -1), margin 0.5: max(0, (0.7 - 0.9) + 0.5) = 0.3
    loss = correctness_ranking_loss(confidence, history)
    assert loss.item() == pytest.approx((0.2 + 0.0 + 0.3) / 3)
    loss.backward()
    # d/dκ0: pair (0,1) active: -1/3; pair (2,0) active: -1/3 (κ0 enters as -(-1)(κ2 - κ0) = κ2 - κ0)
    torch.testing.assert_close(confidence.grad, torch.tensor([-2 / 3, 1 / 3, 1 / 3]))
    single = torch.tensor([0.5], requires_grad=True)
    assert correctness_ranking_loss(single, torch.tensor([1.0])).item() == 0.0


def test_crl_history_counts_examinations_and_successes():
    method = CRL()
    index = torch.tensor([3, 0])
    valid = torch.tensor([[True, True, False], [True, False, False]])
    assert torch.equal(method.history(index, 3), torch.zeros(2, 3))  # never seen: 0
    method.update(index, torch.tensor([[True, False, True], [True, True, True]]), valid)
    method.update(index, torch.tensor([[True, True, True], [False, True, True]]), valid)
    # dialogue 3: utterance 0 right twice (1.0), utterance 1 once (0.5), utterance 2 padding (never seen)
    torch.testing.assert_close(method.history(index, 3), torch.tensor([[1.0, 0.5, 0.0], [0.5, 0.0, 0.0]]))
    restored = CRL()
    restored.load_state_dict(method.state_dict())
    torch.testing.assert_close(restored.history(index, 3), method.history(index, 3))
    with pytest.raises(ValueError, match="weight"):
        CRL(weight=-1.0)


def test_crl_training_loss_reads_history_before_updating(tiny_data):
    model = tiny_model()
    rows = [{**tiny_data["train"][i], "sample_index": i} for i in range(4)]
    batch = DialogueCollator()(rows)
    assert batch["sample_index"].tolist() == [0, 1, 2, 3]
    method = CRL(weight=2.0)
    outputs = model(**{k: v for k, v in batch.items() if k != "sample_index"})
    loss, parts = method.training_loss(model, batch, outputs)
    assert loss.item() == 0.0 and parts == {"crl": 0.0}  # empty history: every c is 0, no pair ranks
    loss, parts = method.training_loss(model, batch, outputs)
    valid = batch["labels"] != -100
    probs = torch.softmax(outputs.logits, -1)
    history = (probs.argmax(-1) == batch["labels"]).float()[valid]
    expected = correctness_ranking_loss(probs.max(-1).values[valid], history)
    assert loss.item() == pytest.approx(2.0 * expected.item()) and parts["crl"] == pytest.approx(
        expected.item()
    )
    with pytest.raises(ValueError, match="sample_index"):
        method.training_loss(model, {k: v for k, v in batch.items() if k != "sample_index"}, outputs)


def test_crl_through_the_trainer_and_resume(tiny_data, tmp_path):
    def run(output_dir, stop_after=None, resume=None):
        trainer = MercTrainer(
            model=tiny_model(),
            args=make_args(output_dir),
            train_dataset=tiny_data["train"],
            calibration=CRL(),
        )
        if stop_after:
            trainer.add_callback(_StopAfter(stop_after))
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "a")
    n_utterances = sum(len(labels) for labels in tiny_data["train"]["labels"])
    assert float(full.calibration.seen.sum()) == 3 * n_utterances  # every utterance examined once per epoch
    interrupted = run(tmp_path / "b", stop_after=2)
    checkpoint = tmp_path / "b" / f"checkpoint-{interrupted.state.global_step}"
    assert float(load_file(checkpoint / CALIBRATION_STATE)["seen"].sum()) == 2 * n_utterances
    resumed = run(tmp_path / "b", resume=str(checkpoint))
    torch.testing.assert_close(resumed.calibration.correct, full.calibration.correct)
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_sam_perturbation_hand_value():
    grads = [torch.tensor([3.0, 0.0]), None, torch.tensor([[4.0]])]
    epsilon = sam_perturbation(grads, rho=0.5)  # global norm 5
    torch.testing.assert_close(epsilon[0], torch.tensor([0.3, 0.0]))
    assert epsilon[1] is None
    torch.testing.assert_close(epsilon[2], torch.tensor([[0.4]]))
    assert all(e is None or not e.any() for e in sam_perturbation([torch.zeros(2)], 0.5))


def test_sam_step_takes_the_gradient_at_the_perturbed_weights(tiny_data, tmp_path):
    model = tiny_model()
    trainer = MercTrainer(
        model=model,
        args=make_args(tmp_path, gradient_accumulation_steps=1),
        train_dataset=tiny_data["train"],
        calibration=FMFP(sam_rho=0.1, swa_start=1.0),
    )
    batch = DialogueCollator()([tiny_data["train"][i] for i in range(4)])
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    # expected: g at w, ε = ρ g/‖g‖, gradient at w + ε
    model.zero_grad()
    model(**batch).loss.backward()
    epsilon = sam_perturbation([p.grad for p in params], 0.1)
    reference = tiny_model()
    with torch.no_grad():
        for p, e in zip([q for q in reference.parameters() if q.requires_grad], epsilon):
            p.add_(e if e is not None else 0)
    reference(**batch).loss.backward()
    expected = [p.grad for p in reference.parameters() if p.requires_grad]
    model.zero_grad(set_to_none=True)
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop
    trainer.training_step(model, dict(batch))
    for p, w, g in zip(params, before, expected):
        torch.testing.assert_close(p.detach(), w)  # weights restored to w
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-5)


def test_swa_average_hand_value():
    method = FMFP()
    model = torch.nn.Linear(1, 1)
    for value in (1.0, 2.0, 6.0):
        torch.nn.init.constant_(model.weight, value)
        method.update_average(model)
    assert method.n_averaged == 3
    torch.nn.init.constant_(model.weight, -5.0)
    assert method.apply_average(model)
    assert model.weight.item() == pytest.approx(3.0)
    assert not FMFP().apply_average(model)
    restored = FMFP()
    restored.load_state_dict(method.state_dict())
    assert restored.n_averaged == 3 and restored.average["weight"].item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="swa_start"):
        FMFP(swa_start=1.5)


class _RecordWeights(TrainerCallback):
    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})


def test_swa_through_the_trainer_averages_the_late_epochs(tiny_data, tmp_path):
    recorder = _RecordWeights()
    trainer = MercTrainer(
        model=tiny_model(),
        args=make_args(tmp_path, num_train_epochs=4),
        train_dataset=tiny_data["train"],
        calibration=FMFP(sam_rho=0.05, swa_start=0.5),
        callbacks=[recorder],
    )
    trainer.train()
    assert trainer.calibration.n_averaged == 2  # epochs 3 and 4 (> 0.5 × 4)
    for name, value in trainer.model.state_dict().items():
        expected = (recorder.weights[2][name] + recorder.weights[3][name]) / 2
        torch.testing.assert_close(value, expected, msg=name)
    assert not math.isnan(trainer.state.log_history[-1]["train_loss"])
