"""Reliability metrics for emotion recognition in conversations: pure numpy functions.

* :mod:`.classification`: accuracy, weighted / macro / per-class F1 (sklearn-equivalent);
* :mod:`.calibration`: ECE, MCE, RMSCE with Guo et al.'s ``(lo, hi]`` equal-width bins;
* :mod:`.failure`: failure prediction (AUROC, AUPR-S/E, FPR@95TPR) and AURC / E-AURC, correct = positive;
* :mod:`.cmerc`: CMERC confidence boosts, CEL and uncertain-sample rates (Tu et al., ACM MM 2024);
* :mod:`.pairs`: emotion–cause Pair-F1 (set-based and SemEval-2024), pair AUPRC, RPCL diagnostics;
* :mod:`.sentiment`: CH-SIMS / MOSI / MOSEI sentiment metrics (MMSA regression conventions, CMC's
  3-class Acc/Has0/Non0 with a correct Non0, consistent/inconsistent subsets, a sentiment report);
* :mod:`.report`: everything above in one JSON-serialisable dict; :mod:`.plots`: reliability diagrams.

Inputs may be numpy arrays, torch tensors or lists; bad input raises ``ValueError`` naming the argument.
The evaluate wrappers live in :mod:`merc_hf.evaluate_modules` (``merc_hf.metric_path(name)``).
"""

from .calibration import calibration_errors, reliability_bins
from .classification import classification_scores
from .cmerc import cel, confidence_boosts, uncertain_sample_rates
from .failure import failure_prediction
from .pairs import (
    SEMEVAL_EMOTIONS,
    best_pair_threshold,
    decode_pairs,
    pair_auprc,
    pair_confidence_diagnostics,
    pair_f1,
    semeval_pair_f1,
)
from .plots import plot_reliability_diagram, plot_reliability_grid
from .report import pair_extraction_report, pair_report_table, reliability_report
from .sentiment import (
    SENTIMENT_CLASS_NAMES,
    consistency_mask,
    expected_sentiment,
    mosi_regression_scores,
    sentiment_classes,
    sentiment_classification_scores,
    sentiment_report,
    sentiment_report_table,
    sims_regression_scores,
)

__all__ = [
    "SEMEVAL_EMOTIONS",
    "SENTIMENT_CLASS_NAMES",
    "best_pair_threshold",
    "calibration_errors",
    "cel",
    "classification_scores",
    "confidence_boosts",
    "consistency_mask",
    "decode_pairs",
    "expected_sentiment",
    "failure_prediction",
    "mosi_regression_scores",
    "pair_auprc",
    "pair_confidence_diagnostics",
    "pair_extraction_report",
    "pair_f1",
    "pair_report_table",
    "plot_reliability_diagram",
    "plot_reliability_grid",
    "reliability_bins",
    "reliability_report",
    "semeval_pair_f1",
    "sentiment_classes",
    "sentiment_classification_scores",
    "sentiment_report",
    "sentiment_report_table",
    "sims_regression_scores",
    "uncertain_sample_rates",
]
