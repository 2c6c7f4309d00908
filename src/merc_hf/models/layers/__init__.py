"""Building blocks shared by several merc_hf backbones (dense graph ops, context-masked RNNs)."""

from .graph import (
    pairwise_scores,
    propagate,
    row_normalize,
    safe_inverse,
    safe_inverse_sqrt,
    symmetric_normalize,
    without_self_loops,
)
from .sequence import ContextMaskedRNN, ContextSubsequences, context_subsequences

__all__ = [
    "ContextMaskedRNN",
    "ContextSubsequences",
    "context_subsequences",
    "pairwise_scores",
    "propagate",
    "row_normalize",
    "safe_inverse",
    "safe_inverse_sqrt",
    "symmetric_normalize",
    "without_self_loops",
]
