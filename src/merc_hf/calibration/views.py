"""Removal views: the same batch with one modality or one kind of context removed.

CMERC (and CML, and the uncertain-sample metrics) compare a model's confidence on the full input with its
confidence when information is removed. The five removals of the CMERC paper are

* ``"T"``, ``"A"``, ``"V"``: the text, audio or visual modality removed (``modality_mask``);
* ``"X"``: intra-speaker context removed (only other speakers' utterances inform an utterance);
* ``"O"``: inter-speaker context removed (only the speaker's own utterances inform it).

:func:`removal_view_logits` stacks the requested views along the batch dimension, one copy of the batch
per view, each with its own ``modality_mask``/``context_mask`` (the backbone interface of
:mod:`merc_hf.models.base`), and runs them without autograd and in eval mode, as the CMERC reference runs
its frozen masked copies. On an accelerator all views go through **one** forward pass. On CPU the default
is one view per pass, through the backbone's stages where it has them (:func:`_shared_stage_views`): the
stacked batch is several times larger than the caches and the dense layers become memory-bound, so one big
pass was measured 1.1–2× slower than one pass per view for every backbone (``benchmarks/cmerc_step.py``,
README "Benchmarks").

``view_mode`` is passed to the backbone (:mod:`merc_hf.models.base`, "View modes"): ``"exact"`` removes the
information from every stage, ``"reference"`` masks as CMERC's reference code does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn

from ..models.base import MODALITIES, MercInputs, build_context_mask

REMOVALS: tuple[str, ...] = ("A", "V", "T", "X", "O")
MODALITY_OF_REMOVAL: dict[str, str] = {"T": "text", "A": "audio", "V": "visual"}
MODAL_REMOVALS: tuple[str, ...] = ("A", "V", "T")
CONTEXT_REMOVALS: tuple[str, ...] = ("X", "O")
_BATCH_KEYS = ("text", "audio", "visual", "speakers", "utterance_mask", "same_speaker")


def applicable_removals(
    batch: Mapping[str, torch.Tensor | None],
    removals: Sequence[str] = REMOVALS,
    model: nn.Module | None = None,
) -> tuple[str, ...]:
    """The removals that make sense for this batch (and ``model``): a modality the batch lacks cannot be
    removed, and removing one the model does not use (``config.modalities``) would only repeat the
    full-input pass."""
    unknown = [r for r in removals if r not in REMOVALS]
    if unknown:
        raise ValueError(f"unknown removal types {unknown}; expected a subset of {REMOVALS}")
    # a DistributedDataParallel wrapper keeps the model (and its config) in .module
    config = getattr(getattr(model, "module", model), "config", None)
    used = getattr(config, "modalities", None)
    return tuple(
        r
        for r in removals
        if r in CONTEXT_REMOVALS
        or (
            batch.get(MODALITY_OF_REMOVAL[r]) is not None and (used is None or MODALITY_OF_REMOVAL[r] in used)
        )
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
    model: nn.Module,
    batch: Mapping[str, torch.Tensor | None],
    removals: Sequence[str] = REMOVALS,
    views_per_pass: int | None = None,
    view_mode: str = "exact",
) -> dict[str, torch.Tensor]:
    """Logits ``(B, T, C)`` of every applicable removal view, from no-grad eval-mode passes (rows at padding
    are meaningless, as in ``forward``).

    A removal applies when the batch has the modality and the model uses it (``config.modalities``).
    ``view_mode`` (``"exact"`` or ``"reference"``) is passed to the backbone.

    ``views_per_pass`` views are stacked into each forward pass; ``None`` means all of them on an
    accelerator and one on CPU (see the module docstring). One view per pass on a backbone that splits its
    encoder into stages (:class:`merc_hf.models.base.MercPreTrainedModel`) shares work among the views
    (:func:`_shared_stage_views`): a view re-runs only the encoder of the modality it removes (none, for a
    context view whose encoders do not read the context mask) and the contextual stages.
    """
    removals = applicable_removals(batch, removals, model)
    if not removals:
        return {}
    if views_per_pass is None:
        views_per_pass = 1 if batch["utterance_mask"].device.type == "cpu" else len(removals)
    if views_per_pass < 1:
        raise ValueError(f"views_per_pass must be >= 1, got {views_per_pass}")
    was_training = model.training
    model.eval()
    module = getattr(model, "module", model)  # the view passes need no DistributedDataParallel sync
    try:
        if views_per_pass == 1 and hasattr(module, "_contextual_stages"):
            return _shared_stage_views(module, batch, removals, view_mode)
        out: dict[str, torch.Tensor] = {}
        for start in range(0, len(removals), views_per_pass):
            chunk = removals[start : start + views_per_pass]
            logits = model(**stack_views(batch, chunk), view_mode=view_mode).logits
            out.update(zip(chunk, logits.chunk(len(chunk), dim=0)))
        return out
    finally:
        model.train(was_training)


def _shared_stage_views(
    module: nn.Module, batch: Mapping[str, torch.Tensor | None], removals: Sequence[str], view_mode: str
) -> dict[str, torch.Tensor]:
    """The views of :func:`removal_view_logits`, sharing the unimodal encodings of the full input.

    A modality view re-runs only the encoder of the modality it removes, a context view only the encoders
    that read the context mask (none, for M3Net in ``"reference"`` mode). All the encoder runs of one modality
    (the full input's and the views' that change it) go through one call, stacked along the batch (measured
    ~10 % faster than separate calls for M3Net's text GRU). The contextual stages then run once per view, on
    the dialogues in at most two length groups (:func:`_length_groups`): they are dense in the padded length
    (``T × T`` graphs), so trimming the shorter dialogues' padding saves more than the extra pass costs.
    """
    utterance_mask = batch["utterance_mask"]

    def inputs_for(modality_mask: torch.Tensor | None, context_mask: torch.Tensor | None) -> MercInputs:
        return module.prepare_inputs(
            batch.get("text"), batch.get("audio"), batch.get("visual"), batch.get("speakers"), utterance_mask,
            modality_mask, context_mask, view_mode,
        )  # fmt: skip

    full = inputs_for(None, None)
    views: dict[str, MercInputs] = {}
    changed: dict[str, list[str]] = {}
    for removal in removals:
        if removal in MODALITY_OF_REMOVAL:
            name = MODALITY_OF_REMOVAL[removal]
            modality_mask = torch.ones(utterance_mask.shape[0], len(MODALITIES), device=utterance_mask.device)
            modality_mask[:, MODALITIES.index(name)] = 0.0
            views[removal] = inputs_for(modality_mask, None)
            changed[removal] = [name]
        else:
            views[removal] = inputs_for(
                None, build_context_mask(removal, batch.get("same_speaker"), utterance_mask)
            )
            changed[removal] = [m for m in full.features if module._unimodal_reads_context(m, views[removal])]

    unimodal: dict[str, dict[str, torch.Tensor]] = {removal: {} for removal in removals}
    for name in full.features:
        rerun = [removal for removal in removals if name in changed[removal]]
        stacked = _stack_inputs([full, *(views[r] for r in rerun)], name)
        encoded = module._unimodal_stages(stacked, [name])[name].chunk(1 + len(rerun))
        for removal in removals:
            unimodal[removal][name] = encoded[1 + rerun.index(removal)] if removal in rerun else encoded[0]

    # context views that re-run no encoder also share what of the contextual stages ignores their masks
    unchanged = [removal for removal in removals if not changed[removal]]
    share = len(unchanged) > 1 and hasattr(module, "_context_free_stages")
    out: dict[str, torch.Tensor] = {}
    for rows, length in _length_groups(full.utterance_mask):
        context_free = None
        if share:
            first = unchanged[0]
            context_free = module._context_free_stages(
                _rows(unimodal[first], rows, length), _slice_inputs(views[first], rows, length)
            )
        for removal in removals:
            extra = (context_free,) if context_free is not None and removal in unchanged else ()
            logits = module._contextual_stages(
                _rows(unimodal[removal], rows, length), _slice_inputs(views[removal], rows, length), *extra
            )[1]
            if removal not in out:
                out[removal] = logits.new_zeros(*utterance_mask.shape, logits.shape[-1])
            out[removal][rows, :length] = logits / module.config.logit_temperature
    return out


def _length_groups(
    utterance_mask: torch.Tensor, min_saving: float = 0.2
) -> list[tuple[torch.Tensor | slice, int]]:
    """``(rows, length)`` groups of a batch's dialogues, each to be run trimmed to its longest dialogue:
    one group, or the short and the long dialogues when that cuts the padded ``Σ rows · length²`` (the size of
    the dense context graphs) by at least ``min_saving``. Padding never changes a backbone's outputs (the
    backbone contract), so neither does the grouping."""
    steps = torch.arange(1, utterance_mask.shape[1] + 1, device=utterance_mask.device)
    lengths = (utterance_mask.long() * steps).amax(1)  # up to the last real utterance
    order = torch.argsort(lengths, stable=True)
    sorted_lengths = lengths[order].tolist()
    n, longest = len(sorted_lengths), max(sorted_lengths[-1], 1)
    whole = n * longest**2
    best, split = whole, n
    for i in range(1, n):  # the first i dialogues (shortest) in one group, the rest in the other
        cost = i * max(sorted_lengths[i - 1], 1) ** 2 + (n - i) * longest**2
        if cost < best:
            best, split = cost, i
    if best > (1 - min_saving) * whole:
        return [(slice(None), longest)]
    return [(order[:split], max(sorted_lengths[split - 1], 1)), (order[split:], longest)]


def _rows(
    tensors: Mapping[str, torch.Tensor], rows: torch.Tensor | slice, length: int
) -> dict[str, torch.Tensor]:
    """``tensors`` ``(B, T, ...)`` restricted to ``rows`` and the first ``length`` steps."""
    return {name: value[rows, :length] for name, value in tensors.items()}


def _slice_inputs(inputs: MercInputs, rows: torch.Tensor | slice, length: int) -> MercInputs:
    """``inputs`` restricted to the dialogues ``rows`` and their first ``length`` utterances."""
    return replace(
        inputs,
        features=_rows(inputs.features, rows, length),
        speakers=inputs.speakers[rows, :length],
        utterance_mask=inputs.utterance_mask[rows, :length],
        context_mask=inputs.context_mask[rows, :length, :length],
    )


def _stack_inputs(parts: Sequence[MercInputs], name: str) -> MercInputs:
    """One :class:`MercInputs` holding ``parts`` one after another along the batch, with only the features of
    modality ``name`` (what one unimodal encoder reads). Full-context parts get the full mask when another
    part has a context mask: a backbone's context removal is exact, so the full mask is full context."""
    if len(parts) == 1:
        return replace(parts[0], features={name: parts[0].features[name]})
    return replace(
        parts[0],
        features={name: torch.cat([p.features[name] for p in parts])},
        speakers=torch.cat([p.speakers for p in parts]),
        utterance_mask=torch.cat([p.utterance_mask for p in parts]),
        context_mask=torch.cat([p.context_mask for p in parts]),
        full_context=all(p.full_context for p in parts),
    )
