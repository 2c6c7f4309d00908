"""Building blocks shared by several merc_hf backbones (dense graph ops, context-masked RNNs, the multimodal
graph of MMGCN and MM-DFN)."""

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
    "MultimodalGraphConfig",
    "MultimodalGraphModel",
    "angular_similarity",
    "context_subsequences",
    "multimodal_adjacency",
    "multimodal_graph_readout",
    "pairwise_scores",
    "propagate",
    "row_normalize",
    "safe_inverse",
    "safe_inverse_sqrt",
    "symmetric_normalize",
    "without_self_loops",
]
