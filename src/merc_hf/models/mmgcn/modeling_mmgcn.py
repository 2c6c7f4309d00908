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

This skeleton (encoders, graph, GCNII stack, readout, classifier) is shared with MM-DFN:
:class:`~merc_hf.models.layers.MultimodalGraphModel` in :mod:`merc_hf.models.layers.multimodal_graph`, which
MMGCN uses as it is.

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

from typing import ClassVar

from ..layers.multimodal_graph import (
    COSINE_SCALE,
    GCNIIConvolution,
    GCNIIStack,
    MultimodalGraphModel,
    angular_similarity,
    multimodal_adjacency,
)
from .configuration_mmgcn import MMGCNConfig

__all__ = [
    "COSINE_SCALE",
    "MMGCNGraph",
    "MMGCNGraphConvolution",
    "MMGCNModel",
    "angular_similarity",
    "multimodal_adjacency",
]

MMGCNGraphConvolution = GCNIIConvolution
"""One GCNII layer of MMGCN (module docstring, step 4); the shared :class:`GCNIIConvolution`."""


class MMGCNGraph(GCNIIStack):
    """The GCNII stack of MMGCN over the normalised multimodal adjacency (module docstring, step 4): the
    shared :class:`~merc_hf.models.layers.GCNIIStack` as it is."""


class MMGCNModel(MultimodalGraphModel):
    """MMGCN for utterance-level emotion classification (module docstring for the architecture and every
    deviation from the reference code): the shared skeleton with a text BiLSTM and the plain GCNII stack.
    ``forward`` is :meth:`MercPreTrainedModel.forward`."""

    config_class = MMGCNConfig
    base_model_prefix = "mmgcn"
    _no_split_modules: ClassVar[list[str]] = ["MMGCNGraph"]
    text_cell: ClassVar[str] = "lstm"
    graph_class: ClassVar[type[GCNIIStack]] = MMGCNGraph

    def __init__(self, config: MMGCNConfig) -> None:
        super().__init__(config)
        self.post_init()
