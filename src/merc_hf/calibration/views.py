"""Removal views: the same batch with one modality or one kind of context removed.

CMERC (and CML, and the uncertain-sample metrics) compare a model's confidence on the full input with its
confidence when information is removed. The five removals of the CMERC paper are

* ``"T"``, ``"A"``, ``"V"``: the text, audio or visual modality removed (``modality_mask``);
* ``"X"``: intra-speaker context removed (only other speakers' utterances inform an utterance);
* ``"O"``: inter-speaker context removed (only the speaker's own utterances inform it).

:func:`removal_view_logits` computes all requested views in **one** forward pass: the batch is repeated
along the batch dimension, one copy per view, each with its own ``modality_mask``/``context_mask``
(the backbone interface of :mod:`merc_hf.models.base`). The pass runs without autograd and in eval mode,
as the CMERC reference runs its frozen masked copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..models.base import MODALITIES, build_context_mask

REMOVALS: tuple[str, ...] = ("A", "V", "T", "X", "O")
MODALITY_OF_REMOVAL: dict[str, str] = {"T": "text", "A": "audio", "V": "visual"}
MODAL_REMOVALS: tuple[str, ...] = ("A", "V", "T")
CONTEXT_REMOVALS: tuple[str, ...] = ("X", "O")
_BATCH_KEYS = ("text", "audio", "visual", "speakers", "utterance_mask", "same_speaker")


def applicable_removals(
    batch: Mapping[str, torch.Tensor | None], removals: Sequence[str] = REMOVALS
) -> tuple[str, ...]:
    """The removals that make sense for this batch: a modality the batch lacks cannot be removed."""
    unknown = [r for r in removals if r not in REMOVALS]
    if unknown:
        raise ValueError(f"unknown removal types {unknown}; expected a subset of {REMOVALS}")
    return tuple(
        r for r in removals if r in CONTEXT_REMOVALS or batch.get(MODALITY_OF_REMOVAL[r]) is not None
    )


def stack_views(batch: Mapping[str, torch.Tensor | None], removals: Sequence[str]) -> dict[str, torch.Tensor]:
    """One batch of ``len(removals) * B`` dialogues: view ``k`` occupies rows ``k*B:(k+1)*B``."""
    utterance_mask = batch["utterance_mask"].bool()
    batch_size = utterance_mask.shape[0]
    n_views = len(removals)
    stacked: dict[str, torch.Tensor] = {}
    for key in _BATCH_KEYS:
        value = batch.get(key)
        if value is not None:
            stacked[key] = value.repeat(n_views, *([1] * (value.dim() - 1)))
    modality_mask = torch.ones(n_views, batch_size, len(MODALITIES), device=utterance_mask.device)
    context_masks = []
    for k, removal in enumerate(removals):
        if removal in MODALITY_OF_REMOVAL:
            modality_mask[k, :, MODALITIES.index(MODALITY_OF_REMOVAL[removal])] = 0.0
            context_masks.append(build_context_mask("full", None, utterance_mask))
        else:
            context_masks.append(build_context_mask(removal, batch.get("same_speaker"), utterance_mask))
    stacked["modality_mask"] = modality_mask.reshape(n_views * batch_size, len(MODALITIES))
    if any(mask is not None for mask in context_masks):
        full = utterance_mask[:, :, None] & utterance_mask[:, None, :]
        stacked["context_mask"] = torch.cat([full if m is None else m for m in context_masks], dim=0)
    return stacked


@torch.no_grad()
def removal_view_logits(
    model: nn.Module, batch: Mapping[str, torch.Tensor | None], removals: Sequence[str] = REMOVALS
) -> dict[str, torch.Tensor]:
    """Logits ``(B, T, C)`` of every applicable removal view, from one batched no-grad eval-mode pass."""
    removals = applicable_removals(batch, removals)
    if not removals:
        return {}
    was_training = model.training
    model.eval()
    try:
        logits = model(**stack_views(batch, removals)).logits
    finally:
        model.train(was_training)
    return dict(zip(removals, logits.chunk(len(removals), dim=0)))
