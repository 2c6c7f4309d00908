"""CMC: Calibrated Multimodal Consensus (Zhong et al., "Calibrating Multimodal Consensus for Emotion
Recognition", arXiv 2510.20256; reference code ``gw-zhong/CMC``, reference notes §2.8 and §3.5).

One utterance (video clip) per sample; a batch is the utterance batch of the CH-SIMS family
(``text``/``audio``/``visual`` ``(B, L_m, D_m)`` zero-padded frame sequences with ``<m>_mask`` ``(B, L_m)``,
True = real frame).

1. **Unimodal encoders** (per modality ``m``): text ``Conv1d(D_t → E, k=1, no bias)`` on precomputed BERT
   features (the reference runs a frozen BERT itself and has no BatchNorm on text); audio and visual
   ``BatchNorm1d(D_m) → Conv1d(D_m → E, k=1, no bias)``; then a pre-norm ``nn.TransformerEncoder`` (d = E,
   ReLU feed-forward, no final LayerNorm, as the reference) with a key padding mask, the mean over the real
   frames and L2 normalisation: ``h_m`` (B, E).
2. **Residual heads** (per modality): ``head_m(h) = Linear(E → 3)(h + proj2(Dropout(ReLU(proj1(h)))))``.
3. **Stage "unimodal"** (stage 1): ``modality_logits[:, m] = head_m(h_m)``. The fused ``logits`` are the
   mean of the three modality logits, only so that an evaluation has a multimodal prediction; they are not
   trained (no fused loss term) and ``gates`` are uniform.
4. **Stage "multimodal", fusion "consensus"** (stage 2, CMC): X = stack(h_t, h_a, h_v) (B, 3, E);
   parameter-free fusion (PFM) X' = softmax(X Xᵀ / τ) X (:func:`consensus_fusion`); multimodal consensus
   router (MCR): ``Linear(E → 3)`` on Σ_m X'_m, top-k logits kept, softmax → ``gates`` (:func:`top_k_gates`);
   expert m = ``head_m(X'_m)`` → ``modality_logits[:, m]``; ``logits = Σ_m gates_m · modality_logits[:, m]``.
5. **Fusion "concat"** (a baseline of the same size): the same encoders and heads (``modality_logits =
   head_m(h_m)``, ``gates`` uniform), and ``logits = Linear(E → 3)(Dropout(ReLU(Linear(3E → E)(concat h))))``.

**Loss** (when ``labels`` are given; reference ``src/train_run.py``, ``src/train_pseudo_pretrain.py``)::

    L = CE(logits, M) + w_u · Σ_m CE(modality_logits[:, m], target_m) + w_c · SupCon(h; polarity)

``target_m`` is ``unimodal_labels[:, m]`` where given and not -100, else the multimodal label (MOSI/MOSEI
have no unimodal labels and the reference reuses M, notes §1.6; in stage 1 with PLGM the unimodal labels
are the pseudo labels, :mod:`merc_hf.calibration.cmc_pseudo_labels`). Stage "unimodal" has no fused CE
term. SupCon (:func:`cmc_supervised_contrastive_loss`) runs over the 3B unimodal embeddings ``h_m`` (before
fusion, as the reference), labelled by the binary polarity of each modality's target (``config.polarity``;
``contrastive_labels="multimodal"`` uses the multimodal label instead). ``outputs.loss_parts`` holds the
unweighted terms as floats for logging (``fused_ce``, ``unimodal_ce_<m>``, ``contrastive``).

**Modality removal**: ``modality_mask`` (B, 3) over (text, audio, visual), 1 = keep, 0 = remove; a removed
modality's ``h_m`` is replaced by zeros *before* fusion (fractional values scale it), so nothing of its
input reaches the output. In the consensus fusion the zero row still takes part in PFM: its similarities
are all 0, so its X'_m is the plain mean of the rows, and its expert still votes through its gate.

Deviations from the reference code, all deliberate:

* Padding never counts: BatchNorm statistics are computed over the real frames only (the packed frames),
  attention ignores padded keys and the mean runs over real frames. The reference pads to a fixed length
  and averages and normalises over the padding too.
* All three experts are computed for every sample. With ``router_top_k < 3`` the reference leaves a non-selected
  expert's per-modality output at zero (so its unimodal CE is constant); here ``modality_logits`` always
  hold every expert's prediction and only its gate is zero. With the default ``router_top_k=3`` both agree.
* Text features are precomputed (no BERT inside the model).
* ``config.logit_temperature`` divides the fused ``logits`` (post-hoc temperature scaling), not the
  modality logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from os import PathLike
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..base import MODALITIES, MercPreTrainedModel, emotion_loss
from .configuration_cmc import CMCConfig

ENCODER_PREFIX = "encoders"
HEAD_PREFIX = "heads"


@dataclass
class CMCOutput(ModelOutput):
    """Output of :class:`CMCModel`.

    Args:
        loss: the training loss (module docstring), when ``labels`` are given.
        logits: ``(B, 3)`` fused class scores.
        modality_logits: ``(B, 3, 3)`` per-modality class scores, modalities in (text, audio, visual) order
            (the experts in the consensus fusion, the unimodal heads otherwise).
        modality_repr: ``(B, 3, E)`` the unimodal representations ``h_m`` (L2-normalised; zero for a
            removed modality), what SupCon and PLGM use.
        gates: ``(B, 3)`` router gates (uniform outside the consensus fusion); each row sums to 1.
        loss_parts: unweighted loss terms as floats (``fused_ce``, ``unimodal_ce_text|audio|visual``,
            ``contrastive``), when ``labels`` are given. Listed in ``config.keys_to_ignore_at_inference``.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    modality_logits: torch.FloatTensor | None = None
    modality_repr: torch.FloatTensor | None = None
    gates: torch.FloatTensor | None = None
    loss_parts: dict[str, float] | None = None


# --------------------------------------------------------------------------------------------------
# Functional parts
# --------------------------------------------------------------------------------------------------


def consensus_fusion(x: torch.Tensor, temperature: float) -> torch.Tensor:
    """PFM: ``softmax(X Xᵀ / τ) X`` for ``x`` ``(B, M, E)``, without parameters (reference notes §2.8)."""
    attention = torch.softmax(x @ x.transpose(1, 2) / temperature, dim=-1)
    return attention @ x


def top_k_gates(router_logits: torch.Tensor, k: int) -> torch.Tensor:
    """MCR gates: the ``k`` largest router logits of each row kept, the others set to −∞, then softmax.

    Args:
        router_logits: ``(B, M)``.
        k: experts kept, ``1 <= k <= M``.

    Returns:
        ``(B, M)`` gates, zero outside the top ``k``, each row summing to 1.
    """
    if not 1 <= k <= router_logits.shape[-1]:
        raise ValueError(f"k must be in [1, {router_logits.shape[-1]}], got {k}")
    if k == router_logits.shape[-1]:
        return torch.softmax(router_logits, dim=-1)
    top = router_logits.topk(k, dim=-1).indices
    keep = torch.zeros_like(router_logits, dtype=torch.bool).scatter(-1, top, True)
    return torch.softmax(router_logits.masked_fill(~keep, float("-inf")), dim=-1)


def sentiment_polarity(labels: torch.Tensor, polarity: str) -> torch.Tensor:
    """Binary polarity of 3-class sentiment labels (0 negative, 1 neutral, 2 positive), as CMC's SupCon
    labels (reference notes §3.5): ``"sims"`` → 1 for positive (class > 1), ``"mosi"`` → 1 for
    non-negative (class >= 1)."""
    if polarity == "sims":
        return (labels > 1).long()
    if polarity == "mosi":
        return (labels >= 1).long()
    raise ValueError(f"polarity must be 'sims' or 'mosi', got {polarity!r}")


def cmc_supervised_contrastive_loss(
    features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07
) -> torch.Tensor:
    """CMC's supervised contrastive loss (``gw-zhong/CMC: src/models.py``, notes §3.5).

    With ``s_ij = f_i · f_j / τ`` on the given features (CMC passes L2-normalised ``h_m``; no normalisation
    here) and ``P(i) = {j ≠ i : y_j = y_i}``::

        L = −(1 / |A|) Σ_{i ∈ A} log( Σ_{j ∈ P(i)} e^{s_ij} / Σ_{j ≠ i} e^{s_ij} ),   A = {i : P(i) ≠ ∅}

    Unlike CMERC's loss (:func:`merc_hf.calibration.cmerc.supervised_contrastive_losses`) there is no
    class-balancing weight and no ε in the positive mask, and anchors without a positive are skipped.
    Computed with ``logsumexp``. A differentiable zero when no anchor has a positive.

    Args:
        features: ``(N, H)``.
        labels: ``(N,)`` integer labels.
    """
    n = features.shape[0]
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
    sim = features.float() @ features.float().T / temperature
    others = ~torch.eye(n, dtype=torch.bool, device=features.device)
    positive = (labels[:, None] == labels[None, :]) & others
    anchors = positive.any(dim=1)
    if not bool(anchors.any()):
        return features.sum() * 0.0
    log_all = sim.masked_fill(~others, float("-inf")).logsumexp(dim=1)
    log_positive = sim.masked_fill(~positive, float("-inf")).logsumexp(dim=1)
    return (log_all - log_positive)[anchors].mean()


# --------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------


class CMCUnimodalEncoder(nn.Module):
    """One modality's encoder (module docstring, step 1): ``(B, L, D)`` frames and ``(B, L)`` mask →
    ``h`` ``(B, E)``, L2-normalised. Padded frames never influence the output, in training too: the
    BatchNorm (when present) normalises the packed real frames only."""

    def __init__(
        self,
        input_dim: int,
        embed_dim: int,
        feedforward_dim: int,
        num_heads: int,
        num_layers: int,
        dropout: float,
        batch_norm: bool,
    ) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(input_dim) if batch_norm else None
        self.projection = nn.Conv1d(input_dim, embed_dim, kernel_size=1, bias=False)
        layer = nn.TransformerEncoderLayer(
            embed_dim, num_heads, feedforward_dim, dropout, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        frames = x[mask]  # (N_real, D): packed real frames
        if self.norm is not None:
            frames = self.norm(frames)
        frames = self.projection(frames.unsqueeze(-1)).squeeze(-1)  # (N_real, E)
        projected = frames.new_zeros(*mask.shape, frames.shape[-1])
        projected[mask] = frames
        hidden = self.transformer(projected, src_key_padding_mask=~mask)
        hidden = hidden.masked_fill(~mask[..., None], 0.0)
        pooled = hidden.sum(dim=1) / mask.sum(dim=1, keepdim=True).to(hidden.dtype)
        return F.normalize(pooled, p=2, dim=-1)


class CMCResidualHead(nn.Module):
    """``Linear(E → C)(h + proj2(Dropout(ReLU(proj1(h)))))`` (module docstring, step 2)."""

    def __init__(self, embed_dim: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.proj1 = nn.Linear(embed_dim, embed_dim)
        self.proj2 = nn.Linear(embed_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, num_labels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(h + self.proj2(self.dropout(F.relu(self.proj1(h)))))


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


class CMCModel(MercPreTrainedModel):
    """CMC for utterance-level sentiment (module docstring for the architecture, loss and removal).

    Parameter names are grouped by modality so that a modality's part is a prefix selection:
    ``encoders.<m>.*`` and ``heads.<m>.*`` (``m`` in text, audio, visual); the fusion owns ``router.*``
    (consensus) or ``concat_head.*`` (concat), which exist only in the multimodal stage.
    """

    config_class = CMCConfig
    base_model_prefix = "cmc"
    main_input_name = "text"
    _no_split_modules: ClassVar[list[str]] = []
    merc_task = "sentiment"

    def __init__(self, config: CMCConfig) -> None:
        super().__init__(config)
        self.encoders = nn.ModuleDict(
            {
                m: CMCUnimodalEncoder(
                    getattr(config, f"{m}_dim"),
                    config.embed_dim,
                    config.feedforward_dim,
                    config.num_heads,
                    config.num_layers,
                    config.dropout,
                    batch_norm=m != "text",
                )
                for m in MODALITIES
            }
        )
        self.heads = nn.ModuleDict(
            {m: CMCResidualHead(config.embed_dim, config.num_labels, config.out_dropout) for m in MODALITIES}
        )
        self.router = None
        self.concat_head = None
        if config.stage == "multimodal" and config.fusion == "consensus":
            self.router = nn.Linear(config.embed_dim, len(MODALITIES))
        elif config.stage == "multimodal":
            self.concat_head = nn.Sequential(
                nn.Linear(len(MODALITIES) * config.embed_dim, config.embed_dim),
                nn.ReLU(),
                nn.Dropout(config.out_dropout),
                nn.Linear(config.embed_dim, config.num_labels),
            )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """The base PyTorch-default initialisation, plus PyTorch's defaults for what it does not cover:
        ``Conv1d`` (Kaiming-uniform, a = √5), ``MultiheadAttention`` (Xavier-uniform input projection, zero
        biases) and the BatchNorm running statistics."""
        super()._init_weights(module)
        if isinstance(module, nn.Conv1d):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight.shape[1] * module.weight.shape[2]
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.MultiheadAttention):
            init.xavier_uniform_(module.in_proj_weight)
            if module.in_proj_bias is not None:
                init.zeros_(module.in_proj_bias)
            if module.out_proj.bias is not None:
                init.zeros_(module.out_proj.bias)
        elif isinstance(module, nn.BatchNorm1d) and module.running_mean is not None:
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    # ---------------------------------------------------------------------------------------- inputs

    def _validate_features(
        self, given: dict[str, torch.Tensor | None], masks: dict[str, torch.Tensor | None]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        missing = [m for m in MODALITIES if given[m] is None]
        if missing:
            raise ValueError(f"CMCModel uses text, audio and visual, but the batch lacks {missing}")
        batch_size = given["text"].shape[0]
        device = given["text"].device
        features: dict[str, torch.Tensor] = {}
        frame_masks: dict[str, torch.Tensor] = {}
        for m in MODALITIES:
            x, dim = given[m], getattr(self.config, f"{m}_dim")
            if x.ndim != 3 or x.shape[0] != batch_size or x.shape[2] != dim:
                raise ValueError(f"{m} must have shape (B={batch_size}, L_{m}, {dim}), got {tuple(x.shape)}")
            mask = masks[m]
            if mask is None:
                mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device)
            elif tuple(mask.shape) != tuple(x.shape[:2]):
                raise ValueError(
                    f"{m}_mask must have shape {tuple(x.shape[:2])} (the batch and frame axes of {m}), "
                    f"got {tuple(mask.shape)}"
                )
            mask = mask.to(device).bool()
            empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
            if empty:
                raise ValueError(f"{m}_mask: sample(s) {empty} of the batch have no real {m} frame")
            features[m] = x.to(device=device, dtype=self.dtype)
            frame_masks[m] = mask
        return features, frame_masks

    def _validate_labels(
        self, labels: torch.Tensor | None, unimodal_labels: torch.Tensor | None, batch_size: int, device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if labels is not None:
            if tuple(labels.shape) != (batch_size,):
                raise ValueError(f"labels must have shape ({batch_size},), got {tuple(labels.shape)}")
            labels = labels.to(device).long()
        if unimodal_labels is not None:
            expected = (batch_size, len(MODALITIES))
            if tuple(unimodal_labels.shape) != expected:
                raise ValueError(
                    f"unimodal_labels must have shape {expected} (text, audio, visual), "
                    f"got {tuple(unimodal_labels.shape)}"
                )
            unimodal_labels = unimodal_labels.to(device).long()
        return labels, unimodal_labels

    # ---------------------------------------------------------------------------------------- forward

    def encode(
        self,
        features: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        modality_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``h`` ``(B, 3, E)``: the L2-normalised unimodal representations, with removed modalities zeroed."""
        h = torch.stack([self.encoders[m](features[m], masks[m]) for m in MODALITIES], dim=1)
        if modality_mask is not None:
            expected = (h.shape[0], len(MODALITIES))
            if tuple(modality_mask.shape) != expected:
                raise ValueError(
                    f"modality_mask must have shape {expected} (text, audio, visual; 1 = keep), "
                    f"got {tuple(modality_mask.shape)}"
                )
            keep = modality_mask.to(device=h.device, dtype=h.dtype)
            if bool(((keep < 0) | (keep > 1)).any()):
                raise ValueError("modality_mask values must be in [0, 1] (1 = keep, 0 = remove)")
            h = h * keep[..., None]
        return h

    def fuse(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits (B, C), modality_logits (B, 3, C), gates (B, 3))`` from ``h`` ``(B, 3, E)`` according
        to the configured stage and fusion (temperature not applied)."""
        uniform = h.new_full((h.shape[0], len(MODALITIES)), 1.0 / len(MODALITIES))
        if self.router is not None:
            fused = consensus_fusion(h, self.config.fusion_temperature)
            gates = top_k_gates(self.router(fused.sum(dim=1)), self.config.router_top_k)
            modality_logits = torch.stack(
                [self.heads[m](fused[:, i]) for i, m in enumerate(MODALITIES)], dim=1
            )
            logits = (gates[..., None] * modality_logits).sum(dim=1)
            return logits, modality_logits, gates
        modality_logits = torch.stack([self.heads[m](h[:, i]) for i, m in enumerate(MODALITIES)], dim=1)
        if self.concat_head is not None:
            return self.concat_head(h.flatten(1)), modality_logits, uniform
        return modality_logits.mean(dim=1), modality_logits, uniform

    def compute_cmc_loss(
        self,
        logits: torch.Tensor,
        modality_logits: torch.Tensor,
        h: torch.Tensor,
        labels: torch.Tensor,
        unimodal_labels: torch.Tensor | None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss and its unweighted parts (module docstring)."""
        config = self.config

        def ce(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return emotion_loss(
                scores,
                targets,
                loss_type=config.loss_type,
                class_weights=config.class_weights,
                focal_gamma=config.focal_gamma,
            )

        targets = labels[:, None].expand(-1, len(MODALITIES))
        if unimodal_labels is not None:
            targets = torch.where(unimodal_labels != -100, unimodal_labels, targets)
        parts: dict[str, torch.Tensor] = {}
        loss = logits.new_zeros((), dtype=torch.float32)
        if config.stage == "multimodal":
            parts["fused_ce"] = ce(logits, labels)
            loss = loss + parts["fused_ce"]
        unimodal = logits.new_zeros((), dtype=torch.float32)
        for i, m in enumerate(MODALITIES):
            parts[f"unimodal_ce_{m}"] = ce(modality_logits[:, i], targets[:, i])
            unimodal = unimodal + parts[f"unimodal_ce_{m}"]
        loss = loss + config.unimodal_loss_weight * unimodal
        if config.contrastive_weight > 0:
            contrast = labels[:, None].expand(-1, len(MODALITIES))
            if config.contrastive_labels == "unimodal":
                contrast = targets
            flat_labels = contrast.T.reshape(-1)  # (3B,): all text rows, then audio, then visual
            flat_h = h.transpose(0, 1).reshape(-1, h.shape[-1])
            known = flat_labels >= 0
            parts["contrastive"] = cmc_supervised_contrastive_loss(
                flat_h[known],
                sentiment_polarity(flat_labels[known], config.polarity),
                config.contrastive_temperature,
            )
            loss = loss + config.contrastive_weight * parts["contrastive"]
        return loss, {name: float(value.detach()) for name, value in parts.items()}

    def forward(
        self,
        text: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        visual: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        unimodal_labels: torch.Tensor | None = None,
        regression_labels: torch.Tensor | None = None,
        modality_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> CMCOutput | tuple[Any, ...]:
        """Classify a batch of utterances (the batch of :class:`~merc_hf.data.UtteranceCollator`).

        Args:
            text, audio, visual: ``(B, L_m, D_m)`` frame features, zero-padded; all three are required.
            text_mask, audio_mask, visual_mask: ``(B, L_m)`` bool, True for real frames (``None``: all
                real); every sample needs at least one real frame per modality.
            labels: ``(B,)`` 3-class multimodal labels (-100 = unlabelled); when given, ``loss`` is computed.
            unimodal_labels: ``(B, 3)`` per-modality targets (text, audio, visual), -100 where unknown (the
                multimodal label is used there).
            regression_labels: ``(B,)``; accepted so that the Trainer gathers it for the metrics, unused.
            modality_mask: ``(B, 3)`` over (text, audio, visual), 1 = keep, 0 = remove (``h_m`` zeroed).
            return_dict: return a tuple instead of :class:`CMCOutput` when False.
        """
        del regression_labels
        features, masks = self._validate_features(
            {"text": text, "audio": audio, "visual": visual},
            {"text": text_mask, "audio": audio_mask, "visual": visual_mask},
        )
        batch_size, device = features["text"].shape[0], features["text"].device
        labels, unimodal_labels = self._validate_labels(labels, unimodal_labels, batch_size, device)
        h = self.encode(features, masks, modality_mask)
        logits, modality_logits, gates = self.fuse(h)
        if self.config.logit_temperature != 1.0:
            logits = logits / self.config.logit_temperature
        loss, parts = None, None
        if labels is not None:
            loss, parts = self.compute_cmc_loss(logits, modality_logits, h, labels, unimodal_labels)
        output = CMCOutput(
            loss=loss,
            logits=logits,
            modality_logits=modality_logits,
            modality_repr=h,
            gates=gates,
            loss_parts=parts,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    # ---------------------------------------------------------------------------------------- stages

    def unimodal_state_dict(self) -> dict[str, torch.Tensor]:
        """The encoders' and heads' parameters and buffers (``encoders.*``, ``heads.*``): what stage 2
        takes over from stage 1."""
        return {
            k: v
            for k, v in self.state_dict().items()
            if k.startswith((f"{ENCODER_PREFIX}.", f"{HEAD_PREFIX}."))
        }

    def load_unimodal(self, stage1_model: CMCModel) -> CMCModel:
        """Copy the encoders and heads (parameters and BatchNorm statistics) of ``stage1_model`` into this
        model; the router / concat head are left as they are. Returns ``self``."""
        if not isinstance(stage1_model, CMCModel):
            raise ValueError(f"stage1_model must be a CMCModel, got {type(stage1_model).__name__}")
        source, target = stage1_model.unimodal_state_dict(), self.unimodal_state_dict()
        if source.keys() != target.keys():
            raise ValueError(
                "the stage-1 model's encoders/heads do not match this model's: "
                f"missing {sorted(target.keys() - source.keys())[:3]}, "
                f"unexpected {sorted(source.keys() - target.keys())[:3]} (num_layers differs?)"
            )
        for key, value in source.items():
            if value.shape != target[key].shape:
                raise ValueError(
                    f"{key} has shape {tuple(value.shape)} in the stage-1 model but {tuple(target[key].shape)} "
                    "here: the encoder/head sizes (feature dims, embed_dim, feedforward_dim) must not change"
                )
        with torch.no_grad():
            for key, value in source.items():
                target[key].copy_(value)
        return self

    @classmethod
    def from_unimodal(
        cls, stage1_model_or_path: CMCModel | str | PathLike, **config_overrides: Any
    ) -> CMCModel:
        """A stage-2 model (``stage="multimodal"``) built from a stage-1 model or checkpoint directory.

        The config is the stage-1 config with ``stage="multimodal"`` and ``config_overrides`` applied
        (e.g. ``fusion``, ``router_top_k``, dropouts, loss weights); the encoders and heads are copied from the
        stage-1 model (:meth:`load_unimodal`, e.g. the EMA teachers of PLGM), the router or concat head is
        freshly initialised. The new model is in training mode, on the stage-1 model's device and dtype.
        """
        if isinstance(stage1_model_or_path, (str, PathLike)):
            stage1 = cls.from_pretrained(stage1_model_or_path)
        elif isinstance(stage1_model_or_path, CMCModel):
            stage1 = stage1_model_or_path
        else:
            raise ValueError(
                "from_unimodal expects a CMCModel or a checkpoint directory, "
                f"got {type(stage1_model_or_path).__name__}"
            )
        values = stage1.config.to_dict()
        for key in ("model_type", "transformers_version", "architectures"):
            values.pop(key, None)
        values.update({"stage": "multimodal", **config_overrides})
        model = cls(CMCConfig(**values))
        parameter = next(stage1.parameters())
        model.to(device=parameter.device, dtype=parameter.dtype)
        return model.load_unimodal(stage1).train()
