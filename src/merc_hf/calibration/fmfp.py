"""FMFP: flat minima for failure prediction (Zhu et al., "Rethinking Confidence Calibration for Failure
Prediction", ECCV 2022).

The paper finds that flat minima make confidence separate correct from wrong predictions better, and
reaches them by combining two optimisation techniques, without any extra loss term:

* **SAM** (sharpness-aware minimisation, Foret et al. 2021): each step computes the gradient ``g`` at
  ``w``, moves to ``w + ε`` with ``ε = ρ · g / ‖g‖₂`` (one global norm over all parameters), takes the
  gradient there and applies it at ``w`` with the base optimiser (:func:`sam_perturbation`).
* **SWA** (stochastic weight averaging, Izmailov et al. 2018): the weights at the end of every epoch from
  ``swa_start`` (a fraction of the training epochs) on are averaged, and the average is the final model.

:class:`~merc_hf.training.MercTrainer` does both when given an :class:`FMFP` (it overrides
``training_step`` for SAM and adds an epoch-end callback for SWA). The running average is part of every
checkpoint (``state_dict``), so a resumed run continues it. The averaged weights replace the model when
training ends, *after* the ``Trainer`` loaded the best validation checkpoint: with FMFP the final model is
the average, as in the paper, not the selected epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn


def sam_perturbation(grads: Sequence[torch.Tensor | None], rho: float) -> list[torch.Tensor | None]:
    """``ε = ρ · g / ‖g‖₂`` per parameter, with the norm taken over all gradients together.

    ``None`` gradients (unused parameters) stay ``None``; an all-zero gradient gives ``ε = 0``.
    """
    present = [g for g in grads if g is not None]
    if not present:
        return [None for _ in grads]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in present]))
    scale = rho / norm if float(norm) > 0 else 0.0
    return [None if g is None else g * scale for g in grads]


@dataclass
class FMFP:
    """SAM + SWA as a calibration method for :class:`~merc_hf.training.MercTrainer`.

    Args:
        sam_rho: SAM neighbourhood radius ρ (0.05, the SAM default, also used by FMFP).
        swa_start: fraction of the training epochs after which SWA averages the end-of-epoch weights
            (this package's default: the last quarter of training).
    """

    sam_rho: float = 0.05
    swa_start: float = 0.75
    average: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)
    n_averaged: int = field(default=0, init=False, repr=False)

    name = "fmfp"

    def __post_init__(self) -> None:
        if self.sam_rho < 0:
            raise ValueError(f"sam_rho must be >= 0, got {self.sam_rho}")
        if not 0.0 <= self.swa_start <= 1.0:
            raise ValueError(f"swa_start must be in [0, 1], got {self.swa_start}")

    def to_dict(self) -> dict:
        return {"name": self.name, "sam_rho": self.sam_rho, "swa_start": self.swa_start}

    def training_loss(
        self, model: nn.Module, inputs: Mapping[str, torch.Tensor], outputs
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """FMFP adds no loss term (it changes the optimisation)."""
        return outputs.logits.new_zeros(()), {}

    @torch.no_grad()
    def update_average(self, model: nn.Module) -> None:
        """Fold the current floating-point weights into the running mean: ``avg += (w − avg) / (n + 1)``."""
        for name, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            current = value.detach().to("cpu", torch.float32)
            if self.n_averaged == 0:
                self.average[name] = current.clone()
            else:
                self.average[name] += (current - self.average[name]) / (self.n_averaged + 1)
        self.n_averaged += 1

    @torch.no_grad()
    def apply_average(self, model: nn.Module) -> bool:
        """Copy the averaged weights into ``model``; False (model unchanged) when nothing was averaged."""
        if self.n_averaged == 0:
            return False
        state = model.state_dict()
        for name, value in self.average.items():
            state[name].copy_(value.to(state[name].dtype))
        return True

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "n_averaged": torch.tensor(self.n_averaged),
            **{f"average.{k}": v for k, v in self.average.items()},
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.n_averaged = int(state["n_averaged"])
        self.average = {
            k.removeprefix("average."): v.clone() for k, v in state.items() if k.startswith("average.")
        }
