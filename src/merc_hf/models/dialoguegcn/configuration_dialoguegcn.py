"""Configuration of DialogueGCN (Ghosal et al., EMNLP 2019)."""

from __future__ import annotations

from ..base import MercConfig


class DialogueGCNConfig(MercConfig):
    """Configuration of :class:`~merc_hf.models.dialoguegcn.DialogueGCNModel`.

    Defaults are the IEMOCAP setting of the reference code (``declare-lab/conv-emotion:
    DialogueGCN/train_IEMOCAP.py (L240–261)``; README command, ``DialogueGCN/model.py``): one 100-d text
    input (``D_m = 100``, no audio or visual), a 2-layer BiLSTM with ``D_e = 100`` per direction, graph
    hidden size 100, 2 speakers (8 relation types), past and future windows of 10 utterances, 30 bases,
    nodal attention on, dropout 0.4, 6 classes, trained with class-weighted CE (weights 1 / train class
    frequency, :func:`~merc_hf.models.base.inverse_frequency_class_weights`). The reference never ran MELD.

    **Inputs.** DialogueGCN reads a single vector per utterance: the model concatenates the features of
    its configured modalities (``text_dim``/``audio_dim``/``visual_dim`` that are not ``None``) in
    :data:`~merc_hf.models.base.MODALITIES` order. The paper and the reference are text-only (the default
    here); with more modalities this is early fusion by concatenation. Modality removal
    (``modality_mask``) acts on the raw features before the concatenation, in the shared forward.

    Args:
        D_e: hidden size per direction of the 2-layer BiLSTM (node features are ``2·D_e``).
        graph_hidden_size: output size of the relational graph convolution and of the graph convolution,
            and hidden size of the classifier.
        window_past, window_future: an utterance receives graph messages from the utterances at most
            ``window_past`` before and ``window_future`` after it (within its context), and from itself.
        num_bases: number of basis matrices of the relational graph convolution (``2·n_speakers²``
            relation weights are combinations of them).
        nodal_attention: classify from the "general2" attention of each utterance over its context
            (the reference's ``--nodal-attention``, used in the README command) instead of from its own
            graph features.
        **kwargs: the shared fields of :class:`~merc_hf.models.base.MercConfig` (modality dims,
            ``n_speakers``, ``dropout``, ``class_weights``, ``loss_type``, ``focal_gamma``,
            ``modality_removal``) and of ``PretrainedConfig`` (``id2label``, ``label2id``, ...).
    """

    model_type = "merc_dialoguegcn"

    def __init__(
        self,
        D_e: int = 100,
        graph_hidden_size: int = 100,
        window_past: int = 10,
        window_future: int = 10,
        num_bases: int = 30,
        nodal_attention: bool = True,
        **kwargs,
    ) -> None:
        self.D_e = D_e
        self.graph_hidden_size = graph_hidden_size
        self.window_past = window_past
        self.window_future = window_future
        self.num_bases = num_bases
        self.nodal_attention = nodal_attention
        kwargs.setdefault("text_dim", 100)
        kwargs.setdefault("audio_dim", None)
        kwargs.setdefault("visual_dim", None)
        kwargs.setdefault("dropout", 0.4)
        super().__init__(**kwargs)
        self._validate_dialoguegcn()

    @property
    def num_relations(self) -> int:
        """``2·n_speakers²``: (speaker of the sender, speaker of the receiver, direction)."""
        return 2 * self.n_speakers**2

    def _validate_dialoguegcn(self) -> None:
        for name in ("D_e", "graph_hidden_size", "num_bases"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("window_past", "window_future"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if not isinstance(self.nodal_attention, bool):
            raise ValueError(f"nodal_attention must be a bool, got {self.nodal_attention!r}")
