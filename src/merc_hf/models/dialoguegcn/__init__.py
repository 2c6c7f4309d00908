"""DialogueGCN (Ghosal et al., EMNLP 2019) for emotion recognition in conversations."""

from .configuration_dialoguegcn import DialogueGCNConfig
from .modeling_dialoguegcn import (
    DialogueGCNEdgeAttention,
    DialogueGCNGraphConv,
    DialogueGCNModel,
    DialogueGCNNodalAttention,
    DialogueGCNRelationalConv,
    masked_softmax,
    relation_types,
    window_mask,
)

__all__ = [
    "DialogueGCNConfig",
    "DialogueGCNEdgeAttention",
    "DialogueGCNGraphConv",
    "DialogueGCNModel",
    "DialogueGCNNodalAttention",
    "DialogueGCNRelationalConv",
    "masked_softmax",
    "relation_types",
    "window_mask",
]
