"""MM-DFN (Hu et al., ICASSP 2022) for multimodal emotion recognition in conversations."""

from .configuration_mmdfn import (
    IEMOCAP_SPEAKER_WEIGHTS,
    MELD_SPEAKER_WEIGHTS,
    MMDFNConfig,
    parse_speaker_weights,
)
from .modeling_mmdfn import DynamicFusionGraph, MMDFNModel

__all__ = [
    "IEMOCAP_SPEAKER_WEIGHTS",
    "MELD_SPEAKER_WEIGHTS",
    "DynamicFusionGraph",
    "MMDFNConfig",
    "MMDFNModel",
    "parse_speaker_weights",
]
