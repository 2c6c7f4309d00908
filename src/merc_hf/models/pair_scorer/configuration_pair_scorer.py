"""Configuration of the emotion–cause pair scorer."""

from __future__ import annotations

from ..base import MercConfig

CANDIDATE_SPACES: tuple[str, ...] = ("cause_before_emotion", "window", "all")

#: ECF / SemEval-2024 emotion order (neutral first, then alphabetical), see :mod:`merc_hf.data.readers.ecf`.
ECF_ID2LABEL: dict[int, str] = dict(
    enumerate(("neutral", "anger", "disgust", "fear", "joy", "sadness", "surprise"))
)


class PairScorerConfig(MercConfig):
    """Configuration of :class:`~merc_hf.models.pair_scorer.PairScorerModel`.

    Defaults follow the RPCL paper's matched base where it states them (hidden size 400, dialogues of at
    most 35 utterances, cause-before-emotion candidates as in HiLo) and the ECF feature sizes otherwise
    (text 768, openSMILE audio 6373, 3D-CNN video 4096; set a dim to ``None`` to drop a modality).

    Args:
        hidden_size: width of the fused utterance representation, of the contextual encoder output and of
            the pair scorer.
        candidate_space: which ``(emotion_utt i, cause_utt j)`` pairs are scored: ``"cause_before_emotion"``
            (``j <= i``, the public default; on ECF test it cannot recover the 80 of 1873 gold pairs whose
            cause comes later), ``"window"`` (``|i - j| <= candidate_window``) or ``"all"``.
        candidate_window: K of the ``"window"`` space.
        max_relative_position: relative positions ``i - j`` are clipped to ``±`` this value before their
            embedding (no parameter depends on the dialogue length).
        max_utterances: longest dialogue accepted (the RPCL paper truncates at 35). Evaluation batches are
            padded to this length so that the ``Trainer`` can concatenate pair matrices across batches.
        pair_positive_weight: weight of gold pairs in the pair loss (HiLo uses 2.0; 1.0 = plain CE).
        pair_threshold: decision threshold on the pair probability; ``examples/train.py`` replaces the
            default by the value that maximises Pair-F1 on the validation split.
        **kwargs: the shared fields of :class:`~merc_hf.models.base.MercConfig` (modality dims,
            ``n_speakers``, ``dropout``, emotion ``loss_type``/``class_weights``, ``modality_removal``,
            ``calibration``) and ``PretrainedConfig`` (the emotion label map, default the ECF emotions).
    """

    model_type = "merc_pair_scorer"

    def __init__(
        self,
        hidden_size: int = 400,
        candidate_space: str = "cause_before_emotion",
        candidate_window: int = 6,
        max_relative_position: int = 12,
        max_utterances: int = 35,
        pair_positive_weight: float = 1.0,
        pair_threshold: float = 0.5,
        **kwargs,
    ) -> None:
        self.hidden_size = hidden_size
        self.candidate_space = candidate_space
        self.candidate_window = candidate_window
        self.max_relative_position = max_relative_position
        self.max_utterances = max_utterances
        self.pair_positive_weight = float(pair_positive_weight)
        self.pair_threshold = float(pair_threshold)
        kwargs.setdefault("text_dim", 768)
        kwargs.setdefault("audio_dim", 6373)
        kwargs.setdefault("visual_dim", 4096)
        kwargs.setdefault("n_speakers", 8)
        kwargs.setdefault("dropout", 0.1)
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = dict(ECF_ID2LABEL)
        super().__init__(**kwargs)
        self._validate_pair_scorer()

    def _validate_pair_scorer(self) -> None:
        for name in ("hidden_size", "max_utterances", "max_relative_position"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.hidden_size % 2:
            raise ValueError(f"hidden_size must be even (bidirectional GRU halves), got {self.hidden_size}")
        if self.candidate_space not in CANDIDATE_SPACES:
            raise ValueError(
                f"candidate_space must be one of {CANDIDATE_SPACES}, got {self.candidate_space!r}"
            )
        if not isinstance(self.candidate_window, int) or self.candidate_window < 0:
            raise ValueError(f"candidate_window must be an int >= 0, got {self.candidate_window!r}")
        if self.pair_positive_weight <= 0:
            raise ValueError(f"pair_positive_weight must be > 0, got {self.pair_positive_weight}")
        if not 0.0 <= self.pair_threshold <= 1.0:
            raise ValueError(f"pair_threshold must be in [0, 1], got {self.pair_threshold}")
