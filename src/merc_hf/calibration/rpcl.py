"""RPCL: robust pair confidence learning for emotion–cause pair extraction (Pan et al., arXiv 2606.18893).

Training-only terms added to a pair scorer's supervised loss (emotion CE + cause CE + pair CE over valid
candidates); inference and decoding are unchanged. Notation of ``mecpe_rpcl_and_chsims_cmc.md`` §3.4: a
**row** is an emotion utterance ``i``; ``p_ij`` the pair probability of candidate cause ``j``; ``q_c(j)``
the cause-classifier probability of utterance ``j``; ``sg`` stop-gradient.

* **CDMR** (confidence-difference margin ranking), :func:`cdmr_loss`: for every row with a gold cause
  ``j+`` among its candidates, its ``k`` most confident non-gold candidates ``j−`` (hard negatives; fewer
  when the row has fewer) and ``L = mean over (row, j+, j−) of max(0, m − (p_ij+ − p_ij−))`` with the
  adaptive margin ``m = m0 · exp(sg(q_c(j−) − q_c(j+)))``.
* **CCPS** (corrupted-context pair stability), :func:`ccps_loss`: a second forward pass in which every
  utterance that is not part of any gold pair (as emotion or as cause) has its fused representation zeroed
  with probability ``ρ`` (:class:`~merc_hf.models.pair_scorer.PairScorerModel`'s ``corruption_mask``);
  ``L = λ_cor · pair CE on the corrupted view + λ_ali · mean over valid candidates of ‖p̃ − sg(p)‖²``, the
  squared distance between the two 2-way distributions (pair, no pair) of Eq. 15, i.e. ``2 (p̃ − sg(p))²``.
* Total added to the supervised loss: ``λ_row · L_CDMR + L_CCPS``.

Choices the paper leaves open (documented here, see the reference notes): rows without a gold cause among
the candidates or without any non-gold candidate contribute no CDMR triplet; a batch without any triplet
adds 0. Hard negatives are selected by pair confidence without gradient through the selection. The clean
and corrupted passes draw their own dropout masks. Corruption is applied to the fused multimodal
utterance representation, so all modalities of an utterance are zeroed together. The ablations of the
paper are the same class with ``lambda_row=0`` (CCPS only) or ``lambda_cor=lambda_ali=0`` (CDMR only;
the corrupted pass is then skipped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..models.pair_scorer.modeling_pair_scorer import pair_loss

# batch keys that are not model inputs (sample_index: the trainer's bookkeeping of batch rows)
_LABEL_KEYS = ("labels", "cause_labels", "pair_labels", "sample_index")


def cdmr_loss(
    pair_probs: torch.Tensor,
    candidates: torch.Tensor,
    gold: torch.Tensor,
    cause_probs: torch.Tensor,
    k: int = 8,
    margin: float = 0.05,
) -> tuple[torch.Tensor, int]:
    """Row-wise confidence-difference margin ranking with an adaptive margin.

    Args:
        pair_probs: ``(B, T, T)`` pair probabilities ``p_ij`` (row ``i`` = emotion utterance).
        candidates: ``(B, T, T)`` bool, the valid candidates.
        gold: ``(B, T, T)`` bool, gold pairs (outside ``candidates`` they are ignored).
        cause_probs: ``(B, T)`` cause-classifier probabilities ``q_c``; only enter the margin, detached.
        k: hard negatives per row.
        margin: ``m0``.

    Returns:
        ``(loss, n_triplets)``: the mean hinge over all ``(row, j+, j−)`` triplets (a differentiable zero
        when there is none) and the number of triplets.
    """
    gold = gold.bool() & candidates.bool()
    negatives = candidates.bool() & ~gold
    length = pair_probs.shape[-1]
    k = min(k, length)
    with torch.no_grad():
        ranking = pair_probs.detach().masked_fill(~negatives, -1.0)
        top_values, top_index = ranking.topk(k, dim=-1)  # (B, T, k)
    negative_valid = top_values >= 0  # (B, T, k): fewer than k negatives in short rows
    negative_probs = pair_probs.gather(-1, top_index)  # (B, T, k), with gradient
    q = cause_probs.detach()
    q_negative = q[:, None, :].expand(-1, length, -1).gather(-1, top_index)  # (B, T, k)
    # triplets (b, i, j+, n): gold[b, i, j+] & negative_valid[b, i, n]
    valid = gold[..., None] & negative_valid[:, :, None, :]  # (B, T, T, k)
    n_triplets = int(valid.sum())
    if n_triplets == 0:
        return pair_probs.sum() * 0.0, 0
    adaptive = margin * torch.exp(q_negative[:, :, None, :] - q[:, None, :, None])  # (B, T, T+, k)
    gap = pair_probs[..., None] - negative_probs[:, :, None, :]
    hinge = torch.relu(adaptive - gap)
    return hinge[valid].mean(), n_triplets


def protected_utterances(pair_labels: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` bool: utterances that are the emotion or the cause of some gold pair."""
    gold = pair_labels.bool()
    return gold.any(dim=2) | gold.any(dim=1)


def corruption_mask(
    pair_labels: torch.Tensor,
    utterance_mask: torch.Tensor,
    rho: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(B, T)`` bool: each real, unprotected utterance is corrupted independently with probability ``rho``."""
    draw = torch.rand(utterance_mask.shape, generator=generator, device=utterance_mask.device)
    return (draw < rho) & utterance_mask.bool() & ~protected_utterances(pair_labels)


def ccps_loss(
    corrupted_pair_logits: torch.Tensor,
    clean_pair_probs: torch.Tensor,
    pair_labels: torch.Tensor,
    candidates: torch.Tensor,
    lambda_cor: float = 0.75,
    lambda_ali: float = 0.2,
    positive_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``λ_cor · pair CE(corrupted) + λ_ali · mean over candidates of ‖p̃ − sg(p)‖²`` (Eq. 15).

    The alignment compares the 2-way distributions ``(p, 1 − p)``: ``(p̃ − p)² + ((1 − p̃) − (1 − p))²
    = 2 (p̃ − p)²``.

    Returns the weighted sum and the two unweighted parts (``"ccps_ce"``, ``"ccps_align"``).
    """
    ce = pair_loss(corrupted_pair_logits, pair_labels, candidates, positive_weight)
    if bool(candidates.any()):
        corrupted = torch.sigmoid(corrupted_pair_logits.float())[candidates]
        align = 2.0 * (corrupted - clean_pair_probs.detach().float()[candidates]).pow(2).mean()
    else:
        align = corrupted_pair_logits.sum() * 0.0
    return lambda_cor * ce + lambda_ali * align, {"ccps_ce": ce, "ccps_align": align}


@dataclass
class RPCL:
    """The RPCL training terms as a calibration method for :class:`~merc_hf.training.MercTrainer`.

    Defaults are the paper's (section 4.1.2): ``m0 = 0.05``, ``k = 8``, ``ρ = 0.30``, ``λ_row = 0.3``,
    ``λ_cor = 0.75``, ``λ_ali = 0.2``. Works with any model whose output has ``pair_logits``,
    ``cause_logits`` and ``candidate_mask`` and whose forward takes ``corruption_mask``.
    """

    margin: float = 0.05
    k: int = 8
    rho: float = 0.30
    lambda_row: float = 0.3
    lambda_cor: float = 0.75
    lambda_ali: float = 0.2

    name = "rpcl"

    def __post_init__(self) -> None:
        for field_name in ("margin", "lambda_row", "lambda_cor", "lambda_ali"):
            if getattr(self, field_name) < 0:
                raise ValueError(f"{field_name} must be >= 0, got {getattr(self, field_name)}")
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive int, got {self.k!r}")
        if not 0.0 <= self.rho <= 1.0:
            raise ValueError(f"rho must be in [0, 1], got {self.rho}")

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}

    def training_loss(
        self, model: nn.Module, inputs: Mapping[str, torch.Tensor], outputs
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The added terms for one training batch, given the clean ``outputs`` (with gradients)."""
        pair_labels = inputs["pair_labels"]
        candidates = outputs.candidate_mask
        pair_probs = torch.sigmoid(outputs.pair_logits.float())
        parts: dict[str, torch.Tensor] = {}
        total = pair_probs.new_zeros(())
        if self.lambda_row > 0:
            cdmr, _ = cdmr_loss(
                pair_probs,
                candidates,
                pair_labels.bool(),
                torch.sigmoid(outputs.cause_logits.float()),
                k=self.k,
                margin=self.margin,
            )
            parts["cdmr"] = cdmr
            total = total + self.lambda_row * cdmr
        if self.lambda_cor > 0 or self.lambda_ali > 0:
            corrupt = corruption_mask(pair_labels, inputs["utterance_mask"], self.rho)
            view = {k: v for k, v in inputs.items() if k not in _LABEL_KEYS}
            corrupted = model(**view, corruption_mask=corrupt)
            ccps, ccps_parts = ccps_loss(
                corrupted.pair_logits,
                pair_probs,
                pair_labels,
                candidates,
                self.lambda_cor,
                self.lambda_ali,
                positive_weight=getattr(model, "module", model).config.pair_positive_weight,
            )
            parts.update(ccps_parts)
            total = total + ccps
        return total, {k: float(v.detach()) for k, v in parts.items()}
