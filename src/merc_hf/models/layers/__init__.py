"""Building blocks shared by several merc_hf backbones (dense graph ops, context-masked RNNs and attention,
the multimodal graph of MMGCN and MM-DFN)."""

from .attention import MaskedMultiheadAttention, attention_mask_with_self, sinusoidal_positions
from .graph import (
    pairwise_scores,
    propagate,
    row_normalize,
    safe_inverse,
    safe_inverse_sqrt,
    symmetric_normalize,
    without_self_loops,
)
from .multimodal_graph import (
    COSINE_SCALE,
    GCNIIConvolution,
    GCNIIStack,
    MultimodalGraphConfig,
    MultimodalGraphModel,
    angular_similarity,
    multimodal_adjacency,
    multimodal_graph_readout,
)
from .sequence import ContextMaskedRNN, ContextSubsequences, context_subsequences

__all__ = [
    "COSINE_SCALE",
    "ContextMaskedRNN",
    "ContextSubsequences",
    "GCNIIConvolution",
    "GCNIIStack",
    "MaskedMultiheadAttention",
    "MultimodalGraphConfig",
    "MultimodalGraphModel",
    "angular_similarity",
    "attention_mask_with_self",
    "context_subsequences",
    "multimodal_adjacency",
    "multimodal_graph_readout",
    "pairwise_scores",
    "propagate",
    "row_normalize",
    "safe_inverse",
    "safe_inverse_sqrt",
    "sinusoidal_positions",
    "symmetric_normalize",
    "without_self_loops",
]
