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

import os
from collections import defaultdict
from functools import partial
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import EvalPrediction

from ..calibration.cmerc import confidence_boosts, conversation_difficulty
from ..calibration.views import removal_view_logits
from ..data.collate import DialogueCollator, PairCollator
from .curriculum import CurriculumSampler

CALIBRATION_STATE = "calibration_state.safetensors"


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

    def __init__(self, *args: Any, calibration: Any = None, **kwargs: Any) -> None:
        model = kwargs.get("model", args[0] if args else None)
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
        self._loss_parts: dict[str, list[float]] = defaultdict(list)
        self.curriculum: CurriculumSampler | None = None
        ratio = getattr(calibration, "curriculum_ratio", None)
        if ratio is not None and self.train_dataset is not None:
            self.curriculum = CurriculumSampler(
                len(self.train_dataset),
                ratio=ratio,
                epochs_per_stage=calibration.epochs_per_stage,
                warmup_epochs=calibration.curriculum_warmup_epochs,
                seed=self.args.seed,
            )
            self.add_callback(_CurriculumCallback(self))
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
            logs.update({f"loss_{k}": round(float(np.mean(v)), 6) for k, v in self._loss_parts.items()})
            self._loss_parts.clear()
        super().log(logs, *args, **kwargs)

    def _get_dataloader(self, *args: Any, is_training: bool = False, **kwargs: Any):
        if self._eval_collator is None or is_training:
            return super()._get_dataloader(*args, is_training=is_training, **kwargs)
        train_collator, self.data_collator = self.data_collator, self._eval_collator
        try:
            return super()._get_dataloader(*args, is_training=is_training, **kwargs)
        finally:
            self.data_collator = train_collator

    def _get_train_sampler(self, train_dataset=None):
        if self.curriculum is not None:
            return self.curriculum
        return super()._get_train_sampler(train_dataset)

    def _save_checkpoint(self, model, trial):
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
            if self.curriculum is not None:
                self.curriculum.load(folder)
            state_file = os.path.join(folder, CALIBRATION_STATE)
            if hasattr(self.calibration, "load_state_dict") and os.path.isfile(state_file):
                self.calibration.load_state_dict(load_file(state_file))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    @torch.no_grad()
    def measure_difficulties(self, model: torch.nn.Module | None = None) -> list[float]:
        """DF of every training dialogue under ``model`` (default: the current one), in dataset order."""
        model = model if model is not None else self.model
        loader = DataLoader(
            self.train_dataset,
            batch_size=self.args.per_device_eval_batch_size,
            collate_fn=self.data_collator,
            shuffle=False,
        )
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        scores: list[float] = []
        try:
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                full = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
                views = removal_view_logits(model, batch, self.calibration.removals)
                boosts = confidence_boosts(full, views, batch["labels"])
                scores.extend(
                    conversation_difficulty(boosts, batch["speakers"], batch["utterance_mask"]).tolist()
                )
        finally:
            model.train(was_training)
        return scores


class _CurriculumCallback(TrainerCallback):
    """Scores the training dialogues once, when the warm-up ends, unless a checkpoint already did."""

    def __init__(self, trainer: MercTrainer) -> None:
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        sampler = self.trainer.curriculum
        if sampler.difficulties is None and round(state.epoch or 0) >= sampler.warmup_epochs:
            sampler.set_difficulties(self.trainer.measure_difficulties())
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
