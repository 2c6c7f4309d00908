"""Configuration of MMGCN (Hu et al., ACL-IJCNLP 2021)."""

from __future__ import annotations

from ..layers.multimodal_graph import MultimodalGraphConfig


class MMGCNConfig(MultimodalGraphConfig):
    """Configuration of :class:`~merc_hf.models.mmgcn.MMGCNModel`.

    Defaults are the IEMOCAP setting of the reference code (``hujingwen6666/MMGCN: train.py (L333–366)``;
    ``model.py (L921–950, L1007)``; ``model_mm.py (L47–118)``; ``model_GCN.py (L398–447)``): TextCNN text
    100-d, IS10 audio 1582-d, DenseNet visual 342-d, ``D_e = 100``, ``graph_hidden_size = 100``, a 64-layer
    GCNII with α = 0.1 and λ = 0.5, speaker embeddings and the residual readout on, dropout 0.4
    (``run.sh``), 2 speakers, 6 classes. The reference trains IEMOCAP with class-weighted CE (weights
    1 / train class frequency, :func:`~merc_hf.models.base.inverse_frequency_class_weights`); for MELD it
    uses ``text_dim=600, audio_dim=300, n_speakers=9``, the MELD label map and the non-standard focal loss
    of M3Net (``loss_type="reference_focal", focal_gamma=2.5``; see
    :func:`~merc_hf.models.base.emotion_loss`).

    **Number of layers.** The reference builds MMGCN's GCNII with a hard-coded ``nlayers=64``
    (``hujingwen6666/MMGCN: model.py (L1007)``); its ``--Deep_GCN_nlayers`` flag (4 in the README commands)
    only affects the other graph types and is ignored by MMGCN. ``num_layers`` defaults to 64 accordingly.

    The fields, their defaults and their validation are those of the MMGCN skeleton shared with MM-DFN,
    :class:`~merc_hf.models.layers.MultimodalGraphConfig`.

    Args:
        D_e: hidden size per direction of the 2-layer text BiLSTM; every modality is encoded to
            ``2·D_e`` (the reference's hard-coded 200 for ``D_e = 100``).
        graph_hidden_size: width of the GCNII layers.
        num_layers: number of GCNII layers (≥ 1).
        alpha: GCNII initial-residual weight α ∈ [0, 1].
        lamda: GCNII identity-mapping strength λ > 0 (θ_l = ln(λ / l + 1)); spelled as in the reference.
        use_speaker_embeddings: add a learned per-speaker-index embedding (``2·D_e``) to the text nodes.
        use_residue: read out ``[x ‖ h]`` per modality (encoder output and GCNII output) instead of ``h``.
        **kwargs: the shared fields of :class:`~merc_hf.models.base.MercConfig` (modality dims,
            ``n_speakers``, ``dropout``, ``class_weights``, ``loss_type``, ``focal_gamma``,
            ``modality_removal``) and of ``PretrainedConfig`` (``id2label``, ``label2id``, ...).
    """

    model_type = "merc_mmgcn"

    def __init__(self, **kwargs) -> None:
        # an own ``__init__`` keeps transformers from turning the subclass into a generated dataclass
        super().__init__(**kwargs)
