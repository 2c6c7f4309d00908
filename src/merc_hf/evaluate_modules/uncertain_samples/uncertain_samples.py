"""evaluate wrapper around :func:`merc_hf.metrics.uncertain_sample_rates` (CMERC Table 2)."""

import evaluate

from merc_hf.evaluate_modules import probability_metric_info
from merc_hf.metrics import uncertain_sample_rates

_DESCRIPTION = """\
Uncertain-sample rates of CMERC (Tu et al., ACM MM 2024, Table 2): the percentage of utterances whose
gold-class probability strictly rises when information is removed, o_k^xi[y_k] > o_k[y_k], for each
removal type given ("A", "V", "T" modalities; "X" intra-, "O" inter-speaker context) and for the unions
M = A|V|T, C = X|O and MC = M|C (formed only over the removal types given; MC only when both groups are).

Inputs layout: `predictions` are the full-input probabilities (one row per utterance) and `references`
the gold labels; the masked-input probabilities are passed to `compute` as the keyword argument
`masked_probs`, a dict removal type -> (N, K) array in the same utterance order (not buffered by
add_batch).
Intended use: how often a multimodal emotion model gains confidence from losing information (lower is
better). Limitations: counts any strict increase, however small; values are percentages in [0, 100].
"""

_CITATION = """\
@inproceedings{tu2024cmerc,
  title={Multimodal Emotion Recognition Calibration in Conversations},
  author={Tu, Geng and Xiong, Feng and Liang, Bin and Wang, Hui and Zeng, Xi and Xu, Ruifeng},
  booktitle={Proceedings of the 32nd ACM International Conference on Multimedia}, year={2024}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of list of float): (N, K) full-input class probabilities.
    references (list of int): (N,) gold class ids in [0, K).
    masked_probs (dict str -> (N, K) array): probabilities with "A", "V", "T", "X" and/or "O" removed.
    from_logits (bool, default False): apply a softmax to all probability arrays first.
Returns:
    uncertain_rate_<key> (float, %): for every removal type given and the unions M, C, MC.
Example:
    >>> m = evaluate.load(merc_hf.metric_path("uncertain_samples"), keep_in_memory=True)
    >>> m.compute(predictions=[[0.6, 0.4], [0.3, 0.7]], references=[0, 1], masked_probs={"A": [[0.7, 0.3], [0.4, 0.6]]})
    # {'uncertain_rate_A': 50.0, 'uncertain_rate_M': 50.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class UncertainSamples(evaluate.Metric):
    def _info(self):
        return probability_metric_info(
            _DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, ["https://github.com/HITSZ-HLT/CMERC"]
        )

    def _compute(self, predictions, references, masked_probs=None, from_logits=False):
        if masked_probs is None:
            raise ValueError(
                "uncertain_samples needs masked_probs={removal type: (N, K) probabilities} in compute()"
            )
        rates = uncertain_sample_rates(predictions, masked_probs, references, from_logits=from_logits)
        return {f"uncertain_rate_{key}": value for key, value in rates.items()}
