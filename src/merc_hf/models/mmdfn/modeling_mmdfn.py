"""MM-DFN: multimodal dynamic fusion network for ERC.

Hu et al., "MM-DFN: Multimodal Dynamic Fusion Network for Emotion Recognition in Conversations",
ICASSP 2022; reference code ``zerohd4869/MM-DFN`` (``code/model.py``, ``code/model_GCN.py``), as described
in ``merc_backbones_and_cmerc.md`` §2.5 and §3.4. This is an independent dense re-implementation. MM-DFN has
MMGCN's skeleton (3·n-node graph with the angular-similarity adjacency, GCNII stack, residual readout): the
model is the shared :class:`~merc_hf.models.layers.MultimodalGraphModel` with a text BiGRU, the speaker
recurrence before the graph and the dynamic-fusion stack.

Architecture (per dialogue of ``n`` utterances, ``M`` configured modalities, ``W = 2·D_e``,
``H = graph_hidden_size``):

1. Unimodal encoders (``zerohd4869/MM-DFN: code/model.py (L846–868)``): text -> ``Linear(text_dim, W)`` ->
   2-layer **BiGRU** (``D_e`` per direction, dropout between the layers); audio / visual ->
   ``Linear(dim, W)``. The reference's ``base_model`` is ``LSTM`` by name, but the code builds GRUs (§2.5,
   §3.4); GRUs are built here.
2. Speaker-level recurrence (``use_crn_speaker``, ``code/model.py (L1040–1090)``): the utterances of each
   speaker are gathered in time order, run through one 2-layer BiGRU shared by all speakers and all
   modalities (``D_e`` per direction), scattered back, and added to each modality ``m`` with its weight
   ``w_m`` (``speaker_weights``; a-v-l ``3-0-1`` IEMOCAP, ``0.5-0.5-1.5`` MELD)::

       u_m,i = e_m,i + w_m · SpeakerGRU(e_m,j : j ∈ S_i)[i],     S_i = {j : speaker(j) = speaker(i)} ∩ C_i

   with ``e`` the encoder outputs and ``C_i`` the context of ``i`` (``context_mask[i]``). Under full context
   ``S_i`` is the speaker's whole subsequence, i.e. the reference's gather / run / scatter. A modality with
   ``w_m = 0`` is not run through the GRU (its term is 0).
3. Optional speaker embedding (``use_speaker_embeddings``, off by default) added to the text nodes, as
   MMGCN's ``--use_speaker`` does inside its graph module.
4. The graph of MMGCN over the ``M·n`` nodes: :func:`~merc_hf.models.layers.multimodal_adjacency`
   (angular-similarity intra-modal edges within the context, self loops 1, angular-similarity inter-modal
   edges within an utterance) and ``Â = D^-1/2 A D^-1/2``, computed from the node features ``u``.
5. **Graph-based dynamic fusion** (``graph_type=GDF``, ``--reason_flag``; ``code/model_GCN.py (L444–488)``),
   a GCNII stack in which the node features pass, before each graph layer, through a 1-layer LSTM whose
   ``(h, c)`` state is carried from layer to layer (each layer is one time step), and the LSTM input is
   added back as a residual after the graph convolution and dropout. With ``x`` the node features ``u``
   (all of ``M·n`` rows at once; the LSTM acts on each node separately)::

       x̃        = dropout(x)
       h_0      = ReLU(x̃ W_in + b_in)
       (r_0, c_0) = (0, 0)
       (r_l, c_l) = LSTM(h_{l−1}; r_{l−1}, c_{l−1}),                                     l = 1 .. L
                    i = σ(W_i h_{l−1} + U_i r_{l−1} + b_i),  f = σ(W_f h_{l−1} + U_f r_{l−1} + b_f),
                    g = tanh(W_g h_{l−1} + U_g r_{l−1} + b_g),  o = σ(W_o h_{l−1} + U_o r_{l−1} + b_o),
                    c_l = f ⊙ c_{l−1} + i ⊙ g,  r_l = o ⊙ tanh(c_l)
       P_l      = Â r_l
       h_l      = h_{l−1} + dropout(ReLU(θ_l · [P_l ‖ h_0] W_l + (1 − θ_l) · ((1 − α) P_l + α h_0)))
       θ_l      = ln(λ / l + 1)

   ``W_l`` ``(2H, H)`` without bias as in MMGCN; one LSTM (``H -> H``) shared by all layers, as one LSTM
   unrolled over "time"; output ``dropout(h_L)``. Defaults ``L = 16``, α = 0.2, λ = 0.5 (§3.4).
6. Readout per node ``[x̃ ‖ dropout(h_L)]`` (``use_residue``; ``W + H``), per utterance the concatenation over
   modalities in :data:`~merc_hf.models.base.MODALITIES` order (``utterance_repr``, 900-d for the reference
   setting); classifier Dropout -> ReLU -> Linear (``code/model.py (L984–985, L1294+)``).

Loss: the shared ``loss_type``; the reference's is the standard focal loss (γ 0.5, class weights as α_t on
IEMOCAP), i.e. ``loss_type="focal"`` (:func:`~merc_hf.models.base.emotion_loss`), the config default.

Context masks (see :mod:`merc_hf.models.base`): the text BiGRU and the speaker BiGRU run over each target's
allowed subsequence (:class:`~merc_hf.models.layers.ContextMaskedRNN`, exact for any mask); intra-modal
edges exist only where ``context_mask`` allows, at every layer (the adjacency is shared by all layers);
inter-modal edges stay within one utterance; the dynamic-fusion LSTM acts on each node alone and moves no
information between utterances. For view "O" every connected component of the graph is the set of all
modality nodes of one speaker's utterances, so removal is exact; for view "X" the speaker recurrence sees
each utterance alone (exact) and the graph is edge-level masked.

Deviations from the reference code, and the choices where the notes leave the reference open:

* **Context masking.** The reference connects all utterances of a dialogue and runs the speaker GRU over
  each speaker's whole subsequence; here both follow ``context_mask`` (full context gives the reference).
* **Padding and batching** as in :mod:`merc_hf.models.mmgcn` (dense ``(B, M·T, M·T)`` adjacency, the
  recurrences run per dialogue or per context subsequence, padding nodes have no edges, self loops exactly
  1, a zero vector has cosine 0 with every node, any subset of modalities, no ``.cuda()``).
* **Readout order** is text, audio, visual; the classifier input size follows ``D_e``/``graph_hidden_size``.
* **Outputs** are logits (the reference returns log-probabilities; the losses are equivalent).
* **Open in the notes, chosen here:** where the speaker recurrence sits (on the encoder outputs, before the
  graph and the speaker embedding); that it is applied to each modality's own features with one BiGRU
  shared across modalities; its dropout between the two layers (``dropout``, like the text BiGRU);
  whether MM-DFN adds MMGCN's speaker embedding (off by default); in a dynamic-fusion layer, the order
  "graph conv -> ReLU -> dropout -> + LSTM input" and the zero initial LSTM state; the input dropout,
  ``h_0`` and the final ``dropout(h_L)`` of MMGCN's GCNII stack, kept unchanged.
* Unused reference parameters are not created, so reference checkpoints do not load as-is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..base import MercInputs, full_context_mask
from ..layers import ContextMaskedRNN, GCNIIStack, MultimodalGraphModel
from .configuration_mmdfn import MMDFNConfig


class DynamicFusionGraph(GCNIIStack):
    """MM-DFN's graph-based dynamic fusion: the GCNII stack with a 1-layer LSTM carried across the layers
    (module docstring, step 5)."""

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, alpha: float, lamda: float, dropout: float
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, alpha, lamda, dropout)
        self.fusion_lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True)

    def propagate(self, h0: torch.Tensor, adjacency: torch.Tensor, node_mask: torch.Tensor) -> torch.Tensor:
        """``h_L`` from ``h_0``: one LSTM step per layer over every node, then the GCNII layer on the LSTM
        output and the residual ``h_{l−1} + dropout(ReLU(·))``; padding nodes stay zero."""
        batch_size, num_nodes, hidden_size = h0.shape
        h = h0
        state = None
        for depth, layer in enumerate(self.layers, start=1):
            fused, state = self.fusion_lstm(h.reshape(batch_size * num_nodes, 1, hidden_size), state)
            fused = fused.reshape(batch_size, num_nodes, hidden_size)
            update = F.relu(layer(fused, adjacency, h0, self.theta(depth), self.alpha))
            h = (h + self.dropout(update)) * node_mask
        return h


class MMDFNModel(MultimodalGraphModel):
    """MM-DFN for utterance-level emotion classification (module docstring for the architecture, the exact
    equations and every deviation from the reference code): the shared MMGCN skeleton with a text BiGRU,
    the speaker recurrence (:meth:`speaker_recurrence`) and :class:`DynamicFusionGraph`. ``forward`` is
    :meth:`MercPreTrainedModel.forward`."""

    config_class = MMDFNConfig
    base_model_prefix = "mmdfn"
    _no_split_modules: ClassVar[list[str]] = ["DynamicFusionGraph"]
    text_cell: ClassVar[str] = "gru"
    graph_class: ClassVar[type[GCNIIStack]] = DynamicFusionGraph

    def __init__(self, config: MMDFNConfig) -> None:
        super().__init__(config)
        self.speaker_rnn = None
        if config.use_crn_speaker:
            self.speaker_rnn = ContextMaskedRNN(
                input_size=2 * config.D_e,
                hidden_size=config.D_e,
                num_layers=2,
                dropout=config.dropout,
                cell="gru",
            )
        self.post_init()

    def _needs_speakers(self) -> bool:
        return self.speaker_rnn is not None or super()._needs_speakers()

    def _encode_unimodal(
        self, inputs: MercInputs, names: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """The encoder outputs of ``names`` (all modalities when ``None``) after the speaker recurrence
        (module docstring, steps 1–2)."""
        return self.speaker_recurrence(super()._encode_unimodal(inputs, names), inputs)

    def _speaker_recurrence_weight(self, name: str) -> float:
        """``w_m`` of modality ``name``, 0 when the speaker recurrence is off."""
        return 0.0 if self.speaker_rnn is None else self.config.speaker_weights[name]

    def _unimodal_reads_context(self, name: str, inputs: MercInputs) -> bool:
        """The text BiGRU and the speaker recurrence of a modality with ``w_m ≠ 0`` honour the context mask;
        the speaker recurrence only sees its same-speaker part (so view "O" leaves it unchanged)."""
        if super()._unimodal_reads_context(name, inputs):
            return True
        if inputs.full_context or self._speaker_recurrence_weight(name) == 0.0:
            return False
        full = _speaker_context(full_context_mask(inputs.utterance_mask), inputs.speakers)
        return not torch.equal(_speaker_context(inputs.context_mask, inputs.speakers), full)

    def speaker_recurrence(
        self, encoded: dict[str, torch.Tensor], inputs: MercInputs
    ) -> dict[str, torch.Tensor]:
        """Step 2 of the module docstring: ``e_m + w_m · SpeakerGRU(e_m over S_i)`` for each modality of
        ``encoded``, with ``S_i`` = same speaker ∩ context of ``i``. All modalities of ``encoded`` with
        ``w_m ≠ 0`` run in one call (stacked along the batch)."""
        active = [m for m in self.modalities if m in encoded and self._speaker_recurrence_weight(m) != 0.0]
        if not active:
            return encoded
        allowed = _speaker_context(inputs.context_mask, inputs.speakers)
        copies = len(active)
        states = self.speaker_rnn(
            torch.cat([encoded[m] for m in active], dim=0),
            inputs.utterance_mask.repeat(copies, 1),
            allowed.repeat(copies, 1, 1),
        )
        out = dict(encoded)
        for name, state in zip(active, states.chunk(copies, dim=0), strict=True):
            out[name] = encoded[name] + self.config.speaker_weights[name] * state
        return out


def _speaker_context(context_mask: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
    """``S_i`` of the speaker recurrence: the part of each utterance's context spoken by its own speaker."""
    return context_mask & (speakers[:, :, None] == speakers[:, None, :])
