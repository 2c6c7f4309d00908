"""MercTrainer: calibration terms only while training, GA scaling, curriculum, checkpoint/resume."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback, TrainingArguments

import merc_hf
from merc_hf.calibration import CMERC
from merc_hf.data import DialogueCollator
from merc_hf.models.m3net.configuration_m3net import M3NetConfig
from merc_hf.models.m3net.modeling_m3net import M3NetModel
from merc_hf.training import CurriculumSampler, MercTrainer


@pytest.fixture(scope="module")
def tiny_data():
    return merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=24, seed=1, dims={"text": 12, "audio": 8, "visual": 8}
    )


def tiny_model(seed: int = 0) -> M3NetModel:
    torch.manual_seed(seed)
    config = M3NetConfig(
        text_dim=12, audio_dim=8, visual_dim=8, hidden_size=16, graph_hidden_size=16, num_L=1, num_K=1,
        n_speakers=9, dropout=0.0, id2label=dict(enumerate("abcdefg")),
    )  # fmt: skip
    return M3NetModel(config)


def make_args(tmp_path, **overrides) -> TrainingArguments:
    defaults = dict(
        output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=8,
        num_train_epochs=3, learning_rate=5e-3, report_to="none", remove_unused_columns=False,
        save_strategy="epoch", eval_strategy="no", logging_strategy="epoch", use_cpu=True, seed=3,
        dataloader_pin_memory=False, disable_tqdm=True,
    )  # fmt: skip
    return TrainingArguments(**{**defaults, **overrides})


def test_calibration_terms_only_in_training(tiny_data, tmp_path):
    model = tiny_model()
    trainer = MercTrainer(
        model=model,
        args=make_args(tmp_path),
        train_dataset=tiny_data["train"],
        calibration=CMERC(curriculum_ratio=None),
    )
    batch = DialogueCollator()([tiny_data["train"][i] for i in range(4)])
    model.train()
    with_terms = trainer.compute_loss(model, batch)
    plain = model(**batch).loss
    assert with_terms.item() > plain.item()
    model.eval()
    with torch.no_grad():
        assert trainer.compute_loss(model, batch).item() == pytest.approx(model(**batch).loss.item())


def test_loss_is_divided_by_gradient_accumulation_steps(tiny_data, tmp_path):
    model = tiny_model()
    trainer = MercTrainer(
        model=model, args=make_args(tmp_path, gradient_accumulation_steps=2), train_dataset=tiny_data["train"],
        calibration=CMERC(curriculum_ratio=None),
    )  # fmt: skip
    assert trainer.loss_is_scaled_for_ga is False and trainer.model_accepts_loss_kwargs is False
    batch = DialogueCollator()([tiny_data["train"][i] for i in range(4)])
    trainer.current_gradient_accumulation_steps = 2  # set by the training loop for each accumulation window
    torch.manual_seed(0)
    step_loss = trainer.training_step(model, dict(batch))
    model.train()
    torch.manual_seed(0)
    full = trainer.compute_loss(model, dict(batch))
    assert step_loss.item() == pytest.approx(full.item() / 2, rel=1e-5)


def test_curriculum_sampler_schedule():
    sampler = CurriculumSampler(10, ratio=0.3, epochs_per_stage=1, warmup_epochs=1, seed=0)
    sampler.set_epoch(0)
    assert sorted(set(sampler)) == list(range(10))  # warm-up: the whole set
    sampler.set_difficulties([0.9, 0.1, 0.5, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.0])
    assert sampler.active_indices(1) == [1, 3, 9]  # the easiest 30 %
    assert set(sampler.active_indices(2)) == {9, 1, 3, 5, 7, 2}
    assert sampler.active_indices(5) == list(range(10))
    sampler.set_epoch(1)
    first, again = list(sampler), list(sampler)
    assert len(first) == 10 and first == again and set(first) == {1, 3, 9}


class _StopAfter(TrainerCallback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):
        if round(state.epoch) >= self.epochs:
            control.should_training_stop = True
        return control


def test_resume_restores_the_curriculum_and_reaches_the_same_weights(tiny_data, tmp_path):
    def run(output_dir, stop_after=None, resume=None):
        model = tiny_model()
        trainer = MercTrainer(
            model=model, args=make_args(output_dir), train_dataset=tiny_data["train"],
            calibration=CMERC(curriculum_ratio=0.34, curriculum_warmup_epochs=1),
        )  # fmt: skip
        if stop_after:
            trainer.add_callback(_StopAfter(stop_after))
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    uninterrupted = run(tmp_path / "a")
    interrupted = run(tmp_path / "b", stop_after=2)
    checkpoint = tmp_path / "b" / f"checkpoint-{interrupted.state.global_step}"
    assert (checkpoint / "curriculum.json").is_file()
    assert interrupted.curriculum.difficulties == uninterrupted.curriculum.difficulties
    resumed = run(tmp_path / "b", resume=str(checkpoint))
    assert resumed.curriculum.difficulties == uninterrupted.curriculum.difficulties
    for (name, a), (_, b) in zip(
        uninterrupted.model.state_dict().items(), resumed.model.state_dict().items()
    ):
        torch.testing.assert_close(a, b, msg=name)


class _RecordingMethod:
    """A calibration method using every optional trainer hook, recording the calls."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.prepared = 0

    def prepare_inputs(self, inputs):
        self.prepared += 1
        return inputs

    def training_loss(self, model, inputs, outputs):
        return outputs.loss * 0.0, {}

    def on_train_begin(self, model):
        self.events.append(("train_begin",))

    def on_epoch_begin(self, epoch):
        self.events.append(("epoch", epoch))

    def on_step_end(self, model):
        self.events.append(("step",))

    def on_train_end(self, model):
        self.events.append(("train_end",))


def test_method_hooks_receive_the_training_events(tiny_data, tmp_path):
    method = _RecordingMethod()
    trainer = MercTrainer(
        model=tiny_model(), args=make_args(tmp_path, num_train_epochs=2, save_strategy="no"),
        train_dataset=tiny_data["train"], calibration=method,
    )  # fmt: skip
    trainer.train()
    steps = trainer.state.global_step
    assert method.events[0] == ("train_begin",) and method.events[-1] == ("train_end",)
    assert [e[1] for e in method.events if e[0] == "epoch"] == [1, 2]
    assert sum(e == ("step",) for e in method.events) == steps
    assert method.prepared == steps  # every training batch, once
