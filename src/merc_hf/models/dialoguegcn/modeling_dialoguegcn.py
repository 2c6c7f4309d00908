"""DialogueGCN: a graph convolutional network over speaker- and position-typed utterance edges.

Ghosal et al., "DialogueGCN: A Graph Convolutional Neural Network for Emotion Recognition in
Conversation", EMNLP 2019; reference code ``declare-lab/conv-emotion: DialogueGCN/model.py`` (IEMOCAP
only). This is an independent dense re-implementation.

Architecture (per dialogue of ``n`` utterances, speakers ``s_i`` ∈ [0, S), receiver ``i``, sender ``j``):

1. Input: the features of the configured modalities concatenated per utterance (the reference is
   text-only, ``D_m = 100``).
2. Sequential encoder: 2-layer BiLSTM, ``D_e`` per direction, dropout between layers; ``h_i`` is
   ``2·D_e``-d (``declare-lab/conv-emotion: DialogueGCN/model.py (L830–831)``).
3. Graph (``edge_perms`` / ``batch_graphify``, ``DialogueGCN/model.py (L636–658, L661–719)``): ``i``
   receives a message from ``j`` when ``−window_past ≤ j − i ≤ window_future`` and ``context_mask[i, j]``
   (the self loop ``j = i`` is always an edge). Call this set ``N(i)``.
4. Edge weights (``MaskedEdgeAttention``, ``DialogueGCN/model.py (L535–568)``, with the deviation below)::

       α_ij = softmax_{j ∈ N(i)} ( (W_α h_i)[j − i + window_past] ),   W_α: Linear(2·D_e, P + F + 1), no bias

5. Relation of the edge ``j -> i``: ``r(i, j) = 2·(S·s_j + s_i) + [j ≥ i]`` (``2·S²`` relations: speaker of
   the sender, speaker of the receiver, and whether the sender lies strictly before the receiver or is
   the receiver itself or after it; the reference's ``edge_type_mapping`` order).
6. Relational graph convolution with basis decomposition (PyG ``RGCNConv(2·D_e, graph_hidden,
   2·S², num_bases=30)`` with ``edge_norm = α`` in the reference, ``DialogueGCN/model.py (L789–810)``)::

       W_r = Σ_b a_rb V_b
       g_i = Σ_{j ∈ N(i)} α_ij h_j W_{r(i, j)} + h_i W_root + b

   computed densely as one einsum of the coefficients ``α_ij · a_{r(i, j)}`` ``(B, T, T, num_bases)``
   with the per-basis transformed features ``h_j V_b`` ``(B, T, num_bases, graph_hidden)``. The only
   normalisation is α, which sums to 1 over ``N(i)`` (the reference's ``edge_norm`` with sum
   aggregation; there is no extra per-relation ``1/c_{i,r}`` constant).
7. Graph convolution (PyG ``GraphConv``, unweighted sum over the same edges, no activation in between, as
   in the reference): ``o_i = W_1 Σ_{j ∈ N(i)} g_j + W_2 g_i + b``.
8. ``e_i = [h_i ‖ o_i]`` (``2·D_e + graph_hidden``). Nodal attention ("general2" ``MatchingAttention``,
   ``DialogueGCN/model.py (L757–786)``) over the utterances of ``i``'s context (the whole dialogue for
   full context, not the window):
   ``β_ij = softmax_j tanh((W_q e_i + b_q) · e_j)``, ``ẽ_i = Σ_j β_ij e_j``.
9. ``z_i = ReLU(Linear(ẽ_i))`` (``graph_hidden``, = ``utterance_repr``), logits = ``Linear(dropout(z_i))``.

Context masks (see :mod:`merc_hf.models.base`): the LSTM runs over each target's context subsequence
(:class:`~merc_hf.models.layers.ContextMaskedRNN`); graph edges, edge-weight softmaxes and the nodal
attention only use pairs that ``context_mask`` allows. Removal is therefore exact for full context and
view "O", edge-level for view "X". The concatenated modalities feed one context-reading LSTM, so there is no
per-modality stage that removal views could share: they run as full forward passes
(:func:`merc_hf.calibration.views.removal_view_logits`).

Deviations from the reference code:

* **Edge-weight scorer independent of dialogue length.** The reference scores edges with
  ``Linear(2·D_e, max_seq_len)`` (``max_seq_len = 110`` for IEMOCAP) whose output unit is chosen by the
  absolute position of an utterance, so parameters depend on the longest dialogue and a longer dialogue
  cannot be processed. Here the output unit is chosen by the relative position ``j − i`` inside the
  window, ``Linear(2·D_e, window_past + window_future + 1)``.
* **Edge-weight orientation.** torch-geometric sends messages from ``edge_index[0]`` to ``edge_index[1]``.
  With the reference's edge list ``(s, r)`` for ``r`` in the window of ``s``, the weight of the message
  ``s -> r`` is ``exp(w_s · h_r)`` (``w_s`` = scorer row of the absolute position of ``s``) normalised over
  the receivers ``r`` in the window of ``s``: weights sum to 1 over the edges *leaving* a node, and an
  asymmetric window applies to the sender. Here, as the paper describes the edge weights, α is computed
  from the receiver ``h_i`` and normalised over the edges *entering* ``i``, and the windows are the
  receiver's past and future (the same edge set for the default 10/10).
* **Exact zeros.** The reference gives non-edges weight 1e-10 before renormalising and runs its softmax
  over the padded time axis; here non-edges and padding get exactly zero weight.
* **Context masking** of the LSTM, the graph and the nodal attention (the reference has none).
* **Padding.** The reference runs the LSTM over the padded, time-major batch (the backward direction of a
  shorter dialogue starts from padding frames); here padding never reaches a real utterance.
* **Multimodal input** by concatenation (the reference is text-only; see
  :class:`~merc_hf.models.dialoguegcn.DialogueGCNConfig`).
* **Dense batched tensors**, no torch-geometric, no per-dialogue Python loops, no ``.cuda()``.
* **Outputs** are logits (the reference returns log-softmax; the losses are equivalent).
* Unused reference parameters are not created (the DialogueRNN/GRU alternatives and the unused attention
  modules of ``MaskedEdgeAttention``), so reference checkpoints do not load as-is.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..base import MercInputs, MercPreTrainedModel
from ..layers import ContextMaskedRNN
from .configuration_dialoguegcn import DialogueGCNConfig


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim restricted to ``mask`` (bool, same shape); masked entries and rows
    without any allowed entry (padding) are exactly 0."""
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1) * mask.to(scores.dtype)


def window_mask(
    length: int, window_past: int, window_future: int, device: torch.device | None = None
) -> torch.Tensor:
    """``(T, T)`` bool: ``[i, j]`` is True when ``−window_past ≤ j − i ≤ window_future`` (self included)."""
    positions = torch.arange(length, device=device)
    offset = positions[None, :] - positions[:, None]
    return (offset >= -window_past) & (offset <= window_future)


def relation_types(speakers: torch.Tensor, n_speakers: int) -> torch.Tensor:
    """``(B, T, T)`` long relation type of the edge from sender ``j`` to receiver ``i``:
    ``2·(n_speakers·s_j + s_i) + [j ≥ i]``, the order of the reference's ``edge_type_mapping``
    (``declare-lab/conv-emotion: DialogueGCN/model.py (L661–719)``)."""
    length = speakers.shape[1]
    positions = torch.arange(length, device=speakers.device)
    not_before = (positions[None, :] >= positions[:, None]).long()  # [i, j] = j >= i
    return 2 * (n_speakers * speakers[:, None, :] + speakers[:, :, None]) + not_before


class DialogueGCNEdgeAttention(nn.Module):
    """Edge weights α (module docstring, step 4): a bias-free linear score per relative position."""

    def __init__(self, input_size: int, window_past: int, window_future: int) -> None:
        super().__init__()
        self.window_past = window_past
        self.window_future = window_future
        self.scorer = nn.Linear(input_size, window_past + window_future + 1, bias=False)

    def forward(self, h: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """``h`` ``(B, T, D)``, ``edges`` ``(B, T, T)`` bool (within the window); returns α ``(B, T, T)``."""
        batch_size, length, _ = h.shape
        positions = torch.arange(length, device=h.device)
        offset = positions[None, :] - positions[:, None] + self.window_past
        index = offset.clamp(0, self.window_past + self.window_future).expand(batch_size, length, length)
        scores = self.scorer(h).gather(-1, index)
        return masked_softmax(scores, edges)


class DialogueGCNRelationalConv(nn.Module):
    """Relational graph convolution with basis decomposition and a root weight (module docstring, step 6).

    Parameters are initialised U(±1/√(num_bases·in_features)), as torch-geometric's ``RGCNConv`` of the
    reference's era does.
    """

    def __init__(self, in_features: int, out_features: int, num_relations: int, num_bases: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_bases = num_bases
        self.basis = nn.Parameter(torch.empty(num_bases, in_features, out_features))
        self.coefficients = nn.Parameter(torch.empty(num_relations, num_bases))
        self.root = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))

    def _merc_init_weights(self) -> None:
        bound = 1.0 / math.sqrt(self.num_bases * self.in_features)
        for param in (self.basis, self.coefficients, self.root, self.bias):
            init.uniform_(param, -bound, bound)

    def relation_weights(self) -> torch.Tensor:
        """``(num_relations, in, out)``: ``W_r = Σ_b a_rb V_b``."""
        return torch.einsum("rk,kdh->rdh", self.coefficients, self.basis)

    def forward(self, x: torch.Tensor, edge_weight: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, D)``; ``edge_weight`` ``(B, T, T)`` (0 where there is no edge); ``relation``
        ``(B, T, T)`` long. Returns ``(B, T, out)``."""
        coefficients = edge_weight[..., None] * self.coefficients[relation]  # (B, T, T, K)
        transformed = torch.einsum("bjd,kdh->bjkh", x, self.basis)  # (B, T, K, H)
        messages = torch.einsum("bijk,bjkh->bih", coefficients, transformed)
        return messages + x @ self.root + self.bias


class DialogueGCNGraphConv(nn.Module):
    """``W_1 Σ_{j ∈ N(i)} x_j + W_2 x_i + b`` over a dense 0/1 adjacency (module docstring, step 7)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.neighbours = nn.Linear(in_features, out_features, bias=False)
        self.root = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, D)``, ``adjacency`` ``(B, T, T)`` float."""
        return self.neighbours(adjacency @ x) + self.root(x)


class DialogueGCNNodalAttention(nn.Module):
    """The "general2" matching attention of every utterance over the utterances of its context
    (``MatchingAttention``, ``declare-lab/conv-emotion: DialogueRNN/model.py (L24–77)``, as used by
    ``DialogueGCN/model.py (L757–786)``; module docstring, step 8). Masked pairs get exactly zero weight."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)

    def forward(self, e: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        """``e`` ``(B, T, D)``, ``context_mask`` ``(B, T, T)`` bool; returns ``(B, T, D)``."""
        scores = torch.tanh(self.transform(e) @ e.transpose(-1, -2))
        return masked_softmax(scores, context_mask) @ e


class DialogueGCNModel(MercPreTrainedModel):
    """DialogueGCN for utterance-level emotion classification (module docstring for the architecture and
    every deviation from the reference code). ``forward`` is :meth:`MercPreTrainedModel.forward`."""

    config_class = DialogueGCNConfig
    base_model_prefix = "dialoguegcn"
    _no_split_modules: ClassVar[list[str]] = ["DialogueGCNRelationalConv"]

    def __init__(self, config: DialogueGCNConfig) -> None:
        super().__init__(config)
        self.modalities = config.modalities
        input_size = sum(getattr(config, f"{m}_dim") for m in self.modalities)
        width = 2 * config.D_e
        hidden = config.graph_hidden_size
        self.rnn = ContextMaskedRNN(
            input_size=input_size,
            hidden_size=config.D_e,
            num_layers=2,
            bidirectional=True,
            dropout=config.dropout,
            cell="lstm",
        )
        self.edge_attention = DialogueGCNEdgeAttention(width, config.window_past, config.window_future)
        self.relational_conv = DialogueGCNRelationalConv(
            width, hidden, config.num_relations, config.num_bases
        )
        self.graph_conv = DialogueGCNGraphConv(hidden, hidden)
        self.nodal_attention = DialogueGCNNodalAttention(width + hidden) if config.nodal_attention else None
        self.hidden = nn.Linear(width + hidden, hidden)
        self.classifier_dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        self.post_init()

    def _needs_speakers(self) -> bool:
        return True

    def graph_edges(self, inputs: MercInputs) -> torch.Tensor:
        """``(B, T, T)`` bool: ``[b, i, j]`` when ``j`` is in ``i``'s window and context (module docstring,
        step 3); empty rows at padding."""
        length = inputs.utterance_mask.shape[1]
        window = window_mask(
            length, self.config.window_past, self.config.window_future, inputs.context_mask.device
        )
        return inputs.context_mask & window

    def _encode(self, inputs: MercInputs) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([inputs.features[m] for m in self.modalities], dim=-1)
        h = self.rnn(x, inputs.utterance_mask, None if inputs.full_context else inputs.context_mask)
        node_mask = inputs.utterance_mask[..., None].to(h.dtype)
        edges = self.graph_edges(inputs)
        alpha = self.edge_attention(h, edges)
        relation = relation_types(inputs.speakers, self.config.n_speakers)
        g = self.relational_conv(h, alpha, relation) * node_mask
        o = self.graph_conv(g, edges.to(h.dtype)) * node_mask
        e = torch.cat([h, o], dim=-1)
        if self.nodal_attention is not None:
            e = self.nodal_attention(e, inputs.context_mask)
        utterance_repr = F.relu(self.hidden(e))
        logits = self.classifier(self.classifier_dropout(utterance_repr))
        return utterance_repr, logits
