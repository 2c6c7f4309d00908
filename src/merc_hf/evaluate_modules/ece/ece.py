"""evaluate wrapper around :func:`merc_hf.metrics.calibration_errors` (ECE, MCE, RMSCE)."""

import evaluate

from merc_hf.evaluate_modules import probability_metric_info
from merc_hf.metrics import calibration_errors

_DESCRIPTION = """\
Calibration errors of the top-label confidence (maximum softmax probability) of a classifier.

Metric description: confidences are grouped into `n_bins` equal-width bins (lo, hi] (a confidence of 0
goes in the first bin, 1.0 in the last); per bin, accuracy and mean confidence are compared.
ECE = sum_m |B_m|/N * |acc(B_m) - conf(B_m)|; MCE = max over non-empty bins of |acc - conf|;
RMSCE = sqrt(sum_m |B_m|/N * (acc - conf)^2). This is the convention of Guo et al. (2017), CRL and FMFP.
Intended use: utterance-level calibration of emotion classifiers (flatten dialogues, drop padding).
Limitations: binned estimators are biased and depend on n_bins; libraries disagree when confidences sit
exactly on bin edges (torchmetrics uses [lo, hi) and a separate bin for 1.0: 0.47 instead of 0.39 on the
reference example). Values are fractions in [0, 1]; papers usually report x100.
"""

_CITATION = """\
@inproceedings{guo2017calibration,
  title={On Calibration of Modern Neural Networks},
  author={Guo, Chuan and Pleiss, Geoff and Sun, Yu and Weinberger, Kilian Q.},
  booktitle={ICML}, year={2017}
}
@inproceedings{naeini2015obtaining,
  title={Obtaining Well Calibrated Probabilities Using Bayesian Binning},
  author={Naeini, Mahdi Pakdaman and Cooper, Gregory and Hauskrecht, Milos},
  booktitle={AAAI}, year={2015}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of list of float): (N, K) class probabilities, one row per utterance (logits with
        from_logits=True).
    references (list of int): (N,) gold class ids in [0, K).
    n_bins (int, default 15): number of equal-width bins.
    from_logits (bool, default False): apply a softmax to the predictions first.
Returns:
    ece, mce, rmsce (float): fractions in [0, 1].
Example:
    >>> ece = evaluate.load(merc_hf.metric_path("ece"), keep_in_memory=True)
    >>> ece.compute(predictions=[[0.9, 0.1], [0.4, 0.6]], references=[0, 0], n_bins=4)
    # ece = 0.5 * |1 - 0.9| + 0.5 * |0 - 0.6| = 0.35, mce = 0.6, rmsce = sqrt(0.185) = 0.430
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ECE(evaluate.Metric):
    def _info(self):
        return probability_metric_info(
            _DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, ["https://github.com/gpleiss/temperature_scaling"]
        )

    def _compute(self, predictions, references, n_bins=15, from_logits=False):
        return calibration_errors(predictions, references, n_bins, from_logits=from_logits)
