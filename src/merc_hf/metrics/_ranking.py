"""Threshold-sweep primitives for binary ranking metrics (ROC, precision–recall, average precision).

Written from the textbook definitions so that the package does not depend on scikit-learn; the
conventions (one curve point per distinct score, ties treated as one threshold, ROC curves starting at
(0, 0)) are those of ``sklearn.metrics`` 1.9, against which the tests cross-check.
"""

from __future__ import annotations

import numpy as np


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoidal rule ``Σ_i (x_i − x_{i−1}) · (y_i + y_{i−1}) / 2`` (as ``sklearn.metrics.auc``)."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def threshold_counts(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true/false-positive counts when thresholding at each distinct score, highest first.

    Entry ``i`` counts the samples with ``score >= t_i``, where ``t_0 > t_1 > ...`` are the distinct
    scores, so tied samples enter the positive side together.
    """
    order = np.argsort(-score, kind="stable")
    sorted_score = score[order]
    sorted_pos = positive[order].astype(np.float64)
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_score)), sorted_score.size - 1]
    tps = np.cumsum(sorted_pos)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps, fps


def roc_points(positive: np.ndarray, score: np.ndarray, *, drop_intermediate: bool = False):
    """ROC curve ``(fpr, tpr)`` starting at (0, 0); needs both classes present.

    ``drop_intermediate=True`` removes points that lie in the middle of a straight run (zero second
    difference of both counts), like ``sklearn.metrics.roc_curve``'s default. It never changes the area
    but can change "the point closest to a target TPR".
    """
    tps, fps = threshold_counts(positive, score)
    if drop_intermediate and tps.size > 2:
        corner = np.logical_or(np.diff(fps, 2) != 0, np.diff(tps, 2) != 0)
        keep = np.r_[True, corner, True]
        tps, fps = tps[keep], fps[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return fps / fps[-1], tps / tps[-1]


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (trapezoidal; equals the Mann–Whitney U statistic with ties = 1/2)."""
    fpr, tpr = roc_points(positive, score)
    return trapezoid(tpr, fpr)


def pr_auc_trapezoid(positive: np.ndarray, score: np.ndarray) -> float:
    """Trapezoidal area under the precision–recall curve.

    Same points as ``sklearn.metrics.precision_recall_curve`` (one per distinct score plus the end point
    recall 0 / precision 1), integrated with ``sklearn.metrics.auc``'s trapezoidal rule.
    """
    tps, fps = threshold_counts(positive, score)
    precision = np.r_[1.0, tps / (tps + fps)]
    recall = np.r_[0.0, tps / tps[-1]]
    return trapezoid(precision, recall)


def average_precision(positive: np.ndarray, score: np.ndarray, n_positives: int | None = None) -> float:
    """Step-wise average precision ``AP = Σ_i (R_i − R_{i−1}) · P_i`` over the distinct thresholds.

    Equals ``sklearn.metrics.average_precision_score``. ``n_positives`` overrides the recall
    denominator: positives that were never scored (e.g. gold pairs outside a candidate set) then count
    as misses, so AP is at most ``(scored positives) / n_positives``.
    """
    tps, fps = threshold_counts(positive, score)
    total = tps[-1] if n_positives is None else float(n_positives)
    recall = np.r_[0.0, tps / total]
    precision = tps / (tps + fps)
    return float(np.sum(np.diff(recall) * precision))
