"""evaluate wrapper around :func:`merc_hf.metrics.cel` (CMERC calibration error loss)."""

import evaluate

from merc_hf.evaluate_modules import probability_metric_info
from merc_hf.metrics import cel

_DESCRIPTION = """\
CEL, the calibration error loss of CMERC (Tu et al., ACM MM 2024, Eq. 10): the sum over utterances k
and removal types xi of the confidence boost CF_k^xi = max(0, o_k^xi[y_k] - o_k[y_k]) (Eq. 4), where
o_k is the probability vector with the full input and o_k^xi the one with xi removed: "A", "V", "T"
(audio, visual, text modality) or "X" / "O" (intra- / inter-speaker context).

Inputs layout: `predictions` are the full-input probabilities (one row per utterance) and `references`
the gold labels; the masked-input probabilities are passed to `compute` as the keyword argument
`masked_probs`, a dict removal type -> (N, K) array in the same utterance order as all predictions
added so far (they are not buffered by add_batch).
Intended use: measuring whether a multimodal emotion model becomes more confident when information is
removed (lower is better, 0 = never). Limitations: a raw sum, not a mean, so it grows with the test
set (the paper reports e.g. 1772.54 for M3Net on IEMOCAP); compare only on the same test set.
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
    cel (float): raw sum of the confidence boosts.
Example:
    >>> m = evaluate.load(merc_hf.metric_path("cel"), keep_in_memory=True)
    >>> m.compute(predictions=[[0.6, 0.4]], references=[0], masked_probs={"A": [[0.7, 0.3]], "T": [[0.5, 0.5]]})
    # {'cel': 0.1} (A raises the gold confidence by 0.1, T lowers it)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CEL(evaluate.Metric):
    def _info(self):
        return probability_metric_info(
            _DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, ["https://github.com/HITSZ-HLT/CMERC"]
        )

    def _compute(self, predictions, references, masked_probs=None, from_logits=False):
        if masked_probs is None:
            raise ValueError(
                "cel needs masked_probs={removal type: (N, K) probabilities} passed to compute()"
            )
        return {"cel": cel(predictions, masked_probs, references, from_logits=from_logits)}
