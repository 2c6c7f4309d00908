"""Sentiment metrics of the CH-SIMS family (CH-SIMS, CH-SIMS v2, CMU-MOSI, CMU-MOSEI): pure numpy.

Labels follow the shared contract of the CH-SIMS readers (reference notes §1.6): a *regression label*
``M`` (SIMS/SIMS-v2 in ``[-1, 1]``, MOSI/MOSEI in ``[-3, 3]``) and a *3-class label* by the sign of ``M``,
as CMC builds it (``gw-zhong/CMC: dataloader.py``): ``M < 0`` → 0 negative, ``M = 0`` → 1 neutral,
``M > 0`` → 2 positive (:func:`sentiment_classes`). Classifier outputs are ``(N, 3)`` probabilities in
that class order.

Which "Acc-2" you get
---------------------
Papers on these data sets use several binary accuracies under the same name. The conventions below
are those of MMSA (``thuiar/MMSA: metricsTop.py``) and CMC (``gw-zhong/CMC: src/eval_metrics.py``)
as summarised in reference notes §4.8; every interval is written out.

Regression models, :func:`sims_regression_scores` (CH-SIMS, CH-SIMS v2); predictions and references
are clipped to ``[-1, 1]`` first:

| key | definition | source |
|---|---|---|
| ``acc_2`` | ``[-1, 0]`` vs ``(0, 1]``: **non-positive vs positive** | MMSA ``Mult_acc_2`` |
| ``f1_2`` | weighted F1 of that 2-class split | MMSA ``F1_score`` |
| ``acc_3`` | ``[-1, -0.1]``, ``(-0.1, 0.1]``, ``(0.1, 1]`` | MMSA ``Mult_acc_3`` |
| ``acc_5`` | ``[-1, -0.7]``, ``(-0.7, -0.1]``, ``(-0.1, 0.1]``, ``(0.1, 0.7]``, ``(0.7, 1]`` | MMSA ``Mult_acc_5`` |
| ``mae``, ``corr`` | mean absolute error, Pearson r of the clipped values | MMSA |

Regression models, :func:`mosi_regression_scores` (CMU-MOSI, CMU-MOSEI); no clipping unless stated:

| key | definition | source |
|---|---|---|
| ``has0_acc_2`` | ``>= 0`` vs ``< 0``: **negative vs non-negative**, every sample | MMSA ``Has0_acc_2`` |
| ``has0_f1`` | weighted F1 of that split | MMSA ``Has0_F1_score`` |
| ``non0_acc_2`` | references ``!= 0`` only; ``> 0`` vs ``<= 0`` (a prediction of 0 is negative) | MMSA ``Non0_acc_2`` |
| ``non0_f1`` | weighted F1 of that split | MMSA ``Non0_F1_score`` |
| ``acc_5`` | both sides clipped to ``[-2, 2]``, rounded, compared | MMSA ``Mult_acc_5`` |
| ``acc_7`` | both sides clipped to ``[-3, 3]``, rounded, compared | MMSA ``Mult_acc_7`` |
| ``mae``, ``corr`` | mean absolute error, Pearson r of the unclipped values | MMSA |

3-class classifiers (CMC), :func:`sentiment_classification_scores`; the binary prediction of
``has0``/``non0`` is ``p_positive > p_negative`` (CMC's argmax over ``[p_negative, p_positive]``):

| key | definition | source |
|---|---|---|
| ``acc_3``, ``f1_3`` | accuracy, weighted F1 of ``argmax(probs)`` | CMC ``Acc_3``, ``F1_score_3`` |
| ``has0_acc_2`` | ``"sims"``: **non-positive** (class ``<= 1``) **vs positive**; ``"mosi"``: **negative vs non-negative** (class ``>= 1``) | CMC ``Has0_acc_2`` |
| ``has0_f1`` | weighted F1 of that split | CMC ``Has0_F1_score`` |
| ``non0_acc_2`` | reference-neutral samples dropped; reference positive → 1, negative → 0 | merc_hf (fixes §5.1) |
| ``non0_f1`` | weighted F1 of that split | merc_hf (fixes §5.1) |
| ``mae``, ``corr``, ``acc_5`` (``"mosi"``: + ``acc_7``) | of :func:`expected_sentiment` against ``regression_references``, by the convention's regression function above | merc_hf's choice |

Notes:

* SIMS Acc-2 is non-positive vs positive, MOSI/MOSEI Has0 is negative vs non-negative (MMSA issue
  #31, Self-MM issue #13; Has0/Non0 follow the CMU convention, MMSA issues #92/#107). The two disagree
  exactly on references of 0 (class neutral). MMSA's SIMS regression ``acc_2`` and CMC's SIMS
  ``has0_acc_2`` split the same way, so both are non-positive vs positive. (MMSA's own *classification*
  metric uses the non-positive vs positive split for MOSI/MOSEI too, ``thuiar/MMSA:
  src/MMSA/utils/metricsTop.py``; CMC, followed here, switches to negative vs non-negative for them.)
* Interval ends are right-closed everywhere in MMSA's SIMS metric (``(lo, hi]``, the lowest interval
  also contains ``-1``): ``-0.1`` is negative and ``0.1`` neutral for ``acc_3``; ``-0.7`` is class 0 and
  ``0.7`` class 3 for ``acc_5``. A value within ``THRESHOLD_ATOL`` = 1e-6 of ±0.1 / ±0.7 counts as that
  end, so float32 inputs (``float32(0.1) > 0.1`` in float64) land where their decimal value belongs.
* Rounding for MOSI ``acc_5``/``acc_7`` is numpy's (round half to even, as MMSA's ``np.round``):
  ``0.5 → 0``, ``1.5 → 2``, ``2.5 → 2``.
* CMC's binary prediction ignores ``p_neutral`` (it is CMC's rule, kept for comparability): a sample
  predicted neutral by ``argmax`` still counts as positive in ``has0_acc_2`` when
  ``p_positive > p_negative``. Ties (``p_positive == p_negative``) go to the negative / non-positive
  side (first maximum).
* **The MMSA / CMC ``Non0`` bug is not reproduced** (reference notes §0 item 7, §5.1): their
  classification ``Non0_acc_2`` drops neutral references and binarises the prediction to {0, 1} but
  compares it with the 3-class truth {0, 2}, so positives are never counted correct. Here the
  reference is binarised too, so a perfect classifier gets ``non0_acc_2 = 1``.
* :func:`expected_sentiment` ``= p_positive − p_negative`` turns a classifier into a regression
  estimate. CMC reports only classification metrics; MAE/Corr/Acc-5 of a classifier are merc_hf's
  addition (SIMS: the estimate is already in ``[-1, 1]``; MOSI/MOSEI: it is scaled by 3 to the label
  range ``[-3, 3]``, which changes MAE/Acc-5/Acc-7 but not Corr).
* ``corr`` is NaN when either side is constant (or fewer than 2 samples); the reason is then given
  under ``corr_nan_reason``. ``non0_*`` are NaN, with ``non0_nan_reason``, when every reference is 0 /
  neutral. No warning, no exception.

Consistent / inconsistent subsets (:func:`consistency_mask`): CMC evaluates SIMS models on two test
subsets ``D_msc`` / ``D_msi``, whose files are not published and whose definition is not in its code
(reference notes §3.5). merc_hf's rule, the natural reading of "modality-semantically consistent": a
sample is *consistent* iff every available unimodal 3-class label (text, audio, visual) equals its
multimodal 3-class label.

Accuracies and F1 are fractions in ``[0, 1]`` (papers print × 100); F1 is sklearn's
``f1_score(average="weighted")`` with the default label set (via :func:`classification_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import check_labels, check_n_bins, check_probs, to_numpy
from .calibration import calibration_errors
from .classification import classification_scores
from .report import _jsonable

#: Class order of the 3-class sentiment label (reference notes §1.6, CMC).
SENTIMENT_CLASS_NAMES = ("negative", "neutral", "positive")
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2

#: Marker for an unavailable unimodal label (the collator's fill value).
UNAVAILABLE_LABEL = -100

#: Accepted ``convention`` names → canonical convention.
_CONVENTIONS = {
    "sims": "sims",
    "chsims": "sims",
    "ch-sims": "sims",
    "simsv2": "sims",
    "sims-v2": "sims",
    "sims_v2": "sims",
    "mosi": "mosi",
    "mosei": "mosi",
}

#: Scale of :func:`expected_sentiment` per convention: half-width of the regression label range.
_REGRESSION_SCALE = {"sims": 1.0, "mosi": 3.0}

#: Values this close to a SIMS ``acc_3``/``acc_5`` interval end (±0.1, ±0.7) count as equal to it.
THRESHOLD_ATOL = 1e-6

_SIMS_ACC3_THRESHOLDS = np.array([-0.1, 0.1])
_SIMS_ACC5_THRESHOLDS = np.array([-0.7, -0.1, 0.1, 0.7])
_BINARY_NAMES = ("negative", "positive")


# ----------------------------------------------------------------------------------------------------
# Helpers


def _check_convention(convention: Any) -> str:
    key = str(convention).lower() if isinstance(convention, str) else None
    if key not in _CONVENTIONS:
        raise ValueError(
            f"convention must be 'sims' (CH-SIMS, CH-SIMS v2) or 'mosi' (CMU-MOSI, CMU-MOSEI), got {convention!r}"
        )
    return _CONVENTIONS[key]


def _check_values(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """A 1-D vector of finite real values (regression predictions or labels) as float64."""
    array = to_numpy(values, name)
    if array.dtype.kind == "b":
        raise ValueError(f"{name} must hold real sentiment values, got booleans")
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of sentiment values, got shape {tuple(array.shape)}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if n is not None and array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} entries but {n} were expected (shape mismatch)")
    array = array.astype(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{name} contains NaN or infinite values (first at sample {bad}: {array[bad]})")
    return array


def _check_sentiment_probs(probs: Any, from_logits: bool) -> np.ndarray:
    p = check_probs(probs, "probs", from_logits=from_logits)
    if p.shape[1] != 3:
        raise ValueError(
            f"probs must have 3 columns (negative, neutral, positive), got shape {tuple(p.shape)}"
        )
    return p


def _pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, str | None]:
    """Pearson r of two equal-length vectors, or ``(nan, reason)`` when it is undefined."""
    if x.size < 2:
        return math.nan, f"corr needs at least 2 samples, got {x.size}"
    constant = [name for name, v in (("predictions", x), ("references", y)) if np.all(v == v[0])]
    if constant:
        return math.nan, f"corr is undefined: the {' and the '.join(constant)} are constant"
    xc, yc = x - x.mean(), y - y.mean()
    r = float(np.dot(xc, yc) / math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc))))
    return min(1.0, max(-1.0, r)), None


def _add_corr(result: dict[str, Any], x: np.ndarray, y: np.ndarray) -> None:
    result["corr"], reason = _pearson(x, y)
    if reason is not None:
        result["corr_nan_reason"] = reason


def _binary_scores(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Accuracy and weighted F1 of boolean predictions against boolean truths."""
    scores = classification_scores(predicted.astype(np.int64), truth.astype(np.int64), _BINARY_NAMES)
    return scores["accuracy"], scores["weighted_f1"]


def _interval_classes(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Class ``c`` for ``values`` in the right-closed interval ``(t_{c-1}, t_c]``: the number of
    thresholds strictly below the value.

    A value within ``THRESHOLD_ATOL`` of an interval end counts as that end, so float32 labels and
    predictions (``float32(0.1) = 0.10000000149...``, ``float32(-0.7) = -0.69999998...``) fall on the
    side their decimal value belongs to, as they do in MMSA's float32 comparisons.
    """
    snapped = values.copy()
    for threshold in thresholds:
        snapped[np.abs(values - threshold) <= THRESHOLD_ATOL] = threshold
    return np.searchsorted(thresholds, snapped, side="left")


# ----------------------------------------------------------------------------------------------------
# Public API


def sentiment_classes(values: Any) -> np.ndarray:
    """3-class sentiment label of regression values by sign, as CMC does (reference notes §1.6).

    ``< 0`` → 0 (negative), ``== 0`` → 1 (neutral), ``> 0`` → 2 (positive); returns int64 ``(N,)``.
    """
    v = _check_values(values, "values")
    return (np.sign(v) + 1).astype(np.int64)


def sims_regression_scores(predictions: Any, references: Any) -> dict[str, Any]:
    """MMSA's CH-SIMS / CH-SIMS v2 regression metrics (reference notes §4.8).

    Both sides are clipped to ``[-1, 1]``; then ``acc_2`` splits ``[-1, 0]`` vs ``(0, 1]``, ``acc_3``
    ``[-1, -0.1] / (-0.1, 0.1] / (0.1, 1]``, ``acc_5`` at ``-0.7 / -0.1 / 0.1 / 0.7`` (right-closed
    intervals, see the module table); ``f1_2`` is the weighted F1 of the 2-class split; ``mae`` and
    ``corr`` (Pearson r) are computed on the clipped values.

    Args:
        predictions: ``(N,)`` predicted sentiment values.
        references: ``(N,)`` gold regression labels.

    Returns:
        ``{"acc_2", "f1_2", "acc_3", "acc_5", "mae", "corr": float, "n": int}``, plus
        ``"corr_nan_reason": str`` when ``corr`` is NaN (a constant side or a single sample).
    """
    p = np.clip(_check_values(predictions, "predictions"), -1.0, 1.0)
    y = np.clip(_check_values(references, "references", n=p.shape[0]), -1.0, 1.0)
    acc_2, f1_2 = _binary_scores(p > 0.0, y > 0.0)
    result: dict[str, Any] = {
        "acc_2": acc_2,
        "f1_2": f1_2,
        "acc_3": float(
            np.mean(
                _interval_classes(p, _SIMS_ACC3_THRESHOLDS) == _interval_classes(y, _SIMS_ACC3_THRESHOLDS)
            )
        ),
        "acc_5": float(
            np.mean(
                _interval_classes(p, _SIMS_ACC5_THRESHOLDS) == _interval_classes(y, _SIMS_ACC5_THRESHOLDS)
            )
        ),
        "mae": float(np.mean(np.abs(p - y))),
        "n": int(p.shape[0]),
    }
    _add_corr(result, p, y)
    return result


def mosi_regression_scores(predictions: Any, references: Any) -> dict[str, Any]:
    """MMSA's CMU-MOSI / CMU-MOSEI regression metrics (reference notes §4.8).

    * ``has0_acc_2`` / ``has0_f1``: ``>= 0`` vs ``< 0`` on every sample (accuracy / weighted F1);
    * ``non0_acc_2`` / ``non0_f1``: samples whose reference is ``!= 0`` only, ``> 0`` vs ``<= 0``
      (``non0_n`` of them; NaN with ``non0_nan_reason`` when every reference is 0);
    * ``acc_5``: both sides clipped to ``[-2, 2]`` and rounded (half to even), then compared;
      ``acc_7`` the same with ``[-3, 3]``;
    * ``mae`` and ``corr`` (Pearson r) on the unclipped values (``corr_nan_reason`` when NaN).
    """
    p = _check_values(predictions, "predictions")
    y = _check_values(references, "references", n=p.shape[0])
    has0_acc, has0_f1 = _binary_scores(p >= 0.0, y >= 0.0)
    result: dict[str, Any] = {"has0_acc_2": has0_acc, "has0_f1": has0_f1}
    non_zero = y != 0.0
    if non_zero.any():
        result["non0_acc_2"], result["non0_f1"] = _binary_scores(p[non_zero] > 0.0, y[non_zero] > 0.0)
    else:
        result["non0_acc_2"] = result["non0_f1"] = math.nan
        result["non0_nan_reason"] = "non0 metrics are undefined: every reference is 0"
    for name, bound in (("acc_5", 2.0), ("acc_7", 3.0)):
        rounded_p = np.round(np.clip(p, -bound, bound))
        rounded_y = np.round(np.clip(y, -bound, bound))
        result[name] = float(np.mean(rounded_p == rounded_y))
    result["mae"] = float(np.mean(np.abs(p - y)))
    result["n"] = int(p.shape[0])
    result["non0_n"] = int(non_zero.sum())
    _add_corr(result, p, y)
    return result


def expected_sentiment(probs: Any, *, scale: float = 1.0, from_logits: bool = False) -> np.ndarray:
    """Regression estimate of a 3-class sentiment classifier: ``scale · (p_positive − p_negative)``.

    With ``scale=1`` the estimate lies in ``[-1, 1]``, the CH-SIMS label range; it is what
    :func:`sentiment_classification_scores` feeds to the SIMS MAE / Corr / Acc-5 when the model is a
    classifier, and ``scale=3`` (the MOSI/MOSEI label range) for the MOSI convention. This is merc_hf's
    choice: CMC reports only classification metrics.
    """
    p = _check_sentiment_probs(probs, from_logits)
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.integer | np.floating):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    return float(scale) * (p[:, POSITIVE] - p[:, NEGATIVE])


def sentiment_classification_scores(
    probs: Any,
    references: Any,
    convention: str = "sims",
    regression_references: Any = None,
    *,
    from_logits: bool = False,
) -> dict[str, Any]:
    """CMC's metrics of a 3-class sentiment classifier, with a correct Non0 (reference notes §4.8, §5.1).

    * ``acc_3`` / ``f1_3``: accuracy / weighted F1 of ``argmax(probs)`` against ``references``;
    * ``has0_acc_2`` / ``has0_f1``: the binary task of the convention, ``"sims"`` (CH-SIMS, v2):
      non-positive (class ``<= 1``) vs positive; ``"mosi"`` (MOSI, MOSEI): negative vs non-negative
      (class ``>= 1``). The binary prediction is ``p_positive > p_negative`` (CMC's argmax over
      ``[p_negative, p_positive]``; ``p_neutral`` is ignored, ties go to the lower side);
    * ``non0_acc_2`` / ``non0_f1``: reference-neutral samples dropped (``non0_n`` remain), reference
      positive → 1 and negative → 0, prediction ``p_positive > p_negative``. NaN with
      ``non0_nan_reason`` if every reference is neutral. (MMSA/CMC compare {0, 1} with {0, 2} here;
      that bug is not reproduced.)
    * with ``regression_references`` (``(N,)`` gold regression labels, whose signs must agree with
      ``references``): ``mae``, ``corr`` and ``acc_5`` (``"mosi"``: also ``acc_7``) of
      :func:`expected_sentiment` (scale 1 for SIMS, 3 for MOSI) computed by
      :func:`sims_regression_scores` / :func:`mosi_regression_scores` (``corr_nan_reason`` when NaN).

    Args:
        probs: ``(N, 3)`` probabilities in the order negative, neutral, positive (logits with
            ``from_logits=True``).
        references: ``(N,)`` 3-class gold labels (0 negative, 1 neutral, 2 positive).
        convention: ``"sims"`` or ``"mosi"`` (aliases: ``"simsv2"``, ``"sims-v2"``, ``"chsims"``,
            ``"mosei"``).
        regression_references: optional ``(N,)`` gold regression labels.
        from_logits: apply a softmax to ``probs`` first.

    Returns:
        A flat dict of floats (fractions in ``[0, 1]`` except MAE/Corr) and the counts ``n``, ``non0_n``.
    """
    conv = _check_convention(convention)
    p = _check_sentiment_probs(probs, from_logits)
    y = check_labels(references, "references", n=p.shape[0], num_classes=3)
    scores = classification_scores(p.argmax(axis=1), y, SENTIMENT_CLASS_NAMES)
    result: dict[str, Any] = {"acc_3": scores["accuracy"], "f1_3": scores["weighted_f1"]}

    binary_prediction = p[:, POSITIVE] > p[:, NEGATIVE]
    binary_truth = y == POSITIVE if conv == "sims" else y >= NEUTRAL
    result["has0_acc_2"], result["has0_f1"] = _binary_scores(binary_prediction, binary_truth)

    polar = y != NEUTRAL
    if polar.any():
        result["non0_acc_2"], result["non0_f1"] = _binary_scores(
            binary_prediction[polar], y[polar] == POSITIVE
        )
    else:
        result["non0_acc_2"] = result["non0_f1"] = math.nan
        result["non0_nan_reason"] = "non0 metrics are undefined: every reference is neutral"
    result["n"] = int(p.shape[0])
    result["non0_n"] = int(polar.sum())

    if regression_references is not None:
        target = _check_values(regression_references, "regression_references", n=p.shape[0])
        mismatch = np.flatnonzero((np.sign(target) + 1).astype(np.int64) != y)
        if mismatch.size:
            i = int(mismatch[0])
            raise ValueError(
                f"regression_references and references disagree at sample {i}: regression label "
                f"{target[i]:g} has sign class {int(np.sign(target[i]) + 1)} but references[{i}] = {y[i]} "
                f"({mismatch.size} such samples; the 3-class label is the sign of the regression label, "
                "reference notes §1.6). Are the arrays aligned?"
            )
        estimate = expected_sentiment(p, scale=_REGRESSION_SCALE[conv])
        if conv == "sims":
            regression = sims_regression_scores(estimate, target)
            keys = ("mae", "corr", "acc_5")
        else:
            regression = mosi_regression_scores(estimate, target)
            keys = ("mae", "corr", "acc_5", "acc_7")
        result.update({key: regression[key] for key in keys})
        if "corr_nan_reason" in regression:
            result["corr_nan_reason"] = regression["corr_nan_reason"]
    return result


def consistency_mask(labels: Any, unimodal_labels: Any) -> np.ndarray:
    """Which samples are *modality-consistent* (merc_hf's rule for CMC's D_msc / D_msi subsets).

    A sample is consistent iff every available unimodal 3-class label equals its multimodal 3-class
    label; ``-100`` marks an unavailable unimodal label and is skipped. CMC's ``D_msc`` / ``D_msi``
    test subsets are not published and their definition is not in its code (reference notes §3.5):
    this rule is merc_hf's, the natural reading of "modality-semantically consistent".

    Args:
        labels: ``(N,)`` multimodal 3-class labels.
        unimodal_labels: ``(N, M)`` unimodal 3-class labels (``M = 3``: text, audio, visual, the
            collator's ``unimodal_labels``), ``-100`` where unavailable.

    Returns:
        Boolean ``(N,)``, True = consistent.

    Raises:
        ValueError: a sample has no unimodal label at all (the rule cannot be applied; MOSI/MOSEI have
            none), a label is outside ``{0, 1, 2}`` (or ``-100``), or the shapes disagree.
    """
    y = check_labels(labels, "labels", num_classes=3)
    u = to_numpy(unimodal_labels, "unimodal_labels")
    if u.ndim != 2 or u.shape[0] != y.shape[0] or u.shape[1] < 1:
        raise ValueError(
            f"unimodal_labels must have shape (N, M) = ({y.shape[0]}, 3) for text, audio, visual, "
            f"got shape {tuple(u.shape)}"
        )
    if u.dtype.kind == "b":
        raise ValueError("unimodal_labels must hold integer class ids, got booleans")
    if u.dtype.kind == "f" and not (np.all(np.isfinite(u)) and np.all(u == np.round(u))):
        raise ValueError(
            "unimodal_labels must hold integer class ids (or -100), got NaN or non-integral values"
        )
    u = u.astype(np.int64)
    available = u != UNAVAILABLE_LABEL
    invalid = available & ((u < 0) | (u > 2))
    if invalid.any():
        row, col = (int(v) for v in np.argwhere(invalid)[0])
        raise ValueError(
            f"unimodal_labels[{row}, {col}] = {u[row, col]}: unimodal labels must be 0, 1, 2 or "
            f"{UNAVAILABLE_LABEL} (unavailable)"
        )
    missing = np.flatnonzero(~available.any(axis=1))
    if missing.size:
        shown = ", ".join(str(int(i)) for i in missing[:5]) + (", ..." if missing.size > 5 else "")
        raise ValueError(
            f"{missing.size} sample(s) have no unimodal label at all (every entry {UNAVAILABLE_LABEL}; "
            f"samples {shown}): the consistency rule needs at least one (MOSI/MOSEI have no unimodal labels)"
        )
    return np.all(~available | (u == y[:, None]), axis=1)


def sentiment_report(
    probs: Any,
    references: Any,
    *,
    regression_references: Any = None,
    unimodal_labels: Any = None,
    convention: str = "sims",
    n_bins: int = 15,
    from_logits: bool = False,
) -> dict[str, Any]:
    """Every sentiment metric of a 3-class classifier's test predictions, JSON-serialisable.

    Sections:

    * ``classification``: :func:`sentiment_classification_scores` (with ``regression_references``:
      MAE / Corr / Acc-5 of the expected sentiment);
    * ``calibration``: :func:`~merc_hf.metrics.calibration_errors` (ECE / MCE / RMSCE of the 3-class
      top-label confidence, ``n_bins`` equal-width ``(lo, hi]`` bins);
    * ``subsets`` (only with ``unimodal_labels``): ``{"consistent": {...}, "inconsistent": {...}}``,
      :func:`sentiment_classification_scores` on the samples of :func:`consistency_mask` and on the
      rest (``n = 0`` and ``None`` metrics for an empty subset), plus ``subset_rule``.

    Also ``convention``, ``n_samples`` and ``n_bins``. Only dicts, str, int, float and ``None`` (NaN
    becomes ``None``), so ``json.dumps(report, allow_nan=False)`` works.
    """
    conv = _check_convention(convention)
    n_bins = check_n_bins(n_bins)
    p = _check_sentiment_probs(probs, from_logits)
    y = check_labels(references, "references", n=p.shape[0], num_classes=3)
    target = (
        None
        if regression_references is None
        else _check_values(regression_references, "regression_references", n=p.shape[0])
    )
    classification = sentiment_classification_scores(p, y, conv, target)
    report: dict[str, Any] = {
        "convention": conv,
        "n_samples": int(p.shape[0]),
        "n_bins": n_bins,
        "classification": classification,
        "calibration": calibration_errors(p, y, n_bins),
    }
    if unimodal_labels is not None:
        mask = consistency_mask(y, unimodal_labels)
        subsets = {}
        for name, selected in (("consistent", mask), ("inconsistent", ~mask)):
            if selected.any():
                subsets[name] = sentiment_classification_scores(
                    p[selected], y[selected], conv, None if target is None else target[selected]
                )
            else:
                subsets[name] = {key: None for key in classification if not key.endswith("_reason")}
                subsets[name].update(n=0, non0_n=0)
        report["subsets"] = subsets
        report["subset_rule"] = (
            "consistent = every available unimodal 3-class label equals the multimodal 3-class label "
            "(merc_hf's rule; CMC's D_msc/D_msi subsets are not published)"
        )
    return _jsonable(report)


def sentiment_report_table(report: Mapping[str, Any]) -> str:
    """A markdown table (metric | value) of the headline numbers of a :func:`sentiment_report`."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.2f}%"

    def num(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    conv = report.get("convention", "sims")
    has0 = "non-positive vs positive" if conv == "sims" else "negative vs non-negative"
    scores, calibration = report["classification"], report["calibration"]
    rows = [
        ("Acc-3", pct(scores["acc_3"])),
        ("F1-3 (weighted)", pct(scores["f1_3"])),
        (f"Has0-Acc-2 ({has0})", pct(scores["has0_acc_2"])),
        ("Has0-F1 (weighted)", pct(scores["has0_f1"])),
        ("Non0-Acc-2 (neutral references dropped)", pct(scores["non0_acc_2"])),
        ("Non0-F1 (weighted)", pct(scores["non0_f1"])),
    ]
    if "mae" in scores:
        rows += [
            ("MAE (expected sentiment)", num(scores["mae"])),
            ("Corr (expected sentiment)", num(scores["corr"])),
            ("Acc-5 (expected sentiment)", pct(scores["acc_5"])),
        ]
        if "acc_7" in scores:
            rows.append(("Acc-7 (expected sentiment)", pct(scores["acc_7"])))
    rows += [
        (f"ECE ({report.get('n_bins', 15)} bins)", pct(calibration["ece"])),
        ("MCE", pct(calibration["mce"])),
        ("RMSCE", pct(calibration["rmsce"])),
    ]
    for name, subset in report.get("subsets", {}).items():
        rows += [
            (f"Acc-3, {name} subset (n = {subset['n']})", pct(subset["acc_3"])),
            (f"Has0-Acc-2, {name} subset", pct(subset["has0_acc_2"])),
        ]
    return "\n".join(["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


__all__ = [
    "SENTIMENT_CLASS_NAMES",
    "consistency_mask",
    "expected_sentiment",
    "mosi_regression_scores",
    "sentiment_classes",
    "sentiment_classification_scores",
    "sentiment_report",
    "sentiment_report_table",
    "sims_regression_scores",
]
