"""Configuration of MM-DFN (Hu et al., ICASSP 2022)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..base import MODALITIES
from ..layers.multimodal_graph import MultimodalGraphConfig

REFERENCE_SPEAKER_WEIGHT_ORDER: tuple[str, str, str] = ("audio", "visual", "text")
"""Modality order of the reference's ``--speaker_weights a-v-l`` string."""

IEMOCAP_SPEAKER_WEIGHTS: dict[str, float] = {"audio": 3.0, "visual": 0.0, "text": 1.0}
"""``--speaker_weights 3-0-1`` of the IEMOCAP script (``merc_backbones_and_cmerc.md`` §3.4)."""

MELD_SPEAKER_WEIGHTS: dict[str, float] = {"audio": 0.5, "visual": 0.5, "text": 1.5}
"""``--speaker_weights 0.5-0.5-1.5`` of the MELD script (``merc_backbones_and_cmerc.md`` §3.4)."""


def parse_speaker_weights(weights: Mapping[str, float] | str) -> dict[str, float]:
    """Speaker-recurrence weights as ``{"text": w_l, "audio": w_a, "visual": w_v}`` from a mapping with
    exactly these keys or from the reference's ``"a-v-l"`` string (``"3-0-1"`` -> audio 3, visual 0, text 1).
    ValueError for anything else, or for a weight that is not a finite number."""
    if isinstance(weights, str):
        parts = weights.split("-")
        try:
            values = [float(part) for part in parts]
        except ValueError:
            values = []
        if len(values) != len(REFERENCE_SPEAKER_WEIGHT_ORDER):
            raise ValueError(f"speaker_weights as a string must be 'a-v-l', e.g. '3-0-1', got {weights!r}")
        weights = dict(zip(REFERENCE_SPEAKER_WEIGHT_ORDER, values, strict=True))
    if not isinstance(weights, Mapping) or set(weights) != set(MODALITIES):
        raise ValueError(f"speaker_weights must have exactly the keys {MODALITIES}, got {weights!r}")
    parsed = {}
    for name in MODALITIES:
        value = weights[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"speaker_weights[{name!r}] must be a finite number, got {value!r}")
        parsed[name] = float(value)
    return parsed


class MMDFNConfig(MultimodalGraphConfig):
    """Configuration of :class:`~merc_hf.models.mmdfn.MMDFNModel`.

    Defaults are the IEMOCAP setting of the reference code (``merc_backbones_and_cmerc.md`` §2.5, §3.4;
    ``zerohd4869/MM-DFN: code/run_train_erc.py (L245–334)`` and ``script/run_train_ie.sh``): MMGCN's features
    (TextCNN text 100-d, IS10 audio 1582-d, DenseNet visual 342-d; §0.2), ``D_e = 100`` and graph hidden
    100 (MMGCN's skeleton: 300 per modality, 900 in all, §2.5), ``Deep_GCN_nlayers`` 16, GCNII α 0.2 and
    λ 0.5, dropout 0.4, the speaker recurrence on with the IEMOCAP weights a-v-l ``3-0-1``, the residual
    readout on, and the standard focal loss with γ 0.5 (``loss_type="focal", focal_gamma=0.5``). The IEMOCAP
    script also passes ``--class_weight`` (weights 1 / train class frequency, the focal loss's α_t; set
    ``class_weights`` from :func:`~merc_hf.models.base.inverse_frequency_class_weights`). For MELD use
    ``text_dim=600, audio_dim=300, n_speakers=9``, the MELD label map and
    ``speaker_weights=MELD_SPEAKER_WEIGHTS`` (``0.5-0.5-1.5``); the MELD script has no ``--class_weight``.

    **What α, λ and γ are.** The notes list ``alpha 0.2, lamda 0.5, gamma 0.5`` among the defaults (§3.4)
    without saying what each controls. α and λ are read as GCNII's initial-residual weight and
    identity-mapping strength (θ_l = ln(λ/l + 1)): MMGCN's GCNII has exactly these two, as α = 0.1,
    λ = 0.5 (§2.4), MM-DFN reuses that stack (§2.5), and ``lamda`` is GCNII's spelling. γ is read as the
    focal-loss focusing parameter: the default loss is FocalLoss, the standard −α_t(1 − p_t)^γ log p_t
    (§3.4), and the grid scripts vary ``gamma`` in {0.5, 1} next to the optimiser settings.

    **Left open by the notes** (choices documented here and in the model's docstring): whether MM-DFN adds
    MMGCN's speaker embedding (neither the defaults nor the scripts of §3.4 name ``--use_speaker``; off by
    default, ``use_speaker_embeddings``), the dropout of the speaker BiGRU (``dropout``, as in the text
    BiGRU), and the order of activation, dropout and residual inside a dynamic-fusion layer.

    The MMGCN fields (``D_e``, ``graph_hidden_size``, ``num_layers``, ``alpha``, ``lamda``,
    ``use_speaker_embeddings``, ``use_residue``) and their validation come from the shared
    :class:`~merc_hf.models.layers.MultimodalGraphConfig`; MM-DFN changes the defaults of ``num_layers``,
    ``alpha``, ``use_speaker_embeddings``, ``loss_type`` and ``focal_gamma``.

    Args:
        D_e: hidden size per direction of the 2-layer text BiGRU and of the speaker BiGRU; every modality
            is encoded to ``2·D_e``.
        graph_hidden_size: width of the GCNII layers and of the dynamic-fusion LSTM.
        num_layers: number of graph layers (the reference's ``--Deep_GCN_nlayers``, ≥ 1).
        alpha: GCNII initial-residual weight α ∈ [0, 1].
        lamda: GCNII identity-mapping strength λ > 0 (θ_l = ln(λ / l + 1)); spelled as in the reference.
        use_crn_speaker: run the speaker-level recurrence (the reference's ``--use_crn_speaker``).
        speaker_weights: weight of the speaker recurrence per modality, a mapping with the keys ``"text"``,
            ``"audio"``, ``"visual"`` or the reference's ``"a-v-l"`` string (stored as the mapping).
        use_speaker_embeddings: add a learned per-speaker-index embedding (``2·D_e``) to the text nodes, as
            MMGCN's ``--use_speaker`` does.
        use_residue: read out ``[x ‖ h]`` per modality (graph input and graph output) instead of ``h``.
        **kwargs: the shared fields of :class:`~merc_hf.models.base.MercConfig` (modality dims,
            ``n_speakers``, ``dropout``, ``class_weights``, ``loss_type``, ``focal_gamma``,
            ``modality_removal``) and of ``PretrainedConfig`` (``id2label``, ``label2id``, ...).
    """

    model_type = "merc_mmdfn"

    def __init__(
        self,
        num_layers: int = 16,
        alpha: float = 0.2,
        use_crn_speaker: bool = True,
        speaker_weights: Mapping[str, float] | str | None = None,
        use_speaker_embeddings: bool = False,
        **kwargs,
    ) -> None:
        self.use_crn_speaker = use_crn_speaker
        self.speaker_weights = parse_speaker_weights(
            IEMOCAP_SPEAKER_WEIGHTS if speaker_weights is None else speaker_weights
        )
        kwargs.setdefault("loss_type", "focal")
        kwargs.setdefault("focal_gamma", 0.5)
        super().__init__(
            num_layers=num_layers, alpha=alpha, use_speaker_embeddings=use_speaker_embeddings, **kwargs
        )
        if not isinstance(self.use_crn_speaker, bool):
            raise ValueError(f"use_crn_speaker must be a bool, got {self.use_crn_speaker!r}")
