"""Calibration methods. They know nothing about a specific backbone: each is a set of loss terms, a
sampler/trainer hook or a post-hoc transform operating on the backbone interface of
:mod:`merc_hf.models.base`."""

from .cmc_pseudo_labels import PseudoLabelGeneration
from .cmerc import (
    CMERC,
    confidence_constraint,
    conversation_difficulty,
    log_confidence_rises,
    removal_pseudo_labels,
    supervised_contrastive_loss,
)
from .cml import CML, cml_penalty
from .crl import CRL, correctness_ranking_loss
from .fmfp import FMFP, sam_perturbation
from .posthoc import TemperatureScaling, fit_temperature
from .rpcl import RPCL, ccps_loss, cdmr_loss, corruption_mask, protected_utterances
from .views import REMOVALS, applicable_removals, removal_view_logits, stack_views

__all__ = [
    "CMERC",
    "CML",
    "CRL",
    "FMFP",
    "REMOVALS",
    "RPCL",
    "PseudoLabelGeneration",
    "TemperatureScaling",
    "applicable_removals",
    "ccps_loss",
    "cdmr_loss",
    "cml_penalty",
    "confidence_constraint",
    "conversation_difficulty",
    "correctness_ranking_loss",
    "corruption_mask",
    "fit_temperature",
    "log_confidence_rises",
    "protected_utterances",
    "removal_pseudo_labels",
    "removal_view_logits",
    "sam_perturbation",
    "stack_views",
    "supervised_contrastive_loss",
]
