"""Emotion–cause pair scorer (the matched base of RPCL: a contextual multimodal utterance encoder with
emotion, cause and pair heads, trained with pair-level cross-entropy over valid candidates)."""

from .configuration_pair_scorer import CANDIDATE_SPACES, PairScorerConfig
from .modeling_pair_scorer import PairExtractionOutput, PairScorerModel, candidate_mask, pair_loss

__all__ = [
    "CANDIDATE_SPACES",
    "PairExtractionOutput",
    "PairScorerConfig",
    "PairScorerModel",
    "candidate_mask",
    "pair_loss",
]
