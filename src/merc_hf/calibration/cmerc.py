"""CMERC: calibration of conversational emotion models without changing their structure.

Tu et al., "Multimodal Emotion Recognition Calibration in Conversations", ACM MM 2024 (reference code
``HITSZ-HLT/CMERC``). Every training step compares the model on the full dialogue with five removal views
(:mod:`merc_hf.calibration.views`: A, V, T modality removals; X intra-speaker and O inter-speaker context
removals) and adds three terms to the task loss (paper Eq. 9)::

    L = L_task + γ_m · L_scl^M + γ_c · L_scl^C + γ_s · L_s

* **Confidence constraint** ``L_s`` (Eq. 8): the full model must be at least as confident in the gold
  class as every removal view, Σ_utterances Σ_ξ max(0, log p_ξ[y] − log p[y]), with the views detached
  (:func:`confidence_constraint`). As in the reference code the sum runs over the batch's utterances.
* **Hybrid supervised contrastive learning** (Eqs. 5–7): per removal type ξ, every utterance gets a
  pseudo-label — 1 when removing ξ lowered the model's confidence as it should (the full model is right
  and the view wrong, or both right with a higher full log-probability), 0 otherwise ("uncertain/other")
  (:func:`removal_pseudo_labels`, Algorithm 1 lines 14–17) — and a supervised contrastive loss pulls
  same-label utterance representations together (:func:`supervised_contrastive_loss`). ``L_scl^M`` sums
  the modality removals, ``L_scl^C`` the context removals.
* **Curriculum** over conversation difficulty (Eqs. 1–4, Algorithm 1 lines 1–4): the confidence boost
  CF_k^ξ = max(0, o_k^ξ[y] − o_k[y]) (Eq. 4) summed per dialogue gives
  DF = (Σ_k Σ_{ξ∈M} CF + Σ_k Σ_{ξ∈C} CF + S) / (S + T) with S speakers and T utterances (the paper's
  seed equation is garbled; this is the reference code's form, with probabilities where the reference
  uses log-probability differences). Training starts on the easiest dialogues and adds harder buckets
  stage by stage (:mod:`merc_hf.training.curriculum`).

Reference defaults (``hub_configs/``): IEMOCAP γ_m = γ_c = 0.05, γ_s = 0.005, curriculum ratio 0.15;
MELD γ_m = γ_c = 0.15, γ_s = 0.002, ratio 0.4; τ = 0.07.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .views import CONTEXT_REMOVALS, MODAL_REMOVALS, REMOVALS, removal_view_logits


def gold_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p[y] at every position, ``(…,)``; positions with label -100 get 0."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    safe = labels.clamp(min=0)
    return log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * (labels >= 0)


def confidence_boosts(
    full_logits: torch.Tensor, view_logits: Mapping[str, torch.Tensor], labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """CF^ξ = max(0, p_ξ[y] − p[y]) per utterance (paper Eq. 4); 0 where ``labels`` is -100."""
    full = gold_log_probs(full_logits, labels).exp()
    valid = labels >= 0
    return {
        r: ((gold_log_probs(v, labels).exp() - full).clamp(min=0) * valid) for r, v in view_logits.items()
    }


def conversation_difficulty(
    boosts: Mapping[str, torch.Tensor], speakers: torch.Tensor, utterance_mask: torch.Tensor
) -> torch.Tensor:
    """DF per dialogue ``(B,)`` = (Σ modal boosts + Σ context boosts + S) / (S + T) (Eqs. 1–3).

    ``S`` (number of speakers) smooths dialogues with few utterances; ``T`` is the number of utterances.
    """
    utterance_mask = utterance_mask.bool()
    total = sum((b * utterance_mask).sum(dim=1) for b in boosts.values())
    n_speakers = torch.where(utterance_mask, speakers, torch.zeros_like(speakers)).amax(dim=1) + 1
    n_utterances = utterance_mask.sum(dim=1)
    return (total + n_speakers) / (n_speakers + n_utterances)


def removal_pseudo_labels(
    full_logits: torch.Tensor, view_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """1 where removing the information lowered confidence as it should, else 0 (Alg. 1 lines 14–17).

    1 when the full model is right and the view wrong, or both are right and the full model gives the gold
    class a higher log-probability; 0 otherwise (the view is more confident, or both are wrong).
    """
    full_right = full_logits.argmax(-1) == labels
    view_right = view_logits.argmax(-1) == labels
    higher = gold_log_probs(full_logits, labels) > gold_log_probs(view_logits, labels)
    return ((full_right & ~view_right) | (full_right & view_right & higher)).long()


def supervised_contrastive_losses(
    features: torch.Tensor, label_sets: torch.Tensor, temperature: float = 0.07, eps: float = 1e-7
) -> torch.Tensor:
    """Class-balanced supervised contrastive loss over ``N`` samples (CMERC Eqs. 5–7), for ``K`` labelings
    of the same features at once.

    With z the L2-normalised features and s_ij = z_i·z_j / τ, for every anchor i (self excluded)::

        pos_i = Σ_{j≠i} (1[y_j = y_i] + ε) e^{s_ij},   neg_i = Σ_{j≠i} 1[y_j ≠ y_i] e^{s_ij}
        L = −(1/N) Σ_i w_i log(pos_i / (pos_i + neg_i)),   w_i = N / #{j : y_j = y_i}

    The inverse-frequency weight w and the ε in the positive mask follow the reference code
    (``HITSZ-HLT/CMERC: clloss.py``). Since ``pos_i + neg_i = (1 + ε) Σ_{j≠i} e^{s_ij}`` does not depend on
    the labels, the similarity matrix is computed once for all ``K`` label sets (CMERC uses one per
    removal view) and only ``Σ_{j≠i} 1[y_j = y_i] e^{s_ij}`` is computed per set.

    Args:
        features: ``(N, H)``.
        label_sets: ``(K, N)`` non-negative integer labels.

    Returns:
        ``(K,)`` losses; zeros for fewer than two samples.
    """
    n = features.shape[0]
    if n < 2:
        return features.sum() * 0.0 + features.new_zeros(label_sets.shape[0])
    z = F.normalize(features.float(), dim=-1)
    sim = z @ z.T / temperature
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=features.device)
    sim = sim - sim.masked_fill(~off_diagonal, float("-inf")).amax(dim=1, keepdim=True).detach()
    exp_sim = sim.exp() * off_diagonal
    total = exp_sim.sum(dim=1)  # Σ_{j≠i} e^{s_ij}
    n_classes = int(label_sets.max()) + 1
    losses = []
    for labels in label_sets:
        one_hot = F.one_hot(labels, n_classes).to(exp_sim.dtype)
        same = (exp_sim @ one_hot).gather(1, labels[:, None]).squeeze(1)  # Σ_{j≠i, y_j = y_i} e^{s_ij}
        pos = same + eps * total
        counts = one_hot.sum(dim=0)
        weights = n / counts[labels]
        losses.append(-(weights * torch.log(pos / ((1.0 + eps) * total))).mean())
    return torch.stack(losses)


def supervised_contrastive_loss(
    features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07, eps: float = 1e-7
) -> torch.Tensor:
    """:func:`supervised_contrastive_losses` for one labeling ``(N,)``; a scalar."""
    return supervised_contrastive_losses(features, labels[None], temperature, eps)[0]


def confidence_constraint(
    full_logits: torch.Tensor, view_logits: Mapping[str, torch.Tensor], labels: torch.Tensor
) -> torch.Tensor:
    """L_s = Σ_utterances Σ_ξ max(0, log p_ξ[y] − log p[y]) with the views detached (Eq. 8)."""
    full = gold_log_probs(full_logits, labels)
    valid = labels >= 0
    total = full.new_zeros(())
    for view in view_logits.values():
        total = total + ((gold_log_probs(view.detach(), labels) - full).clamp(min=0) * valid).sum()
    return total


@dataclass
class CMERC:
    """The CMERC training objective as a calibration method usable with any merc_hf backbone.

    Args:
        gamma_m, gamma_c, gamma_s: weights of the modality SCL, context SCL and confidence-constraint terms.
        temperature: τ of the contrastive losses.
        removals: which removal views to use (default all five; those a batch lacks are skipped).
        curriculum_ratio: share of dialogues added per curriculum stage (``None`` disables the curriculum).
        epochs_per_stage: epochs spent in each curriculum stage.
        curriculum_warmup_epochs: epochs on the full training set before difficulties are measured with
            the current model and the curriculum starts (see :mod:`merc_hf.training.curriculum`).
        views_per_pass: removal views stacked into one no-grad forward pass (``None``: all on an
            accelerator, one on CPU; see :mod:`merc_hf.calibration.views`). Speed only, same results.
    """

    gamma_m: float = 0.05
    gamma_c: float = 0.05
    gamma_s: float = 0.005
    temperature: float = 0.07
    removals: Sequence[str] = REMOVALS
    curriculum_ratio: float | None = 0.15
    epochs_per_stage: int = 1
    curriculum_warmup_epochs: int = 1
    views_per_pass: int | None = None

    name = "cmerc"

    def __post_init__(self) -> None:
        self.removals = tuple(self.removals)
        for field_name in ("gamma_m", "gamma_c", "gamma_s"):
            if getattr(self, field_name) < 0:
                raise ValueError(f"{field_name} must be >= 0, got {getattr(self, field_name)}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.curriculum_ratio is not None and not 0 < self.curriculum_ratio <= 1:
            raise ValueError(f"curriculum_ratio must be in (0, 1] or None, got {self.curriculum_ratio}")

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self), "removals": list(self.removals)}

    def training_loss(
        self, model: nn.Module, inputs: Mapping[str, torch.Tensor], outputs
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The added terms for one training batch, given the full-input ``outputs`` (with gradients)."""
        labels = inputs["labels"]
        views = removal_view_logits(model, inputs, self.removals, self.views_per_pass)
        valid = labels >= 0
        feats = outputs.utterance_repr[valid]
        full_logits = outputs.logits
        parts: dict[str, torch.Tensor] = {}
        groups = [
            (name, [r for r in members if r in views], gamma)
            for name, members, gamma in (
                ("scl_m", MODAL_REMOVALS, self.gamma_m),
                ("scl_c", CONTEXT_REMOVALS, self.gamma_c),
            )
            if gamma > 0
        ]
        used = [r for _, members, _ in groups for r in members]
        if used:
            label_sets = torch.stack(
                [removal_pseudo_labels(full_logits.detach(), views[r], labels)[valid] for r in used]
            )
            losses = dict(zip(used, supervised_contrastive_losses(feats, label_sets, self.temperature)))
            for name, members, gamma in groups:
                if members:
                    parts[name] = gamma * torch.stack([losses[r] for r in members]).sum()
        if self.gamma_s > 0 and views:
            parts["constraint"] = self.gamma_s * confidence_constraint(full_logits, views, labels)
        total = sum(parts.values(), full_logits.new_zeros(()))
        return total, {k: float(v.detach()) for k, v in parts.items()}
