"""MercTrainer never trains on NaN and never saves non-finite weights."""

from __future__ import annotations

import ast
import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import merc_hf
from merc_hf.calibration import CMERC
from merc_hf.training import MercTrainer
from merc_hf.training.trainer import _nonfinite_problem, _restore_gradients, _set_aside_gradients

from .test_trainer import make_args, tiny_model


@pytest.fixture(scope="module")
def tiny_data():
    return merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=24, seed=1, dims={"text": 12, "audio": 8, "visual": 8}
    )


POISONED_ROW = 5


def poisoned(train):
    """The training set with one NaN audio value in one dialogue."""

    def poison(row, index):
        if index == POISONED_ROW:
            row["audio"][0][3] = float("nan")
        return row

    return train.map(poison, with_indices=True, keep_in_memory=True)


class StepRecorder(TrainerCallback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_a_nan_input_stops_training_naming_the_step_and_the_dialogue(tiny_data, tmp_path):
    train = poisoned(tiny_data["train"])
    bad_id = train[POISONED_ROW]["dialogue_id"]
    recorder = StepRecorder()
    trainer = MercTrainer(
        model=tiny_model(),
        args=make_args(tmp_path, save_strategy="no"),
        train_dataset=train,
        callbacks=[recorder],
    )
    with pytest.raises(FloatingPointError) as info:
        trainer.train()
    message = str(info.value)
    step = len(recorder.steps) + 1  # the steps before it completed
    assert f"non-finite loss (nan) at training step {step} (epoch 1)" in message
    ids = ast.literal_eval(message.split("on the batch of ")[1].split(";")[0])
    assert bad_id in ids and len(ids) == len(set(ids)) == 4
    assert set(ids) <= set(train["dialogue_id"])
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())  # not updated by the bad batch


def test_without_evaluation_no_nan_checkpoint_is_written(tiny_data, tmp_path):
    trainer = MercTrainer(
        model=tiny_model(),
        args=make_args(tmp_path, eval_strategy="no", save_strategy="steps", save_steps=1),
        train_dataset=poisoned(tiny_data["train"]),
    )
    with pytest.raises(FloatingPointError):
        trainer.train()
    checkpoints = sorted(tmp_path.glob("checkpoint-*"))
    for folder in checkpoints:
        weights = load_file(folder / "model.safetensors")
        assert all(torch.isfinite(t).all() for t in weights.values()), folder


class PoisonWeights(TrainerCallback):
    """Sets one weight to NaN at the end of ``step`` (after the step's checks)."""

    def __init__(self, model, step: int) -> None:
        self.model, self.step = model, step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = float("nan")


def test_checkpoints_and_save_model_refuse_nonfinite_weights(tiny_data, tmp_path):
    model = tiny_model()
    trainer = MercTrainer(
        model=model,
        args=make_args(tmp_path, save_strategy="steps", save_steps=1),
        train_dataset=tiny_data["train"],
        callbacks=[PoisonWeights(model, step=2)],
    )
    with pytest.raises(FloatingPointError, match="refusing to save checkpoint-2: 1 tensors hold NaN"):
        trainer.train()
    assert (tmp_path / "checkpoint-1").is_dir() and not (tmp_path / "checkpoint-2").exists()
    with pytest.raises(FloatingPointError, match="nothing was written"):
        trainer.save_model(str(tmp_path / "final"))
    assert not (tmp_path / "final").exists()


def test_skipping_nonfinite_batches_counts_them(tiny_data, tmp_path):
    train = poisoned(tiny_data["train"])
    trainer = MercTrainer(
        model=tiny_model(),
        args=make_args(tmp_path, save_strategy="no", num_train_epochs=2),
        train_dataset=train,
        calibration=CMERC(curriculum_ratio=None),
        skip_nonfinite_batches=True,
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["nonfinite_batches_skipped"] for entry in logs] == [1, 2]  # the row once per epoch
    for entry in logs:
        assert all(math.isfinite(entry[k]) and entry[k] != 0.0 for k in ("loss_scl_m", "loss_scl_c"))
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_logged_loss_parts_keep_nan(tiny_data, tmp_path):
    trainer = MercTrainer(model=tiny_model(), args=make_args(tmp_path), train_dataset=tiny_data["train"])
    trainer._loss_parts.update({"scl_m": [float("nan"), 1.0], "constraint": [0.5]})
    trainer.log({"loss": 1.0})
    logged = trainer.state.log_history[-1]
    assert math.isnan(logged["loss_scl_m"]) and logged["loss_constraint"] == 0.5


def test_gradient_checks_and_set_aside_gradients():
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    p.grad, q.grad = torch.tensor([1.0, 2.0]), None
    earlier = _set_aside_gradients([p, q])
    assert p.grad is None and earlier[0].tolist() == [1.0, 2.0]
    p.grad, q.grad = torch.tensor([float("inf"), 0.0]), torch.tensor([3.0])
    assert _nonfinite_problem(torch.tensor(0.5), [p, q]) == "non-finite gradient"
    assert _nonfinite_problem(torch.tensor(float("nan")), [p, q]) == "non-finite loss (nan)"
    _restore_gradients([p, q], earlier, keep_new=False)  # the bad micro-batch is dropped
    assert p.grad.tolist() == [1.0, 2.0] and q.grad is None
    earlier = _set_aside_gradients([p, q])
    p.grad, q.grad = torch.tensor([0.5, 0.5]), torch.tensor([3.0])
    assert _nonfinite_problem(torch.tensor(0.5), [p, q]) is None
    _restore_gradients([p, q], earlier, keep_new=True)  # a good one is added to what was accumulated
    assert p.grad.tolist() == [1.5, 2.5] and q.grad.tolist() == [3.0]
