"""M3Net: multivariate, multi-frequency and multimodal graph network for ERC.

Chen et al., "Multivariate, Multi-frequency and Multimodal: Rethinking Graph Neural Networks for Emotion
Recognition in Conversation", CVPR 2023; reference code ``feiyuchen7/M3NET`` (``model.py``,
``model_hyper.py``, ``HypergraphConv.py``, ``high_fre_conv.py``), also the ``Model`` of CMERC
(``HITSZ-HLT/CMERC``). This is an independent dense re-implementation.

Architecture (per dialogue of ``n`` utterances, ``M`` configured modalities):

1. Unimodal encoders: text -> optional ``Linear(text_dim, D_g)`` -> 2-layer bidirectional GRU
   (``D_g / 2`` per direction, dropout between layers); audio / visual -> ``Linear(dim, D_g)``.
2. A learned speaker embedding is added to the text nodes.
3. ``M·n`` nodes ``(m, i)``, projected by one shared ``fc1: Linear(D_g, graph_hidden)``.
4. Multivariate propagation, ``num_L`` hypergraph layers. Hyperedges: one per modality (all nodes of
   that modality) and one per utterance ``{l_i, a_i, v_i}``.
   ``X' = LeakyReLU(D^-1 H W B^-1 H^T X + b_l)``, no weight matrix (as in the reference), with
   ``W`` the hyperedge weights, ``D_v = Σ_e w_e H_ve`` and ``B_e = Σ_{v ∈ e} ω_v`` (node weights ``ω``).
5. Multi-frequency propagation, ``num_K`` residual layers ``g <- g + conv_k(g)`` from ``g = fc1(x)``, on
   the graph with all ordered pairs within a modality (no self loops) plus all ordered pairs among the
   nodes of one utterance: ``conv(x)_i = Σ_j d_i^-1/2 d_j^-1/2 tanh(w^T [x_i ‖ x_j] + c) x_j``. The tanh
   gate may be negative (high-pass) or positive (low-pass).
6. Readout per utterance ``[hyper_l ‖ gnn_l ‖ hyper_a ‖ gnn_a ‖ hyper_v ‖ gnn_v]`` (``2·graph_hidden·M``,
   3072-d for the reference setting) = ``utterance_repr``; classifier Dropout -> ReLU -> Linear.

Context masks (see :mod:`merc_hf.models.base`): the text GRU runs over each target's context subsequence
(:class:`~merc_hf.models.layers.ContextMaskedRNN`); the modality hyperedge seen by target ``i`` is
restricted to the nodes of ``i``'s context (for view "O" this is one modality hyperedge per speaker, for
full context the reference's hyperedge); intra-modal GNN edges exist only where ``context_mask`` allows.
Utterance hyperedges and the cross-modal edges of one utterance stay within the utterance and are always
used. Removal is therefore exact for full context and view "O", edge-level for view "X".

Deviations from the reference code:

* **Fixed-size parameters replaced.** The reference holds 1000 hyperedge weights and 5200 "EW" weights,
  sliced by the position of each hyperedge / node in the flattened batch (so a dialogue's weights depend on
  where it sits in the batch, EW is indexed by node id, and large batches of long IEMOCAP dialogues
  overflow 5200). Here there is one weight per hyperedge *type* (one per modality hyperedge, one shared by
  all utterance hyperedges) and one node weight per modality, all initialised to 1 like the reference.
* **Hyperedge weights in the message.** The reference's PyG-1.7-derived ``HypergraphConv`` uses the
  hyperedge weights only in the node degree ``D`` and not in the message, i.e. it computes
  ``D^-1 H B^-1 H^T X``; here ``W`` multiplies the message as in the written formula, so the weights mix
  modality-level and utterance-level context (a weighted average). With all weights equal to 1 (the
  initialisation) both give the same result.
* **Context masking everywhere** in the ``"exact"`` view mode. CMERC's ``mask_context`` only filters the
  intra-modal GNN edges; the hypergraph and the text GRU still see the whole dialogue. That is the
  ``"reference"`` view mode here (``reference_context_stages = ("gnn",)``); in ``"exact"`` all three
  honour ``context_mask``.
* **Padding.** The reference runs the text GRU over the padded, time-major batch, so the backward direction
  of every shorter dialogue starts from padding frames (padding changes real outputs); here the GRU runs on
  packed sequences and no graph edge touches padding.
* **Text input.** The model takes one text vector per utterance. The reference averages the 4 RoBERTa
  layers after a per-layer ``BatchNorm1d`` fitted over all padded rows of the batch (``--norm BN``); that
  averaging (and any normalisation) belongs to the data layer here, because batch statistics over padding
  would make outputs depend on padding and batch composition.
* **Any subset of modalities.** The reference's node indexing assumes exactly three modalities.
* **Dense batched tensors**, no torch-geometric, no per-dialogue Python loops, no ``.cuda()``, any batch
  size and dialogue length; ``num_L``/``num_K`` are honoured (not hard-coded layer attributes).
* **Outputs** are logits (the reference returns log-softmax; the losses are equivalent).
* **GNN degrees** count the neighbours a node receives messages from. The reference counts edges by source
  index; the two agree for the symmetric graphs used here (full context, "O", "X").
* Unused reference parameters are not created (modal embeddings, positional encodings, hyperedge
  attributes, the attention/weight matrices of ``HypergraphConv``, the per-layer BatchNorm/LayerNorm), so
  reference checkpoints do not load as-is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..base import MercInputs, MercPreTrainedModel, full_context_mask
from ..layers import (
    ContextMaskedRNN,
    pairwise_scores,
    propagate,
    row_normalize,
    safe_inverse_sqrt,
    without_self_loops,
)
from .configuration_m3net import M3NetConfig


class M3NetHypergraph(nn.Module):
    """Multivariate propagation: ``num_layers`` dense hypergraph convolutions sharing hyperedge and node
    weights (each layer has its own bias, as in the reference). The weights are unconstrained, as in the
    reference (initialised to 1)."""

    def __init__(self, num_modalities: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.modality_edge_weight = nn.Parameter(torch.ones(num_modalities))
        self.utterance_edge_weight = nn.Parameter(torch.ones(1))
        self.node_weight = nn.Parameter(torch.ones(num_modalities))
        self.bias = nn.Parameter(torch.zeros(num_layers, hidden_size))

    def _merc_init_weights(self) -> None:
        init.ones_(self.modality_edge_weight)
        init.ones_(self.utterance_edge_weight)
        init.ones_(self.node_weight)
        init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, context_mean: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, M, T, H)``; ``context_mean`` ``(B, T, T)`` row-normalised context (self included);
        ``node_mask`` ``(B, 1, T, 1)`` float, 1 for real utterances."""
        num_modalities = x.shape[1]
        w_mod = self.modality_edge_weight.view(1, num_modalities, 1, 1)
        w_utt = self.utterance_edge_weight
        node_w = self.node_weight.view(1, num_modalities, 1, 1)
        degree = w_mod + w_utt  # every node lies in one modality and one utterance hyperedge
        for layer in range(self.num_layers):
            # node -> hyperedge: B_e^-1 Σ_{v∈e} x_v with B_e = Σ_{v∈e} ω_v; for the modality hyperedge of
            # target i (restricted to its context S_i) this is mean_{j∈S_i} x_j / ω_m.
            modality_edge = propagate(context_mean[:, None], x) / node_w
            utterance_edge = x.sum(1, keepdim=True) / self.node_weight.sum()
            # hyperedge -> node: D_v^-1 Σ_{e∋v} w_e e
            out = (w_mod * modality_edge + w_utt * utterance_edge) / degree + self.bias[layer]
            x = F.leaky_relu(out) * node_mask
        return x


class M3NetFrequencyConv(nn.Module):
    """One multi-frequency graph convolution with a tanh edge gate on ``[x_i ‖ x_j]``."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.gate = nn.Linear(2 * hidden_size, 1)

    def forward(
        self, x: torch.Tensor, intra_norm: torch.Tensor, cross_norm: torch.Tensor | None
    ) -> torch.Tensor:
        """``x`` ``(B, M, T, H)``; ``intra_norm`` ``(B, T, T)`` normalised intra-modal adjacency;
        ``cross_norm`` ``(B, M, M, T)`` normalised same-utterance cross-modal adjacency (``None`` if M = 1)."""
        weight = self.gate.weight[0]
        target = x @ weight[: self.hidden_size] + self.gate.bias  # (B, M, T)
        source = x @ weight[self.hidden_size :]
        coefficients = torch.tanh(pairwise_scores(target, source)) * intra_norm[:, None]
        out = propagate(coefficients, x)
        if cross_norm is not None:
            # gate of the edge (m', i) -> (m, i): tanh(target[m, i] + source[m', i])
            cross = torch.tanh(target[:, :, None, :] + source[:, None, :, :]) * cross_norm
            out = out + torch.einsum("bmnt,bnth->bmth", cross, x)
        return out


class M3NetModel(MercPreTrainedModel):
    """M3Net for utterance-level emotion classification (module docstring for the architecture and every
    deviation from the reference code). ``forward`` is :meth:`MercPreTrainedModel.forward`."""

    config_class = M3NetConfig
    base_model_prefix = "m3net"
    _no_split_modules: ClassVar[list[str]] = ["M3NetHypergraph", "M3NetFrequencyConv"]

    def __init__(self, config: M3NetConfig) -> None:
        super().__init__(config)
        self.modalities = config.modalities
        hidden, graph_hidden = config.hidden_size, config.graph_hidden_size

        self.text_projection = None
        self.text_rnn = None
        if "text" in self.modalities:
            if config.text_projection:
                self.text_projection = nn.Linear(config.text_dim, hidden)
            self.text_rnn = ContextMaskedRNN(
                input_size=hidden,
                hidden_size=hidden // 2,
                num_layers=2,
                bidirectional=True,
                dropout=config.dropout,
                cell="gru",
            )
        self.projections = nn.ModuleDict(
            {m: nn.Linear(getattr(config, f"{m}_dim"), hidden) for m in self.modalities if m != "text"}
        )
        self.speaker_embeddings = None
        if config.use_speaker_embeddings and "text" in self.modalities:
            self.speaker_embeddings = nn.Embedding(config.n_speakers, hidden)

        self.node_projection = nn.Linear(hidden, graph_hidden)
        self.hypergraph = M3NetHypergraph(len(self.modalities), graph_hidden, config.num_L)
        self.frequency_layers = nn.ModuleList([M3NetFrequencyConv(graph_hidden) for _ in range(config.num_K)])
        self.classifier_dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * graph_hidden * len(self.modalities), config.num_labels)
        self.post_init()

    reference_context_stages = ("gnn",)

    def _needs_speakers(self) -> bool:
        return self.speaker_embeddings is not None

    def _encode_modality(self, name: str, inputs: MercInputs) -> torch.Tensor:
        """One unimodal encoder, ``(B, T, D_g)``: text -> projection -> GRU (+ speaker embedding), audio /
        visual -> projection."""
        x = inputs.features[name]
        if name != "text":
            return self.projections[name](x)
        if self.text_projection is not None:
            x = self.text_projection(x)
        x = self.text_rnn(
            x, inputs.utterance_mask, inputs.stage_context("text_rnn", self.reference_context_stages)
        )
        if self.speaker_embeddings is not None:
            x = x + self.speaker_embeddings(inputs.speakers)
        return x

    def _encode_modalities(self, inputs: MercInputs) -> torch.Tensor:
        """Unimodal encoders; returns the graph nodes before ``fc1``, ``(B, M, T, D_g)``."""
        return torch.stack([self._encode_modality(name, inputs) for name in self.modalities], dim=1)

    def _unimodal_stages(
        self, inputs: MercInputs, names: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        return {name: self._encode_modality(name, inputs) for name in names or self.modalities}

    def _unimodal_reads_context(self, name: str, inputs: MercInputs) -> bool:
        return name == "text" and inputs.stage_context("text_rnn", self.reference_context_stages) is not None

    def _graph_structure(
        self, inputs: MercInputs, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Dense normalised adjacencies of the multi-frequency GNN shared by all layers: intra-modal and
        cross-modal, with symmetric degree normalisation."""
        num_modalities = len(self.modalities)
        real = inputs.utterance_mask.to(dtype)
        intra = without_self_loops(inputs.context_mask.to(dtype))
        degree = intra.sum(-1) + (num_modalities - 1) * real  # same for every modality of an utterance
        inv_sqrt = safe_inverse_sqrt(degree)
        intra_norm = inv_sqrt[:, :, None] * intra * inv_sqrt[:, None, :]
        cross_norm = None
        if num_modalities > 1:
            off_diagonal = 1.0 - torch.eye(num_modalities, dtype=dtype, device=real.device)
            cross_norm = off_diagonal[None, :, :, None] * (inv_sqrt * inv_sqrt * real)[:, None, None, :]
        return intra_norm, cross_norm

    def _encode(self, inputs: MercInputs) -> tuple[torch.Tensor, torch.Tensor]:
        return self._contextual_stages(self._unimodal_stages(inputs), inputs)

    def _context_free_stages(
        self, unimodal: dict[str, torch.Tensor], inputs: MercInputs
    ) -> dict[str, torch.Tensor]:
        """The part of :meth:`_contextual_stages` that does not read ``inputs``' context mask, which context
        views with unchanged unimodal encodings share: the graph nodes after ``fc1`` and, when the hypergraph
        sees the whole dialogue (full context, or the ``"reference"`` view mode), its output."""
        nodes = torch.stack([unimodal[name] for name in self.modalities], dim=1)
        node_mask = inputs.utterance_mask[:, None, :, None].to(nodes.dtype)
        shared = {"nodes": self.node_projection(nodes) * node_mask}
        hyperedge_context = inputs.stage_context("hypergraph", self.reference_context_stages)
        if hyperedge_context is None:
            full_mean = row_normalize(full_context_mask(inputs.utterance_mask).to(nodes.dtype))
            shared["hypergraph"] = self.hypergraph(shared["nodes"], full_mean, node_mask)
        return shared

    def _contextual_stages(
        self,
        unimodal: dict[str, torch.Tensor],
        inputs: MercInputs,
        context_free: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything after the unimodal encoders: graph nodes, hypergraph, multi-frequency GNN, classifier.
        ``context_free``: :meth:`_context_free_stages` of these encodings, when already computed."""
        if context_free is None:
            context_free = self._context_free_stages(unimodal, inputs)
        x = context_free["nodes"]
        node_mask = inputs.utterance_mask[:, None, :, None].to(x.dtype)
        hyper = context_free.get("hypergraph")
        if hyper is None:
            hyper = self.hypergraph(x, row_normalize(inputs.context_mask.to(x.dtype)), node_mask)
        intra_norm, cross_norm = self._graph_structure(inputs, x.dtype)
        gnn = x
        for layer in self.frequency_layers:
            gnn = gnn + layer(gnn, intra_norm, cross_norm)

        batch_size, _, length, _ = x.shape
        utterance_repr = torch.cat([hyper, gnn], dim=-1).permute(0, 2, 1, 3).reshape(batch_size, length, -1)
        logits = self.classifier(F.relu(self.classifier_dropout(utterance_repr)))
        return utterance_repr, logits
