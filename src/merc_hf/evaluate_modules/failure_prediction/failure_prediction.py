"""evaluate wrapper around :func:`merc_hf.metrics.failure_prediction` (AUROC, AUPR, FPR@95, AURC)."""

import evaluate

from merc_hf.evaluate_modules import probability_metric_info
from merc_hf.metrics import failure_prediction

_DESCRIPTION = """\
Failure prediction (misclassification detection): how well the maximum softmax probability (MSP)
separates correct from wrong predictions. Correct predictions are the positive class (CRL / FMFP code).

Metric description: auroc = ROC AUC of (correct, MSP); aupr_success = trapezoidal area under the
precision-recall curve of (correct, MSP); aupr_error = average precision of (wrong, -MSP);
fpr_at_95tpr = false-positive rate at the ROC point whose TPR is closest to 95 %;
aurc = mean over k of the error rate of the k most confident samples, eaurc = aurc minus the area of
an optimal ranking with the same error rate. n_correct / n_errors are the class sizes.
Intended use: comparing confidence estimates of emotion classifiers at utterance level.
Limitations: when every prediction is correct (or every one wrong) the ranking metrics are undefined
and returned as NaN; aurc/eaurc stay defined. Usual scales: x100 (AUROC, AUPR, FPR), x1000 (AURC).
"""

_CITATION = """\
@inproceedings{moon2020crl,
  title={Confidence-Aware Learning for Deep Neural Networks},
  author={Moon, Jooyoung and Kim, Jihyo and Shin, Younghak and Hwang, Sangheum},
  booktitle={ICML}, year={2020}
}
@inproceedings{zhu2022fmfp,
  title={Rethinking Confidence Calibration for Failure Prediction},
  author={Zhu, Fei and Cheng, Zhen and Zhang, Xu-Yao and Liu, Cheng-Lin},
  booktitle={ECCV}, year={2022}
}
@inproceedings{geifman2019bias,
  title={Bias-Reduced Uncertainty Estimation for Deep Neural Classifiers},
  author={Geifman, Yonatan and Uziel, Guy and El-Yaniv, Ran},
  booktitle={ICLR}, year={2019}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of list of float): (N, K) class probabilities (logits with from_logits=True).
    references (list of int): (N,) gold class ids in [0, K).
    from_logits (bool, default False): apply a softmax to the predictions first.
Returns:
    auroc, aupr_success, aupr_error, fpr_at_95tpr, aurc, eaurc (float); n_correct, n_errors (int).
Example:
    >>> fp = evaluate.load(merc_hf.metric_path("failure_prediction"), keep_in_memory=True)
    >>> fp.compute(predictions=[[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]], references=[0, 0, 1])["auroc"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FailurePrediction(evaluate.Metric):
    def _info(self):
        return probability_metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            [
                "https://github.com/daintlab/confidence-aware-learning",
                "https://github.com/Impression2805/FMFP",
            ],
        )

    def _compute(self, predictions, references, from_logits=False):
        return failure_prediction(predictions, references, from_logits=from_logits)
