"""Top-label calibration errors (ECE, MCE, RMSCE) with the Guo et al. binning convention.

Notation (per utterance ``i``): confidence ``c_i = max_k p_ik``, prediction ``ŷ_i = argmax_k p_ik``
(first maximum on ties), correctness ``a_i = 1[ŷ_i = y_i]``. Bins are equal-width,
``B_m = (lo_m, hi_m]`` with edges ``linspace(0, 1, n_bins + 1)`` (float64); a confidence of exactly 0
goes in the first bin and a confidence of exactly 1.0 in the last one. With ``acc(B_m)``, ``conf(B_m)``
the mean of ``a`` / ``c`` in the bin and ``w_m = |B_m| / N``:

* ``ECE   = Σ_m w_m |acc(B_m) − conf(B_m)|``            (Naeini et al. 2015; Guo et al. 2017)
* ``MCE   = max_m |acc(B_m) − conf(B_m)|`` over non-empty bins
* ``RMSCE = sqrt(Σ_m w_m (acc(B_m) − conf(B_m))²)``       (square root included, as torchmetrics ``l2``)

Empty bins contribute nothing. This is the convention of the reference ``_ECELoss`` of Guo et al.
(gpleiss/temperature_scaling), of CRL (Moon et al. 2020) and of FMFP (Zhu et al. 2022), see
``hf_stack_conventions.md`` §4.3–4.4.

How other libraries differ (only for confidences lying exactly on a bin edge; on continuous data all
agree to ~1e-6):

* torchmetrics 1.9 ``MulticlassCalibrationError`` uses ``[lo, hi)`` bins and puts ``c = 1.0`` in an
  extra bin of its own;
* netcal 1.4 uses ``[lo, hi)`` bins with a closed last bin, 10 bins by default and clips confidences;
* torch-uncertainty wraps torchmetrics (10 bins by default, keyword ``num_bins``).

Worked example (reference §4.4): confidences ``0.5 ✓, 0.75 ✓, 0.6 ✓, 1.0 ✗, 0.8 ✓`` with
``n_bins=4`` give ECE = 0.39 here, 0.47 with torchmetrics, 0.29 with netcal.

All values are fractions in ``[0, 1]``; papers (and :func:`merc_hf.metrics.reliability_report`
consumers) usually multiply ECE/MCE/RMSCE by 100.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_n_bins, check_probs_and_labels


def _bin_statistics(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Per-bin counts, mean accuracy and mean confidence for ``(lo, hi]`` equal-width bins."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side="left") returns m for c in (edges[m-1], edges[m]]: right-closed bins.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins) / count
        mean_confidence = np.bincount(index, weights=confidence, minlength=n_bins) / count
    return {"edges": edges, "count": count, "accuracy": accuracy, "confidence": mean_confidence}


def reliability_bins(
    probs: Any, references: Any, n_bins: int = 15, *, from_logits: bool = False
) -> dict[str, np.ndarray]:
    """Per-bin statistics behind a reliability diagram and the calibration errors.

    Binning as in the module docstring (equal width, ``(lo, hi]``). Returns a dict of numpy arrays:
    ``edges`` ``(n_bins + 1,)``, and ``count``, ``accuracy``, ``confidence`` ``(n_bins,)``, where
    ``accuracy``/``confidence`` are NaN for empty bins.
    """
    n_bins = check_n_bins(n_bins)
    p, y = check_probs_and_labels(probs, references, from_logits=from_logits)
    return _bin_statistics(p.max(axis=1), p.argmax(axis=1) == y, n_bins)


def calibration_errors(
    probs: Any, references: Any, n_bins: int = 15, *, from_logits: bool = False
) -> dict[str, float]:
    """Expected, maximum and root-mean-square calibration error of the top-label confidence.

    Formulas and binning convention in the module docstring: ``ECE = Σ_m w_m |acc − conf|``,
    ``MCE = max_m |acc − conf|`` (non-empty bins), ``RMSCE = sqrt(Σ_m w_m (acc − conf)²)``, with
    ``n_bins`` equal-width ``(lo, hi]`` bins (Guo et al. 2017, CRL, FMFP). On continuous data this
    equals torchmetrics' ``MulticlassCalibrationError(norm="l1" | "max" | "l2")`` to ~1e-6; it differs
    when confidences sit exactly on bin edges (torchmetrics: ``[lo, hi)`` and a separate bin for 1.0).

    Args:
        probs: ``(N, K)`` class probabilities (or logits with ``from_logits=True``).
        references: ``(N,)`` reference class ids.
        n_bins: number of equal-width bins (15 as in Guo et al.).
        from_logits: apply a softmax to ``probs`` first.

    Returns:
        ``{"ece", "mce", "rmsce"}`` as fractions in ``[0, 1]`` (multiply by 100 for percentages).
    """
    bins = reliability_bins(probs, references, n_bins, from_logits=from_logits)
    filled = bins["count"] > 0
    weight = bins["count"][filled] / bins["count"].sum()
    gap = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return {
        "ece": float(np.sum(weight * gap)),
        "mce": float(gap.max()),
        "rmsce": float(np.sqrt(np.sum(weight * gap**2))),
    }
