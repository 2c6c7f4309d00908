"""DialogueRNN (Majumder et al., AAAI 2019) for emotion recognition in conversations."""

from .configuration_dialoguernn import CONTEXT_ATTENTIONS, DialogueRNNConfig
from .modeling_dialoguernn import DialogueRNNMatchingAttention, DialogueRNNModel, DialogueRNNRecurrence

__all__ = [
    "CONTEXT_ATTENTIONS",
    "DialogueRNNConfig",
    "DialogueRNNMatchingAttention",
    "DialogueRNNModel",
    "DialogueRNNRecurrence",
]
