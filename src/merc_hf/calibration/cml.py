"""CML: Calibrating Multimodal Learning (Ma et al., ICML 2023).

The principle of the paper: a model's confidence should not *increase* when a modality is removed,
since removing information cannot justify more certainty. The CML regulariser penalises every violation::

    L_CML = mean over real utterances u and modal removals r of max(0, conf_r(u) − conf(u))

with ``conf`` the maximum softmax probability of the full input and ``conf_r`` that of removal view ``r``
(:mod:`merc_hf.calibration.views`: ``"A"``, ``"V"``, ``"T"``). It is added to the task loss,
``L = L_task + weight · L_CML``. Unlike CMERC's confidence constraint (:mod:`merc_hf.calibration.cmerc`),
the confidence is the predicted class's (no label is used) and neither side is detached: the regulariser
may lower the view's confidence as well as raise the full input's.

Choices of this implementation (the paper states the principle for any multimodal classifier):

* The views run with gradients in the model's current mode (in training, with their own dropout
  masks), all modal removals stacked along the batch in **one** forward pass.
* A modality is removed through the backbone interface (``modality_mask`` with the config's
  ``modality_removal``, by default replaced by its dialogue mean), the same removal as CMERC's views.
* Only single-modality removals are compared, every applicable one at every step; views with two
  modalities removed at once are not used.
* Removals of a modality that the batch lacks, or that the model does not use (``config.modalities``),
  are skipped: such a view differs from the full input only by dropout noise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .views import MODAL_REMOVALS, applicable_removals, stack_views


def max_softmax_confidence(logits: torch.Tensor) -> torch.Tensor:
    """The probability of the predicted class, ``(…,)`` from ``(…, C)`` logits (computed in float32+)."""
    return torch.softmax(logits.float(), dim=-1).amax(dim=-1)


def cml_penalty(
    full_logits: torch.Tensor, view_logits: Mapping[str, torch.Tensor], utterance_mask: torch.Tensor
) -> torch.Tensor:
    """The CML regulariser: mean over real utterances and views of ``max(0, conf_view − conf_full)``.

    Args:
        full_logits: ``(B, T, C)`` logits of the full input.
        view_logits: removal type -> ``(B, T, C)`` logits of that removal view.
        utterance_mask: ``(B, T)`` bool, True for real utterances (padding is ignored).

    Returns:
        A scalar; gradients reach both the full and the view logits. A differentiable zero when there is
        no view or no real utterance.
    """
    if full_logits.ndim != 3:
        raise ValueError(f"full_logits must have shape (B, T, C), got {tuple(full_logits.shape)}")
    if tuple(utterance_mask.shape) != tuple(full_logits.shape[:2]):
        raise ValueError(
            f"utterance_mask must have shape {tuple(full_logits.shape[:2])}, got {tuple(utterance_mask.shape)}"
        )
    for removal, logits in view_logits.items():
        if logits.shape != full_logits.shape:
            raise ValueError(
                f"view_logits[{removal!r}] must have the shape of full_logits {tuple(full_logits.shape)}, "
                f"got {tuple(logits.shape)}"
            )
    real = utterance_mask.bool()
    n_terms = int(real.sum()) * len(view_logits)
    if n_terms == 0:
        return full_logits.sum() * 0.0
    full = max_softmax_confidence(full_logits)
    total = full.new_zeros(())
    for logits in view_logits.values():
        total = total + (max_softmax_confidence(logits) - full).clamp(min=0)[real].sum()
    return total / n_terms


@dataclass
class CML:
    """The CML regulariser (Ma et al., ICML 2023) as a calibration method for :class:`MercTrainer`.

    Args:
        weight: weight of the regulariser in the total loss. The paper tunes it per dataset; 1.0 is this
            package's default, not a value taken from the paper.
        removals: which modal removals to compare with (a subset of ``("A", "V", "T")``).
    """

    weight: float = 1.0
    removals: Sequence[str] = MODAL_REMOVALS

    name = "cml"

    def __post_init__(self) -> None:
        if isinstance(self.removals, str):
            raise ValueError(f"removals must be a sequence such as ('A', 'V', 'T'), got {self.removals!r}")
        self.removals = tuple(self.removals)
        unknown = [r for r in self.removals if r not in MODAL_REMOVALS]
        if unknown:
            raise ValueError(f"removals must be modal removals from {MODAL_REMOVALS}, got {unknown}")
        if not self.removals:
            raise ValueError("removals must name at least one modal removal")
        if (
            isinstance(self.weight, bool)
            or not isinstance(self.weight, numbers.Real)
            or not math.isfinite(self.weight)
            or self.weight < 0
        ):
            raise ValueError(f"weight must be a finite number >= 0, got {self.weight!r}")
        self.weight = float(self.weight)

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self), "removals": list(self.removals)}

    def training_loss(
        self, model: nn.Module, inputs: Mapping[str, torch.Tensor], outputs
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``weight · L_CML`` for one training batch, given the full-input ``outputs`` (with gradients).

        The views are computed here with gradients, in the model's current mode, in one stacked forward
        pass. Returns the term and ``{"cml": weighted value}`` (like CMERC's parts, the amount added to the
        loss); a zero term when the weight is 0 or no removal applies.
        """
        full_logits = outputs.logits
        removals = applicable_removals(inputs, self.removals, model)
        if self.weight == 0 or not removals:
            return full_logits.sum() * 0.0, {"cml": 0.0}
        stacked = model(**stack_views(inputs, removals)).logits
        views = dict(zip(removals, stacked.chunk(len(removals), dim=0)))
        term = self.weight * cml_penalty(full_logits, views, inputs["utterance_mask"])
        return term, {"cml": float(term.detach())}
