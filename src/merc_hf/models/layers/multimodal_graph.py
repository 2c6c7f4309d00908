"""The multimodal utterance graph and GCNII stack shared by MMGCN and MM-DFN.

MMGCN (``hujingwen6666/MMGCN``) and MM-DFN (``zerohd4869/MM-DFN``, built on MMGCN's code) share one skeleton
(``merc_backbones_and_cmerc.md`` §2.4–2.5): the ``M`` modality nodes of every utterance form one graph
with an angular-similarity adjacency (:func:`multimodal_adjacency`, symmetrically normalised), a deep GCNII
stack runs over it (:class:`GCNIIStack` of :class:`GCNIIConvolution` layers), and the utterance
representation is the concatenation over modalities of ``[x ‖ h]`` per node
(:func:`multimodal_graph_readout`). The whole skeleton, unimodal encoders and classifier included, is
:class:`MultimodalGraphModel` with its config :class:`MultimodalGraphConfig`; MMGCN uses it as it is, MM-DFN
adds a speaker-level recurrence before the graph and changes what happens inside each graph layer (its
stack subclasses :class:`GCNIIStack`).

Nodes are ordered modality-major: node ``(m, i)`` (modality ``m``, utterance ``i``) is at index ``m·T + i``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..base import MercConfig, MercInputs, MercPreTrainedModel
from .graph import symmetric_normalize
from .sequence import ContextMaskedRNN

COSINE_SCALE = 0.99999
"""MMGCN multiplies cosine similarities by this before ``arccos`` (keeps the gradient finite at ±1)."""


def angular_similarity(cosine: torch.Tensor) -> torch.Tensor:
    """MMGCN's edge weight ``1 − arccos(clamp(0.99999 · cos)) / π`` ∈ (0, 1) from cosine similarities
    (``hujingwen6666/MMGCN: model_mm.py (L120–175)``). The clamp only guards against rounding above 1."""
    scaled = (cosine * COSINE_SCALE).clamp(-COSINE_SCALE, COSINE_SCALE)
    return 1.0 - torch.acos(scaled) / math.pi


def multimodal_adjacency(
    nodes: torch.Tensor, context_mask: torch.Tensor, utterance_mask: torch.Tensor
) -> torch.Tensor:
    """MMGCN's unnormalised multimodal adjacency, batched.

    Args:
        nodes: ``(B, M, T, D)`` node features per modality.
        context_mask: ``(B, T, T)`` bool, ``[b, i, j]`` = utterance ``j`` may inform ``i`` (no padding pairs).
        utterance_mask: ``(B, T)`` bool.

    Returns:
        ``(B, M·T, M·T)`` with node ``(m, i)`` at index ``m·T + i``: angular-similarity intra-modal edges
        where ``context_mask`` allows, self loops of weight 1, angular-similarity inter-modal edges between
        the nodes of one utterance; every row and column of a padding node is zero.
    """
    batch_size, num_modalities, length, _ = nodes.shape
    dtype = nodes.dtype
    real = utterance_mask.to(dtype)
    unit = F.normalize(nodes, dim=-1)
    eye_t = torch.eye(length, dtype=dtype, device=nodes.device)
    eye_m = torch.eye(num_modalities, dtype=dtype, device=nodes.device)

    intra = angular_similarity(unit @ unit.transpose(-1, -2))  # (B, M, T, T)
    context = context_mask.to(dtype)[:, None]
    intra = intra * context * (1.0 - eye_t) + eye_t * real[:, None, :, None]

    cross = angular_similarity(torch.einsum("bmtd,bntd->bmnt", unit, unit))  # (B, M, M, T)
    cross = cross * (1.0 - eye_m)[None, :, :, None] * real[:, None, None, :]

    adjacency = torch.einsum("bmij,mn->bminj", intra, eye_m) + torch.einsum("bmni,ij->bminj", cross, eye_t)
    return adjacency.reshape(batch_size, num_modalities * length, num_modalities * length)


class GCNIIConvolution(nn.Module):
    """One GCNII layer in the "variant" form of MMGCN (``hujingwen6666/MMGCN: model_GCN.py (L398–447)``),
    without activation: ``θ [P ‖ h0] W + (1 − θ)((1 − α) P + α h0)`` with ``P = Â h``.

    ``W`` is ``(2·hidden, hidden)`` without bias, initialised U(±1/√hidden) as in the reference."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))

    def _merc_init_weights(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        init.uniform_(self.weight, -bound, bound)

    def forward(
        self, h: torch.Tensor, adjacency: torch.Tensor, h0: torch.Tensor, theta: float, alpha: float
    ) -> torch.Tensor:
        """``θ [Â h ‖ h0] W + (1 − θ)((1 − α) Â h + α h0)`` for ``h``, ``h0`` ``(B, N, H)``, ``Â`` ``(B, N, N)``."""
        propagated = adjacency @ h
        support = torch.cat([propagated, h0], dim=-1)
        mixed = (1.0 - alpha) * propagated + alpha * h0
        return theta * (support @ self.weight) + (1.0 - theta) * mixed


class GCNIIStack(nn.Module):
    """MMGCN's GCNII stack (``GCNII_lyc``, ``hujingwen6666/MMGCN: model_GCN.py (L398–447)``) over a
    normalised adjacency ``Â``, with ``x`` the input node features::

        x̃   = dropout(x)
        h_0 = ReLU(x̃ W_in + b_in)
        h_l = ReLU(θ_l · [Â dropout(h_{l−1}) ‖ h_0] W_l
                   + (1 − θ_l) · ((1 − α) Â dropout(h_{l−1}) + α h_0)),      l = 1 .. L
        θ_l = ln(λ / l + 1)

    and the output ``(x̃, dropout(h_L))``. Subclasses change the layer recursion by overriding
    :meth:`propagate` (MM-DFN's graph-based dynamic fusion).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, alpha: float, lamda: float, dropout: float
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.lamda = lamda
        self.input_projection = nn.Linear(input_size, hidden_size)
        self.layers = nn.ModuleList([GCNIIConvolution(hidden_size) for _ in range(num_layers)])
        self.dropout = nn.Dropout(dropout)

    def theta(self, depth: int) -> float:
        """The identity-mapping strength ``θ_l = ln(λ / l + 1)`` of layer ``l = depth`` (1-based)."""
        return math.log(self.lamda / depth + 1.0)

    def forward(
        self, x: torch.Tensor, adjacency: torch.Tensor, node_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(B, N, D)``, ``adjacency`` ``(B, N, N)`` normalised, ``node_mask`` ``(B, N, 1)`` float.

        Returns ``(dropout(x), dropout(h_L))``; the first is what the residual readout concatenates.
        """
        x = self.dropout(x)
        h0 = F.relu(self.input_projection(x)) * node_mask
        return x, self.dropout(self.propagate(h0, adjacency, node_mask))

    def propagate(self, h0: torch.Tensor, adjacency: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
        """``h_L`` from ``h_0`` (class docstring); padding nodes stay zero."""
        h = h0
        for depth, layer in enumerate(self.layers, start=1):
            h = F.relu(layer(self.dropout(h), adjacency, h0, self.theta(depth), self.alpha)) * node_mask
        return h


def multimodal_graph_readout(
    graph: GCNIIStack,
    nodes: torch.Tensor,
    context_mask: torch.Tensor,
    utterance_mask: torch.Tensor,
    use_residue: bool,
) -> torch.Tensor:
    """Run ``graph`` over the normalised multimodal adjacency of ``nodes`` and read out per utterance.

    Args:
        graph: the GCNII stack.
        nodes: ``(B, M, T, W)`` graph input per modality, zero at padding.
        context_mask: ``(B, T, T)`` bool (no padding pairs); restricts the intra-modal edges.
        utterance_mask: ``(B, T)`` bool.
        use_residue: read out ``[x̃ ‖ h]`` per node (dropped-out input and graph output) instead of ``h``.

    Returns:
        ``(B, T, M·H')``: per utterance, the per-node readouts of its ``M`` modality nodes concatenated in
        the order of ``nodes``.
    """
    batch_size, num_modalities, length, width = nodes.shape
    adjacency = symmetric_normalize(multimodal_adjacency(nodes, context_mask, utterance_mask))
    node_mask = utterance_mask.to(nodes.dtype).repeat(1, num_modalities)[..., None]
    x, h = graph(nodes.reshape(batch_size, num_modalities * length, width), adjacency, node_mask)
    per_node = torch.cat([x, h], dim=-1) if use_residue else h
    return (
        per_node.reshape(batch_size, num_modalities, length, -1)
        .permute(0, 2, 1, 3)
        .reshape(batch_size, length, -1)
    )


class MultimodalGraphConfig(MercConfig):
    """The config fields of the MMGCN skeleton and their validation, with MMGCN's defaults; MMGCN's and
    MM-DFN's configs subclass it, and :class:`~merc_hf.models.mmgcn.MMGCNConfig` and
    :class:`~merc_hf.models.mmdfn.MMDFNConfig` document every field (``D_e``, ``graph_hidden_size``,
    ``num_layers``, GCNII's ``alpha`` and ``lamda``, ``use_speaker_embeddings``, ``use_residue``). The modality
    dims default to MMGCN's IEMOCAP features (100, 1582, 342) and ``dropout`` to 0.4.
    """

    model_type = ""

    def __init__(
        self,
        D_e: int = 100,
        graph_hidden_size: int = 100,
        num_layers: int = 64,
        alpha: float = 0.1,
        lamda: float = 0.5,
        use_speaker_embeddings: bool = True,
        use_residue: bool = True,
        **kwargs,
    ) -> None:
        self.D_e = D_e
        self.graph_hidden_size = graph_hidden_size
        self.num_layers = num_layers
        self.alpha = alpha
        self.lamda = lamda
        self.use_speaker_embeddings = use_speaker_embeddings
        self.use_residue = use_residue
        kwargs.setdefault("text_dim", 100)
        kwargs.setdefault("audio_dim", 1582)
        kwargs.setdefault("visual_dim", 342)
        kwargs.setdefault("dropout", 0.4)
        super().__init__(**kwargs)
        self._validate_multimodal_graph()

    def _validate_multimodal_graph(self) -> None:
        for name in ("D_e", "graph_hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("alpha", "lamda"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if self.lamda <= 0:
            raise ValueError(f"lamda must be > 0, got {self.lamda!r}")
        for name in ("use_speaker_embeddings", "use_residue"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")


class MultimodalGraphModel(MercPreTrainedModel):
    """The MMGCN skeleton (``hujingwen6666/MMGCN: model.py (L921–950, L1035–1036)``; documented step by step
    in :mod:`merc_hf.models.mmgcn.modeling_mmgcn`): unimodal encoders (text ``Linear(text_dim, W)`` -> 2-layer
    bidirectional :attr:`text_cell` RNN with ``D_e`` per direction; other modalities ``Linear(dim, W)``,
    ``W = 2·D_e``), an optional speaker embedding added to the text nodes, the multimodal graph with a
    :attr:`graph_class` stack, the residual readout and the classifier Dropout -> ReLU -> Linear.

    A subclass sets ``config_class``, ``base_model_prefix``, :attr:`text_cell` and :attr:`graph_class`; its
    ``__init__`` calls ``super().__init__(config)``, adds its own modules and ends with ``self.post_init()``.
    :meth:`_encode_unimodal` is the place to transform the encoder outputs before the graph (one modality's
    transform may read only that modality's outputs); a transform that reads the context mask also extends
    :meth:`_unimodal_reads_context`.

    :meth:`_encode` is split into the stages that removal views share
    (:func:`merc_hf.calibration.views.removal_view_logits`): :meth:`_unimodal_stages` (one modality's encoder
    and, on text, the speaker embedding) and :meth:`_contextual_stages` (graph, readout, classifier).
    """

    config_class = MultimodalGraphConfig
    text_cell: ClassVar[str] = "lstm"
    graph_class: ClassVar[type[GCNIIStack]] = GCNIIStack

    def __init__(self, config: MultimodalGraphConfig) -> None:
        super().__init__(config)
        self.modalities = config.modalities
        width = 2 * config.D_e

        self.text_projection = None
        self.text_rnn = None
        if "text" in self.modalities:
            self.text_projection = nn.Linear(config.text_dim, width)
            self.text_rnn = ContextMaskedRNN(
                input_size=width,
                hidden_size=config.D_e,
                num_layers=2,
                bidirectional=True,
                dropout=config.dropout,
                cell=self.text_cell,
            )
        self.projections = nn.ModuleDict(
            {m: nn.Linear(getattr(config, f"{m}_dim"), width) for m in self.modalities if m != "text"}
        )
        self.speaker_embeddings = None
        if config.use_speaker_embeddings and "text" in self.modalities:
            self.speaker_embeddings = nn.Embedding(config.n_speakers, width)

        self.graph = self.graph_class(
            width, config.graph_hidden_size, config.num_layers, config.alpha, config.lamda, config.dropout
        )
        readout = config.graph_hidden_size + (width if config.use_residue else 0)
        self.classifier_dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(readout * len(self.modalities), config.num_labels)

    def _needs_speakers(self) -> bool:
        return self.speaker_embeddings is not None

    def _encode_unimodal(
        self, inputs: MercInputs, names: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """The encoder output ``(B, T, W)`` of each modality in ``names`` (all configured modalities when
        ``None``), reading only that modality's features. The text RNN honours ``inputs.context_mask``
        exactly (it runs over each target's context subsequence); rows at padding are meaningless
        (:meth:`_contextual_stages` zeroes them)."""
        encoded = {}
        for name in self.modalities if names is None else names:
            x = inputs.features[name]
            if name == "text":
                context = None if inputs.full_context else inputs.context_mask
                encoded[name] = self.text_rnn(self.text_projection(x), inputs.utterance_mask, context)
            else:
                encoded[name] = self.projections[name](x)
        return encoded

    def _unimodal_stages(
        self, inputs: MercInputs, names: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """:meth:`_encode_unimodal` plus the speaker embedding on text: the graph node features ``(B, T, W)``
        of each modality in ``names`` (all when ``None``), before padding is zeroed."""
        encoded = self._encode_unimodal(inputs, names)
        if self.speaker_embeddings is not None and "text" in encoded:
            encoded["text"] = encoded["text"] + self.speaker_embeddings(inputs.speakers)
        return encoded

    def _unimodal_reads_context(self, name: str, inputs: MercInputs) -> bool:
        """Whether the encoder of ``name`` honours ``inputs``' context mask: only the text RNN does."""
        return name == "text" and not inputs.full_context

    def _graph_nodes(self, unimodal: dict[str, torch.Tensor], inputs: MercInputs) -> torch.Tensor:
        """The per-modality node features stacked in modality order, ``(B, M, T, W)``, zero at padding."""
        nodes = torch.stack([unimodal[m] for m in self.modalities], dim=1)
        return nodes * inputs.utterance_mask[:, None, :, None].to(nodes.dtype)

    def _encode_modalities(self, inputs: MercInputs) -> torch.Tensor:
        """The graph nodes ``(B, M, T, W)`` of ``inputs`` (all unimodal stages), zero at padding."""
        return self._graph_nodes(self._unimodal_stages(inputs), inputs)

    def _encode(self, inputs: MercInputs) -> tuple[torch.Tensor, torch.Tensor]:
        return self._contextual_stages(self._unimodal_stages(inputs), inputs)

    def _contextual_stages(
        self, unimodal: dict[str, torch.Tensor], inputs: MercInputs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything after the unimodal stages: the multimodal graph, the residual readout and the
        classifier."""
        nodes = self._graph_nodes(unimodal, inputs)
        utterance_repr = multimodal_graph_readout(
            self.graph, nodes, inputs.context_mask, inputs.utterance_mask, self.config.use_residue
        )
        logits = self.classifier(F.relu(self.classifier_dropout(utterance_repr)))
        return utterance_repr, logits
