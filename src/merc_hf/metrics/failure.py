"""Failure prediction (misclassification detection) and selective-classification risk.

The confidence score is the maximum softmax probability ``c_i = max_k p_ik`` and the binary target is
correctness ``a_i = 1[argmax_k p_ik = y_i]``. **Correct predictions are the positive class**, as in the
code of CRL (Moon et al., ICML 2020, ``daintlab/confidence-aware-learning: metrics.py``) and FMFP (Zhu
et al., ECCV 2022, ``Impression2805/FMFP: utils/metrics.py``); see ``hf_stack_conventions.md`` §4.5.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._checks import check_probs_and_labels
from ._ranking import average_precision, pr_auc_trapezoid, roc_auc, roc_points


def _aurc(confidence: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """AURC and E-AURC of the risk–coverage curve (CRL/FMFP definition)."""
    n = confidence.size
    # Stable sort: tied confidences keep their input order, as CRL's Python ``sorted`` does.
    order = np.argsort(-confidence, kind="stable")
    risk = np.cumsum(~correct[order]) / np.arange(1, n + 1)
    aurc = float(risk.mean())
    r = float(risk[-1])
    # (1 − r) ln(1 − r) → 0 as r → 1: the optimal curve of an all-wrong classifier has area 1.
    optimal = r + ((1.0 - r) * math.log(1.0 - r) if r < 1.0 else 0.0)
    return aurc, aurc - optimal


def failure_prediction(probs: Any, references: Any, *, from_logits: bool = False) -> dict[str, float | int]:
    """How well the top-label confidence separates correct from wrong predictions.

    With ``c`` the maximum softmax probability and ``a`` the correctness (1 = correct = positive):

    * ``auroc``: area under the ROC curve of ``(a, c)``; equals ``sklearn.metrics.roc_auc_score(a, c)``.
    * ``aupr_success``: trapezoidal area under the precision–recall curve of ``(a, c)``, i.e.
      ``auc(*precision_recall_curve(a, c)[1::-1])`` as in FMFP (not average precision).
    * ``aupr_error``: step-wise average precision with errors as positives and score ``−c``, i.e.
      ``average_precision_score(1 − a, −c)`` (CRL "AUPR", FMFP "AUPR_Error").
    * ``fpr_at_95tpr``: ``fpr[argmin |tpr − 0.95|]`` on ``roc_curve(a, c)`` (sklearn's default curve,
      intermediate collinear points dropped): the fraction of wrong predictions still accepted when
      95 % of the correct ones are kept.
    * ``aurc = (1/N) Σ_{k=1..N} r_k``, ``r_k`` the error rate among the ``k`` most confident samples
      (ties keep input order); ``eaurc = aurc − (r* + (1 − r*) ln(1 − r*))``, ``r*`` the overall error
      rate (Geifman et al. 2019; CRL/FMFP code). Usually reported × 1000.
    * ``n_correct``, ``n_errors``: the class sizes.

    **Degenerate case**: when every prediction is correct, or every one is wrong, ``auroc``,
    ``aupr_success``, ``aupr_error`` and ``fpr_at_95tpr`` are undefined and returned as NaN (no
    exception, no warning); ``aurc``/``eaurc`` stay defined (0/0 when all are correct, 1/0 when all are
    wrong). Other values are fractions in ``[0, 1]``.
    """
    p, y = check_probs_and_labels(probs, references, from_logits=from_logits)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    n_correct = int(correct.sum())
    n_errors = int(correct.size - n_correct)
    aurc, eaurc = _aurc(confidence, correct)
    result: dict[str, float | int] = {
        "auroc": math.nan,
        "aupr_success": math.nan,
        "aupr_error": math.nan,
        "fpr_at_95tpr": math.nan,
        "aurc": aurc,
        "eaurc": eaurc,
        "n_correct": n_correct,
        "n_errors": n_errors,
    }
    if n_correct and n_errors:
        fpr, tpr = roc_points(correct, confidence, drop_intermediate=True)
        result.update(
            auroc=roc_auc(correct, confidence),
            aupr_success=pr_auc_trapezoid(correct, confidence),
            aupr_error=average_precision(~correct, -confidence),
            fpr_at_95tpr=float(fpr[np.argmin(np.abs(tpr - 0.95))]),
        )
    return result
