"""Configuration of CMC (Calibrated Multimodal Consensus; Zhong et al., arXiv 2510.20256)."""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

from ..base import MercConfig, validate_temperature

CMC_STAGES: tuple[str, ...] = ("unimodal", "multimodal")
CMC_FUSIONS: tuple[str, ...] = ("consensus", "concat")
CMC_POLARITIES: tuple[str, ...] = ("sims", "mosi")
CMC_CONTRASTIVE_LABELS: tuple[str, ...] = ("unimodal", "multimodal")

#: CMC's three sentiment classes, by the sign of the regression label (reference notes §1.6).
SENTIMENT_ID2LABEL: dict[int, str] = {0: "negative", 1: "neutral", 2: "positive"}


class CMCConfig(MercConfig):
    """Configuration of :class:`~merc_hf.models.cmc.CMCModel`.

    Defaults are CMC on CH-SIMS (reference notes §2.8 and §3.5; ``gw-zhong/CMC: main.py``,
    ``src/models.py``): BERT text features 768-d, audio 33-d, visual 709-d, embedding 32, feed-forward
    128 (4 × 32), 5 layers, 4 heads, output dropout 0.4, PFM temperature 0.07, all three experts routed
    (``router_top_k=3``), SupCon temperature 0.07, three classes (negative, neutral, positive).

    The "dropout" of the reference's hyper-parameter table (0.4 on SIMS, 0.3 SIMS-v2, 0.5 MOSI, 0.0
    MOSEI) is the reference's ``--out_dropout`` (``main.py``: "output dropout (default: SIMS: 0.4 /
    SIMS-v2: 0.0)"), the dropout inside the residual heads. The reference builds its transformer layers
    without a dropout argument, i.e. with PyTorch's default 0.1; hence ``dropout=0.1`` and
    ``out_dropout=0.4`` here.

    Args:
        text_dim, audio_dim, visual_dim: input feature sizes; CMC uses all three modalities, so none may be
            ``None``.
        embed_dim: E, width of every unimodal encoder and of the representations ``h_m``.
        feedforward_dim: inner size of the transformer feed-forward blocks.
        num_layers: transformer layers of each unimodal encoder.
        num_heads: attention heads (``embed_dim`` must be divisible by it).
        dropout: dropout of the transformer layers (attention weights, feed-forward, residual branches).
        out_dropout: dropout between ``proj1`` and ``proj2`` of each residual head.
        fusion_temperature: τ of the parameter-free fusion module, ``softmax(X Xᵀ / τ)``.
        router_top_k: experts kept by the router (1 to 3); the others get gate 0. The reference's
            ``--top_k``; renamed because ``transformers`` refuses to save a model config with a ``top_k``
            attribute (a generation parameter).
        fusion: ``"consensus"`` (PFM + MCR, CMC) or ``"concat"`` (a baseline of the same size: the same
            encoders and heads, and ``Linear(3E → E) → ReLU → Dropout(out_dropout) → Linear(E → 3)`` on
            the concatenated ``h_m`` for the fused prediction).
        stage: ``"unimodal"`` (stage 1: the unimodal encoders and heads alone, no fused loss) or
            ``"multimodal"`` (stage 2: fusion and the fused loss).
        contrastive_weight: weight of the supervised contrastive term (1 in the reference).
        contrastive_temperature: τ of the supervised contrastive term.
        unimodal_loss_weight: weight of the sum of the three unimodal cross-entropies (1 in the reference).
        polarity: binary polarity of the contrastive labels: ``"sims"`` (positive vs non-positive, class
            > 1) or ``"mosi"`` (non-negative vs negative, class >= 1), as the reference does for the SIMS
            family and for MOSI/MOSEI respectively.
        contrastive_labels: whose polarity the contrastive term uses: ``"unimodal"`` (default; each
            modality's embeddings are labelled by that modality's target, as the reference does in both
            stages, ``src/train_pseudo_pretrain.py`` and ``src/train_run.py``) or ``"multimodal"`` (the
            multimodal label for all three).
        **kwargs: the shared fields of :class:`~merc_hf.models.base.MercConfig` and of
            ``PretrainedConfig``. ``n_speakers`` is fixed to 1 (utterance-level data has no speakers),
            ``modality_removal`` to ``"zero"`` (a removed modality's representation ``h_m`` is zeroed), and
            the label map must have three classes (default negative, neutral, positive). ``loss_type``
            and ``class_weights`` apply to every cross-entropy term (fused and unimodal).
    """

    model_type = "merc_cmc"
    # the per-term loss values are a dict of floats for logging; the Trainer must not gather them
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["loss_parts"]

    def __init__(
        self,
        embed_dim: int = 32,
        feedforward_dim: int = 128,
        num_layers: int = 5,
        num_heads: int = 4,
        out_dropout: float = 0.4,
        fusion_temperature: float = 0.07,
        router_top_k: int = 3,
        fusion: str = "consensus",
        stage: str = "multimodal",
        contrastive_weight: float = 1.0,
        contrastive_temperature: float = 0.07,
        unimodal_loss_weight: float = 1.0,
        polarity: str = "sims",
        contrastive_labels: str = "unimodal",
        **kwargs,
    ) -> None:
        self.embed_dim = embed_dim
        self.feedforward_dim = feedforward_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.out_dropout = out_dropout
        self.fusion_temperature = fusion_temperature
        self.router_top_k = router_top_k
        self.fusion = fusion
        self.stage = stage
        self.contrastive_weight = contrastive_weight
        self.contrastive_temperature = contrastive_temperature
        self.unimodal_loss_weight = unimodal_loss_weight
        self.polarity = polarity
        self.contrastive_labels = contrastive_labels
        kwargs.setdefault("text_dim", 768)
        kwargs.setdefault("audio_dim", 33)
        kwargs.setdefault("visual_dim", 709)
        kwargs.setdefault("n_speakers", 1)
        kwargs.setdefault("dropout", 0.1)
        kwargs.setdefault("modality_removal", "zero")
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = dict(SENTIMENT_ID2LABEL)
        super().__init__(**kwargs)
        self._validate_cmc()

    def _validate_cmc(self) -> None:
        missing = [f"{m}_dim" for m in ("text", "audio", "visual") if getattr(self, f"{m}_dim") is None]
        if missing:
            raise ValueError(f"CMC uses text, audio and visual: {', '.join(missing)} must be set, got None")
        for name in ("embed_dim", "feedforward_dim", "num_layers", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.n_speakers != 1:
            raise ValueError(f"n_speakers must be 1 for CMC (utterance-level data), got {self.n_speakers!r}")
        if self.modality_removal != "zero":
            raise ValueError(
                f"modality_removal must be 'zero' for CMC (a removed modality's representation h_m is "
                f"replaced by zeros), got {self.modality_removal!r}"
            )
        if self.num_labels != 3:
            raise ValueError(
                f"CMC has 3 classes (negative, neutral, positive), got num_labels={self.num_labels}"
            )
        if (
            isinstance(self.out_dropout, bool)
            or not isinstance(self.out_dropout, numbers.Real)
            or not 0.0 <= float(self.out_dropout) < 1.0
        ):
            raise ValueError(f"out_dropout must be in [0, 1), got {self.out_dropout!r}")
        self.out_dropout = float(self.out_dropout)
        self.fusion_temperature = validate_temperature(self.fusion_temperature, "fusion_temperature")
        self.contrastive_temperature = validate_temperature(
            self.contrastive_temperature, "contrastive_temperature"
        )
        if (
            not isinstance(self.router_top_k, int)
            or isinstance(self.router_top_k, bool)
            or not 1 <= self.router_top_k <= 3
        ):
            raise ValueError(
                f"router_top_k must be an int in [1, 3] (one expert per modality), got {self.router_top_k!r}"
            )
        for name, allowed in (
            ("fusion", CMC_FUSIONS),
            ("stage", CMC_STAGES),
            ("polarity", CMC_POLARITIES),
            ("contrastive_labels", CMC_CONTRASTIVE_LABELS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("contrastive_weight", "unimodal_loss_weight"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            setattr(self, name, float(value))
