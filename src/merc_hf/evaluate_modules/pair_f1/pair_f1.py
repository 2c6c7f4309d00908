"""evaluate wrapper around :func:`merc_hf.metrics.pair_f1` and :func:`merc_hf.metrics.semeval_pair_f1`."""

import datasets
import evaluate

from merc_hf.metrics import pair_f1, semeval_pair_f1

_DESCRIPTION = """\
Pair-F1 for multimodal emotion-cause pair extraction (ECF / MECAD / SemEval-2024 Task 3).

Metric description: one example = one conversation; its prediction and reference are lists of pairs
[emotion_utterance, cause_utterance] (0-based indices unless index_base says otherwise).
variant="set" (default): set-based micro precision / recall / F1 over (conversation, emotion_utt,
cause_utt), emotion category ignored (HiLo / BridgeProt / RPCL convention); with_emotion=True uses
[emotion_utt, cause_utt, emotion_id] triples and requires the emotion to match.
variant="semeval": the official SemEval-2024 Task 3 Subtask 2 scorer on [emotion_utt, cause_utt,
emotion_id] triples (emotion ids index `emotion_names`, default the scorer's order neutral, anger,
disgust, fear, joy, sadness, surprise): emotion-weighted average F1 over the six non-neutral emotions
(main metric) plus micro scores; pairs predicted as neutral are ignored.
Limitations: conventions differ across papers (lower-triangular filtering, list vs set counting);
compare numbers only under the same convention. Values are fractions in [0, 1].
"""

_CITATION = """\
@inproceedings{wang2024semeval,
  title={SemEval-2024 Task 3: Multimodal Emotion Cause Analysis in Conversations},
  author={Wang, Fanfan and Ma, Heqing and Xia, Rui and Yu, Jianfei and Cambria, Erik},
  booktitle={SemEval-2024}, year={2024}
}
@article{wang2023mecpe,
  title={Multimodal Emotion-Cause Pair Extraction in Conversations},
  author={Wang, Fanfan and Ding, Zixiang and Xia, Rui and Li, Zhaoyu and Yu, Jianfei},
  journal={IEEE Transactions on Affective Computing}, year={2023}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (list of list of list of int): per conversation, the predicted pairs.
    references (list of list of list of int): per conversation, the gold pairs (same order).
    variant (str, default "set"): "set" or "semeval".
    with_emotion (bool, default False): variant "set" only; pairs carry an emotion id as third item.
    emotion_names (list of str, optional): variant "semeval" only; names of the emotion ids.
    conversation_lengths (list of int, optional): utterances per conversation; pairs outside are errors.
    index_base (int, default 0): index of the first utterance.
Returns:
    "set": precision, recall, f1 (float), n_predicted, n_gold, n_correct (int).
    "semeval": weighted_precision/recall/f1, micro_precision/recall/f1 (float), per_emotion (dict).
Example:
    >>> m = evaluate.load(merc_hf.metric_path("pair_f1"), keep_in_memory=True)
    >>> m.compute(predictions=[[[2, 1], [2, 2]]], references=[[[2, 1]]])["f1"]
    0.6666666666666666
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PairF1(evaluate.Metric):
    def _info(self):
        pairs = datasets.List(datasets.List(datasets.Value("int64")))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": pairs, "references": pairs}),
            reference_urls=["https://github.com/NUSTM/SemEval-2024_ECAC", "https://github.com/NUSTM/MECPE"],
        )

    def _compute(
        self,
        predictions,
        references,
        variant="set",
        with_emotion=False,
        emotion_names=None,
        conversation_lengths=None,
        index_base=0,
    ):
        common = {"conversation_lengths": conversation_lengths, "index_base": index_base}
        if variant == "set":
            return pair_f1(predictions, references, with_emotion=with_emotion, **common)
        if variant == "semeval":
            return semeval_pair_f1(predictions, references, emotion_names=emotion_names, **common)
        raise ValueError(f"variant must be 'set' or 'semeval', got {variant!r}")
