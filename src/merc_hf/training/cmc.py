"""CMC's two-stage training (reference notes §3.5) with :class:`~merc_hf.training.MercTrainer`.

Stage 1, unimodal pre-training: each modality's encoder and head learn from its own targets, with a
supervised contrastive term over the unimodal embeddings (``config.stage = "unimodal"``). The targets are

* ``"pseudo"`` (CMC): pseudo labels from the pseudo-label generation module
  (:class:`~merc_hf.calibration.PseudoLabelGeneration`), initialised from the multimodal label and moved by
  the students' predictions; the models kept for stage 2 are the EMA teachers;
* ``"gold"`` (CMC-GT): the dataset's unimodal labels (CH-SIMS and CH-SIMS v2 have them).

Stage 2, multimodal fine-tuning: the stage-1 encoders and heads inside the parameter-free fusion and the
consensus router (``config.stage = "multimodal"``), trained with CE on the fused prediction and on each
modality's prediction (against the stage-1 pseudo labels, or the gold unimodal labels) plus the contrastive
term. Both stages select their checkpoint (and stop early) on the validation NLL of the fused prediction
(:func:`selection_arguments`), so model selection uses no unimodal annotation.

The stage-1 pseudo labels are written next to the stage-1 model (``stage1/pseudo_labels.json``, keyed by
sample id) and stage 2 can be re-run from that folder alone (``stage1=`` argument), so stage 2 is
reproducible without repeating stage 1.

Deviations from the reference: stage 1 keeps the EMA teachers of the last epoch instead of selecting each
modality's model by its own lowest validation loss (the reference's per-modality early stopping); selection
on the fused validation NLL rather than the whole validation loss (:func:`selection_arguments`).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import DatasetDict
from transformers import EarlyStoppingCallback, TrainingArguments

from ..data.collate import UtteranceCollator
from .trainer import MercTrainer

VARIANTS = ("pseudo", "gold")
UNIMODAL_KEYS = ("label_text", "label_audio", "label_visual")
PSEUDO_KEYS = ("pseudo_label_text", "pseudo_label_audio", "pseudo_label_visual")
PSEUDO_LABELS_FILE = "pseudo_labels.json"


def selection_arguments(args: TrainingArguments, **changes: Any) -> TrainingArguments:
    """``args`` (with ``changes``) selecting and early-stopping on the validation NLL of the fused prediction.

    The reference selects on its whole validation loss. Here the unimodal terms of that loss would be
    measured against the multimodal label (validation clips have no pseudo labels), which penalises exactly
    the disagreement the pseudo labels teach: measured on chsims-like, it stopped CMC's stage 2 after two
    epochs. The fused NLL is the task's own loss and is the same for every variant."""
    return replace(args, metric_for_best_model="nll", greater_is_better=False, **changes)


def train_cmc(
    config: Any,
    dsd: DatasetDict,
    args: TrainingArguments,
    *,
    variant: str = "pseudo",
    stage1_epochs: float | None = None,
    early_stopping_patience: int | None = None,
    pseudo_label_options: dict[str, Any] | None = None,
    stage1: str | os.PathLike | None = None,
) -> tuple[MercTrainer, dict[str, Any]]:
    """Train a CMC model in two stages; return the stage-2 trainer (best validation checkpoint loaded) and a
    summary (``stage1_dir``, pseudo-label statistics, training losses).

    Args:
        config: a :class:`~merc_hf.models.cmc.CMCConfig` (its ``stage`` is set per stage here).
        dsd: ``train``/``validation``/``test`` utterance-level splits (``merc_hf.load_dataset("chsims", ...)``).
        args: ``TrainingArguments`` of stage 2; stage 1 reuses them in ``<output_dir>/stage1``.
        variant: ``"pseudo"`` (CMC) or ``"gold"`` (CMC-GT, needs ``label_text/audio/visual`` columns).
        stage1_epochs: epochs of stage 1 (default: those of ``args``).
        early_stopping_patience: stop a stage after this many evaluations without a lower validation loss
            (the reference uses 10); ``None`` trains every epoch.
        pseudo_label_options: keyword arguments of :class:`~merc_hf.calibration.PseudoLabelGeneration`.
        stage1: a finished stage-1 folder to start stage 2 from (skips stage 1).
    """
    from ..calibration.cmc_pseudo_labels import PseudoLabelGeneration
    from ..models.cmc import CMCModel

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    train = dsd["train"]
    if variant == "gold":
        missing = [k for k in UNIMODAL_KEYS if k not in train.features]
        if missing:
            raise ValueError(
                f"variant='gold' (CMC-GT) needs the unimodal labels {list(UNIMODAL_KEYS)}, but the training "
                f"split lacks {missing} (MOSI/MOSEI have none): use variant='pseudo'"
            )
    callbacks = [EarlyStoppingCallback(early_stopping_patience)] if early_stopping_patience else []
    stage1_dir = Path(stage1) if stage1 is not None else Path(args.output_dir) / "stage1"
    summary: dict[str, Any] = {"variant": variant, "stage1_dir": str(stage1_dir)}

    sample_ids = train["sample_id"]
    pseudo: dict[str, list[int]] | None = None
    if stage1 is None:
        torch.manual_seed(args.seed)
        model = CMCModel(config.__class__(**{**config.to_dict(), "stage": "unimodal"}))
        plgm = PseudoLabelGeneration(**(pseudo_label_options or {})) if variant == "pseudo" else None
        if plgm is not None:
            plgm.initialize(torch.as_tensor(train["label"], dtype=torch.long))
        trainer = MercTrainer(
            model=model,
            args=selection_arguments(
                args, output_dir=str(stage1_dir), num_train_epochs=stage1_epochs or args.num_train_epochs
            ),
            train_dataset=train,
            eval_dataset=dsd["validation"],
            data_collator=UtteranceCollator(unimodal_label_keys=UNIMODAL_KEYS if variant == "gold" else None),
            calibration=plgm,
            callbacks=list(callbacks),
        )
        summary["stage1_train_loss"] = trainer.train().training_loss
        model = trainer.model
        model.save_pretrained(stage1_dir / "model")
        if plgm is not None:
            pseudo = dict(zip(sample_ids, plgm.hard_pseudo_labels().tolist()))
            (stage1_dir / PSEUDO_LABELS_FILE).write_text(json.dumps(pseudo))
    else:
        model = CMCModel.from_pretrained(stage1_dir / "model")
        if variant == "pseudo":
            pseudo = json.loads((stage1_dir / PSEUDO_LABELS_FILE).read_text())

    keys = UNIMODAL_KEYS
    if pseudo is not None:
        missing = [s for s in sample_ids if s not in pseudo]
        if missing:
            raise ValueError(
                f"{stage1_dir / PSEUDO_LABELS_FILE} has no pseudo labels for {len(missing)} training samples "
                f"(first: {missing[0]!r}); was stage 1 run on another dataset?"
            )
        rows = [pseudo[s] for s in sample_ids]
        for m, key in enumerate(PSEUDO_KEYS):
            train = train.add_column(key, [row[m] for row in rows])
        summary["pseudo_labels"] = pseudo_label_quality(rows, train)
        keys = PSEUDO_KEYS

    torch.manual_seed(args.seed)
    model = CMCModel.from_unimodal(model, stage="multimodal")
    trainer = MercTrainer(
        model=model,
        args=selection_arguments(args),
        train_dataset=train,
        eval_dataset=dsd["validation"],
        data_collator=UtteranceCollator(unimodal_label_keys=keys),
        callbacks=list(callbacks),
    )
    summary["train_loss"] = trainer.train().training_loss
    return trainer, summary


def pseudo_label_quality(pseudo: list[list[int]], train: Any) -> dict[str, dict[str, float]]:
    """Per modality: the share of training samples whose pseudo label differs from the multimodal label
    (``moved``) and, when the data has gold unimodal labels (CH-SIMS, the synthetic preset), the pseudo
    labels' accuracy against them (``accuracy``) and the share of the samples whose gold unimodal label
    differs from the multimodal one that the pseudo label recovers (``recovered``)."""
    labels = np.asarray(train["label"])
    pseudo_array = np.asarray(pseudo).reshape(len(labels), len(UNIMODAL_KEYS))
    quality: dict[str, dict[str, float]] = {}
    for m, (modality, key) in enumerate(zip(("text", "audio", "visual"), UNIMODAL_KEYS)):
        row = {"moved": float((pseudo_array[:, m] != labels).mean())}
        if key in train.features:
            gold = np.asarray(train[key])
            differs = gold != labels
            row["accuracy"] = float((pseudo_array[:, m] == gold).mean())
            row["recovered"] = (
                float((pseudo_array[differs, m] == gold[differs]).mean()) if differs.any() else None
            )
        quality[modality] = row
    return quality
