"""Configuration of M3Net (Chen et al., CVPR 2023)."""

from __future__ import annotations

from ..base import MercConfig


class M3NetConfig(MercConfig):
    """Configuration of :class:`~merc_hf.models.m3net.M3NetModel`.

    Defaults are the IEMOCAP setting of the reference code (``feiyuchen7/M3NET: train.py``): RoBERTa text
    1024-d projected to D_g = 512, audio 1582, visual 342, graph hidden 512, L = 3, K = 4, dropout 0.5,
    2 speakers, 6 classes; the reference trains IEMOCAP with class-weighted CE, weights 1 / train class
    frequency (:func:`~merc_hf.models.base.inverse_frequency_class_weights`). For MELD the reference uses
    ``audio_dim=300, hidden_size=1024, text_projection=False, num_K=3, dropout=0.4, n_speakers=9``, the
    MELD label map and its non-standard focal loss (``loss_type="reference_focal", focal_gamma=2.5``; prefer
    ``"focal"`` or ``"cross_entropy"`` outside reproduction, see :func:`~merc_hf.models.base.emotion_loss`).

    Args:
        hidden_size: D_g, size of the unimodal encoder outputs (the text bi-GRU has D_g/2 per direction).
        graph_hidden_size: size of the graph node features (``fc1`` output, hypergraph and GNN width).
        num_L: number of multivariate hypergraph propagation layers.
        num_K: number of multi-frequency (high/low-pass gated) GNN layers.
        text_projection: project text to D_g with a linear layer before the bi-GRU. The reference skips it
            for MELD, where it requires ``text_dim == hidden_size``.
        use_speaker_embeddings: add a learned per-speaker-index embedding to the text nodes.
        **kwargs: the shared fields of :class:`~merc_hf.models.base.MercConfig` (modality dims,
            ``n_speakers``, ``dropout``, ``class_weights``, ``loss_type``, ``focal_gamma``,
            ``modality_removal``) and of ``PretrainedConfig`` (``id2label``, ``label2id``, ...).
    """

    model_type = "merc_m3net"

    def __init__(
        self,
        hidden_size: int = 512,
        graph_hidden_size: int = 512,
        num_L: int = 3,
        num_K: int = 4,
        text_projection: bool = True,
        use_speaker_embeddings: bool = True,
        **kwargs,
    ) -> None:
        self.hidden_size = hidden_size
        self.graph_hidden_size = graph_hidden_size
        self.num_L = num_L
        self.num_K = num_K
        self.text_projection = text_projection
        self.use_speaker_embeddings = use_speaker_embeddings
        super().__init__(**kwargs)
        self._validate_m3net()

    def _validate_m3net(self) -> None:
        for name in ("hidden_size", "graph_hidden_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.hidden_size % 2:
            raise ValueError(f"hidden_size must be even (bidirectional GRU halves), got {self.hidden_size}")
        for name in ("num_L", "num_K"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.text_dim is not None and not self.text_projection and self.text_dim != self.hidden_size:
            raise ValueError(
                f"text_projection=False needs text_dim == hidden_size, got {self.text_dim} and {self.hidden_size}"
            )
