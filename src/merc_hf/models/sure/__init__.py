"""SURE (ICASSP 2026): uncertainty-aware mixture of experts, iterative reasoning and a transformer gate on the
SDT backbone, for multimodal emotion recognition in conversations."""

from .configuration_sure import SUREConfig
from .modeling_sure import (
    MixtureOutput,
    SUREExpert,
    SUREIterativeReasoning,
    SUREMixtureOfExperts,
    SUREModel,
    SURETransformerLayer,
    SUREUnimodalGate,
    distillation_loss,
    expert_kl_loss,
    gaussian_kl,
    load_balancing_loss,
    uncertainty_aware_routing,
)

__all__ = [
    "MixtureOutput",
    "SUREConfig",
    "SUREExpert",
    "SUREIterativeReasoning",
    "SUREMixtureOfExperts",
    "SUREModel",
    "SURETransformerLayer",
    "SUREUnimodalGate",
    "distillation_loss",
    "expert_kl_loss",
    "gaussian_kl",
    "load_balancing_loss",
    "uncertainty_aware_routing",
]
