"""CMC (Calibrated Multimodal Consensus): unimodal transformer encoders, a parameter-free fusion module and a
multimodal consensus router over per-modality experts, for utterance-level sentiment (the CH-SIMS family)."""

from .configuration_cmc import (
    CMC_CONTRASTIVE_LABELS,
    CMC_FUSIONS,
    CMC_POLARITIES,
    CMC_STAGES,
    SENTIMENT_ID2LABEL,
    CMCConfig,
)
from .modeling_cmc import (
    CMCModel,
    CMCOutput,
    CMCResidualHead,
    CMCUnimodalEncoder,
    cmc_supervised_contrastive_loss,
    consensus_fusion,
    sentiment_polarity,
    top_k_gates,
)

__all__ = [
    "CMC_CONTRASTIVE_LABELS",
    "CMC_FUSIONS",
    "CMC_POLARITIES",
    "CMC_STAGES",
    "SENTIMENT_ID2LABEL",
    "CMCConfig",
    "CMCModel",
    "CMCOutput",
    "CMCResidualHead",
    "CMCUnimodalEncoder",
    "cmc_supervised_contrastive_loss",
    "consensus_fusion",
    "sentiment_polarity",
    "top_k_gates",
]
