"""``MercTrainer``: a ``transformers.Trainer`` whose ``compute_loss`` adds a calibration method's terms.

The backbone computes the task loss on the full input; when the model is training, the configured
calibration method (e.g. :class:`merc_hf.calibration.CMERC`) runs its removal views and adds its terms.
Evaluation calls the same ``compute_loss`` without the extra passes.

Conventions (see the transformers 5 notes in the developers' reference):
* ``loss_is_scaled_for_ga = False``: the loss is a per-batch quantity, divided by the gradient-accumulation
  steps by the Trainer;
* run every pass through the ``model`` argument (the DDP-wrapped module), never ``self.model``;
* train with ``ddp_find_unused_parameters=False`` (the no-grad view pass would otherwise break DDP);
* curricula are a sampler plus a callback, resumable through ``curriculum.json`` in each checkpoint.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import shutil
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import datasets
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import EvalPrediction

from ..calibration.cmerc import conversation_difficulty
from ..calibration.views import REMOVALS, removal_view_logits
from ..data.collate import DialogueCollator, PairCollator
from .curriculum import CurriculumSampler

DIFFICULTIES_FILE = "difficulties.json"

CALIBRATION_STATE = "calibration_state.safetensors"
logger = logging.getLogger(__name__)


class MercTrainer(Trainer):
    """Trainer for merc_hf emotion-recognition backbones, with an optional calibration method.

    Args:
        calibration: an object with ``training_loss(model, inputs, outputs) -> (loss, parts)`` (e.g.
            :class:`~merc_hf.calibration.CMERC`), or ``None`` for the plain backbone. Optional hooks, each
            used when the method has the attribute: ``curriculum_ratio`` (a :class:`CurriculumSampler`),
            ``needs_sample_index`` (a ``sample_index`` column is added to the training set and batched;
            the model never sees it), ``sam_rho`` (sharpness-aware steps, :meth:`training_step`),
            ``swa_start`` (weight averaging over the late epochs, applied when training ends) and
            ``state_dict``/``load_state_dict`` (saved in every checkpoint as
            ``calibration_state.safetensors`` and restored on resume), ``prepare_inputs(inputs) -> inputs``
            (rewrites a training batch before the forward pass, e.g. CMC's pseudo labels) and the callbacks
            ``on_train_begin(model)``, ``on_epoch_begin(epoch)`` (epochs counted from 1),
            ``on_step_end(model)`` (after each optimizer step) and ``on_train_end(model)`` (after the best
            checkpoint was loaded). Models whose output has ``loss_parts`` (CMC) have those logged too.
        skip_nonfinite_batches: training stops at the first micro-batch whose loss or gradient is NaN or
            infinite with a ``FloatingPointError`` naming the step and the batch's dialogue (or sample) ids,
            before the optimizer touches the weights. With ``True`` such a batch is skipped instead (its
            gradient is dropped, the gradients accumulated before it are kept) and counted in the logs as
            ``nonfinite_batches_skipped``. Either way no checkpoint or saved model with non-finite weights is
            ever written (:meth:`save_model` and checkpoints refuse them).
        difficulties: ``{dialogue_id: DF}`` for the curriculum (:mod:`merc_hf.training.curriculum`), e.g. from
            :func:`dialogue_difficulties` on a trained baseline or a file; every training dialogue needs one.
            Without them a curriculum method gets them from :meth:`warmup_difficulties` when training starts.
        With ``args.coupled_weight_decay`` (:class:`~merc_hf.training.MercTrainingArguments`) the optimizer
        is ``torch.optim.Adam`` with L2 on every parameter, as the M3Net/CMERC reference code.
        Everything else is passed to ``transformers.Trainer``. The data collator and ``compute_metrics``
        default to the model's task: :class:`~merc_hf.data.DialogueCollator` and :func:`emotion_metrics`
        for emotion recognition; for pair extraction (models with ``merc_task = "pairs"``),
        :class:`~merc_hf.data.PairCollator` and :func:`pair_metrics`, with evaluation batches padded to
        ``config.max_utterances`` so that pair matrices of all batches and ranks have one shape (the
        ``Trainer`` concatenates and gathers evaluation outputs along the batch dimension only); for
        utterance-level sentiment models (``merc_task = "sentiment"``, CMC),
        :class:`~merc_hf.data.UtteranceCollator` and :func:`sentiment_metrics` with the model's label convention.
    """

    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args: Any,
        calibration: Any = None,
        difficulties: Mapping[str, float] | None = None,
        skip_nonfinite_batches: bool = False,
        **kwargs: Any,
    ) -> None:
        model = kwargs.get("model", args[0] if args else None)
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if getattr(training_args, "coupled_weight_decay", False):
            kwargs.setdefault("optimizer_cls_and_kwargs", coupled_adam(training_args))
        self._eval_collator = None
        if getattr(model, "merc_task", "emotion") == "pairs":
            kwargs.setdefault("data_collator", PairCollator())
            kwargs.setdefault("compute_metrics", pair_metrics)
            kwargs.setdefault("preprocess_logits_for_metrics", _pair_scores)
            self._eval_collator = PairCollator(pad_to=model.config.max_utterances)
        elif getattr(model, "merc_task", "emotion") == "sentiment":
            from ..data.collate import UtteranceCollator

            kwargs.setdefault("data_collator", UtteranceCollator())
            kwargs.setdefault("compute_metrics", partial(sentiment_metrics, convention=model.config.polarity))
            kwargs.setdefault("preprocess_logits_for_metrics", _logits_only)
        else:
            kwargs.setdefault("data_collator", DialogueCollator())
            kwargs.setdefault("compute_metrics", emotion_metrics)
            kwargs.setdefault("preprocess_logits_for_metrics", _logits_only)
        if getattr(calibration, "needs_sample_index", False) and kwargs.get("train_dataset") is not None:
            train = kwargs["train_dataset"]
            kwargs["train_dataset"] = train.add_column("sample_index", list(range(len(train))))
        super().__init__(*args, **kwargs)
        self.calibration = calibration
        self.skip_nonfinite_batches = skip_nonfinite_batches
        self._nonfinite_skipped = 0
        self._loss_parts: dict[str, list[float]] = defaultdict(list)
        self.curriculum: CurriculumSampler | None = None
        ratio = getattr(calibration, "curriculum_ratio", None)
        if ratio is not None and self.train_dataset is not None:
            if self.args.gradient_accumulation_steps != 1:
                raise ValueError(
                    "the baby-step curriculum has epochs of different lengths and needs "
                    "gradient_accumulation_steps=1 (use more devices or a larger batch instead)"
                )
            self.curriculum = CurriculumSampler(
                len(self.train_dataset),
                ratio=ratio,
                epochs_per_stage=calibration.epochs_per_stage,
                seed=self.args.seed,
            )
            if difficulties is not None:
                self.curriculum.set_difficulties(self._training_order(difficulties))
            self.add_callback(_CurriculumCallback())
        if getattr(calibration, "swa_start", None) is not None:
            self.add_callback(_WeightAveragingCallback(self))
        if any(hasattr(calibration, hook) for hook in _MethodHooksCallback.HOOKS):
            self.add_callback(_MethodHooksCallback(self))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training and hasattr(self.calibration, "prepare_inputs"):
            inputs = self.calibration.prepare_inputs(inputs)
        outputs = model(**{k: v for k, v in inputs.items() if k != "sample_index"})
        loss = outputs.loss
        if model.training:
            for name, value in (getattr(outputs, "loss_parts", None) or {}).items():
                self._loss_parts[name].append(value)
        if model.training and self.calibration is not None:
            extra, parts = self.calibration.training_loss(model, inputs, outputs)
            loss = loss + extra
            for name, value in parts.items():
                self._loss_parts[name].append(value)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        """:meth:`_gradient_step` on one micro-batch, then the check that its loss and the gradients are
        finite (see ``skip_nonfinite_batches``)."""
        params = [p for p in model.parameters() if p.requires_grad]
        earlier = _set_aside_gradients(params) if self.skip_nonfinite_batches else None
        parts_before = {k: len(v) for k, v in self._loss_parts.items()}
        loss = self._gradient_step(model, inputs, num_items_in_batch)
        problem = _nonfinite_problem(loss, params)
        if problem is not None and not self.skip_nonfinite_batches:
            raise FloatingPointError(
                f"{problem} at training step {self.state.global_step + 1} (epoch {int(self.state.epoch or 0) + 1}) "
                f"on the batch of {self._batch_ids(inputs)}; the weights were not updated. Check these inputs, "
                "or pass skip_nonfinite_batches=True to MercTrainer to skip such batches"
            )
        if problem is not None:
            self._nonfinite_skipped += 1
            for name in list(self._loss_parts):  # the skipped batch's parts are not logged
                del self._loss_parts[name][parts_before.get(name, 0) :]
        if earlier is not None:
            _restore_gradients(params, earlier, keep_new=problem is None)
        return loss

    def _gradient_step(self, model, inputs, num_items_in_batch=None):
        """A plain step, or a sharpness-aware one (SAM) when the calibration method has ``sam_rho > 0``:
        the gradient is taken at ``w + ε`` with ``ε = ρ g/‖g‖`` from a first pass at ``w``, then applied
        at ``w``. Gradients already accumulated by earlier micro-batches are kept aside meanwhile."""
        rho = getattr(self.calibration, "sam_rho", 0.0)
        if not rho:
            return super().training_step(model, inputs, num_items_in_batch)
        from ..calibration.fmfp import sam_perturbation

        params = [p for p in model.parameters() if p.requires_grad]
        accumulated = [p.grad for p in params]
        for p in params:
            p.grad = None
        loss = super().training_step(model, inputs, num_items_in_batch)
        epsilon = sam_perturbation([p.grad for p in params], rho)
        with torch.no_grad():
            for p, e in zip(params, epsilon):
                if e is not None:
                    p.add_(e)
                p.grad = None
        super().training_step(model, inputs, num_items_in_batch)
        with torch.no_grad():
            for p, e, previous in zip(params, epsilon, accumulated):
                if e is not None:
                    p.sub_(e)
                if previous is not None:
                    p.grad = previous if p.grad is None else p.grad + previous
        return loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and self._loss_parts:
            logs.update({f"loss_{k}": round(float(np.mean(v)), 6) for k, v in self._loss_parts.items() if v})
            self._loss_parts.clear()
        if "loss" in logs and self.skip_nonfinite_batches:
            logs["nonfinite_batches_skipped"] = self._nonfinite_skipped
        super().log(logs, *args, **kwargs)

    def _get_dataloader(self, *args: Any, is_training: bool = False, **kwargs: Any):
        if is_training and isinstance(kwargs.get("dataset"), datasets.Dataset):
            # each training batch carries its rows' positions, so a failing batch can be named
            train = kwargs["dataset"]
            if "sample_index" not in train.column_names:
                kwargs["dataset"] = train.add_column("sample_index", list(range(len(train))))
        if self._eval_collator is None or is_training:
            return super()._get_dataloader(*args, is_training=is_training, **kwargs)
        train_collator, self.data_collator = self.data_collator, self._eval_collator
        try:
            return super()._get_dataloader(*args, is_training=is_training, **kwargs)
        finally:
            self.data_collator = train_collator

    def _remove_unused_columns(self, dataset, description=None):
        # the merc_hf collators read the columns they need (``emotions``, ``pairs``, ...) and build the
        # model's inputs themselves, so ``remove_unused_columns`` must not drop them before collation
        return dataset

    def _get_collator_with_removed_columns(self, data_collator, description=None):
        return data_collator

    def _get_train_sampler(self, train_dataset=None):
        if self.curriculum is not None:
            return self.curriculum
        return super()._get_train_sampler(train_dataset)

    def _batch_ids(self, inputs: Mapping[str, Any]) -> list[str] | str:
        """The dialogue (conversation, sample) ids of a training batch, from its ``sample_index``."""
        index = inputs.get("sample_index")
        train = self.train_dataset
        names = getattr(train, "column_names", None) or []
        column = next((c for c in ("dialogue_id", "conversation_id", "sample_id") if c in names), None)
        if index is None or column is None:
            return "a batch without ids"
        return [str(i) for i in train.select_columns([column])[index.tolist()][column]]

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        _refuse_nonfinite_weights(self.model, output_dir or self.args.output_dir)
        super().save_model(output_dir, _internal_call)

    def _save_checkpoint(self, model, trial):
        _refuse_nonfinite_weights(model, f"checkpoint-{self.state.global_step}")
        super()._save_checkpoint(model, trial)
        if not self.args.should_save:
            return
        folder = os.path.join(self._get_output_dir(trial), f"checkpoint-{self.state.global_step}")
        if self.curriculum is not None and self.curriculum.difficulties is not None:
            self.curriculum.save(folder)
        if hasattr(self.calibration, "state_dict"):
            state = {k: v.contiguous() for k, v in self.calibration.state_dict().items()}
            save_file(state, os.path.join(folder, CALIBRATION_STATE))

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        folder = resume_from_checkpoint
        if folder is True:
            from transformers.trainer_utils import get_last_checkpoint

            folder = get_last_checkpoint(self.args.output_dir)
        if folder:
            from ..hub import check_checkpoint

            check_checkpoint(folder)  # a broken file is named, with the checkpoint to resume from instead
            if self.curriculum is not None:
                self.curriculum.load(folder)
            state_file = os.path.join(folder, CALIBRATION_STATE)
            if hasattr(self.calibration, "load_state_dict") and os.path.isfile(state_file):
                self.calibration.load_state_dict(load_file(state_file))
        if self.curriculum is not None and self.curriculum.difficulties is None:
            self.curriculum.set_difficulties(self._training_order(self.warmup_difficulties()))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _training_order(self, difficulties: Mapping[str, float]) -> list[float]:
        """``{dialogue_id: DF}`` as a list aligned with the training set; every training dialogue needs one."""
        ids = [str(i) for i in self.train_dataset["dialogue_id"]]
        table = {str(k): v for k, v in difficulties.items()}
        missing = [i for i in ids if i not in table]
        if missing:
            raise ValueError(
                f"no difficulty for {len(missing)} of {len(ids)} training dialogues (e.g. {missing[:3]}); "
                f"the difficulties cover {len(table)} dialogues (e.g. {list(table)[:3]})"
            )
        return [float(table[i]) for i in ids]

    def warmup_difficulties(self) -> dict[str, float]:
        """Difficulties of the training dialogues from a converged plain backbone, when none were given.

        The reference measures DF offline with a fully trained M3Net. Here a copy of the model (its initial
        weights) is trained without the calibration method, with this trainer's arguments, until the
        validation weighted F1 has not improved for ``calibration.difficulty_patience`` epochs (at most
        ``num_train_epochs``); its best epoch's weights score every training dialogue
        (:func:`dialogue_difficulties`), the result is written to ``<output_dir>/difficulties.json`` (pass it
        as ``difficulties`` to skip this step next time), and the random state is restored so that the
        calibrated run starts exactly as it would with precomputed difficulties.
        """
        from dataclasses import replace

        from transformers import EarlyStoppingCallback

        if self.eval_dataset is None:
            raise ValueError("the curriculum needs difficulties= or an eval_dataset to train a baseline on")
        patience = getattr(self.calibration, "difficulty_patience", 5)
        logger.info(
            "no curriculum difficulties given: training the plain backbone until the validation weighted F1 "
            f"stops improving (patience {patience}) to measure them"
        )
        args = replace(
            self.args,
            output_dir=os.path.join(self.args.output_dir, "difficulty_warmup"),
            eval_strategy="epoch",
            save_strategy="epoch",
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model="weighted_f1",
            greater_is_better=True,
        )
        rng = _rng_state()
        baseline = MercTrainer(
            model=copy.deepcopy(self.model),
            args=args,
            train_dataset=self.train_dataset,
            eval_dataset=self.eval_dataset,
            data_collator=self.data_collator,
            callbacks=[EarlyStoppingCallback(patience)],
        )
        baseline.train()
        difficulties = self.measure_difficulties(baseline.model)
        _set_rng_state(rng)
        shutil.rmtree(args.output_dir, ignore_errors=True)
        if self.args.should_save:
            os.makedirs(self.args.output_dir, exist_ok=True)
            with open(os.path.join(self.args.output_dir, DIFFICULTIES_FILE), "w") as fh:
                json.dump(difficulties, fh, indent=1)
        return difficulties

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume, trial):
        """As the Trainer's, but on resume the (epoch, step) of a global step follows the curriculum's
        epochs of different lengths."""
        epochs, steps = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume, trial
        )
        if self.curriculum is not None and resume is not None:
            epochs, steps = self.curriculum.batches_before(
                self.state.global_step, self._train_batch_size, self.args.world_size
            )
        return epochs, steps

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """The learning-rate schedule spans the optimizer steps the curriculum actually takes."""
        if self.curriculum is not None and self.args.max_steps <= 0:
            num_training_steps = self.curriculum.total_batches(
                math.ceil(self.args.num_train_epochs), self._train_batch_size, self.args.world_size
            )
        return super().create_scheduler(num_training_steps, optimizer)

    def get_decay_parameter_names(self, model: torch.nn.Module) -> list[str]:
        if getattr(self.args, "coupled_weight_decay", False):  # the reference decays every parameter
            return [name for name, _ in model.named_parameters()]
        return super().get_decay_parameter_names(model)

    def measure_difficulties(self, model: torch.nn.Module | None = None) -> dict[str, float]:
        """DF of every training dialogue under ``model`` (default: the current one)."""
        return dialogue_difficulties(
            model if model is not None else self.model,
            self.train_dataset,
            self.data_collator,
            removals=getattr(self.calibration, "removals", REMOVALS),
            view_mode=getattr(self.calibration, "view_mode", "exact"),
        )


@torch.no_grad()
def dialogue_difficulties(
    model: torch.nn.Module,
    dataset,
    collator=None,
    removals: Sequence[str] = REMOVALS,
    view_mode: str = "reference",
) -> dict[str, float]:
    """``{dialogue_id: DF}`` (:func:`merc_hf.calibration.cmerc.conversation_difficulty`) of every dialogue of
    ``dataset`` under ``model`` in eval mode, one dialogue per pass as the reference's ``cal_diff.py`` (so
    the ``"reference"`` views' padded mean is the dialogue's own mean). The dataset needs ``labels``."""
    collator = collator or DialogueCollator()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = [str(i) for i in dataset["dialogue_id"]]
    scores: dict[str, float] = {}
    try:
        for index, dialogue_id in enumerate(ids):
            batch = {k: v.to(device) for k, v in collator([dataset[index]]).items()}
            full = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            views = removal_view_logits(model, batch, removals, view_mode=view_mode)
            difficulty = conversation_difficulty(
                full, views, batch["labels"], batch["speakers"], batch["utterance_mask"]
            )
            scores[dialogue_id] = float(difficulty[0])
    finally:
        model.train(was_training)
    return scores


def coupled_adam(args) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """``torch.optim.Adam`` with the arguments' learning rate and betas; the Trainer passes
    ``args.weight_decay`` as Adam's (coupled) L2 term."""
    return torch.optim.Adam, {
        "lr": args.learning_rate,
        "betas": (args.adam_beta1, args.adam_beta2),
        "eps": args.adam_epsilon,
    }


def _rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.random.get_rng_state(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["torch"])


class _CurriculumCallback(TrainerCallback):
    """Ends every epoch at a whole epoch count: a curriculum epoch shorter than the training set would
    otherwise leave ``state.epoch`` at a fraction, and epoch-based hooks would count it wrong."""

    def on_epoch_end(self, args, state, control, **kwargs):
        state.epoch = float(math.ceil(state.epoch - 1e-9))
        return control


class _WeightAveragingCallback(TrainerCallback):
    """SWA: averages the weights at the end of each epoch from ``swa_start`` (a fraction of the epochs) on,
    and puts the average into the model when training ends (after the best checkpoint was loaded)."""

    def __init__(self, trainer: MercTrainer) -> None:
        self.trainer = trainer

    def on_epoch_end(self, args, state, control, **kwargs):
        method = self.trainer.calibration
        if round(state.epoch or 0) > method.swa_start * args.num_train_epochs:
            method.update_average(self.trainer.model)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer.calibration.apply_average(self.trainer.model)
        return control


class _MethodHooksCallback(TrainerCallback):
    """Forwards the training events a calibration method asks for (``on_train_begin(model)``,
    ``on_epoch_begin(epoch)`` with epochs counted from 1, ``on_step_end(model)``, ``on_train_end(model)``) to
    the method."""

    HOOKS = ("on_train_begin", "on_epoch_begin", "on_step_end", "on_train_end")

    def __init__(self, trainer: MercTrainer) -> None:
        self.trainer = trainer

    def _call(self, hook: str, *arguments: Any) -> None:
        method = getattr(self.trainer.calibration, hook, None)
        if method is not None:
            method(*arguments)

    def on_train_begin(self, args, state, control, **kwargs):
        self._call("on_train_begin", self.trainer.model)
        return control

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._call("on_epoch_begin", int(state.epoch or 0) + 1)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        self._call("on_step_end", self.trainer.model)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self._call("on_train_end", self.trainer.model)
        return control


def _set_aside_gradients(params: Sequence[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    """Take the gradients accumulated so far off ``params`` (so the next backward writes only its own)."""
    earlier = [p.grad for p in params]
    for p in params:
        p.grad = None
    return earlier


def _restore_gradients(
    params: Sequence[torch.nn.Parameter], earlier: Sequence[torch.Tensor | None], *, keep_new: bool
) -> None:
    """Put the set-aside gradients back, plus the new ones when ``keep_new``."""
    for p, previous in zip(params, earlier):
        if not keep_new or p.grad is None:
            p.grad = previous
        elif previous is not None:
            p.grad = p.grad + previous


def _nonfinite_problem(loss: torch.Tensor, params: Sequence[torch.nn.Parameter]) -> str | None:
    """``"non-finite loss (nan)"`` / ``"non-finite gradient"`` when the step produced one, else ``None``.

    One fused norm over all gradients: NaN or inf anywhere makes it non-finite (so does a norm beyond
    float range, which no optimizer step survives either)."""
    if not torch.isfinite(loss).all():
        return f"non-finite loss ({float(loss.detach().float().sum())})"
    grads = [p.grad for p in params if p.grad is not None]
    if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
        return "non-finite gradient"
    return None


def _refuse_nonfinite_weights(model: torch.nn.Module, where: str) -> None:
    """Raise ``FloatingPointError`` before a model with NaN/inf weights is saved at ``where``."""
    bad = [
        name
        for name, t in model.state_dict().items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:
        raise FloatingPointError(
            f"refusing to save {where}: {len(bad)} tensors hold NaN or inf (e.g. {bad[:3]}); nothing was written"
        )


def _logits_only(logits: Any, labels: torch.Tensor) -> torch.Tensor:
    return logits[0] if isinstance(logits, (tuple, list)) else logits


def emotion_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Weighted F1, accuracy and ECE over the real (labelled) utterances of an evaluation split."""
    from ..metrics import calibration_errors, classification_scores

    logits = (
        prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    )
    labels = prediction.label_ids
    keep = labels != -100
    logits = torch.as_tensor(logits[keep], dtype=torch.float32)
    probs = torch.softmax(logits, dim=-1).numpy()
    refs = labels[keep]
    scores = classification_scores(
        probs.argmax(-1), refs, label_names=[str(i) for i in range(probs.shape[1])]
    )
    calib = calibration_errors(probs, refs)
    return {
        "weighted_f1": float(scores["weighted_f1"]),
        "accuracy": float(scores["accuracy"]),
        "ece": float(calib["ece"]),
    }


def _pair_scores(outputs: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep what :func:`pair_metrics` needs: pair probabilities (-1 outside the candidate space) and the
    predicted emotions. ``outputs`` is the model output tuple without the loss."""
    _, _, pair_logits, candidates = outputs[:4]
    probs = torch.sigmoid(pair_logits.float()).masked_fill(~candidates.bool(), -1.0)
    return probs, outputs[0].argmax(-1)


def pair_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Best-threshold Pair-F1 (and that threshold) and Pair-AUPRC of an evaluation split, from the
    outputs of :func:`_pair_scores`."""
    from ..inference import candidate_scores, matrix_pairs
    from ..metrics import best_pair_threshold, pair_auprc

    probs = prediction.predictions[0]
    pair_labels = prediction.label_ids[-1]
    scores, gold = {}, {}
    for n in range(probs.shape[0]):
        scores[n] = candidate_scores(probs[n], probs[n] >= 0)
        gold[n] = matrix_pairs(pair_labels[n])
    best = best_pair_threshold(scores, gold)
    return {
        "pair_f1": best["f1"],
        "pair_threshold": best["threshold"],
        "pair_auprc": pair_auprc(scores, gold),
    }


def sentiment_metrics(prediction: EvalPrediction, convention: str = "sims") -> dict[str, float]:
    """3-class accuracy and weighted F1, Has0 Acc-2 (``convention``: ``"sims"`` or ``"mosi"``, see
    :mod:`merc_hf.metrics.sentiment`), ECE and the NLL of the fused prediction (what CMC selects on) of an
    evaluation split of an utterance-level sentiment model.
    ``label_ids`` are ``(labels, ...)`` in the model's ``forward`` order; only the multimodal labels are used."""
    from ..metrics import calibration_errors, sentiment_classification_scores

    logits = (
        prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    )
    labels = prediction.label_ids[0] if isinstance(prediction.label_ids, tuple) else prediction.label_ids
    log_probs = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)
    nll = torch.nn.functional.nll_loss(log_probs, torch.as_tensor(labels, dtype=torch.long))
    probs = log_probs.exp().numpy()
    scores = sentiment_classification_scores(probs, labels, convention=convention)
    return {
        "accuracy": float(scores["acc_3"]),
        "weighted_f1": float(scores["f1_3"]),
        "has0_acc_2": float(scores["has0_acc_2"]),
        "ece": float(calibration_errors(probs, labels)["ece"]),
        "nll": float(nll),
    }
