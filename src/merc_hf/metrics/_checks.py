"""Input validation shared by every metric in :mod:`merc_hf.metrics`.

Each public metric validates its inputs once, through the helpers below, and then works on clean
float64 / int64 numpy arrays. Every failure is a :class:`ValueError` whose message names the offending
argument and says what is wrong with it.

Array-like inputs may be numpy arrays, torch tensors (any device or dtype; they are detached and copied
to the CPU) or nested Python lists. torch is never imported here: a tensor is recognised by duck typing,
so the metrics work without torch installed.
"""

from __future__ import annotations

import operator
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

#: Default tolerance on ``|sum_k p_k - 1|`` for a row of probabilities.
PROB_SUM_ATOL = 1e-3

#: Tolerance used instead for float16 / bfloat16 inputs.
LOW_PRECISION_SUM_ATOL = 1e-2
_LOW_PRECISION = {"float16", "bfloat16"}

#: Removal types of CMERC (Tu et al., ACM MM 2024): audio, visual, text modality removed; intra-speaker
#: context ("X") and inter-speaker context ("O") removed.
MODALITY_REMOVALS = ("A", "V", "T")
CONTEXT_REMOVALS = ("X", "O")
REMOVAL_TYPES = MODALITY_REMOVALS + CONTEXT_REMOVALS


def to_numpy(value: Any, name: str) -> np.ndarray:
    """Convert a numpy array, torch tensor or (nested) list to a numpy array.

    Ragged lists and non-numeric values raise ``ValueError`` naming ``name``.
    """
    if hasattr(value, "detach") and hasattr(value, "cpu") and type(value).__module__.startswith("torch"):
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.double()  # bfloat16/float16 have no numpy equivalent for every dtype
        value = tensor.numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} could not be converted to an array ({err}); is it ragged?") from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got an array of dtype {array.dtype}")
    return array


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum for numerical stability."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def check_probs(
    probs: Any, name: str = "probs", *, from_logits: bool = False, atol: float = PROB_SUM_ATOL
) -> np.ndarray:
    """Validate an ``(N, K)`` matrix of class probabilities and return it as float64.

    Requirements: two dimensions, ``N >= 1``, ``K >= 2``, no NaN/inf, every entry in ``[0, 1]`` and
    every row summing to 1 within ``atol`` (``LOW_PRECISION_SUM_ATOL`` = 1e-2 for float16/bfloat16 inputs,
    whose rounding alone exceeds 1e-3). With ``from_logits=True`` the input is taken to be
    unnormalised scores and a softmax is applied first (only finiteness and shape are checked).
    """
    if str(getattr(probs, "dtype", "")).replace("torch.", "") in _LOW_PRECISION:
        # Rounding alone moves a bfloat16 row sum by up to ~K · 2⁻⁹; logits + from_logits avoid this.
        atol = max(atol, LOW_PRECISION_SUM_ATOL)
    array = to_numpy(probs, name)
    if array.size == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, K), got shape {tuple(array.shape)}")
    if array.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 classes (columns), got {array.shape[1]}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if from_logits:
        return softmax(array)
    if array.min() < 0.0 or array.max() > 1.0 + atol:
        raise ValueError(
            f"{name} must contain probabilities in [0, 1] (got values in [{array.min():.4g}, "
            f"{array.max():.4g}]); pass from_logits=True for unnormalised scores"
        )
    row_error = np.abs(array.sum(axis=1) - 1.0)
    if row_error.max() > atol:
        bad = int(row_error.argmax())
        raise ValueError(
            f"{name} rows must sum to 1 (tolerance {atol:g}); row {bad} sums to "
            f"{array[bad].sum():.6g}. Pass from_logits=True to apply a softmax to logits"
        )
    return array


def check_labels(
    labels: Any, name: str, *, n: int | None = None, num_classes: int | None = None
) -> np.ndarray:
    """Validate a 1-D vector of integer class ids and return it as int64.

    ``n`` (expected length) and ``num_classes`` (ids must lie in ``[0, num_classes)``) are optional.
    Float arrays are accepted when every value is integral (as produced by some collators).
    """
    array = to_numpy(labels, name)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids, got shape {tuple(array.shape)}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if n is not None and array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} entries but {n} were expected (shape mismatch)")
    if array.dtype.kind == "b":
        raise ValueError(f"{name} must hold integer class ids, got booleans")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold integer class ids, got non-integral values")
    array = array.astype(np.int64)
    if num_classes is not None and (array.min() < 0 or array.max() >= num_classes):
        bad = array[(array < 0) | (array >= num_classes)][0]
        raise ValueError(f"{name} contains label {bad}, outside the valid range [0, {num_classes - 1}]")
    return array


def check_probs_and_labels(
    probs: Any, references: Any, *, from_logits: bool = False, probs_name: str = "probs"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``probs`` ``(N, K)`` and ``references`` ``(N,)`` together (same N, labels in ``[0, K)``)."""
    p = check_probs(probs, probs_name, from_logits=from_logits)
    y = check_labels(references, "references", n=p.shape[0], num_classes=p.shape[1])
    return p, y


def check_masked_probs(
    masked_probs: Mapping[str, Any], shape: tuple[int, int], *, from_logits: bool = False
) -> dict[str, np.ndarray]:
    """Validate CMERC's removal-type → ``(N, K)`` probability mapping against the full-input shape."""
    if not isinstance(masked_probs, Mapping):
        raise ValueError(
            f"masked_probs must be a mapping from removal type {REMOVAL_TYPES} to probability arrays, "
            f"got {type(masked_probs).__name__}"
        )
    if not masked_probs:
        raise ValueError(f"masked_probs is empty; give at least one of the removal types {REMOVAL_TYPES}")
    checked: dict[str, np.ndarray] = {}
    for key, value in masked_probs.items():
        if key not in REMOVAL_TYPES:
            raise ValueError(
                f"masked_probs has unknown removal type {key!r}; expected one of {REMOVAL_TYPES}"
            )
        array = check_probs(value, f"masked_probs[{key!r}]", from_logits=from_logits)
        if array.shape != shape:
            raise ValueError(
                f"masked_probs[{key!r}] has shape {array.shape} but full_probs has shape {shape} "
                "(shape mismatch)"
            )
        checked[key] = array
    # Canonical order A, V, T, X, O, whatever the caller's order.
    return {key: checked[key] for key in REMOVAL_TYPES if key in checked}


def check_n_bins(n_bins: Any) -> int:
    """``n_bins`` must be a positive integer."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


# ----------------------------------------------------------------------------------------------------
# Emotion–cause pairs


def _index(value: Any, name: str) -> int:
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be an integer utterance index, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer utterance index, got {value!r}") from None


def as_conversation_dict(value: Any, name: str) -> dict[Hashable, Any]:
    """A mapping conversation id → items is kept; a sequence is keyed by position (0, 1, ...)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise ValueError(
            f"{name} must be a mapping conversation_id -> pairs or a sequence of per-conversation pair "
            f"lists, got {type(value).__name__}"
        )
    return dict(enumerate(value))


def check_conversation_lengths(
    lengths: Any, name: str = "conversation_lengths"
) -> dict[Hashable, int] | None:
    """Normalise optional conversation lengths (mapping or aligned sequence) to a dict of ints ≥ 0."""
    if lengths is None:
        return None
    result = {}
    for conv, length in as_conversation_dict(lengths, name).items():
        length = _index(length, f"{name}[{conv!r}]")
        if length < 0:
            raise ValueError(f"{name}[{conv!r}] must be >= 0, got {length}")
        result[conv] = length
    return result


def check_pair(
    pair: Any,
    name: str,
    *,
    size: int,
    length: int | None,
    index_base: int,
) -> tuple:
    """Validate one pair ``(emotion_utt, cause_utt[, extra])`` and return it as a tuple.

    The first two entries are utterance indices; they must be ``>= index_base`` and, when the
    conversation ``length`` is known, ``< index_base + length``. Entries after the second are returned
    unchanged (emotion labels, scores).
    """
    if isinstance(pair, str | bytes | Mapping) or not isinstance(pair, Iterable):
        raise ValueError(f"{name} must be a sequence of {size} items, got {pair!r}")
    items = tuple(pair)
    if len(items) != size:
        raise ValueError(f"{name} must have {size} items, got {len(items)}: {pair!r}")
    emo, cause = _index(items[0], f"{name}[0]"), _index(items[1], f"{name}[1]")
    upper = None if length is None else index_base + length
    for role, index in (("emotion", emo), ("cause", cause)):
        if index < index_base or (upper is not None and index >= upper):
            valid = f"[{index_base}, {upper - 1}]" if upper is not None else f">= {index_base}"
            raise ValueError(
                f"{name} points outside the conversation: {role} utterance {index} is not in {valid}"
            )
    return (emo, cause, *items[2:])


def check_pair_lists(
    conversations: Any,
    name: str,
    *,
    size: int,
    lengths: dict[Hashable, int] | None,
    index_base: int,
) -> dict[Hashable, list[tuple]]:
    """Validate every pair of every conversation; returns conversation id → list of tuples."""
    result = {}
    for conv, pairs in as_conversation_dict(conversations, name).items():
        if isinstance(pairs, str | bytes | Mapping) or not isinstance(pairs, Iterable):
            raise ValueError(f"{name}[{conv!r}] must be an iterable of pairs, got {type(pairs).__name__}")
        if lengths is not None and conv not in lengths:
            raise ValueError(f"{name} has conversation {conv!r}, which is missing from conversation_lengths")
        length = None if lengths is None else lengths[conv]
        result[conv] = [
            check_pair(p, f"{name}[{conv!r}][{i}]", size=size, length=length, index_base=index_base)
            for i, p in enumerate(pairs)
        ]
    return result


def check_same_container_kind(first: Any, second: Any, names: tuple[str, str]) -> None:
    """Both pair containers must be mappings, or both aligned sequences of the same length."""
    first_map, second_map = isinstance(first, Mapping), isinstance(second, Mapping)
    if first_map != second_map:
        raise ValueError(
            f"{names[0]} and {names[1]} must both be mappings keyed by conversation id or both sequences "
            "aligned by conversation"
        )
    if not first_map and len(first) != len(second):
        raise ValueError(
            f"{names[0]} has {len(first)} conversations but {names[1]} has {len(second)} (sequences must be "
            "aligned by conversation)"
        )


def check_pair_scores(
    conversations: Any,
    name: str,
    *,
    lengths: dict[Hashable, int] | None,
    index_base: int,
) -> dict[Hashable, dict[tuple[int, int], float]]:
    """Validate scored candidate pairs; returns conversation id → {(emotion_utt, cause_utt): score}.

    Each conversation holds either a mapping ``(emotion_utt, cause_utt) -> score`` or an iterable of
    ``(emotion_utt, cause_utt, score)`` triples. Scores must be finite; a candidate may be scored once.
    """
    result = {}
    for conv, items in as_conversation_dict(conversations, name).items():
        if lengths is not None and conv not in lengths:
            raise ValueError(f"{name} has conversation {conv!r}, which is missing from conversation_lengths")
        length = None if lengths is None else lengths[conv]
        where = f"{name}[{conv!r}]"
        if isinstance(items, Mapping):
            triples = [
                (*check_pair(key, f"{where} key {key!r}", size=2, length=length, index_base=index_base), s)
                for key, s in items.items()
            ]
        elif isinstance(items, Iterable) and not isinstance(items, str | bytes):
            triples = [
                check_pair(t, f"{where}[{i}]", size=3, length=length, index_base=index_base)
                for i, t in enumerate(items)
            ]
        else:
            raise ValueError(f"{where} must be a mapping pair -> score or an iterable of (emo, cause, score)")
        scored: dict[tuple[int, int], float] = {}
        for emo, cause, score in triples:
            try:
                value = float(score)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{where}: the score of pair ({emo}, {cause}) is not a number: {score!r}"
                ) from None
            if not np.isfinite(value):
                raise ValueError(f"{where}: the score of pair ({emo}, {cause}) is NaN or infinite")
            if (emo, cause) in scored:
                raise ValueError(f"{where}: pair ({emo}, {cause}) is scored more than once")
            scored[(emo, cause)] = value
        result[conv] = scored
    return result
