"""evaluate wrapper around :func:`merc_hf.metrics.sentiment_classification_scores` (CH-SIMS / MOSI)."""

import evaluate

from merc_hf.evaluate_modules import probability_metric_info
from merc_hf.metrics import sentiment_classification_scores

_DESCRIPTION = """\
Sentiment metrics of a 3-class (negative, neutral, positive) classifier on CH-SIMS, CH-SIMS v2,
CMU-MOSI or CMU-MOSEI, as CMC (Calibrating Multimodal Consensus) reports them, with a correct Non0.

Metric description: acc_3 and f1_3 are the accuracy and weighted F1 of argmax(probs). The binary
prediction is p_positive > p_negative (CMC's argmax over [p_negative, p_positive]; p_neutral is
ignored). has0_acc_2 / has0_f1: with convention="sims", non-positive (negative or neutral) vs positive;
with convention="mosi", negative vs non-negative (neutral or positive); the two differ exactly on
neutral references. non0_acc_2 / non0_f1: neutral references dropped, positive vs negative.
Limitations: MMSA and CMC compute Non0 by comparing {0, 1} predictions with {0, 2} truths, so their
Non0 never counts a positive correct; this module does not reproduce that bug, so its Non0 numbers are
not comparable with theirs. Optional: with regression_references (gold sentiment values), mae, corr
and acc_5 (MOSI: also acc_7) of the expected sentiment p_positive - p_negative (x3 for MOSI/MOSEI)
under MMSA's regression conventions; CMC reports no such numbers, this is merc_hf's addition. corr is
NaN, with corr_nan_reason, when either side is constant. Values are fractions in [0, 1] except MAE and
corr; papers usually report x100.
"""

_CITATION = """\
@article{zhong2025cmc,
  title={Calibrating Multimodal Consensus for Emotion Recognition},
  author={Zhong, Guowei and Li, Junjie and Zhu, Huaiyu and Huan, Ruohong and Pan, Yun},
  journal={arXiv preprint arXiv:2510.20256}, year={2025}
}
@inproceedings{yu2020chsims,
  title={CH-SIMS: A Chinese Multimodal Sentiment Analysis Dataset with Fine-grained Annotation of Modality},
  author={Yu, Wenmeng and Xu, Hua and Meng, Fanyang and Zhu, Yilin and Ma, Yixiao and Wu, Jiele and
          Zou, Jiyun and Yang, Kaicheng},
  booktitle={ACL}, year={2020}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of list of float): (N, 3) class probabilities in the order negative, neutral,
        positive (logits with from_logits=True).
    references (list of int): (N,) gold 3-class labels (0 negative, 1 neutral, 2 positive).
    convention (str, default "sims"): "sims" (CH-SIMS, CH-SIMS v2) or "mosi" (CMU-MOSI, CMU-MOSEI).
    regression_references (list of float, optional): (N,) gold regression labels, in the same sample
        order as all predictions added so far (passed to compute, not buffered by add_batch).
    from_logits (bool, default False): apply a softmax to the predictions first.
Returns:
    acc_3, f1_3, has0_acc_2, has0_f1, non0_acc_2, non0_f1 (float), n, non0_n (int); with
    regression_references also mae, corr, acc_5 (and acc_7 for "mosi"); *_nan_reason (str) when a
    value is NaN.
Example:
    >>> m = evaluate.load(merc_hf.metric_path("sentiment"), keep_in_memory=True)
    >>> m.compute(predictions=[[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]], references=[0, 1, 2])
    # acc_3 = 1.0; has0_acc_2 (sims) = 2/3: the neutral sample has p_positive > p_negative;
    # non0_acc_2 = 1.0 on the 2 polar samples
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Sentiment(evaluate.Metric):
    def _info(self):
        return probability_metric_info(
            _DESCRIPTION,
            _CITATION,
            _KWARGS_DESCRIPTION,
            ["https://github.com/gw-zhong/CMC", "https://github.com/thuiar/MMSA"],
        )

    def _compute(
        self, predictions, references, convention="sims", regression_references=None, from_logits=False
    ):
        return sentiment_classification_scores(
            predictions, references, convention, regression_references, from_logits=from_logits
        )
