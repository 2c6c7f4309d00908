"""The backbone interface shared by every merc_hf MERC model (M3Net, DialogueRNN, DialogueGCN, MMGCN, ...).

A backbone reads one padded batch of dialogues and returns, per utterance, emotion logits and the
pre-classifier utterance representation. Everything that is not specific to one architecture lives here:

* :class:`MercConfig`: config fields every backbone has (input dims per modality, speakers, dropout,
  loss, modality removal, labels, calibration record and post-hoc temperature).
* :class:`EmotionRecognitionOutput`: what ``forward`` returns.
* :class:`MercPreTrainedModel`: the ``forward`` of all backbones. It validates the batch, zeroes padding,
  applies the modality removal of ``modality_mask`` to the raw input features, resolves ``context_mask``,
  calls the backbone's :meth:`MercPreTrainedModel._encode` and computes the loss.
* Context masks (:func:`build_context_mask` and the "O"/"X" views of CMERC), modality removal
  (:func:`remove_modalities`), losses (:func:`emotion_loss`) and class weights
  (:func:`inverse_frequency_class_weights`).

Batch contract (the ``merc_hf.data`` collator): ``text``/``audio``/``visual`` float ``(B, T, D_m)`` (absent
modalities are ``None``), ``speakers`` long ``(B, T)`` (per-dialogue index by order of appearance, 0 at
padding), ``utterance_mask`` bool ``(B, T)`` (padding only at the end), ``labels`` long ``(B, T)`` (-100 at
padding), ``same_speaker`` bool ``(B, T, T)``.

Context masks
-------------
``context_mask[b, i, j]`` is True when utterance ``j`` may inform utterance ``i``. Every
context-propagating operation of a backbone (recurrences, graph edges, hyperedges, attention) must honour
it at every layer. Pairs that involve padding are always removed, and the diagonal is always treated as
True (an utterance always sees itself; whether a backbone adds self loops is its own business).

* Full context (``None``): every real utterance of the dialogue.
* View **"O"**, inter-speaker context removed (CMERC ``mask_context='inter'``): only utterances of the same
  speaker, self included. This relation is an equivalence relation (speaker groups), so per-layer masking
  is *exact*: the output of an utterance does not depend in any way on other speakers' utterances.
* View **"X"**, intra-speaker context removed (CMERC ``mask_context='intra'``): only other speakers'
  utterances, plus self. This relation is **not transitive**: after two layers, information from a
  same-speaker utterance ``k`` reaches ``i`` through another speaker's ``j`` (``k -> j -> i``). Like the
  CMERC reference, masking X is therefore *edge-level* (no same-speaker edge is used at any layer), not an
  exact removal of same-speaker information. Recurrent encoders built on
  :class:`merc_hf.models.layers.ContextMaskedRNN` are exact for any mask, since each target runs over its
  own allowed subsequence.

Modality removal
----------------
``modality_mask`` ``(B, 3)`` over (text, audio, visual): 1 keeps the modality of that dialogue, 0 removes it.
Removal replaces the raw input features (before any encoder) according to ``config.modality_removal``:

* ``"mean"`` (default): by the mean of that modality over the real utterances of the dialogue that are in
  the utterance's context (for full context, the dialogue mean, identical for every utterance). CMERC
  replaces a modality by its mean over the *padded* time axis (``HITSZ-HLT/CMERC: train_cm.py``), which lets
  padding and the batch's longest dialogue change the value; here padding never counts.
* ``"zero"``: by zeros.
* ``"padded_mean"``: the reference's value, the sum over the dialogue's real utterances divided by the
  batch's padded length (padding counts as zero frames), at every real utterance.

Fractional values interpolate: ``m * x + (1 - m) * replacement``.

View modes
----------
``forward(view_mode=...)`` chooses how a removal view is built, for every backbone:

* ``"exact"`` (default): modality removal by ``config.modality_removal`` and the context mask honoured by
  every context-propagating stage (above).
* ``"reference"``: CMERC's reference code (``HITSZ-HLT/CMERC: train_cm.py``, ``model_hyper.py``). A removed
  modality becomes its ``"padded_mean"``; a context mask restricts only the backbone's graph edges where
  the backbone has a separate graph stage (:attr:`MercPreTrainedModel.reference_context_stages`; M3Net: its
  intra-modal GNN edges, while the hypergraph and the text GRU see the whole dialogue). The reference code
  defines masked context only for M3Net; the other backbones have no graph-only stage to restrict and
  honour the mask everywhere, as in ``"exact"``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

MODALITIES: tuple[str, str, str] = ("text", "audio", "visual")
"""Modality order used by ``modality_mask`` columns and by every multimodal readout."""

CONTEXT_VIEWS: tuple[str, ...] = ("full", "O", "X")
LOSS_TYPES: tuple[str, ...] = ("cross_entropy", "focal", "reference_focal")
MODALITY_REMOVAL_MODES: tuple[str, ...] = ("mean", "zero", "padded_mean")
VIEW_MODES: tuple[str, ...] = ("exact", "reference")
"""How removal views are built (``forward(view_mode=...)``, module docstring "View modes")."""

IEMOCAP_ID2LABEL: dict[int, str] = {0: "hap", 1: "sad", 2: "neu", 3: "ang", 4: "exc", 5: "fru"}


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------


class MercConfig(PretrainedConfig):
    """Fields shared by every merc_hf backbone config.

    Args:
        text_dim, audio_dim, visual_dim: input feature size of each modality, or ``None`` when the model
            does not use that modality. At least one must be set. The model uses exactly these
            modalities; a batch must provide each of them (others are ignored).
        n_speakers: size of the per-dialogue speaker index (2 for IEMOCAP, 9 for MELD).
        dropout: dropout probability (each backbone documents where it is applied).
        class_weights: optional per-class loss weights (``len == num_labels``), e.g. from
            :func:`inverse_frequency_class_weights`. Used as the CE weights, and as α_t for ``"focal"``.
        loss_type: ``"cross_entropy"``, ``"focal"`` (standard focal loss) or ``"reference_focal"`` (the
            non-standard MELD "focal loss" of M3Net/MMGCN/CMERC, for reproduction only); see
            :func:`emotion_loss`.
        focal_gamma: focusing parameter γ of both focal variants (the reference MELD runs use 2.5).
        modality_removal: how ``modality_mask`` removes a modality: ``"mean"`` or ``"zero"`` (module
            docstring).
        calibration: the calibration method the checkpoint was trained or fitted with (name and
            hyper-parameters, e.g. ``{"name": "cmerc", "gamma_m": 0.05, ...}``), recorded for model cards
            and reproducibility; ``None`` for a plain backbone. The architecture does not depend on it.
        logit_temperature: T > 0 (finite) dividing the backbone's emotion logits in
            :meth:`MercPreTrainedModel.forward`, before the loss: ``1.0`` for an unscaled model, the fitted
            value after post-hoc temperature scaling (Guo et al., ICML 2017;
            :class:`merc_hf.calibration.TemperatureScaling`), so that a saved checkpoint reloads with
            calibrated probabilities and reports the calibrated NLL as its loss. Models with their own
            ``forward`` (the pair scorer) do not apply it.
        id2label / label2id / num_labels: the label map (pass both maps). Defaults to IEMOCAP 6-way
            ``{hap, sad, neu, ang, exc, fru}``.
    """

    model_type = ""

    def __init__(
        self,
        text_dim: int | None = 1024,
        audio_dim: int | None = 1582,
        visual_dim: int | None = 342,
        n_speakers: int = 2,
        dropout: float = 0.5,
        class_weights: list[float] | None = None,
        loss_type: str = "cross_entropy",
        focal_gamma: float = 2.0,
        modality_removal: str = "mean",
        calibration: dict | None = None,
        logit_temperature: float = 1.0,
        **kwargs,
    ) -> None:
        self.text_dim = text_dim
        self.audio_dim = audio_dim
        self.visual_dim = visual_dim
        self.n_speakers = n_speakers
        self.dropout = dropout
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.loss_type = loss_type
        self.focal_gamma = float(focal_gamma)
        self.modality_removal = modality_removal
        self.calibration = None if calibration is None else dict(calibration)
        self.logit_temperature = validate_temperature(logit_temperature, "logit_temperature")
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = dict(IEMOCAP_ID2LABEL)
        if kwargs.get("id2label") is not None and kwargs.get("label2id") is None:
            kwargs["label2id"] = {name: int(idx) for idx, name in kwargs["id2label"].items()}
        super().__init__(**kwargs)
        self._validate_merc()

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities this model uses, in :data:`MODALITIES` order."""
        return tuple(m for m in MODALITIES if getattr(self, f"{m}_dim") is not None)

    def _validate_merc(self) -> None:
        for name in MODALITIES:
            dim = getattr(self, f"{name}_dim")
            if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0):
                raise ValueError(f"{name}_dim must be a positive int or None, got {dim!r}")
        if not self.modalities:
            raise ValueError("at least one of text_dim, audio_dim, visual_dim must be set")
        if not isinstance(self.n_speakers, int) or self.n_speakers <= 0:
            raise ValueError(f"n_speakers must be a positive int, got {self.n_speakers!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.focal_gamma < 0:
            raise ValueError(f"focal_gamma must be >= 0, got {self.focal_gamma}")
        if self.modality_removal not in MODALITY_REMOVAL_MODES:
            raise ValueError(
                f"modality_removal must be one of {MODALITY_REMOVAL_MODES}, got {self.modality_removal!r}"
            )
        if self.class_weights is not None:
            if len(self.class_weights) != self.num_labels:
                raise ValueError(
                    f"class_weights has {len(self.class_weights)} entries but num_labels is {self.num_labels}"
                )
            if any(not math.isfinite(w) or w < 0 for w in self.class_weights):
                raise ValueError(f"class_weights must be finite and >= 0, got {self.class_weights}")


def validate_temperature(temperature: float, name: str = "temperature") -> float:
    """``temperature`` as a float after checking that it is a finite number > 0 (ValueError otherwise)."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ValueError(f"{name} must be a finite number > 0, got {temperature!r}")
    value = float(temperature)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {temperature!r}")
    return value


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


@dataclass
class EmotionRecognitionOutput(ModelOutput):
    """Output of every merc_hf backbone.

    Args:
        loss: scalar loss over the labelled real utterances (when ``labels`` is given).
        logits: ``(B, T, C)`` unnormalised class scores. Rows at padding are meaningless.
        utterance_repr: ``(B, T, H)`` the pre-classifier utterance representation (CMERC's contrastive
            losses use it); zero at padding.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    utterance_repr: torch.FloatTensor | None = None


@dataclass
class MercInputs:
    """A validated batch, as handed to :meth:`MercPreTrainedModel._encode`.

    Attributes:
        features: the configured modalities in :data:`MODALITIES` order, ``(B, T, D_m)`` in the model
            dtype, zero at padding, modality removal already applied.
        speakers: ``(B, T)`` long, 0 at padding.
        utterance_mask: ``(B, T)`` bool.
        context_mask: ``(B, T, T)`` bool from :func:`resolve_context_mask` (no padding pairs, diagonal True).
        full_context: True when the caller gave no ``context_mask`` (allows fast paths).
        view_mode: one of :data:`VIEW_MODES` (module docstring "View modes").
    """

    features: dict[str, torch.Tensor]
    speakers: torch.Tensor
    utterance_mask: torch.Tensor
    context_mask: torch.Tensor
    full_context: bool
    view_mode: str = "exact"

    def stage_context(self, stage: str, reference_stages: Sequence[str] | None) -> torch.Tensor | None:
        """The context mask one stage of a backbone honours: ``None`` (full context) when no mask was given,
        or for a stage outside ``reference_stages`` in ``"reference"`` view mode (``None``: every stage
        honours it); else :attr:`context_mask`."""
        outside_reference = reference_stages is not None and stage not in reference_stages
        if self.full_context or (self.view_mode == "reference" and outside_reference):
            return None
        return self.context_mask


# --------------------------------------------------------------------------------------------------
# Context masks
# --------------------------------------------------------------------------------------------------


def _valid_pairs(utterance_mask: torch.Tensor) -> torch.Tensor:
    utterance_mask = utterance_mask.bool()
    return utterance_mask[:, :, None] & utterance_mask[:, None, :]


def _with_self(mask: torch.Tensor, utterance_mask: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(mask.shape[-1], dtype=torch.bool, device=mask.device)
    return mask | (eye[None] & utterance_mask.bool()[:, :, None])


def full_context_mask(utterance_mask: torch.Tensor) -> torch.Tensor:
    """``(B, T, T)`` bool: every real utterance may inform every real utterance of its dialogue."""
    return _valid_pairs(utterance_mask)


def inter_speaker_removed_mask(same_speaker: torch.Tensor, utterance_mask: torch.Tensor) -> torch.Tensor:
    """View "O": only same-speaker utterances (self included) inform an utterance.

    Equivalent to CMERC ``mask_context='inter'``. An equivalence relation, so removal is exact.
    """
    return _with_self(same_speaker.bool() & _valid_pairs(utterance_mask), utterance_mask)


def intra_speaker_removed_mask(same_speaker: torch.Tensor, utterance_mask: torch.Tensor) -> torch.Tensor:
    """View "X": only other speakers' utterances, plus self, inform an utterance.

    Equivalent to CMERC ``mask_context='intra'``. Not transitive: masking is edge-level per layer, not an
    exact removal of same-speaker information across layers (module docstring).
    """
    return _with_self(~same_speaker.bool() & _valid_pairs(utterance_mask), utterance_mask)


def build_context_mask(
    view: str, same_speaker: torch.Tensor | None, utterance_mask: torch.Tensor
) -> torch.Tensor | None:
    """Context mask of a named view: ``"full"`` (returns ``None``), ``"O"`` or ``"X"``."""
    if view == "full":
        return None
    if view not in CONTEXT_VIEWS:
        raise ValueError(f"view must be one of {CONTEXT_VIEWS}, got {view!r}")
    if same_speaker is None:
        raise ValueError(f"context view {view!r} needs same_speaker")
    if view == "O":
        return inter_speaker_removed_mask(same_speaker, utterance_mask)
    return intra_speaker_removed_mask(same_speaker, utterance_mask)


def resolve_context_mask(context_mask: torch.Tensor | None, utterance_mask: torch.Tensor) -> torch.Tensor:
    """The mask a backbone actually uses: ``context_mask`` (or full context) restricted to pairs of real
    utterances, with the diagonal set for real utterances."""
    valid = _valid_pairs(utterance_mask)
    if context_mask is None:
        return valid
    if context_mask.shape != valid.shape:
        raise ValueError(
            f"context_mask must have shape {tuple(valid.shape)}, got {tuple(context_mask.shape)}"
        )
    return _with_self(context_mask.bool() & valid, utterance_mask)


# --------------------------------------------------------------------------------------------------
# Modality removal
# --------------------------------------------------------------------------------------------------


def remove_modalities(
    features: Mapping[str, torch.Tensor | None],
    modality_mask: torch.Tensor | None,
    utterance_mask: torch.Tensor,
    mode: str = "mean",
    context_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor | None]:
    """Replace the removed modalities of each dialogue (module docstring, "Modality removal").

    Args:
        features: ``{"text": (B, T, D), ...}``; missing modalities may be absent or ``None``.
        modality_mask: ``(B, 3)`` over :data:`MODALITIES`, 1 = keep, 0 = remove (``None``: keep all).
        utterance_mask: ``(B, T)`` bool.
        mode: one of :data:`MODALITY_REMOVAL_MODES`.
        context_mask: optional ``(B, T, T)`` context; with ``"mean"`` each utterance gets the mean over the
            real utterances in its context (so a removed modality carries no information from outside
            the context). ``None``: the dialogue mean.

    Returns:
        A new dict with the same keys; padding rows are zero.
    """
    if mode not in MODALITY_REMOVAL_MODES:
        raise ValueError(f"mode must be one of {MODALITY_REMOVAL_MODES}, got {mode!r}")
    utterance_mask = utterance_mask.bool()
    out: dict[str, torch.Tensor | None] = {}
    for name, x in features.items():
        if x is None:
            out[name] = None
            continue
        x = x.masked_fill(~utterance_mask[..., None], 0.0)
        if modality_mask is None:
            out[name] = x
            continue
        if modality_mask.ndim != 2 or modality_mask.shape[1] != len(MODALITIES):
            raise ValueError(f"modality_mask must have shape (B, 3), got {tuple(modality_mask.shape)}")
        keep = modality_mask[:, MODALITIES.index(name)].to(x.dtype)[:, None, None]
        if mode == "zero":
            out[name] = keep * x
            continue
        if mode == "padded_mean":
            replacement = (x.sum(1, keepdim=True) / x.shape[1]).expand_as(x)
            out[name] = (keep * x + (1.0 - keep) * replacement).masked_fill(~utterance_mask[..., None], 0.0)
            continue
        ctx = resolve_context_mask(context_mask, utterance_mask).to(x.dtype)
        replacement = (ctx @ x) / ctx.sum(-1, keepdim=True).clamp_min(1.0)
        out[name] = keep * x + (1.0 - keep) * replacement
    return out


# --------------------------------------------------------------------------------------------------
# Losses and class weights
# --------------------------------------------------------------------------------------------------


def emotion_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    loss_type: str = "cross_entropy",
    class_weights: Sequence[float] | torch.Tensor | None = None,
    focal_gamma: float = 2.0,
    utterance_mask: torch.Tensor | None = None,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Utterance-level classification loss over the labelled real utterances.

    * ``"cross_entropy"``: class-weighted CE, normalised like ``torch.nn.CrossEntropyLoss(weight=w)``:
      ``Σ w_y · (-log p_y) / Σ w_y`` (the reference ``MaskedNLLLoss`` of M3Net/CMERC does the same).
    * ``"focal"``: the standard focal loss of Lin et al., ``-α_t (1 - p_t)^γ log p_t`` with
      ``α_t = class_weights[y]`` (1 without weights), normalised by ``Σ α_t`` so that γ = 0 gives exactly
      the weighted CE above.
    * ``"reference_focal"``: the MELD "FocalLoss" of M3Net (``feiyuchen7/M3NET: model.py (L15–50)``), also
      used by MMGCN and CMERC, for reproduction only. It is **not** a focal loss: it averages
      ``-(1 - 1[c=y] log p_c)^γ log p_c`` over all N×C entries, so every non-target class adds ``-log p_c``
      (a strong push towards uniform predictions, which matters for calibration), and the target factor is
      ``(1 - log p_y)^γ`` instead of ``(1 - p_y)^γ``. Class weights are not used (the reference's α = 1).

    Positions with ``labels == ignore_index`` (or outside ``utterance_mask``) are ignored. With no
    labelled position the loss is a differentiable zero.
    """
    num_classes = logits.shape[-1]
    valid = labels != ignore_index
    if utterance_mask is not None:
        valid = valid & utterance_mask.bool()
    flat_logits = logits[valid].float()
    flat_labels = labels[valid]
    if flat_labels.numel() == 0:
        return logits.sum() * 0.0
    if bool(((flat_labels < 0) | (flat_labels >= num_classes)).any()):
        raise ValueError(f"labels must be in [0, {num_classes}) or {ignore_index}")
    log_p = F.log_softmax(flat_logits, dim=-1)
    if loss_type == "reference_focal":
        target = F.one_hot(flat_labels, num_classes).to(log_p.dtype)
        return (-((1.0 - target * log_p) ** focal_gamma) * log_p).mean()
    weight = None
    if class_weights is not None:
        weight = torch.as_tensor(class_weights, dtype=log_p.dtype, device=log_p.device)
        if weight.shape != (num_classes,):
            raise ValueError(f"class_weights must have {num_classes} entries, got {tuple(weight.shape)}")
    if loss_type == "cross_entropy":
        return F.nll_loss(log_p, flat_labels, weight=weight)
    if loss_type == "focal":
        log_p_t = log_p.gather(-1, flat_labels[:, None]).squeeze(-1)
        alpha_t = torch.ones_like(log_p_t) if weight is None else weight[flat_labels]
        if focal_gamma == 0:
            modulator = torch.ones_like(log_p_t)
        else:
            # 1 - p_t via expm1 keeps precision near p_t = 1; the clamp keeps the gradient finite for γ < 1
            modulator = (-torch.expm1(log_p_t)).clamp_min(1e-12) ** focal_gamma
        focal = alpha_t * modulator * (-log_p_t)
        return focal.sum() / alpha_t.sum()
    raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


def inverse_frequency_class_weights(
    labels: torch.Tensor | Sequence[int] | Sequence[Sequence[int]],
    num_labels: int,
    ignore_index: int = -100,
) -> list[float]:
    """Class weights ``1 / frequency`` from training labels (``frequency = count / total``).

    This is the IEMOCAP convention of M3Net/CMERC: their weights are 1 / (train class frequencies)
    (``feiyuchen7/M3NET: train.py (L441–454)``). Accepts a tensor or (nested) lists of labels; entries equal
    to ``ignore_index`` are skipped. A class that never occurs gets weight 0 (it cannot be a target).
    """
    if isinstance(labels, torch.Tensor):
        flat = labels.reshape(-1).long()
    else:
        values: list[int] = []
        stack: list = [labels]
        while stack:
            item = stack.pop()
            if isinstance(item, (list, tuple)):
                stack.extend(item)
            elif isinstance(item, torch.Tensor):
                values.extend(item.reshape(-1).tolist())
            else:
                values.append(int(item))
        flat = torch.tensor(values, dtype=torch.long)
    flat = flat[flat != ignore_index]
    if flat.numel() == 0:
        raise ValueError("no labels to compute class weights from")
    if bool(((flat < 0) | (flat >= num_labels)).any()):
        raise ValueError(f"labels must be in [0, {num_labels}) or {ignore_index}")
    counts = torch.bincount(flat, minlength=num_labels).double()
    total = counts.sum()
    return [float(total / c) if c > 0 else 0.0 for c in counts]


# --------------------------------------------------------------------------------------------------
# Pre-trained model base
# --------------------------------------------------------------------------------------------------


class MercPreTrainedModel(PreTrainedModel):
    """Base class of every merc_hf backbone: shared ``forward``, weight init and loss.

    A backbone subclass sets ``config_class`` / ``base_model_prefix``, builds its modules in ``__init__``
    (ending with ``self.post_init()``) and implements :meth:`_encode`. Custom ``nn.Module`` blocks with raw
    ``nn.Parameter`` s define ``_merc_init_weights(self)`` using ``transformers.initialization``; it is
    called from :meth:`_init_weights`.
    """

    config_class = MercConfig
    base_model_prefix = "merc"
    main_input_name = "text"
    input_modalities: ClassVar[list[str]] = ["text", "audio", "video"]
    accepts_loss_kwargs = False
    supports_gradient_checkpointing = False
    _no_split_modules: ClassVar[list[str]] = []
    reference_context_stages: ClassVar[tuple[str, ...] | None] = None
    """Stages that honour a context mask in ``"reference"`` view mode (the others see the whole dialogue,
    read through :meth:`MercInputs.stage_context`); ``None``: every stage, as in ``"exact"`` mode."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``, after checking a local checkpoint folder's files: a truncated
        or corrupt ``model.safetensors``/``config.json`` raises :class:`merc_hf.hub.CheckpointError` naming
        the file (and an earlier complete checkpoint), instead of an error without a path."""
        if isinstance(pretrained_model_name_or_path, (str, os.PathLike)):
            from ..hub import check_checkpoint

            check_checkpoint(pretrained_model_name_or_path, weights_only=True)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch-default initialisation (what the reference implementations train from), written with
        ``transformers.initialization`` so that loaded tensors are never overwritten."""
        if isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight.shape[1]
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.RNNBase):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for param in module.parameters(recurse=False):
                init.uniform_(param, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
            if module.weight is not None:
                init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        custom = getattr(module, "_merc_init_weights", None)
        if callable(custom):
            custom()

    def compute_loss(
        self, logits: torch.Tensor, labels: torch.Tensor, utterance_mask: torch.Tensor
    ) -> torch.Tensor:
        """The configured loss (:func:`emotion_loss`) with the config's class weights and γ."""
        return emotion_loss(
            logits,
            labels,
            loss_type=self.config.loss_type,
            class_weights=self.config.class_weights,
            focal_gamma=self.config.focal_gamma,
            utterance_mask=utterance_mask,
        )

    def prepare_inputs(
        self,
        text: torch.Tensor | None,
        audio: torch.Tensor | None,
        visual: torch.Tensor | None,
        speakers: torch.Tensor | None,
        utterance_mask: torch.Tensor | None,
        modality_mask: torch.Tensor | None,
        context_mask: torch.Tensor | None,
        view_mode: str = "exact",
    ) -> MercInputs:
        """Validate a batch and turn it into :class:`MercInputs` (padding zeroed, modalities removed)."""
        if view_mode not in VIEW_MODES:
            raise ValueError(f"view_mode must be one of {VIEW_MODES}, got {view_mode!r}")
        given = {"text": text, "audio": audio, "visual": visual}
        missing = [m for m in self.config.modalities if given[m] is None]
        if missing:
            raise ValueError(
                f"{type(self).__name__} is configured with modalities {self.config.modalities} but the batch "
                f"lacks {missing}"
            )
        first = given[self.config.modalities[0]]
        if first.ndim != 3:
            raise ValueError(f"modality features must be (B, T, D), got {tuple(first.shape)}")
        batch_size, length = first.shape[:2]
        device = first.device
        features: dict[str, torch.Tensor] = {}
        for name in self.config.modalities:
            x = given[name]
            expected = (batch_size, length, getattr(self.config, f"{name}_dim"))
            if tuple(x.shape) != expected:
                raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
            features[name] = x.to(device=device, dtype=self.dtype)
        if utterance_mask is None:
            utterance_mask = torch.ones(batch_size, length, dtype=torch.bool, device=device)
        elif tuple(utterance_mask.shape) != (batch_size, length):
            raise ValueError(
                f"utterance_mask must have shape {(batch_size, length)}, got {tuple(utterance_mask.shape)}"
            )
        utterance_mask = utterance_mask.to(device).bool()
        if speakers is None:
            speakers = torch.zeros(batch_size, length, dtype=torch.long, device=device)
        elif tuple(speakers.shape) != (batch_size, length):
            raise ValueError(f"speakers must have shape {(batch_size, length)}, got {tuple(speakers.shape)}")
        speakers = speakers.to(device).long().masked_fill(~utterance_mask, 0)
        if bool(((speakers < 0) | (speakers >= self.config.n_speakers)).any()):
            raise ValueError(f"speaker indices must be in [0, n_speakers={self.config.n_speakers})")
        resolved = resolve_context_mask(
            None if context_mask is None else context_mask.to(device), utterance_mask
        )
        if modality_mask is not None:
            modality_mask = modality_mask.to(device)
        removal = "padded_mean" if view_mode == "reference" else self.config.modality_removal
        features = remove_modalities(
            features, modality_mask, utterance_mask, mode=removal, context_mask=resolved
        )
        return MercInputs(
            features=features,
            speakers=speakers,
            utterance_mask=utterance_mask,
            context_mask=resolved,
            full_context=context_mask is None,
            view_mode=view_mode,
        )

    def _encode(
        self, inputs: MercInputs
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Backbone-specific part: return ``(utterance_repr (B, T, H), logits (B, T, C))``.

        A backbone with auxiliary training objectives of its own (e.g. SURE's expert KL, load-balancing and
        self-distillation terms) may return a third element, a scalar auxiliary loss or ``None``:
        :meth:`forward` adds it to the emotion loss when ``labels`` are given (it is not divided by
        ``logit_temperature``) and ignores it otherwise.
        """
        raise NotImplementedError

    def _needs_speakers(self) -> bool:
        """Whether ``forward`` requires ``speakers`` (speaker-aware backbones override this)."""
        return False

    # Optional split of :meth:`_encode` into stages, so that removal views re-run only what they change
    # (:func:`merc_hf.calibration.views.removal_view_logits`):
    # - ``_unimodal_stages(inputs, names=None)`` -> ``{modality: (B, T, D)}``: each modality's encoder reads
    #   only its own features (and speakers / masks), and each dialogue only its own rows (the views stack
    #   several variants of a batch into one call);
    # - ``_contextual_stages(unimodal, inputs)`` -> ``(utterance_repr, logits)`` (before
    #   ``logit_temperature``): everything after;
    # - ``_unimodal_reads_context(name, inputs)``: whether that modality's encoder honours ``inputs``'
    #   context mask (a context view re-runs it);
    # - optionally ``_context_free_stages(unimodal, inputs)`` -> a dict that ``_contextual_stages(unimodal,
    #   inputs, context_free)`` accepts: the part of the contextual stages that ignores ``inputs``' context
    #   mask, shared by the context views (M3Net: node projection, and the hypergraph in reference mode).
    # A backbone without them (DialogueGCN, DialogueRNN) runs every view as a full forward pass.

    def forward(
        self,
        text: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        visual: torch.Tensor | None = None,
        speakers: torch.Tensor | None = None,
        utterance_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        same_speaker: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        view_mode: str = "exact",
        return_dict: bool | None = None,
    ) -> EmotionRecognitionOutput | tuple[torch.Tensor, ...]:
        """Classify every utterance of a padded batch of dialogues.

        Args:
            text, audio, visual: ``(B, T, D_m)`` features; the configured modalities must be given.
            speakers: ``(B, T)`` per-dialogue speaker index; required by speaker-aware backbones.
            utterance_mask: ``(B, T)`` bool, True for real utterances (``None``: all real).
            labels: ``(B, T)`` long, -100 where unlabelled; when given, ``loss`` is computed.
            same_speaker: ``(B, T, T)`` bool; accepted so that a collated batch can be passed as
                ``model(**batch)``. Not used by the forward itself: build context views with
                :func:`build_context_mask`.
            modality_mask: ``(B, 3)`` over (text, audio, visual), 1 = keep, 0 = remove.
            context_mask: ``(B, T, T)`` bool, ``[b, i, j]`` = utterance j may inform utterance i
                (``None``: full context).
            view_mode: how ``modality_mask``/``context_mask`` remove information, ``"exact"`` or
                ``"reference"`` (module docstring "View modes").
            return_dict: return a tuple instead of :class:`EmotionRecognitionOutput` when False.

        The logits are the backbone's divided by ``config.logit_temperature`` (1 unless the checkpoint was
        temperature-scaled), and the loss is computed on these scaled logits.
        """
        del same_speaker  # part of the batch contract; context views are built by the caller
        inputs = self.prepare_inputs(
            text, audio, visual, speakers, utterance_mask, modality_mask, context_mask, view_mode
        )
        if speakers is None and self._needs_speakers():
            raise ValueError(f"{type(self).__name__} uses speaker information: pass speakers")
        utterance_repr, logits, *auxiliary = self._encode(inputs)
        if self.config.logit_temperature != 1.0:
            logits = logits / self.config.logit_temperature
        utterance_repr = utterance_repr.masked_fill(~inputs.utterance_mask[..., None], 0.0)
        loss = None
        if labels is not None:
            loss = self.compute_loss(logits, labels.to(logits.device), inputs.utterance_mask)
            if auxiliary and auxiliary[0] is not None:
                loss = loss + auxiliary[0]
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output = EmotionRecognitionOutput(loss=loss, logits=logits, utterance_repr=utterance_repr)
        return output if return_dict else output.to_tuple()
