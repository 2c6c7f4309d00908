"""MMGCN: multimodal fused graph convolutional network for ERC.

Hu et al., "MMGCN: Multimodal Fusion via Deep Graph Convolution Network for Emotion Recognition in
Conversation", ACL-IJCNLP 2021; reference code ``hujingwen6666/MMGCN`` (``model.py``, ``model_mm.py``,
``model_GCN.py``). This is an independent dense re-implementation.

Architecture (per dialogue of ``n`` utterances, ``M`` configured modalities, ``W = 2·D_e``):

1. Unimodal encoders (``hujingwen6666/MMGCN: model.py (L921–950)``): text -> ``Linear(text_dim, W)`` ->
   2-layer BiLSTM (``D_e`` per direction, dropout between layers); audio / visual -> ``Linear(dim, W)``.
2. A learned speaker embedding (``W``) is added to the text nodes (``use_speaker_embeddings``).
3. One graph over the ``M·n`` nodes ``(m, i)`` (``create_big_adj``, ``hujingwen6666/MMGCN: model_mm.py
   (L120–175)``). With the angular similarity of two node vectors
   ``s(x, y) = 1 − arccos(clamp(0.99999 · cos(x, y))) / π`` ∈ (0, 1):

   * intra-modal edges ``A[(m, i), (m, j)] = s(x_mi, x_mj)`` for ``j`` in the context of ``i``, ``j ≠ i``;
   * self loops ``A[(m, i), (m, i)] = 1``;
   * inter-modal edges only between the nodes of one utterance, ``A[(m, i), (m', i)] = s(x_mi, x_m'i)``;
   * ``Â = D^-1/2 A D^-1/2`` with ``D`` the row sums of ``A``.

   The adjacency is computed from the encoder outputs (speaker embedding included) and is differentiable
   with respect to them, as in the reference.
4. GCNII stack (``GCNII_lyc`` with ``variant=True``, ``hujingwen6666/MMGCN: model_GCN.py (L398–447)``),
   with ``x`` the node features after input dropout::

       h_0     = ReLU(x W_in + b_in)
       P_l     = Â · dropout(h_{l−1})
       h_l     = ReLU(θ_l · [P_l ‖ h_0] W_l + (1 − θ_l) · ((1 − α) P_l + α h_0)),   l = 1 .. L
       θ_l     = ln(λ / l + 1)

   ``W_l`` is ``(2·graph_hidden, graph_hidden)`` without bias (initialised U(±1/√graph_hidden) as in the
   reference), α = 0.1, λ = 0.5, ``L = num_layers``; the output is ``dropout(h_L)``. This is the
   "variant" GCNII of Chen et al. (ICML 2020) that MMGCN uses: the weight acts on the concatenation
   ``[P_l ‖ h_0]`` and the identity-mapping term on the initial-residual mix.
5. Readout per node ``[x ‖ h_L]`` (``use_residue``; ``x`` = dropped-out input, ``W + graph_hidden``), per
   utterance the concatenation over modalities in :data:`~merc_hf.models.base.MODALITIES` order
   (``utterance_repr``, 900-d for the reference setting); classifier Dropout -> ReLU -> Linear
   (``hujingwen6666/MMGCN: model.py (L1035–1036, L1191–1195)``).

Context masks (see :mod:`merc_hf.models.base`): the text LSTM runs over each target's context
subsequence (:class:`~merc_hf.models.layers.ContextMaskedRNN`); intra-modal edges exist only where
``context_mask`` allows, at every layer (the adjacency is shared by all layers); inter-modal edges stay
within one utterance and are always used. For view "O" every connected component of the graph is the set
of all modality nodes of one speaker's utterances, so removal is exact; for view "X" it is edge-level.

Deviations from the reference code:

* **Context masking.** The reference connects all utterances of a dialogue; here intra-modal edges follow
  ``context_mask`` (full context gives the reference graph).
* **Padding.** The reference runs the LSTM over the padded, time-major batch (the backward direction of a
  shorter dialogue starts from padding frames); here the LSTM runs per dialogue (or per context
  subsequence) and padding nodes have no edges.
* **Self loops are exactly 1.** The reference puts the diagonal through the same formula, which gives
  ``1 − arccos(0.99999)/π ≈ 0.99858``. A zero feature vector (cosine undefined, NaN in the reference) has
  cosine 0 with every node here, i.e. edge weight 0.5.
* **Dense batched tensors.** One ``(B, M·T, M·T)`` adjacency per batch instead of one block-diagonal
  ``(Σ M·n)²`` matrix built with per-dialogue Python loops; no ``.cuda()``; any subset of modalities (the
  reference needs two or three); ``num_layers`` is configurable (the reference hard-codes 64, ignoring
  ``--Deep_GCN_nlayers``, ``model.py (L1007)``).
* **Readout order** is text, audio, visual (the reference concatenates audio, visual, text); the
  classifier input size follows ``D_e``/``graph_hidden_size`` (the reference hard-codes ``300·M``).
* **Outputs** are logits (the reference returns log-softmax; the losses are equivalent).
* Unused reference parameters are not created (``MM_GCN``'s ``a_fc``/``v_fc``/``l_fc``, ``feature_fc``,
  ``final_fc``, modal and per-modality speaker embeddings, the gated-attention fusion, DialogueGCN's edge
  attention), so reference checkpoints do not load as-is.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..base import MercInputs, MercPreTrainedModel
from ..layers import ContextMaskedRNN, symmetric_normalize
from .configuration_mmgcn import MMGCNConfig

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


class MMGCNGraphConvolution(nn.Module):
    """One GCNII layer in MMGCN's "variant" form (module docstring, step 4), without the final ReLU."""

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


class MMGCNGraph(nn.Module):
    """The GCNII stack of MMGCN over the normalised multimodal adjacency (module docstring, step 4)."""

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, alpha: float, lamda: float, dropout: float
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.lamda = lamda
        self.input_projection = nn.Linear(input_size, hidden_size)
        self.layers = nn.ModuleList([MMGCNGraphConvolution(hidden_size) for _ in range(num_layers)])
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, adjacency: torch.Tensor, node_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(B, N, D)``, ``adjacency`` ``(B, N, N)`` normalised, ``node_mask`` ``(B, N, 1)`` float.

        Returns ``(dropout(x), dropout(h_L))``; the first is what the residual readout concatenates.
        """
        x = self.dropout(x)
        h0 = F.relu(self.input_projection(x)) * node_mask
        h = h0
        for depth, layer in enumerate(self.layers, start=1):
            theta = math.log(self.lamda / depth + 1.0)
            h = F.relu(layer(self.dropout(h), adjacency, h0, theta, self.alpha)) * node_mask
        return x, self.dropout(h)


class MMGCNModel(MercPreTrainedModel):
    """MMGCN for utterance-level emotion classification (module docstring for the architecture and every
    deviation from the reference code). ``forward`` is :meth:`MercPreTrainedModel.forward`."""

    config_class = MMGCNConfig
    base_model_prefix = "mmgcn"
    _no_split_modules: ClassVar[list[str]] = ["MMGCNGraph"]

    def __init__(self, config: MMGCNConfig) -> None:
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
                cell="lstm",
            )
        self.projections = nn.ModuleDict(
            {m: nn.Linear(getattr(config, f"{m}_dim"), width) for m in self.modalities if m != "text"}
        )
        self.speaker_embeddings = None
        if config.use_speaker_embeddings and "text" in self.modalities:
            self.speaker_embeddings = nn.Embedding(config.n_speakers, width)

        self.graph = MMGCNGraph(
            width, config.graph_hidden_size, config.num_layers, config.alpha, config.lamda, config.dropout
        )
        readout = config.graph_hidden_size + (width if config.use_residue else 0)
        self.classifier_dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(readout * len(self.modalities), config.num_labels)
        self.post_init()

    def _needs_speakers(self) -> bool:
        return self.speaker_embeddings is not None

    def _encode_modalities(self, inputs: MercInputs) -> torch.Tensor:
        """Unimodal encoders (speaker embedding included); returns the graph nodes ``(B, M, T, 2·D_e)``,
        zero at padding."""
        nodes = []
        for name in self.modalities:
            x = inputs.features[name]
            if name == "text":
                x = self.text_rnn(
                    self.text_projection(x),
                    inputs.utterance_mask,
                    None if inputs.full_context else inputs.context_mask,
                )
                if self.speaker_embeddings is not None:
                    x = x + self.speaker_embeddings(inputs.speakers)
            else:
                x = self.projections[name](x)
            nodes.append(x)
        return torch.stack(nodes, dim=1) * inputs.utterance_mask[:, None, :, None].to(x.dtype)

    def _encode(self, inputs: MercInputs) -> tuple[torch.Tensor, torch.Tensor]:
        nodes = self._encode_modalities(inputs)
        batch_size, num_modalities, length, width = nodes.shape
        adjacency = symmetric_normalize(
            multimodal_adjacency(nodes, inputs.context_mask, inputs.utterance_mask)
        )
        node_mask = inputs.utterance_mask.to(nodes.dtype).repeat(1, num_modalities)[..., None]
        x, h = self.graph(nodes.reshape(batch_size, num_modalities * length, width), adjacency, node_mask)
        per_node = torch.cat([x, h], dim=-1) if self.config.use_residue else h
        utterance_repr = (
            per_node.reshape(batch_size, num_modalities, length, -1)
            .permute(0, 2, 1, 3)
            .reshape(batch_size, length, -1)
        )
        logits = self.classifier(F.relu(self.classifier_dropout(utterance_repr)))
        return utterance_repr, logits
