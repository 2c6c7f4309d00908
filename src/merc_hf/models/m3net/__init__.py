"""M3Net (Chen et al., CVPR 2023) for multimodal emotion recognition in conversations."""

from ..base import inverse_frequency_class_weights
from .configuration_m3net import M3NetConfig
from .modeling_m3net import M3NetFrequencyConv, M3NetHypergraph, M3NetModel

__all__ = [
    "M3NetConfig",
    "M3NetFrequencyConv",
    "M3NetHypergraph",
    "M3NetModel",
    "inverse_frequency_class_weights",
]
