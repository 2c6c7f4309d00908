"""Batching dialogues into the padded tensors every merc_hf backbone takes.

Batch contract (emotion recognition), for ``B`` dialogues padded to ``T`` utterances:

==================  ==================  ===================================================
``text/audio/visual``  float32 ``(B,T,D)``  one entry per modality present in the dataset
``speakers``           long ``(B,T)``       speaker index by first appearance; 0 at padding
``utterance_mask``     bool ``(B,T)``       True for real utterances (padding only at the end)
``labels``             long ``(B,T)``       class ids; -100 at padding (only for labelled rows)
``same_speaker``       bool ``(B,T,T)``     both real and same speaker — the structure the
                                            intra-/inter-speaker context removals are built from
==================  ==================  ===================================================

Pair batch (emotion–cause pair extraction, :class:`PairCollator`): the same keys, with ``labels`` taken
from the ``emotions`` column, plus ``cause_labels`` long ``(B,T)`` (1 if the utterance is the cause of a
gold pair, else 0; -100 at padding) and ``pair_labels`` long ``(B,T,T)`` (1 at gold ``(emotion_utt,
cause_utt)``, else 0).

Utterance batch (sentiment datasets of the CH-SIMS family, :class:`UtteranceCollator`), for ``B`` video
clips, each modality padded to its longest sequence ``L_m`` in the batch:

=========================  ======================  ==============================================
``text/audio/visual``      float32 ``(B,L_m,D_m)``  one feature sequence per clip, zero-padded
``text_mask`` (etc.)       bool ``(B,L_m)``         True for real frames; every clip has >= 1
``labels``                 long ``(B,)``            3-class sentiment of the multimodal label (this
                                                    and the other labels only for labelled rows)
``regression_labels``      float32 ``(B,)``         the multimodal regression label M
``unimodal_labels``        long ``(B,3)``           text, audio, visual classes; -100 where the row
                                                    has no such label (MOSI/MOSEI)
``sample_index``           long ``(B,)``            only if the rows have it (added by MercTrainer)
=========================  ======================  ==============================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .records import MODALITIES

IGNORE_INDEX = -100


@dataclass
class DialogueCollator:
    """Collate dataset rows (one dialogue each) into the batch contract above.

    Args:
        modalities: which feature columns to batch; default every modality found in the first row.
        label_key: the per-utterance class column (``labels`` for MERC datasets); rows without it (data to
            predict on) give a batch without ``labels``.
        pad_to: pad every batch to this many utterances instead of the longest dialogue of the batch
            (a longer dialogue is an error), so that batches have one shape.
    """

    modalities: Sequence[str] | None = None
    label_key: str = "labels"
    pad_to: int | None = None

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("cannot collate an empty list of dialogues")
        labelled = self.label_key in rows[0]
        lengths = [len(row["speakers"]) for row in rows]
        batch_size, max_len = len(rows), max(lengths)
        if self.pad_to is not None:
            if max_len > self.pad_to:
                row = rows[lengths.index(max_len)]
                name = row.get("conversation_id", row.get("dialogue_id"))
                raise ValueError(
                    f"dialogue {name!r} has {max_len} utterances, more than pad_to={self.pad_to}"
                )
            max_len = self.pad_to
        mask = torch.zeros(batch_size, max_len, dtype=torch.bool)
        speakers = torch.zeros(batch_size, max_len, dtype=torch.long)
        labels = torch.full((batch_size, max_len), IGNORE_INDEX, dtype=torch.long)
        for b, (row, n) in enumerate(zip(rows, lengths)):
            mask[b, :n] = True
            speakers[b, :n] = torch.as_tensor(row["speakers"], dtype=torch.long)
            if labelled:
                labels[b, :n] = torch.as_tensor(row[self.label_key], dtype=torch.long)
        batch: dict[str, torch.Tensor] = {}
        present = self.modalities if self.modalities is not None else [m for m in MODALITIES if m in rows[0]]
        for modality in present:
            dim = np.asarray(rows[0][modality]).shape[-1]
            padded = torch.zeros(batch_size, max_len, dim, dtype=torch.float32)
            for b, (row, n) in enumerate(zip(rows, lengths)):
                padded[b, :n] = torch.as_tensor(np.asarray(row[modality], dtype=np.float32))
            batch[modality] = padded
        batch["speakers"] = speakers
        batch["utterance_mask"] = mask
        if labelled:
            batch["labels"] = labels
        batch["same_speaker"] = same_speaker_matrix(speakers, mask)
        if "sample_index" in rows[0]:  # added by MercTrainer for methods with a per-sample history (CRL)
            batch["sample_index"] = torch.tensor([int(row["sample_index"]) for row in rows])
        return batch


def same_speaker_matrix(speakers: torch.Tensor, utterance_mask: torch.Tensor) -> torch.Tensor:
    """``(B, T, T)`` bool: utterances i and j are both real and spoken by the same speaker."""
    both_real = utterance_mask.unsqueeze(2) & utterance_mask.unsqueeze(1)
    return (speakers.unsqueeze(2) == speakers.unsqueeze(1)) & both_real


@dataclass
class PairCollator(DialogueCollator):
    """Collate emotion–cause conversations (``emotions`` and 0-based ``pairs`` columns) into the pair batch."""

    label_key: str = "emotions"

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = super().__call__(rows)
        if "pairs" not in rows[0]:  # unannotated conversations: nothing to supervise
            return batch
        batch_size, length = batch["utterance_mask"].shape
        pair_labels = torch.zeros(batch_size, length, length, dtype=torch.long)
        for b, row in enumerate(rows):
            pairs = torch.as_tensor(row["pairs"], dtype=torch.long).reshape(-1, 2)
            pair_labels[b, pairs[:, 0], pairs[:, 1]] = 1
        cause_labels = pair_labels.amax(dim=1).masked_fill(~batch["utterance_mask"], IGNORE_INDEX)
        batch["cause_labels"] = cause_labels
        batch["pair_labels"] = pair_labels
        return batch


@dataclass
class UtteranceCollator:
    """Collate dataset rows (one utterance / video clip each) into the utterance batch above.

    Args:
        modalities: which feature columns to batch; default every modality found in the first row.
        label_key: the 3-class column (``label``); rows without it (clips to predict on) give a batch with
            no label keys.
        regression_key: the regression column (``regression_label``); ``None``: no ``regression_labels``.
        unimodal_label_keys: the text, audio and visual class columns, in that order; a row without one
            of them gets -100 there. ``None``: ``unimodal_labels`` is all -100 (the key stays in the batch
            because the ``Trainer`` gathers labels only when every label argument of the model is present).
    """

    modalities: Sequence[str] | None = None
    label_key: str = "label"
    regression_key: str | None = "regression_label"
    unimodal_label_keys: Sequence[str] | None = ("label_text", "label_audio", "label_visual")

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("cannot collate an empty list of utterances")
        batch: dict[str, torch.Tensor] = {}
        present = self.modalities if self.modalities is not None else [m for m in MODALITIES if m in rows[0]]
        for modality in present:
            sequences = []
            for row in rows:
                if modality not in row:
                    raise ValueError(f"sample {_name(row)!r} has no {modality!r} column")
                seq = np.asarray(row[modality], dtype=np.float32)
                if seq.ndim != 2 or seq.shape[0] == 0:
                    raise ValueError(
                        f"sample {_name(row)!r}: {modality!r} must be a non-empty (length, dim) sequence, "
                        f"got shape {seq.shape}"
                    )
                sequences.append(seq)
            dims = {seq.shape[1] for seq in sequences}
            if len(dims) != 1:
                raise ValueError(f"{modality!r} feature dimensions differ within the batch: {sorted(dims)}")
            lengths = [seq.shape[0] for seq in sequences]
            padded = np.zeros((len(rows), max(lengths), dims.pop()), dtype=np.float32)
            mask = np.zeros((len(rows), max(lengths)), dtype=bool)
            for b, (seq, n) in enumerate(zip(sequences, lengths)):
                padded[b, :n] = seq
                mask[b, :n] = True
            batch[modality] = torch.from_numpy(padded)
            batch[f"{modality}_mask"] = torch.from_numpy(mask)
        if "sample_index" in rows[0]:  # added by MercTrainer for methods with per-sample state
            batch["sample_index"] = torch.tensor([int(row["sample_index"]) for row in rows])
        if self.label_key not in rows[0]:  # clips to predict on: no label keys at all
            return batch
        batch["labels"] = torch.tensor([int(_column(row, self.label_key)) for row in rows], dtype=torch.long)
        if self.regression_key is not None:
            batch["regression_labels"] = torch.tensor(
                [float(_column(row, self.regression_key)) for row in rows], dtype=torch.float32
            )
        keys = (
            list(self.unimodal_label_keys)
            if self.unimodal_label_keys is not None
            else [None] * len(MODALITIES)
        )
        if len(keys) != len(MODALITIES):
            raise ValueError(f"unimodal_label_keys must name {len(MODALITIES)} columns, got {keys}")
        batch["unimodal_labels"] = torch.tensor(
            [
                [IGNORE_INDEX if k is None or row.get(k) is None else int(row[k]) for k in keys]
                for row in rows
            ],
            dtype=torch.long,
        )
        return batch


def _name(row: Mapping[str, Any]) -> object:
    return row.get("sample_id", row.get("dialogue_id"))


def _column(row: Mapping[str, Any], key: str) -> Any:
    if key not in row or row[key] is None:
        raise ValueError(f"sample {_name(row)!r} has no {key!r} column")
    return row[key]
