"""DialogueRNN: global, party and emotion GRU states over a conversation.

Majumder et al., "DialogueRNN: An Attentive RNN for Emotion Detection in Conversations", AAAI 2019;
reference code ``declare-lab/conv-emotion: DialogueRNN/model.py`` (``DialogueRNNCell`` L80–155,
``MatchingAttention`` L24–77, ``BiModel`` L193–263). This is an independent batched re-implementation of
the bidirectional model with emotion-level attention (``BiModel`` with ``att2``).

Architecture (one dialogue, utterances ``t = 1..n`` with per-dialogue speaker index ``s(t)`` ∈ [0, S)):

1. Input ``u_t`` (``D_m``): the features of the configured modalities concatenated (the reference reads
   text, or text ‖ audio for its MELD "multimodal" setting).
2. One direction (``DialogueRNNRecurrence``), with ``g_0 = 0``, ``q_{k,0} = 0`` for every party ``k``,
   ``e_0 = 0`` and ``δ`` = dropout ``rec_dropout`` applied to each cell output (the carried state)::

       g_t     = δ(GRU_G([u_t ‖ q_{s(t),t−1}], g_{t−1}))                         (D_g)
       c_t     = Σ_{τ<t} softmax_τ(score(u_t, g_τ)) g_τ,   c_1 = 0                 (D_g)
       q_{s(t),t} = δ(GRU_P([u_t ‖ c_t], q_{s(t),t−1}))                           (D_p)
       q_{k,t} = q_{k,t−1} for every listener k ≠ s(t)
               (active listener: q_{k,t} = δ(GRU_L([u_t ‖ q_{s(t),t}], q_{k,t−1})))
       e_t     = δ(GRU_E(q_{s(t),t}, e_{t−1}))                                      (D_e)

   with the "general" score ``score(u, g) = (W_c u) · g`` (no bias) of the reference's default
   ``--attention general``; the other reference types are available (``"general2"``: ``(W_c u + b) · g``,
   ``"dot"``: ``u · g``, ``"concat"``: ``v · tanh(W_a [g ‖ u])`` with ``D_a`` units, ``"simple"``:
   ``w · g``; see :class:`DialogueRNNMatchingAttention`).
3. A forward direction over ``u_1..u_n`` and a second direction, with its own parameters, over the reversed
   real sequence ``u_n..u_1`` (speakers reversed with it); its outputs are reversed back and
   ``e_t = dropout'([e→_t ‖ e←_t])`` (``2·D_e``, dropout' = ``emotion_dropout``, the reference's
   ``dropout + 0.15``).
4. Emotion-level "general2" attention over the real utterances of the dialogue (``emotion_attention``)::

       ẽ_t = Σ_τ softmax_τ((W_e e_t + b_e) · e_τ) e_τ

5. ``h_t = ReLU(W_h ẽ_t + b_h)`` (``2·D_h``) = ``utterance_repr``; ``logits_t = W_o dropout(h_t) + b_o``.

Context masks (see :mod:`merc_hf.models.base`): removal is **exact for any mask** (full context, "O", "X",
or any other), like :class:`~merc_hf.models.layers.ContextMaskedRNN`. The output for target ``i`` is what
the model above computes on the subsequence ``S_i = {j : context_mask[i, j]}`` only (time order and speaker
indices kept): both directions run over ``S_i`` and the emotion attention of ``i`` ranges over ``S_i``.
Targets with the same ``S_i`` share one run (:func:`~merc_hf.models.layers.context_subsequences`): one
group per dialogue for full context (an ordinary pass), one per speaker of a dialogue for view "O", up to
one per utterance for view "X". All groups run through **one** step loop per direction, vectorised over
groups: they are sorted by length, so the groups still running at step ``t`` are a prefix of the batch and
every step works on that prefix only (a finished group leaves the batch, as with packed sequences; padding
is never read). Party states are ``(groups, S, D_p)`` tensors updated with a gather of the speaker's row and
a ``where`` over the speaker index, without any loop over dialogues. The concatenated modalities feed the
context-reading recurrences directly, so there is no per-modality stage that removal views could share:
they run as full forward passes (:func:`merc_hf.calibration.views.removal_view_logits`).

Deviations from the reference code:

* **Context masking** of both recurrences and of the emotion attention (the reference has none).
* **Speakers of the backward direction.** The current reference reverses the speaker mask together with
  the utterances, as here; some earlier versions of ``BiModel.forward`` passed the unreversed speaker mask
  to the backward model.
* **Ended dialogues leave the batch.** The reference steps every dialogue of a time-major batch to the
  longest length and discards the states computed at padding; here those steps are not computed. Outputs
  at real utterances are the same.
* **Multimodal input** by concatenation of any configured modalities (see
  :class:`~merc_hf.models.dialoguernn.DialogueRNNConfig`).
* **``emotion_dropout``** is a config field (default: the reference's ``dropout + 0.15``); one dropout mask
  over ``[e→ ‖ e←]`` instead of one per direction, which is the same distribution.
* **Outputs** are logits (the reference returns log-softmax; the losses are equivalent) and the loss is the
  shared one of :class:`~merc_hf.models.base.MercPreTrainedModel` (class-weighted CE normalised by the sum of
  the weights, as the reference's ``MaskedNLLLoss``).
* Batched gathers instead of the reference's per-dialogue ``_select_parties`` loop; no ``.cuda()``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..base import MercInputs, MercPreTrainedModel
from ..dialoguegcn.modeling_dialoguegcn import masked_softmax
from ..layers import context_subsequences
from ..layers.sequence import gru_update
from .configuration_dialoguernn import DialogueRNNConfig


class DialogueRNNMatchingAttention(nn.Module):
    """Attention of queries over a memory (the reference's ``MatchingAttention`` and ``SimpleAttention``,
    ``declare-lab/conv-emotion: DialogueRNN/model.py (L6–77)``). Scores of query ``x`` and memory entry ``m``:

    * ``"simple"``: ``w · m`` (independent of the query);
    * ``"dot"``: ``x · m`` (needs ``memory_size == query_size``);
    * ``"general"``: ``(W x) · m``; ``"general2"``: ``(W x + b) · m``;
    * ``"concat"``: ``v · tanh(W [m ‖ x])`` with ``alpha_size`` hidden units.

    The weights are the softmax of the scores over the memory entries allowed by ``mask`` (all when
    ``None``); the result is the weighted sum of the memory.
    """

    def __init__(
        self, memory_size: int, query_size: int, kind: str = "general", alpha_size: int = 100
    ) -> None:
        super().__init__()
        self.kind = kind
        self.memory_size = memory_size
        if kind == "simple":
            self.scorer = nn.Linear(memory_size, 1, bias=False)
        elif kind in ("general", "general2"):
            self.transform = nn.Linear(query_size, memory_size, bias=kind == "general2")
        elif kind == "concat":
            self.transform = nn.Linear(memory_size + query_size, alpha_size, bias=False)
            self.vector = nn.Linear(alpha_size, 1, bias=False)
        elif kind != "dot":
            raise ValueError(f"unknown attention type {kind!r}")
        elif memory_size != query_size:
            raise ValueError(
                f"'dot' attention needs memory_size == query_size, got {memory_size}, {query_size}"
            )

    def project_query(self, query: torch.Tensor) -> torch.Tensor:
        """The part of the scores that depends on the query alone (``W x (+ b)``, or the query's share of the
        "concat" transform; the query itself for "dot" and "simple"). ``forward(..., projected=True)`` takes
        it instead of the query, so that a query used at many steps is projected once."""
        if self.kind == "concat":
            return F.linear(query, self.transform.weight[:, self.memory_size :])
        if self.kind in ("general", "general2"):
            return self.transform(query)
        return query

    def scores(self, memory: torch.Tensor, query: torch.Tensor, projected: bool = False) -> torch.Tensor:
        """``memory`` ``(N, M, D_mem)``, ``query`` ``(N, Q, D_query)`` (or its :meth:`project_query` when
        ``projected``); returns ``(N, Q, M)``."""
        if self.kind == "simple":
            return self.scorer(memory).transpose(1, 2).expand(-1, query.shape[1], -1)
        if not projected:
            query = self.project_query(query)
        if self.kind == "concat":
            from_memory = F.linear(memory, self.transform.weight[:, : self.memory_size])  # (N, M, A)
            return self.vector(torch.tanh(from_memory[:, None] + query[:, :, None])).squeeze(-1)
        return query @ memory.transpose(1, 2)

    def forward(
        self,
        memory: torch.Tensor,
        query: torch.Tensor,
        mask: torch.Tensor | None = None,
        projected: bool = False,
    ) -> torch.Tensor:
        """``memory`` ``(N, M, D_mem)``, ``query`` ``(N, Q, D_query)`` (its :meth:`project_query` when
        ``projected``), ``mask`` bool broadcastable to ``(N, Q, M)`` or ``None``; returns ``(N, Q, D_mem)``.
        Rows without an allowed entry are 0."""
        scores = self.scores(memory, query, projected)
        weights = torch.softmax(scores, dim=-1) if mask is None else masked_softmax(scores, mask)
        return weights @ memory


class DialogueRNNRecurrence(nn.Module):
    """One direction of DialogueRNN (module docstring, step 2) over a batch of left-aligned sequences.

    ``forward(x (G, L, D_m), speakers (G, L), lengths (G,))`` returns the emotion states ``(G, L, D_e)``
    (zero past each length). One step loop serves all sequences: they are sorted by length, and step ``t``
    only computes the prefix of sequences longer than ``t``.
    """

    def __init__(self, input_size: int, config: DialogueRNNConfig) -> None:
        super().__init__()
        self.n_speakers = config.n_speakers
        self.D_g, self.D_p, self.D_e = config.D_g, config.D_p, config.D_e
        self.global_cell = nn.GRUCell(input_size + config.D_p, config.D_g)
        self.party_cell = nn.GRUCell(input_size + config.D_g, config.D_p)
        self.listener_cell = (
            nn.GRUCell(input_size + config.D_p, config.D_p) if config.active_listener else None
        )
        self.emotion_cell = nn.GRUCell(config.D_p, config.D_e)
        self.attention = DialogueRNNMatchingAttention(
            config.D_g, input_size, config.context_attention, config.D_a
        )
        self.dropout = nn.Dropout(config.rec_dropout)

    def _merc_init_weights(self) -> None:
        """PyTorch's ``GRUCell`` default, U(±1/√hidden), as the reference trains from."""
        for cell in (self.global_cell, self.party_cell, self.listener_cell, self.emotion_cell):
            if cell is None:
                continue
            bound = 1.0 / math.sqrt(cell.hidden_size)
            for param in cell.parameters():
                init.uniform_(param, -bound, bound)

    def project_utterances(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every use of the utterance ``u_t`` that does not depend on the states, computed once per utterance
        (``x`` ``(..., D_m)``): its share ``W_ih[:, :D_m] u`` of the input gates of the G, P (and L) cells and
        the attention's query projection. The step loop then only adds the state-dependent parts, so a
        recurrence over long or many (context-subsequence) sequences does not re-project the wide ``u``."""
        cells = {"global": self.global_cell, "party": self.party_cell, "listener": self.listener_cell}
        projected = {
            name: F.linear(x, cell.weight_ih[:, : x.shape[-1]])
            for name, cell in cells.items()
            if cell is not None
        }
        projected["query"] = self.attention.project_query(x)
        return projected

    @staticmethod
    def _gru_cell(
        cell: nn.GRUCell, u_gates: torch.Tensor, rest: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        """``cell([u ‖ rest], h)`` given ``u_gates`` = ``W_ih[:, :D_m] u`` (``nn.GRUCell``'s equations)."""
        gates_in = u_gates + F.linear(rest, cell.weight_ih[:, -rest.shape[-1] :], cell.bias_ih)
        return gru_update(gates_in, F.linear(h, cell.weight_hh, cell.bias_hh), h)

    def step(
        self,
        u: dict[str, torch.Tensor],
        speaker: torch.Tensor,
        g: torch.Tensor,
        q: torch.Tensor,
        e: torch.Tensor,
        memory: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One time step for ``n`` sequences: ``u`` the :meth:`project_utterances` of ``u_t`` (each
        ``(n, ·)``), ``speaker`` ``(n,)``, previous states ``g`` ``(n, D_g)``, ``q`` ``(n, S, D_p)``, ``e``
        ``(n, D_e)`` and ``memory`` = ``g_1..g_{t−1}`` ``(n, t−1, D_g)``. Returns the new ``(g, q, e)``."""
        rows = torch.arange(speaker.shape[0], device=speaker.device)
        speaker_state = q[rows, speaker]
        g = self.dropout(self._gru_cell(self.global_cell, u["global"], speaker_state, g))
        if memory.shape[1] == 0:
            context = g.new_zeros(g.shape[0], self.D_g)
        else:
            context = self.attention(memory, u["query"][:, None], projected=True)[:, 0]
        speaker_state = self.dropout(self._gru_cell(self.party_cell, u["party"], context, speaker_state))
        if self.listener_cell is None:
            listeners = q
        else:
            n, parties, _ = q.shape
            heard = u["listener"][:, None].expand(-1, parties, -1).reshape(n * parties, -1)
            said = speaker_state[:, None].expand(-1, parties, -1).reshape(n * parties, -1)
            listeners = self._gru_cell(self.listener_cell, heard, said, q.reshape(n * parties, -1))
            listeners = self.dropout(listeners).view(n, parties, -1)
        is_speaker = torch.arange(q.shape[1], device=q.device)[None, :] == speaker[:, None]
        q = torch.where(is_speaker[..., None], speaker_state[:, None], listeners)
        e = self.dropout(self.emotion_cell(speaker_state, e))
        return g, q, e

    def forward(
        self, u: dict[str, torch.Tensor], index: torch.Tensor, speakers: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """The emotion states ``(G, L, D_e)`` (zero past each length) of ``G`` sequences whose position ``t``
        is utterance ``index[g, t]`` of ``u`` (:meth:`project_utterances` of ``N`` utterances, each
        ``(N, ·)``), spoken by ``speakers[g, t]``; ``lengths`` ``(G,)``."""
        groups, length = index.shape
        order = torch.argsort(lengths, descending=True, stable=True)
        index, speakers = index[order], speakers[order]
        steps = torch.arange(length, device=index.device)
        running = (lengths[order][None, :] > steps[:, None]).sum(1).tolist()  # sequences alive at each step
        template = u["global"]
        g = template.new_zeros(groups, self.D_g)
        q = template.new_zeros(groups, self.n_speakers, self.D_p)
        e = template.new_zeros(groups, self.D_e)
        memory = template.new_zeros(groups, 0, self.D_g)
        outputs = []
        for t, n in enumerate(running):
            if n == 0:
                break
            g, q, e, memory = g[:n], q[:n], e[:n], memory[:n]
            rows = index[:n, t]
            g, q, e = self.step({k: v[rows] for k, v in u.items()}, speakers[:n, t], g, q, e, memory)
            memory = torch.cat([memory, g[:, None]], dim=1)
            outputs.append(F.pad(e, (0, 0, 0, groups - n)))
        emotions = torch.stack(outputs, dim=1) if outputs else template.new_zeros(groups, 0, self.D_e)
        emotions = F.pad(emotions, (0, 0, 0, length - emotions.shape[1]))
        return emotions[torch.argsort(order)]


class DialogueRNNModel(MercPreTrainedModel):
    """DialogueRNN (bidirectional, with emotion attention) for utterance-level emotion classification
    (module docstring for the equations, the exact context removal and every deviation from the reference
    code). ``forward`` is :meth:`MercPreTrainedModel.forward`; ``utterance_repr`` is ``h_t``, the ``2·D_h``
    ReLU layer before the classifier's dropout."""

    config_class = DialogueRNNConfig
    base_model_prefix = "dialoguernn"
    _no_split_modules: ClassVar[list[str]] = ["DialogueRNNRecurrence"]

    def __init__(self, config: DialogueRNNConfig) -> None:
        super().__init__(config)
        self.modalities = config.modalities
        width = 2 * config.D_e
        self.forward_rnn = DialogueRNNRecurrence(config.input_size, config)
        self.backward_rnn = DialogueRNNRecurrence(config.input_size, config)
        self.emotion_dropout = nn.Dropout(config.emotion_dropout)
        self.emotion_attention = (
            DialogueRNNMatchingAttention(width, width, "general2") if config.emotion_attention else None
        )
        self.hidden = nn.Linear(width, 2 * config.D_h)
        self.classifier_dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * config.D_h, config.num_labels)
        self.post_init()

    def _needs_speakers(self) -> bool:
        return True

    def encode_sequences(
        self, x: torch.Tensor, index: torch.Tensor, speakers: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """``ẽ`` (module docstring, steps 2–4) of left-aligned sequences of utterances, each on its own:
        position ``t`` of sequence ``g`` is utterance ``index[g, t]`` of ``x`` ``(N, D_m)``, spoken by
        ``speakers[g, t]``; ``lengths`` ``(G,)``. The utterances are projected once, however many
        sequences they appear in. Returns ``(G, L, 2·D_e)``; entries past a sequence's length are
        meaningless."""
        steps = torch.arange(index.shape[1], device=index.device)[None, :]
        valid = steps < lengths[:, None]
        # reversal within each length (an involution); positions past the length stay in place
        reverse = torch.where(valid, lengths[:, None] - 1 - steps, steps)
        forward = self.forward_rnn(self.forward_rnn.project_utterances(x), index, speakers, lengths)
        backward = self.backward_rnn(
            self.backward_rnn.project_utterances(x),
            index.gather(1, reverse),
            speakers.gather(1, reverse),
            lengths,
        )
        backward = backward.gather(1, reverse[..., None].expand_as(backward))
        emotions = self.emotion_dropout(torch.cat([forward, backward], dim=-1))
        if self.emotion_attention is None:
            return emotions
        return self.emotion_attention(emotions, emotions, valid[:, None, :])

    def _encode(self, inputs: MercInputs) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([inputs.features[m] for m in self.modalities], dim=-1)
        utterance_mask = inputs.utterance_mask
        batch_size, length = utterance_mask.shape
        flat = x.reshape(batch_size * length, -1)
        if inputs.full_context:
            index = torch.arange(batch_size * length, device=x.device).view(batch_size, length)
            attended = self.encode_sequences(flat, index, inputs.speakers, utterance_mask.sum(1))
        else:
            attended = x.new_zeros(batch_size, length, 2 * self.config.D_e)
            if bool(utterance_mask.any()):
                plan = context_subsequences(inputs.context_mask, utterance_mask)
                rows = plan.group_batch[:, None]
                groups = self.encode_sequences(
                    flat,
                    rows * length + plan.positions,
                    inputs.speakers[rows, plan.positions],
                    plan.lengths,
                )
                attended[plan.target_batch, plan.target_time] = groups[
                    plan.target_group, plan.target_position
                ]
        utterance_repr = F.relu(self.hidden(attended))
        logits = self.classifier(self.classifier_dropout(utterance_repr))
        return utterance_repr, logits
