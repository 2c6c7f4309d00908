"""Utterance-level classification scores (accuracy, weighted / macro / per-class F1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._checks import check_labels


def classification_scores(predictions: Any, references: Any, label_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy and F1 scores of predicted class ids against reference class ids.

    Use it on the flattened, unpadded utterances of a split, which is how M3Net, CMERC and the other
    graph MERC models report results (``feiyuchen7/M3NET: train.py``, sklearn ``accuracy_score`` and
    ``f1_score(average="weighted")``).

    With ``tp_k, fp_k, fn_k`` the per-class counts and ``n_k`` the reference support of class ``k``:

    * ``accuracy = (1/N) Σ_i 1[ŷ_i = y_i]``
    * ``per_class_f1[k] = 2 tp_k / (2 tp_k + fp_k + fn_k)``; NaN for a class that occurs neither in
      the references nor in the predictions (F1 undefined)
    * ``weighted_f1 = Σ_k n_k · F1_k / N``
    * ``macro_f1`` = unweighted mean of the defined per-class F1s, i.e. over the classes present in
      ``references ∪ predictions``

    These equal ``sklearn.metrics.accuracy_score`` and ``f1_score(average="weighted" | "macro" | None)``
    with sklearn's default label set (absent classes are left out of the macro average; sklearn reports
    them as 0 with a warning when asked for explicitly).

    Args:
        predictions: ``(N,)`` predicted class ids.
        references: ``(N,)`` reference class ids.
        label_names: class names; ``K = len(label_names)`` and ids must lie in ``[0, K)``.

    Returns:
        ``{"accuracy", "weighted_f1", "macro_f1": float, "per_class_f1": {name: float}}``, fractions in
        ``[0, 1]``.
    """
    names = [str(name) for name in label_names] if label_names is not None else []
    if len(names) < 2:
        raise ValueError(f"label_names must name at least 2 classes, got {label_names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"label_names contains duplicates: {names}")
    k = len(names)
    y = check_labels(references, "references", num_classes=k)
    y_hat = check_labels(predictions, "predictions", n=y.shape[0], num_classes=k)

    hits = y_hat == y
    tp = np.bincount(y[hits], minlength=k).astype(np.float64)
    support = np.bincount(y, minlength=k).astype(np.float64)
    predicted = np.bincount(y_hat, minlength=k).astype(np.float64)
    denominator = support + predicted  # = 2 tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2.0 * tp / denominator, np.nan)

    return {
        "accuracy": float(hits.mean()),
        "weighted_f1": float(np.sum(np.where(support > 0, f1, 0.0) * support) / support.sum()),
        "macro_f1": float(np.nanmean(f1)),
        "per_class_f1": {name: float(value) for name, value in zip(names, f1)},
    }
