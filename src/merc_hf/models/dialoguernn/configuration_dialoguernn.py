"""Configuration of DialogueRNN (Majumder et al., AAAI 2019)."""

from __future__ import annotations

from ..base import MercConfig

CONTEXT_ATTENTIONS: tuple[str, ...] = ("simple", "dot", "general", "general2", "concat")
"""Context attention types of the reference's ``--attention`` option (``MatchingAttention`` /
``SimpleAttention``, ``declare-lab/conv-emotion: DialogueRNN/model.py (L24–77)``)."""


class DialogueRNNConfig(MercConfig):
    """Configuration of :class:`~merc_hf.models.dialoguernn.DialogueRNNModel`.

    Defaults are the IEMOCAP setting of the reference ``BiModel`` with emotion-level attention
    (``declare-lab/conv-emotion: DialogueRNN/train_IEMOCAP.py (L107–127, L143–153)`` at commit 6128ca2):
    one 100-d text input (``D_m = 100``, no audio or visual), ``D_g = D_p = 500``, ``D_e = D_h = 300``,
    ``D_a = 100``, "general" context attention, passive listeners, dropout 0.1 and rec-dropout 0.1,
    2 speakers, 6 classes, trained with class-weighted CE (weights 1 / train class frequency,
    :func:`~merc_hf.models.base.inverse_frequency_class_weights`). Other versions of that script use
    ``D_e = D_h = 500``.

    MELD (``DialogueRNN/train_MELD.py``): ``text_dim=600`` (text features), or ``text_dim=600,
    audio_dim=300`` for the reference's "multimodal" text ‖ audio input (``D_m = 900``; ``audio_dim=300``
    alone for audio only), ``D_g=150, D_p=150, D_e=100, D_h=100``, ``n_speakers=9``, the MELD label map
    (7 emotions, or 3 sentiments), no class weights; the other values as for IEMOCAP.

    **Inputs.** DialogueRNN reads one vector ``u_t`` per utterance: the model concatenates the features of
    its configured modalities (``text_dim``/``audio_dim``/``visual_dim`` that are not ``None``) in
    :data:`~merc_hf.models.base.MODALITIES` order, so ``D_m`` is their sum. Modality removal
    (``modality_mask``) acts on the raw features before the concatenation, in the shared forward.

    Args:
        D_g: size of the global state ``g_t`` (GRU cell G).
        D_p: size of each party state ``q_{s,t}`` (GRU cells P and L).
        D_e: size of the emotion state ``e_t`` (GRU cell E) per direction.
        D_h: the hidden layer before the classifier has ``2·D_h`` units.
        D_a: hidden size of the "concat" context attention (unused by the other attention types).
        context_attention: how ``u_t`` attends over ``g_1..g_{t−1}``: ``"general"`` (the reference's
            setting), ``"general2"``, ``"dot"`` (needs ``D_m == D_g``), ``"concat"`` or ``"simple"``; see
            :class:`~merc_hf.models.dialoguernn.DialogueRNNMatchingAttention`.
        active_listener: update the listeners' states with GRU cell L (the reference's
            ``--active-listener``, off by default); otherwise listeners keep their state.
        emotion_attention: classify from the masked "general2" attention of each utterance over the
            emotion states of the dialogue (the reference's ``att2=True``, its default) instead of from its
            own emotion state.
        rec_dropout: dropout after each GRU cell, on the state that is carried to the next step (the
            reference's ``--rec-dropout``).
        emotion_dropout: dropout on the emotion states of both directions before the emotion attention;
            ``None`` gives the reference's ``dropout + 0.15``.
        **kwargs: the shared fields of :class:`~merc_hf.models.base.MercConfig` (modality dims,
            ``n_speakers``, ``dropout`` = the dropout after the hidden layer, ``class_weights``,
            ``loss_type``, ``focal_gamma``, ``modality_removal``) and of ``PretrainedConfig``
            (``id2label``, ``label2id``, ...).
    """

    model_type = "merc_dialoguernn"

    def __init__(
        self,
        D_g: int = 500,
        D_p: int = 500,
        D_e: int = 300,
        D_h: int = 300,
        D_a: int = 100,
        context_attention: str = "general",
        active_listener: bool = False,
        emotion_attention: bool = True,
        rec_dropout: float = 0.1,
        emotion_dropout: float | None = None,
        **kwargs,
    ) -> None:
        self.D_g = D_g
        self.D_p = D_p
        self.D_e = D_e
        self.D_h = D_h
        self.D_a = D_a
        self.context_attention = context_attention
        self.active_listener = active_listener
        self.emotion_attention = emotion_attention
        self.rec_dropout = rec_dropout
        kwargs.setdefault("text_dim", 100)
        kwargs.setdefault("audio_dim", None)
        kwargs.setdefault("visual_dim", None)
        kwargs.setdefault("dropout", 0.1)
        self.emotion_dropout = emotion_dropout
        super().__init__(**kwargs)
        if self.emotion_dropout is None:
            self.emotion_dropout = float(self.dropout) + 0.15
        self._validate_dialoguernn()

    @property
    def input_size(self) -> int:
        """``D_m``: the summed feature size of the configured modalities."""
        return sum(getattr(self, f"{m}_dim") for m in self.modalities)

    def _validate_dialoguernn(self) -> None:
        for name in ("D_g", "D_p", "D_e", "D_h", "D_a"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.context_attention not in CONTEXT_ATTENTIONS:
            raise ValueError(
                f"context_attention must be one of {CONTEXT_ATTENTIONS}, got {self.context_attention!r}"
            )
        if self.context_attention == "dot" and self.input_size != self.D_g:
            raise ValueError(
                f"context_attention='dot' needs D_m == D_g, got D_m={self.input_size} and D_g={self.D_g}"
            )
        for name in ("active_listener", "emotion_attention"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("rec_dropout", "emotion_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                hint = (
                    " (the default is dropout + 0.15: set it explicitly)" if name == "emotion_dropout" else ""
                )
                raise ValueError(f"{name} must be in [0, 1), got {value!r}{hint}")
