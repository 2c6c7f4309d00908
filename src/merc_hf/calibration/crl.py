"""CRL: correctness ranking loss (Moon et al., "Confidence-Aware Learning for Deep Neural Networks", ICML 2020).

A sample that the network has classified correctly more often during training should get a higher
confidence. For every training sample ``i`` the method keeps ``c_i``, the proportion of the times ``i`` was
seen in training so far in which it was classified correctly (the paper's correctness history), and adds

    L_CRL = mean over pairs (i, j) of max(0, -g(c_i, c_j) · (κ_i − κ_j) + |c_i − c_j|)

with ``κ`` the maximum softmax probability and ``g = sign(c_i − c_j)``; pairs with equal history add 0. As
in the paper, pairs are formed inside the mini-batch, each sample with the next one (a cyclic shift).

Here a sample is an utterance: ``c`` is indexed by ``(dialogue, position)``. :class:`~merc_hf.training.MercTrainer`
adds a ``sample_index`` column to the training set for methods with ``needs_sample_index``, the collator
batches it, and the history is part of every checkpoint (``state_dict``), so a resumed run continues it.
Under DDP the history updates of all ranks are gathered, so every rank holds the same history. The
history is read before it is updated with the current batch (the current prediction does not rank itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn


def correctness_ranking_loss(confidence: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """``mean_i max(0, -sign(c_i − c_{i+1}) (κ_i − κ_{i+1}) + |c_i − c_{i+1}|)`` over a cyclic shift.

    Args:
        confidence: ``(N,)`` confidences ``κ`` (with gradient).
        history: ``(N,)`` correctness proportions ``c`` in ``[0, 1]`` (no gradient).
    """
    if confidence.numel() < 2:
        return confidence.sum() * 0.0
    other_confidence, other_history = confidence.roll(-1), history.roll(-1)
    sign = torch.sign(history - other_history)
    margin = (history - other_history).abs()
    return torch.relu(-sign * (confidence - other_confidence) + margin).mean()


@dataclass
class CRL:
    """Correctness ranking loss as a calibration method for :class:`~merc_hf.training.MercTrainer`.

    Args:
        weight: λ of ``L = L_task + λ · L_CRL`` (1.0 in the paper's experiments).
    """

    weight: float = 1.0
    correct: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0), init=False, repr=False)
    seen: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0), init=False, repr=False)

    name = "crl"
    needs_sample_index = True

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"weight must be >= 0, got {self.weight}")

    def to_dict(self) -> dict:
        return {"name": self.name, "weight": self.weight}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"correct": self.correct, "seen": self.seen}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.correct, self.seen = state["correct"].float(), state["seen"].float()

    def history(self, sample_index: torch.Tensor, length: int) -> torch.Tensor:
        """``(B, length)`` correctness proportions of the batch's utterances (0 for never seen)."""
        self._grow(int(sample_index.max()) + 1, length)
        rows = sample_index.cpu()
        correct, seen = self.correct[rows, :length], self.seen[rows, :length]
        return (correct / seen.clamp_min(1.0)).to(sample_index.device)

    def update(self, sample_index: torch.Tensor, correct: torch.Tensor, valid: torch.Tensor) -> None:
        """Count one more examination of every valid utterance, and a success where ``correct``."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (sample_index.cpu(), correct.cpu(), valid.cpu()))
        else:
            gathered = [(sample_index.cpu(), correct.cpu(), valid.cpu())]
        for rows, hits, mask in gathered:
            self._grow(int(rows.max()) + 1, mask.shape[1])
            length = mask.shape[1]
            self.seen[rows, :length] += mask.float()
            self.correct[rows, :length] += (hits & mask).float()

    def _grow(self, n_rows: int, n_cols: int) -> None:
        rows, cols = max(n_rows, self.correct.shape[0]), max(n_cols, self.correct.shape[1])
        if (rows, cols) != tuple(self.correct.shape):
            correct, seen = torch.zeros(rows, cols), torch.zeros(rows, cols)
            correct[: self.correct.shape[0], : self.correct.shape[1]] = self.correct
            seen[: self.seen.shape[0], : self.seen.shape[1]] = self.seen
            self.correct, self.seen = correct, seen

    def training_loss(
        self, model: nn.Module, inputs: Mapping[str, torch.Tensor], outputs
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted ranking term for one training batch; then records the batch's correctness."""
        if "sample_index" not in inputs:
            raise ValueError(
                "CRL needs a 'sample_index' per dialogue in the batch: train with MercTrainer, which adds "
                "it to the training set, and remove_unused_columns=False"
            )
        labels, sample_index = inputs["labels"], inputs["sample_index"]
        valid = (labels != -100) & inputs["utterance_mask"].bool()
        probs = torch.softmax(outputs.logits.float(), dim=-1)
        confidence, predicted = probs.max(dim=-1)
        history = self.history(sample_index, labels.shape[1])
        loss = correctness_ranking_loss(confidence[valid], history[valid])
        self.update(sample_index, (predicted == labels).detach(), valid)
        return self.weight * loss, {"crl": float(loss.detach())}
