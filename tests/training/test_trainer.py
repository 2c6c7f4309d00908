"""MercTrainer: calibration terms only while training, GA scaling, curriculum, checkpoint/resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import TrainerCallback, TrainingArguments

import merc_hf
from merc_hf.calibration import CMERC, REMOVALS, applicable_removals, conversation_difficulty, stack_views
from merc_hf.data import DialogueCollator
from merc_hf.models.m3net.configuration_m3net import M3NetConfig
from merc_hf.models.m3net.modeling_m3net import M3NetModel
from merc_hf.training import CurriculumSampler, MercTrainer, MercTrainingArguments, dialogue_difficulties


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


DIFFICULTIES = [
    0.9,
    0.1,
    0.5,
    0.2,
    0.8,
    0.3,
    0.7,
    0.4,
    0.6,
    0.0,
]  # easiest first: 9, 1, 3, 5, 7, 2, 8, 6, 4, 0


def test_curriculum_sampler_takes_baby_steps():
    """Epoch e holds the easiest ⌈min(1, ratio·(⌊e/steps⌋ + 1))·n⌉ dialogues, each exactly once."""
    sampler = CurriculumSampler(10, ratio=0.3, epochs_per_stage=1, seed=0)
    with pytest.raises(RuntimeError, match="difficulties"):
        list(sampler)
    sampler.set_difficulties(DIFFICULTIES)
    expected = {0: {9, 1, 3}, 1: {9, 1, 3, 5, 7, 2}, 2: {9, 1, 3, 5, 7, 2, 8, 6, 4}, 3: set(range(10))}
    for epoch, subset in expected.items():
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert len(order) == len(subset) and set(order) == subset  # once each, no filling
        assert list(sampler) == order  # a pure function of (seed, epoch)
    sampler.set_epoch(7)
    assert sorted(sampler) == list(range(10))
    slow = CurriculumSampler(10, ratio=0.3, epochs_per_stage=2, seed=0)
    slow.set_difficulties(DIFFICULTIES)
    assert [slow.active_size(e) for e in range(6)] == [3, 3, 6, 6, 9, 9]


def test_curriculum_sampler_maps_global_steps_to_epochs():
    sampler = CurriculumSampler(10, ratio=0.3, seed=0)  # epochs of 3, 6, 9, 10, 10, ... dialogues
    assert [sampler.batches_in_epoch(e, 2) for e in range(5)] == [2, 3, 5, 5, 5]
    assert [sampler.batches_before(g, 2) for g in (0, 1, 2, 4, 5, 10, 11)] == [
        (0, 0), (0, 1), (1, 0), (1, 2), (2, 0), (3, 0), (3, 1),
    ]  # fmt: skip
    assert sampler.total_batches(4, 2) == 15
    assert [sampler.batches_in_epoch(e, 2, world_size=2) for e in range(3)] == [1, 2, 3]


class _StopAfter(TrainerCallback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):
        if round(state.epoch) >= self.epochs:
            control.should_training_stop = True
        return control


def _difficulties(dataset) -> dict[str, float]:
    return {str(d): (7 * k % 11) / 11 for k, d in enumerate(dataset["dialogue_id"])}


class _StopAtStep(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step >= self.step
        return control


def _cmerc_run(data, output_dir, *, stop_after=None, resume=None, difficulties=None, **overrides):
    trainer = MercTrainer(
        model=tiny_model(), args=make_args(output_dir, **overrides), train_dataset=data["train"],
        eval_dataset=data["validation"], calibration=CMERC(curriculum_ratio=0.34, difficulty_patience=1),
        difficulties=difficulties,
    )  # fmt: skip
    if stop_after:
        trainer.add_callback(
            stop_after if isinstance(stop_after, TrainerCallback) else _StopAfter(stop_after)
        )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, msg=name, rtol=0, atol=0)


def test_curriculum_epochs_hold_the_active_subset_once(tiny_data, tmp_path):
    difficulties = _difficulties(tiny_data["train"])
    trainer = _cmerc_run(tiny_data, tmp_path, difficulties=difficulties, save_strategy="no")
    n = len(tiny_data["train"])
    sizes = [trainer.curriculum.active_size(e) for e in range(3)]
    assert sizes == [math.ceil(min(1, 0.34 * (e + 1)) * n - 1e-9) for e in range(3)] and sizes[0] < n
    assert trainer.state.global_step == sum(math.ceil(k / 4) for k in sizes)  # batch size 4
    assert trainer.state.epoch == 3


def test_resume_mid_epoch_reaches_the_same_weights(tiny_data, tmp_path):
    """Interrupted in the middle of a short curriculum epoch, the resumed run replays the schedule and the
    epoch's reference-view snapshot (saved in the checkpoint): bit-identical final weights."""
    difficulties = _difficulties(tiny_data["train"])
    uninterrupted = _cmerc_run(tiny_data, tmp_path / "a", difficulties=difficulties, save_strategy="no")
    first_epoch = uninterrupted.curriculum.batches_in_epoch(0, 4)
    mid = first_epoch + 1  # one step into the second epoch
    assert mid < first_epoch + uninterrupted.curriculum.batches_in_epoch(1, 4)
    _cmerc_run(tiny_data, tmp_path / "b", difficulties=difficulties, save_strategy="steps", save_steps=mid,
               stop_after=_StopAtStep(mid))  # fmt: skip
    checkpoint = tmp_path / "b" / f"checkpoint-{mid}"
    assert (checkpoint / "curriculum.json").is_file() and (
        checkpoint / "calibration_state.safetensors"
    ).is_file()
    resumed = _cmerc_run(tiny_data, tmp_path / "b", resume=str(checkpoint), save_strategy="no")
    assert resumed.curriculum.difficulties == uninterrupted.curriculum.difficulties
    _assert_same_weights(uninterrupted.model, resumed.model)


def test_resume_at_an_epoch_boundary_reaches_the_same_weights(tiny_data, tmp_path):
    difficulties = _difficulties(tiny_data["train"])
    uninterrupted = _cmerc_run(tiny_data, tmp_path / "a", difficulties=difficulties)
    interrupted = _cmerc_run(tiny_data, tmp_path / "b", difficulties=difficulties, stop_after=2)
    checkpoint = tmp_path / "b" / f"checkpoint-{interrupted.state.global_step}"
    resumed = _cmerc_run(tiny_data, tmp_path / "b", resume=str(checkpoint))
    _assert_same_weights(uninterrupted.model, resumed.model)


def test_without_difficulties_a_converged_baseline_measures_them(tiny_data, tmp_path):
    """The warm-up trains the plain backbone with early stopping, writes difficulties.json (one DF per
    training dialogue, as dialogue_difficulties on its best weights) and restores the random state: the
    calibrated run then equals a run given that file."""
    warm = _cmerc_run(tiny_data, tmp_path / "warm", save_strategy="no", eval_strategy="epoch")
    written = json.loads((tmp_path / "warm" / "difficulties.json").read_text())
    assert sorted(written) == sorted(str(d) for d in tiny_data["train"]["dialogue_id"])
    assert all(v >= 0 for v in written.values()) and len(set(written.values())) > 1
    assert not (tmp_path / "warm" / "difficulty_warmup").exists()
    given = _cmerc_run(tiny_data, tmp_path / "given", difficulties=written, save_strategy="no",
                       eval_strategy="epoch")  # fmt: skip
    _assert_same_weights(warm.model, given.model)


def test_difficulties_must_cover_every_training_dialogue(tiny_data, tmp_path):
    partial = dict(list(_difficulties(tiny_data["train"]).items())[1:])
    with pytest.raises(ValueError, match="no difficulty for 1 of"):
        _cmerc_run(tiny_data, tmp_path, difficulties=partial)


def test_dialogue_difficulties_score_one_dialogue_at_a_time(tiny_data):
    """Scoring dialogue by dialogue equals the formula on each one's own full and view logits."""
    model = tiny_model().eval()
    dataset = tiny_data["train"].select(range(3))
    scores = dialogue_difficulties(model, dataset, view_mode="exact")
    for row in dataset:
        batch = DialogueCollator()([row])
        with torch.no_grad():
            full = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            views = {
                r: model(**stack_views(batch, [r])).logits
                for r in applicable_removals(batch, REMOVALS, model)
            }
        expected = conversation_difficulty(
            full, views, batch["labels"], batch["speakers"], batch["utterance_mask"]
        )
        assert scores[str(row["dialogue_id"])] == pytest.approx(float(expected[0]), rel=1e-6)


def test_curriculum_refuses_gradient_accumulation(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="gradient_accumulation_steps=1"):
        _cmerc_run(tiny_data, tmp_path, gradient_accumulation_steps=2)


def test_coupled_weight_decay_is_adam_with_l2_on_every_parameter(tiny_data, tmp_path):
    """One optimizer step equals torch.optim.Adam(model.parameters(), lr, weight_decay=l2), as the reference."""
    args = MercTrainingArguments(
        **{**make_args(tmp_path).to_dict(), "coupled_weight_decay": True, "weight_decay": 0.1,
           "lr_scheduler_type": "constant"}
    )  # fmt: skip
    model, reference = tiny_model(), tiny_model()
    trainer = MercTrainer(model=model, args=args, train_dataset=tiny_data["train"])
    optimizer = trainer.create_optimizer()
    assert type(optimizer) is torch.optim.Adam
    assert sum(len(g["params"]) for g in optimizer.param_groups if g["weight_decay"] == 0.1) == len(
        list(model.parameters())
    )
    by_hand = torch.optim.Adam(reference.parameters(), lr=args.learning_rate, weight_decay=0.1)
    batch = DialogueCollator()([tiny_data["train"][i] for i in range(4)])
    for net, opt in ((model, optimizer), (reference, by_hand)):
        net.train()
        net(**batch).loss.backward()
        opt.step()
    _assert_same_weights(model, reference)


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
