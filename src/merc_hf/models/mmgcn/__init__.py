"""MMGCN (Hu et al., ACL-IJCNLP 2021) for multimodal emotion recognition in conversations."""

from .configuration_mmgcn import MMGCNConfig
from .modeling_mmgcn import (
    MMGCNGraph,
    MMGCNGraphConvolution,
    MMGCNModel,
    angular_similarity,
    multimodal_adjacency,
)

__all__ = [
    "MMGCNConfig",
    "MMGCNGraph",
    "MMGCNGraphConvolution",
    "MMGCNModel",
    "angular_similarity",
    "multimodal_adjacency",
]
