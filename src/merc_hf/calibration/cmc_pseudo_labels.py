"""PLGM: the pseudo-label generation module of CMC (Zhong et al., arXiv 2510.20256; reference notes §3.5,
``gw-zhong/CMC: src/train_pseudo_pretrain.py``), for stage 1 (unimodal pre-training) of
:class:`~merc_hf.models.cmc.CMCModel`.

Every training sample keeps one soft pseudo label per modality, initialised to the one-hot *multimodal*
label. Each step trains modality ``m`` with CE against ``argmax`` of its pseudo label, then moves the pseudo
label towards what the student predicts (its detached softmax ``p``)::

    y_base = one-hot(argmax pseudo)                  current hard pseudo label
    y_rev  = one-hot(argmax p)                       "reversed" label: the one-hot nearest to p
    α      = (‖p − y_base‖ − ‖p − y_rev‖) / (‖p − y_base‖ + ‖p − y_rev‖)      in [0, 1]
    cand   = (1 − α) y_base + α y_rev
    pseudo ← m(epoch) · pseudo + (1 − m(epoch)) · cand,   m(epoch) = 1 − (1 − m0) / epoch^γ

so a modality's label drifts away from the multimodal label only where the modality's own prediction
disagrees with it consistently. Pseudo-label momenta (m0, γ): text (0.8, 0.5), audio (0.99, 0.5), visual
(0.99, 0.5). The student is also tracked by an EMA teacher per modality (its encoder and head), with its own
schedule: text (0.8, 2.5), audio (0.9, 5.0), visual (0.6, 2.0) (``gw-zhong/CMC: main.py``); stage 2 starts from
the teachers (:meth:`PseudoLabelGeneration.on_train_end`, then
:meth:`~merc_hf.models.cmc.CMCModel.from_unimodal`).

Differences from the reference: the reference initialises a teacher's BatchNorm statistics once and never
updates them (it only averages parameters, and the teacher runs in eval mode), so stage 2 starts with the
initial statistics; here only the parameters are averaged and copied, and the model keeps the student's
running statistics, those of the data. Validation/test pseudo labels (which the reference evolves for loss
reporting only) are not kept.

Trainer protocol (:class:`~merc_hf.training.MercTrainer`): ``needs_sample_index``; before the forward pass
:meth:`PseudoLabelGeneration.prepare_inputs` puts the hard pseudo labels into ``unimodal_labels``; after it
:meth:`PseudoLabelGeneration.training_loss` updates the pseudo labels (adding no loss); the hooks
``on_train_begin(model)``, ``on_epoch_begin(epoch)`` (epochs counted from 1), ``on_step_end(model)`` (after
every optimizer step) and ``on_train_end(model)`` drive the teacher; ``state_dict``/``load_state_dict`` make
a resumed run exact. Under DDP the pseudo-label updates of all ranks are gathered, so every rank holds the
same labels; the teachers need no communication (all ranks hold the same parameters after a step).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

MODALITIES: tuple[str, str, str] = ("text", "audio", "visual")
NUM_CLASSES = 3


# --------------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------------


def momentum(epoch: int, m0: float, gamma: float) -> float:
    """``1 − (1 − m0) / epoch^γ``: the PLGM momentum at ``epoch`` (counted from 1), growing from ``m0``
    towards 1 (``gw-zhong/CMC: src/train_pseudo_pretrain.py``, notes §3.5)."""
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 1:
        raise ValueError(f"epoch must be an int >= 1 (epochs are counted from 1), got {epoch!r}")
    if isinstance(m0, bool) or not isinstance(m0, numbers.Real) or not 0.0 <= m0 <= 1.0:
        raise ValueError(f"m0 must be in [0, 1], got {m0!r}")
    if (
        isinstance(gamma, bool)
        or not isinstance(gamma, numbers.Real)
        or not math.isfinite(gamma)
        or gamma < 0
    ):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    return 1.0 - (1.0 - float(m0)) / float(epoch) ** float(gamma)


def reversed_labels(probs: torch.Tensor) -> torch.Tensor:
    """The "reversed" label of PLGM: the one-hot vector nearest (L2) to the probabilities ``probs``
    ``(…, C)``, as a float one-hot ``(…, C)``.

    The reference searches the C one-hot vectors for the smallest ``‖p − e_c‖``. Since
    ``‖p − e_c‖² = ‖p‖² − 2 p_c + 1``, the nearest one-hot is that of the largest ``p_c``: the one-hot of
    ``argmax p`` (ties go to the first class, as the reference's strict ``<`` search keeps the first).
    """
    return torch.nn.functional.one_hot(probs.argmax(dim=-1), probs.shape[-1]).to(probs.dtype)


def reversal_weight(probs: torch.Tensor, base: torch.Tensor, reversed_: torch.Tensor) -> torch.Tensor:
    """``α = (‖p − y_base‖ − ‖p − y_rev‖) / (‖p − y_base‖ + ‖p − y_rev‖)`` over the last axis, ``(…,)``;
    0 where both distances are 0 (``p`` is the one-hot ``y_base = y_rev``)."""
    to_base = torch.linalg.vector_norm(probs - base, dim=-1)
    to_reversed = torch.linalg.vector_norm(probs - reversed_, dim=-1)
    total = to_base + to_reversed
    return torch.where(total > 0, (to_base - to_reversed) / total.clamp_min(1e-30), torch.zeros_like(total))


def pseudo_label_candidates(probs: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
    """PLGM's candidate label ``(1 − α) y_base + α y_rev`` (module docstring) for probabilities ``probs``
    and current soft pseudo labels ``pseudo``, both ``(…, C)``."""
    if probs.shape != pseudo.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and pseudo {tuple(pseudo.shape)} must have one shape")
    base = torch.nn.functional.one_hot(pseudo.argmax(dim=-1), pseudo.shape[-1]).to(probs.dtype)
    reversed_ = reversed_labels(probs)
    alpha = reversal_weight(probs, base, reversed_)[..., None]
    return (1.0 - alpha) * base + alpha * reversed_


def ema_update(pseudo: torch.Tensor, candidate: torch.Tensor, m: float | torch.Tensor) -> torch.Tensor:
    """``m · pseudo + (1 − m) · candidate`` (``m`` a float or a tensor broadcastable to ``pseudo``, e.g.
    ``(1, 3, 1)`` for one momentum per modality)."""
    return m * pseudo + (1.0 - m) * candidate


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP / DataParallel wrapper (parameter names without ``module.``)."""
    return model.module if isinstance(getattr(model, "module", None), nn.Module) else model


def _triple(name: str, values: Sequence[float], upper: float | None) -> tuple[float, float, float]:
    values = tuple(values)
    if len(values) != len(MODALITIES):
        raise ValueError(f"{name} must have 3 values (text, audio, visual), got {values!r}")
    for value in values:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value < 0
            or (upper is not None and value > upper)
        ):
            bound = f"[0, {upper}]" if upper is not None else "finite and >= 0"
            raise ValueError(f"{name} values must be {bound}, got {values!r}")
    return tuple(float(v) for v in values)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# Method object
# --------------------------------------------------------------------------------------------------


@dataclass
class PseudoLabelGeneration:
    """PLGM as a method object for :class:`~merc_hf.training.MercTrainer` (module docstring).

    Args:
        n_samples: number of training samples, if known (the state grows to the largest ``sample_index``
            seen otherwise).
        label_momentum, label_gamma: (m0, γ) of the pseudo-label momentum per modality (text, audio,
            visual).
        teacher_momentum, teacher_gamma: (m0, γ) of the EMA teacher momentum per modality.
    """

    n_samples: int | None = None
    label_momentum: Sequence[float] = (0.8, 0.99, 0.99)
    label_gamma: Sequence[float] = (0.5, 0.5, 0.5)
    teacher_momentum: Sequence[float] = (0.8, 0.9, 0.6)
    teacher_gamma: Sequence[float] = (2.5, 5.0, 2.0)
    epoch: int = field(default=1, init=False)
    pseudo: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 3, 3), init=False, repr=False)
    labels: torch.Tensor = field(
        default_factory=lambda: torch.zeros(0, dtype=torch.long), init=False, repr=False
    )
    initialized: torch.Tensor = field(
        default_factory=lambda: torch.zeros(0, dtype=torch.bool), init=False, repr=False
    )
    teacher: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    name = "cmc_plgm"
    needs_sample_index = True

    def __post_init__(self) -> None:
        if self.n_samples is not None and (
            isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int) or self.n_samples < 0
        ):
            raise ValueError(f"n_samples must be an int >= 0 or None, got {self.n_samples!r}")
        self.label_momentum = _triple("label_momentum", self.label_momentum, 1.0)
        self.label_gamma = _triple("label_gamma", self.label_gamma, None)
        self.teacher_momentum = _triple("teacher_momentum", self.teacher_momentum, 1.0)
        self.teacher_gamma = _triple("teacher_gamma", self.teacher_gamma, None)
        if self.n_samples:
            self._grow(self.n_samples)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "label_momentum": list(self.label_momentum),
            "label_gamma": list(self.label_gamma),
            "teacher_momentum": list(self.teacher_momentum),
            "teacher_gamma": list(self.teacher_gamma),
        }

    # ------------------------------------------------------------------------------------ pseudo labels

    def _grow(self, n_rows: int) -> None:
        old = self.pseudo.shape[0]
        if n_rows <= old:
            return
        pseudo = torch.zeros(n_rows, len(MODALITIES), NUM_CLASSES)
        labels = torch.full((n_rows,), -100, dtype=torch.long)
        initialized = torch.zeros(n_rows, dtype=torch.bool)
        pseudo[:old], labels[:old], initialized[:old] = self.pseudo, self.labels, self.initialized
        self.pseudo, self.labels, self.initialized = pseudo, labels, initialized

    def _set_labels(self, rows: torch.Tensor, labels: torch.Tensor) -> None:
        """Initialise the not yet initialised ``rows`` to the one-hot of their multimodal ``labels``."""
        rows, labels = rows.cpu().long(), labels.cpu().long()
        if rows.numel() == 0:
            return
        if bool((rows < 0).any()):
            raise ValueError("sample_index must be >= 0")
        self._grow(int(rows.max()) + 1)
        new = ~self.initialized[rows]
        if not bool(new.any()):
            return
        rows, labels = rows[new], labels[new]
        if bool(((labels < 0) | (labels >= NUM_CLASSES)).any()):
            bad = rows[(labels < 0) | (labels >= NUM_CLASSES)].tolist()
            raise ValueError(
                f"PLGM initialises pseudo labels from the multimodal labels, which must be in [0, 3); "
                f"samples {bad[:5]} have {labels[(labels < 0) | (labels >= NUM_CLASSES)].tolist()[:5]}"
            )
        one_hot = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
        self.pseudo[rows] = one_hot[:, None, :].expand(-1, len(MODALITIES), -1)
        self.labels[rows] = labels
        self.initialized[rows] = True

    def initialize(self, labels: torch.Tensor | Sequence[int]) -> None:
        """Set every sample's pseudo labels to the one-hot of its multimodal label ``labels`` ``(N,)`` (all
        three modalities; reference notes §3.5). Replaces any previous state of the pseudo labels."""
        labels = torch.as_tensor(labels, dtype=torch.long).cpu()
        if labels.ndim != 1:
            raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}")
        if self.n_samples is not None and labels.shape[0] != self.n_samples:
            raise ValueError(f"labels has {labels.shape[0]} entries but n_samples is {self.n_samples}")
        self.pseudo = torch.zeros(0, len(MODALITIES), NUM_CLASSES)
        self.labels = torch.zeros(0, dtype=torch.long)
        self.initialized = torch.zeros(0, dtype=torch.bool)
        self._grow(labels.shape[0])
        self._set_labels(torch.arange(labels.shape[0]), labels)

    def pseudo_labels(self) -> torch.Tensor:
        """``(N, 3, 3)`` soft pseudo labels (sample, modality in text/audio/visual order, class); rows of
        samples never initialised are 0."""
        return self.pseudo.clone()

    def hard_pseudo_labels(self) -> torch.Tensor:
        """``(N, 3)`` long: ``argmax`` of the pseudo labels, the CE targets; -100 for samples never
        initialised."""
        hard = self.pseudo.argmax(dim=-1)
        return hard.masked_fill(~self.initialized[:, None], -100)

    def flip_rates(self) -> dict[str, float]:
        """Share of the initialised samples whose hard pseudo label differs from the multimodal label, per
        modality (``plgm_flip_<m>``)."""
        known = self.initialized
        if not bool(known.any()):
            return {}
        differs = self.pseudo[known].argmax(dim=-1) != self.labels[known][:, None]
        return {f"plgm_flip_{m}": float(differs[:, i].float().mean()) for i, m in enumerate(MODALITIES)}

    @staticmethod
    def _sample_index(inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if "sample_index" not in inputs:
            raise ValueError(
                "PseudoLabelGeneration needs a 'sample_index' per sample in the batch: train with "
                "MercTrainer, which adds it to the training set, and remove_unused_columns=False"
            )
        index = inputs["sample_index"]
        if index.ndim != 1:
            raise ValueError(f"sample_index must have shape (B,), got {tuple(index.shape)}")
        return index

    def prepare_inputs(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A copy of ``inputs`` whose ``unimodal_labels`` ``(B, 3)`` are the hard pseudo labels of the
        batch's samples (``inputs["sample_index"]``). Samples seen for the first time are initialised from
        the batch's multimodal ``labels`` (the reference's lazy initialisation)."""
        index = self._sample_index(inputs)
        if "labels" in inputs:
            self._set_labels(index, inputs["labels"])
        rows = index.cpu().long()
        if rows.numel() and (
            int(rows.max()) >= self.pseudo.shape[0] or not bool(self.initialized[rows].all())
        ):
            raise ValueError(
                "some samples of the batch have no pseudo label: call initialize(labels) or pass 'labels'"
            )
        prepared = dict(inputs)
        prepared["unimodal_labels"] = self.pseudo[rows].argmax(dim=-1).to(index.device)
        return prepared

    def update(
        self, sample_index: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor
    ) -> dict[str, float]:
        """Apply one PLGM step to the pseudo labels of ``sample_index`` ``(B,)`` from the student's
        probabilities ``probs`` ``(B, 3, 3)`` (gathered from every DDP rank first); ``labels`` ``(B,)``
        initialise samples seen for the first time. Returns the batch's flip rates and mean α."""
        payload = (
            sample_index.detach().cpu().long(),
            labels.detach().cpu().long(),
            probs.detach().cpu().float(),
        )
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, payload)
        else:
            gathered = [payload]
        m = torch.tensor(
            [momentum(self.epoch, m0, g) for m0, g in zip(self.label_momentum, self.label_gamma)]
        )[None, :, None]
        flips, alphas = [], []
        for rows, batch_labels, batch_probs in gathered:
            if batch_probs.shape != (rows.shape[0], len(MODALITIES), NUM_CLASSES):
                raise ValueError(
                    f"modality probabilities must have shape ({rows.shape[0]}, 3, 3), got {tuple(batch_probs.shape)}"
                )
            self._set_labels(rows, batch_labels)
            current = self.pseudo[rows]
            candidate = pseudo_label_candidates(batch_probs, current)
            base = torch.nn.functional.one_hot(current.argmax(dim=-1), NUM_CLASSES).float()
            alphas.append(reversal_weight(batch_probs, base, reversed_labels(batch_probs)))
            self.pseudo[rows] = ema_update(current, candidate, m)
            flips.append(self.pseudo[rows].argmax(dim=-1) != self.labels[rows][:, None])
        flip = torch.cat(flips).float().mean(dim=0)
        parts = {f"plgm_flip_{mod}": float(flip[i]) for i, mod in enumerate(MODALITIES)}
        parts["plgm_alpha"] = float(torch.cat(alphas).mean())
        return parts

    def training_loss(
        self, model: nn.Module, inputs: Mapping[str, torch.Tensor], outputs
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Update the pseudo labels of the batch from the student's detached ``outputs.modality_logits``
        (softmax, per modality). Adds no loss: returns a differentiable zero and the log values (share of
        the batch whose hard pseudo label differs from the multimodal label per modality, mean α)."""
        index = self._sample_index(inputs)
        if "labels" not in inputs:
            raise ValueError("PseudoLabelGeneration needs the multimodal 'labels' in the batch")
        probs = torch.softmax(outputs.modality_logits.detach().float(), dim=-1)
        parts = self.update(index, inputs["labels"], probs)
        return outputs.logits.sum() * 0.0, parts

    # ------------------------------------------------------------------------------------ EMA teacher

    @staticmethod
    def modality_parameters(model: nn.Module, modality: str) -> dict[str, nn.Parameter]:
        """The parameters of ``modality``'s encoder and head: names starting with ``encoders.<m>.`` or
        ``heads.<m>.`` (DDP wrappers are looked through)."""
        prefixes = (f"encoders.{modality}.", f"heads.{modality}.")
        params = {n: p for n, p in _unwrap(model).named_parameters() if n.startswith(prefixes)}
        if not params:
            raise ValueError(
                f"the model has no parameter named encoders.{modality}.* or heads.{modality}.*: PLGM's "
                "teacher needs a CMCModel"
            )
        return params

    def _init_teacher(self, model: nn.Module) -> None:
        self.teacher = {
            name: p.detach().float().clone()
            for m in MODALITIES
            for name, p in self.modality_parameters(model, m).items()
        }

    def on_train_begin(self, model: nn.Module) -> None:
        """Start the teachers as copies of the student (as the reference), unless a resumed state already
        holds them."""
        if not self.teacher:
            self._init_teacher(model)

    def on_epoch_begin(self, epoch: int) -> None:
        """Set the current epoch, counted from 1 (the momentum schedules depend on it)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 1:
            raise ValueError(f"epoch must be an int >= 1 (epochs are counted from 1), got {epoch!r}")
        self.epoch = int(epoch)

    @torch.no_grad()
    def on_step_end(self, model: nn.Module) -> None:
        """After an optimizer step: ``teacher ← m_t · teacher + (1 − m_t) · student`` for each modality's
        encoder and head parameters, with that modality's teacher momentum ``m_t(epoch)``. Without a prior
        :meth:`on_train_begin` the teachers start from the current parameters."""
        if not self.teacher:
            self._init_teacher(model)
        for i, m in enumerate(MODALITIES):
            rate = momentum(self.epoch, self.teacher_momentum[i], self.teacher_gamma[i])
            for name, p in self.modality_parameters(model, m).items():
                if name not in self.teacher:
                    raise ValueError(
                        f"the teacher has no {name}: the model changed since the teacher was made"
                    )
                ema = self.teacher[name]
                if ema.device != p.device:
                    ema = self.teacher[name] = ema.to(p.device)
                ema.mul_(rate).add_(p.detach().float(), alpha=1.0 - rate)

    @torch.no_grad()
    def on_train_end(self, model: nn.Module) -> None:
        """Copy the teachers' parameters into ``model`` (stage 2 starts from the EMA teachers, notes §3.5).
        Other parameters and all buffers are left alone. Nothing happens without teachers."""
        if not self.teacher:
            return
        for m in MODALITIES:
            for name, p in self.modality_parameters(model, m).items():
                p.copy_(self.teacher[name].to(device=p.device, dtype=p.dtype))

    # ------------------------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Pseudo labels, multimodal labels, initialisation flags, epoch and teachers (``teacher.<name>``),
        as CPU tensors."""
        state = {
            "pseudo_labels": self.pseudo.clone(),
            "labels": self.labels.clone(),
            "initialized": self.initialized.clone(),
            "epoch": torch.tensor(self.epoch, dtype=torch.long),
        }
        state.update({f"teacher.{name}": t.detach().cpu().clone() for name, t in self.teacher.items()})
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.pseudo = state["pseudo_labels"].float().clone()
        self.labels = state["labels"].long().clone()
        self.initialized = state["initialized"].bool().clone()
        self.epoch = int(state["epoch"])
        self.teacher = {
            key[len("teacher.") :]: value.float().clone()
            for key, value in state.items()
            if key.startswith("teacher.")
        }
