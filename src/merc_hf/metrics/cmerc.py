"""Calibration quantities of CMERC: confidence boosts, CEL and uncertain-sample rates.

Tu et al., "Multimodal Emotion Recognition Calibration in Conversations", ACM MM 2024 (code:
``HITSZ-HLT/CMERC``). A well-calibrated multimodal model should not become *more* confident in the
gold emotion when information is removed. For utterance ``k`` with gold class ``y_k``, ``o_k`` is the
probability vector with the full input and ``o_k^ξ`` the one with information ``ξ`` removed, where ``ξ``
is one of

* ``"A"``, ``"V"``, ``"T"``: the audio, visual or text modality removed;
* ``"X"``: intra-speaker context removed; ``"O"``: inter-speaker context removed.

Inputs are ``full_probs`` ``(N, K)``, ``masked_probs`` ``{ξ: (N, K)}`` (same shape, same utterance
order) and ``references`` ``(N,)``, flattened over unpadded utterances.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import (
    CONTEXT_REMOVALS,
    MODALITY_REMOVALS,
    check_masked_probs,
    check_probs_and_labels,
)


def _target_confidences(
    full_probs: Any, masked_probs: Mapping[str, Any], references: Any, from_logits: bool
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gold-class probability ``o_k[y_k]`` with the full input and ``o_k^ξ[y_k]`` per removal type."""
    full, y = check_probs_and_labels(full_probs, references, from_logits=from_logits, probs_name="full_probs")
    masked = check_masked_probs(masked_probs, full.shape, from_logits=from_logits)
    rows = np.arange(y.size)
    return full[rows, y], {key: value[rows, y] for key, value in masked.items()}


def confidence_boosts(
    full_probs: Any, masked_probs: Mapping[str, Any], references: Any, *, from_logits: bool = False
) -> dict[str, np.ndarray]:
    """Per-utterance confidence boost under each removal, CMERC Eq. 4.

    ``CF_k^ξ = max(0, o_k^ξ[y_k] − o_k[y_k])``: how much the gold-class probability *rises* when ``ξ`` is
    removed (0 when it falls or stays).

    Returns:
        ``{ξ: (N,) float64 array}`` for every removal type given, in the order A, V, T, X, O.
    """
    full, masked = _target_confidences(full_probs, masked_probs, references, from_logits)
    return {key: np.maximum(0.0, value - full) for key, value in masked.items()}


def cel(
    full_probs: Any, masked_probs: Mapping[str, Any], references: Any, *, from_logits: bool = False
) -> float:
    """Calibration error loss of CMERC, Eq. 10: ``CEL = Σ_ξ Σ_k CF_k^ξ``.

    A raw sum of probability differences over utterances and the removal types given, not a mean or a
    percentage, so it grows with the test-set size: the CMERC tables report e.g. 1772.54 for M3Net on
    IEMOCAP (Tu et al. 2024). 0 means no removal ever raised the gold-class confidence.
    """
    boosts = confidence_boosts(full_probs, masked_probs, references, from_logits=from_logits)
    return float(sum(boost.sum() for boost in boosts.values()))


def uncertain_sample_rates(
    full_probs: Any, masked_probs: Mapping[str, Any], references: Any, *, from_logits: bool = False
) -> dict[str, float]:
    """Percentage of "uncertain" utterances per removal type and union, CMERC Table 2.

    An utterance is uncertain under ``ξ`` when its gold-class confidence strictly rises:
    ``o_k^ξ[y_k] > o_k[y_k]`` (equivalently ``CF_k^ξ > 0``). The rate is ``100 · #uncertain / N``.

    Keys: every removal type given, plus the unions (an utterance counts once if any member applies),
    formed only over the removal types given:

    * ``"M"`` = A ∪ V ∪ T, present when at least one modality removal is given;
    * ``"C"`` = X ∪ O, present when at least one context removal is given;
    * ``"MC"`` = M ∪ C, present when both ``"M"`` and ``"C"`` are.

    Returns:
        ``{key: percentage in [0, 100]}``.
    """
    full, masked = _target_confidences(full_probs, masked_probs, references, from_logits)
    rises = {key: value > full for key, value in masked.items()}
    for union, members in (("M", MODALITY_REMOVALS), ("C", CONTEXT_REMOVALS)):
        given = [rises[key] for key in members if key in rises]
        if given:
            rises[union] = np.logical_or.reduce(given)
    if "M" in rises and "C" in rises:
        rises["MC"] = rises["M"] | rises["C"]
    return {key: float(100.0 * value.mean()) for key, value in rises.items()}
