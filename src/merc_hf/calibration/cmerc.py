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
  (:func:`removal_pseudo_labels`; this correctness-based rule is the reference code's, ``train_cm.py``,
  where Algorithm 1 of the paper compares confidences only) — and a supervised contrastive loss pulls
  same-label utterance representations together (:func:`supervised_contrastive_loss`). ``L_scl^M`` sums
  the modality removals, ``L_scl^C`` the context removals.
* **Curriculum** over conversation difficulty (Eqs. 1–4, Algorithm 1 lines 1–4), as the reference code
  computes it (``HITSZ-HLT/CMERC: caldiff/cal_diff.py``): per dialogue
  DF = (Σ_k Σ_ξ max(0, log p_ξ[y_k] − log p[y_k]) + S) / (S + T) over the five removals, with S speakers
  and T utterances (:func:`conversation_difficulty`; the paper's Eq. 4 writes the boost with
  probabilities, the code with log-probabilities), measured **once** with a trained model. Training then
  takes baby steps: epoch e uses the easiest min(1, ratio·(⌊e/epochs_per_stage⌋ + 1)) share of the
  dialogues, once each (:mod:`merc_hf.training.curriculum`).
* **Views** (``view_mode``): ``"reference"`` builds them as the reference code does — a removed modality
  is its mean over the batch's padded time axis, X/O mask only the backbone's graph edges (M3Net's
  intra-modal GNN edges), and the views come from an eval-mode copy of the model taken at the start of
  each epoch; ``"exact"`` removes the information from every stage of the current model
  (:mod:`merc_hf.models.base`, "View modes").

Reference defaults (``hub_configs/``): IEMOCAP γ_m = γ_c = 0.05, γ_s = 0.005, curriculum ratio 0.15;
MELD γ_m = γ_c = 0.15, γ_s = 0.002, ratio 0.4; τ = 0.07.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.base import VIEW_MODES
from .views import CONTEXT_REMOVALS, MODAL_REMOVALS, REMOVALS, removal_view_logits


def gold_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p[y] at every position, ``(…,)``; positions with label -100 get 0."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    safe = labels.clamp(min=0)
    return log_probs.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * (labels >= 0)


def log_confidence_rises(
    full_logits: torch.Tensor, view_logits: Mapping[str, torch.Tensor], labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """max(0, log p_ξ[y] − log p[y]) per utterance and view ``(…,)``; 0 where ``labels`` is -100.

    The per-utterance term of both the confidence constraint (Eq. 8) and the reference code's difficulty.
    """
    full = gold_log_probs(full_logits, labels)
    valid = labels >= 0
    return {r: (gold_log_probs(v, labels) - full).clamp(min=0) * valid for r, v in view_logits.items()}


def conversation_difficulty(
    full_logits: torch.Tensor,
    view_logits: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    speakers: torch.Tensor,
    utterance_mask: torch.Tensor,
) -> torch.Tensor:
    """DF per dialogue ``(B,)`` = (Σ_k Σ_ξ max(0, log p_ξ[y_k] − log p[y_k]) + S) / (S + T).

    The sum runs over the dialogue's labelled utterances k and the given removal views ξ (modal and
    context alike); S = number of speakers (max speaker index + 1), T = number of utterances. This is
    ``HITSZ-HLT/CMERC: caldiff/cal_diff.py`` (run there with one dialogue per batch, so its padded length
    is T); S smooths dialogues with few utterances.
    """
    utterance_mask = utterance_mask.bool()
    rises = log_confidence_rises(full_logits, view_logits, labels)
    total = sum(((rise * utterance_mask).sum(dim=1) for rise in rises.values()), full_logits.new_zeros(()))
    n_speakers = torch.where(utterance_mask, speakers, torch.zeros_like(speakers)).amax(dim=1) + 1
    n_utterances = utterance_mask.sum(dim=1)
    return (total + n_speakers) / (n_speakers + n_utterances)


def removal_pseudo_labels(
    full_logits: torch.Tensor, view_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """1 where removing the information lowered confidence as it should, else 0.

    1 when the full model is right and the view wrong, or both are right and the full model gives the gold
    class a higher log-probability; 0 otherwise (the view is more confident, or both are wrong). This is
    the reference code's rule (``HITSZ-HLT/CMERC: train_cm.py``); the paper's Algorithm 1 (lines 14–17)
    compares confidences without the correctness conditions.
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
    detached = {r: v.detach() for r, v in view_logits.items()}
    rises = log_confidence_rises(full_logits, detached, labels).values()
    return sum((rise.sum() for rise in rises), full_logits.new_zeros(()))


@dataclass
class CMERC:
    """The CMERC training objective as a calibration method usable with any merc_hf backbone.

    Args:
        gamma_m, gamma_c, gamma_s: weights of the modality SCL, context SCL and confidence-constraint terms.
        temperature: τ of the contrastive losses.
        removals: which removal views to use (default all five; those a batch lacks are skipped).
        curriculum_ratio: share of dialogues added per curriculum stage (``None`` disables the curriculum).
        epochs_per_stage: epochs spent in each curriculum stage (the reference's ``scheduler_steps``).
        difficulty_patience: when no difficulties are given to the trainer, it first trains the plain
            backbone until the validation weighted F1 has not improved for this many epochs, measures DF
            with the best epoch's weights and then trains CMERC from the initial weights
            (:meth:`merc_hf.training.MercTrainer.warmup_difficulties`). 5 is the early-stopping patience of
            the MM-DFN reference; a shorter one stops on MELD's noisy validation curve.
        view_mode: ``"reference"`` (the reference code's views, from an eval-mode copy taken at each epoch
            start) or ``"exact"`` (information removed from every stage, views from the current weights
            in eval mode); see the module docstring.
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
    difficulty_patience: int = 5
    view_mode: str = "reference"
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
        if self.epochs_per_stage < 1 or self.difficulty_patience < 1:
            raise ValueError("epochs_per_stage and difficulty_patience must be >= 1")
        if self.view_mode not in VIEW_MODES:
            raise ValueError(f"view_mode must be one of {VIEW_MODES}, got {self.view_mode!r}")
        self._snapshot: nn.Module | None = None
        self._snapshot_state: dict[str, torch.Tensor] | None = None
        self._snapshot_epoch: int | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self), "removals": list(self.removals)}

    def view_model(self, model: nn.Module) -> nn.Module:
        """The model the removal views run on: ``model`` itself in ``"exact"`` mode; in ``"reference"``
        mode a frozen eval-mode copy of it taken at the first step of each epoch (the reference code's
        ``model_mm``/``model_intra``/``model_inter``, loaded with the weights at the start of each pass)."""
        if self.view_mode == "exact":
            return model
        if self._snapshot is None:
            module = getattr(model, "module", model)  # a DistributedDataParallel wrapper keeps it in .module
            self._snapshot = copy.deepcopy(module).eval().requires_grad_(False)
            for layer in self._snapshot.modules():  # a copy's cuDNN RNN weights must be one buffer again
                if isinstance(layer, nn.RNNBase):
                    layer.flatten_parameters()
            if self._snapshot_state is not None:  # resumed in the middle of an epoch
                self._snapshot.load_state_dict(self._snapshot_state)
                self._snapshot_state = None
        return self._snapshot

    def on_epoch_begin(self, epoch: int) -> None:
        """A new epoch takes a new snapshot of the weights (unless a resumed checkpoint holds this epoch's)."""
        if self._snapshot_epoch != epoch:
            self._snapshot, self._snapshot_state = None, None
        self._snapshot_epoch = epoch

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The epoch's view snapshot (``"reference"`` mode), saved in checkpoints so that a run resumed in
        the middle of an epoch computes its views from the same weights."""
        if self._snapshot is None or self._snapshot_epoch is None:
            return {}
        state = {f"snapshot.{k}": v for k, v in self._snapshot.state_dict().items()}
        return state | {"snapshot_epoch": torch.tensor(self._snapshot_epoch)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if "snapshot_epoch" in state:
            self._snapshot = None
            self._snapshot_epoch = int(state["snapshot_epoch"])
            prefix = "snapshot."
            self._snapshot_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

    def removal_views(self, model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits of the configured removal views for one batch (no gradients)."""
        return removal_view_logits(
            self.view_model(model), inputs, self.removals, self.views_per_pass, self.view_mode
        )

    def training_loss(
        self, model: nn.Module, inputs: Mapping[str, torch.Tensor], outputs
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The added terms for one training batch, given the full-input ``outputs`` (with gradients)."""
        labels = inputs["labels"]
        views = self.removal_views(model, inputs)
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
