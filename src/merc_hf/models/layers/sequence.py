"""Recurrent utterance encoders that honour a context mask exactly.

A (bi)directional RNN over a dialogue propagates context between utterances, so it must honour
``context_mask`` like any graph layer. :class:`ContextMaskedRNN` does this exactly, for any mask: the
output for target utterance ``i`` is the RNN output at ``i`` when the RNN runs over the subsequence
``S_i = {j : context_mask[i, j]}`` (time order kept, ``i`` always included). Targets with identical
``S_i`` share one run, so the cost is one RNN pass per distinct context row:

* full context: one sequence per dialogue (an ordinary RNN over the batch);
* view "O" (same speaker only): one sequence per speaker of each dialogue;
* view "X" (other speakers plus self): up to one sequence per utterance, i.e. ``T`` times the work of the
  full-context pass (exact, but the expensive case).

Everything is vectorised (``torch.unique`` over context rows, gathers, one RNN call per layer and
direction); padding never reaches a real utterance. Running a view-"X" pass under ``torch.no_grad`` (as
CMERC does for its context-masked models) keeps the extra cost small; with gradients on CPU it is large.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ContextSubsequences:
    """Index plan for running an RNN over each distinct context subsequence.

    Attributes:
        group_batch: ``(G,)`` dialogue of each group.
        positions: ``(G, L)`` time indices of each group's subsequence (valid up to ``lengths``).
        lengths: ``(G,)`` subsequence lengths (>= 1).
        target_batch, target_time: ``(N,)`` the real utterances (targets).
        target_group: ``(N,)`` group of each target.
        target_position: ``(N,)`` position of each target inside its group's subsequence.
    """

    group_batch: torch.Tensor
    positions: torch.Tensor
    lengths: torch.Tensor
    target_batch: torch.Tensor
    target_time: torch.Tensor
    target_group: torch.Tensor
    target_position: torch.Tensor


def context_subsequences(context_mask: torch.Tensor, utterance_mask: torch.Tensor) -> ContextSubsequences:
    """Group the real utterances of a batch by their context row and index the subsequences.

    ``context_mask`` ``(B, T, T)`` must already exclude padding; the diagonal is forced True.
    """
    length = utterance_mask.shape[1]
    device = utterance_mask.device
    eye = torch.eye(length, dtype=torch.bool, device=device)
    target_batch, target_time = utterance_mask.bool().nonzero(as_tuple=True)
    rows = context_mask.bool()[target_batch, target_time] | eye[target_time]  # (N, T)
    key = torch.cat([target_batch[:, None], rows.long()], dim=1)
    unique_keys, target_group = torch.unique(key, dim=0, return_inverse=True)
    group_batch = unique_keys[:, 0]
    group_rows = unique_keys[:, 1:].bool()
    lengths = group_rows.sum(1)
    # stable sort of "not in context" puts the context positions first, in time order
    order = torch.sort((~group_rows).to(torch.uint8), dim=1, stable=True).indices
    max_len = int(lengths.max())
    before_or_self = torch.arange(length, device=device)[None, :] <= target_time[:, None]
    target_position = (rows & before_or_self).sum(1) - 1
    return ContextSubsequences(
        group_batch=group_batch,
        positions=order[:, :max_len],
        lengths=lengths,
        target_batch=target_batch,
        target_time=target_time,
        target_group=target_group,
        target_position=target_position,
    )


class ContextMaskedRNN(nn.Module):
    """A multi-layer (bi)directional GRU/LSTM over utterances that honours a context mask exactly.

    Mathematically the same network as ``nn.GRU``/``nn.LSTM(input_size, hidden_size, num_layers,
    bidirectional=..., dropout=...)`` (dropout between layers, outputs of both directions concatenated),
    built from single-layer unidirectional modules so that variable-length sequences run *unpacked*: the
    forward direction reads each sequence left-aligned, the backward direction reads it reversed within its
    length, and positions past a sequence's length are never read by a valid position. (PyTorch's packed-
    sequence autograd on CPU slices the packed batch per time step and is an order of magnitude slower.)

    ``forward(x (B, T, D), utterance_mask (B, T), context_mask (B, T, T) or None)`` returns
    ``(B, T, output_size)``, zero at padding. ``context_mask=None`` means full context among real
    utterances. See the module docstring for the cost of non-equivalence masks such as view "X".
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        cell: str = "gru",
    ) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        rnn_class = nn.GRU if cell == "gru" else nn.LSTM
        directions = 2 if bidirectional else 1
        sizes = [input_size] + [hidden_size * directions] * (num_layers - 1)
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.output_size = hidden_size * directions
        self.forward_layers = nn.ModuleList(
            [rnn_class(size, hidden_size, batch_first=True) for size in sizes]
        )
        self.backward_layers = (
            nn.ModuleList([rnn_class(size, hidden_size, batch_first=True) for size in sizes])
            if bidirectional
            else None
        )
        self.dropout = nn.Dropout(dropout)

    def encode_sequences(
        self, sequences: torch.Tensor, lengths: torch.Tensor, projected: bool = False
    ) -> torch.Tensor:
        """Run the RNN over left-aligned ``(G, L, D)`` sequences of the given lengths (>= 1).

        ``projected``: ``sequences`` hold :meth:`project_inputs` of the inputs instead of the inputs.
        Returns ``(G, L, output_size)``; entries past a sequence's length are meaningless.
        """
        steps = torch.arange(sequences.shape[1], device=sequences.device)[None, :]
        # reversal within each length (an involution); positions past the length stay in place
        reverse = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
        hidden = sequences
        for layer in range(self.num_layers):
            if layer > 0:
                hidden = self.dropout(hidden)
            first_projected = projected and layer == 0
            forward_in = hidden[..., : self._gates] if first_projected else hidden
            forward_out = self._run(self.forward_layers[layer], forward_in, first_projected)
            if self.backward_layers is None:
                hidden = forward_out
                continue
            backward_in = hidden[..., self._gates :] if first_projected else hidden
            index = reverse[..., None].expand(-1, -1, backward_in.shape[-1])
            backward_out = self._run(
                self.backward_layers[layer], backward_in.gather(1, index), first_projected
            )
            backward_out = backward_out.gather(1, reverse[..., None].expand(-1, -1, backward_out.shape[-1]))
            hidden = torch.cat([forward_out, backward_out], dim=-1)
        return hidden

    @property
    def _gates(self) -> int:
        """Size of one direction's input projection (3 or 4 gates × hidden size)."""
        return self.forward_layers[0].weight_ih_l0.shape[0]

    def project_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """The first layer's input projections ``W_ih x + b_ih`` of both directions, ``(..., 2·gates)`` (one
        direction: ``gates``), for :meth:`encode_sequences` with ``projected=True``."""
        layers = [self.forward_layers[0]] + (
            [self.backward_layers[0]] if self.backward_layers is not None else []
        )
        return torch.cat([F.linear(x, layer.weight_ih_l0, layer.bias_ih_l0) for layer in layers], dim=-1)

    @staticmethod
    def _run(rnn: nn.GRU | nn.LSTM, x: torch.Tensor, projected: bool) -> torch.Tensor:
        """One single-layer module over ``x``; when ``projected``, ``x`` already holds its input projection
        and the module's own recurrence runs with an identity input weight (the same arithmetic as
        ``nn.GRU``/``nn.LSTM``, through the kernel they call, since the modules check the input size)."""
        if not projected:
            return rnn(x)[0]
        gates = rnn.weight_ih_l0.shape[0]
        identity = torch.eye(gates, dtype=x.dtype, device=x.device)
        weights = [identity, rnn.weight_hh_l0, torch.zeros_like(rnn.bias_ih_l0), rnn.bias_hh_l0]
        h0 = x.new_zeros(1, x.shape[0], rnn.hidden_size)
        with warnings.catch_warnings():
            # cuDNN copies these four small tensors into one buffer per call and warns that they are not one
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
            if isinstance(rnn, nn.LSTM):
                return torch._VF.lstm(x, (h0, h0), weights, True, 1, 0.0, rnn.training, False, True)[0]
            return torch._VF.gru(x, h0, weights, True, 1, 0.0, rnn.training, False, True)[0]

    def forward(
        self, x: torch.Tensor, utterance_mask: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch_size, length = utterance_mask.shape
        utterance_mask = utterance_mask.bool()
        if context_mask is None:
            encoded = self.encode_sequences(x, utterance_mask.sum(1).clamp_min(1))
            return encoded.masked_fill(~utterance_mask[..., None], 0.0)
        out = x.new_zeros(batch_size, length, self.output_size)
        if not bool(utterance_mask.any()):
            return out
        plan = context_subsequences(context_mask, utterance_mask)
        # Each utterance appears in many subsequences (about T/2 each for view "X"). When the first layer's
        # input is wider than its gates, project every utterance once and run the subsequences on the
        # projections: the same result without re-projecting (and gathering) the wide input per position.
        projected = bool(plan.lengths.sum() > utterance_mask.sum()) and x.shape[-1] > self._gates
        if projected:
            x = self.project_inputs(x)
        targets = x.new_empty(plan.target_group.shape[0], self.output_size)
        local = torch.full_like(plan.lengths, -1)
        for groups in _length_buckets(plan.lengths):
            local[groups] = torch.arange(groups.shape[0], device=groups.device)
            longest = int(plan.lengths[groups].max())
            encoded = self.encode_sequences(
                x[plan.group_batch[groups, None], plan.positions[groups, :longest]],
                plan.lengths[groups],
                projected,
            )
            chosen = local[plan.target_group] >= 0
            targets[chosen] = encoded[local[plan.target_group[chosen]], plan.target_position[chosen]]
            local[groups] = -1
        out[plan.target_batch, plan.target_time] = targets
        return out


def _length_buckets(lengths: torch.Tensor, ratio: float = 1.5) -> list[torch.Tensor]:
    """Split subsequence groups into buckets whose longest member is at most ``ratio`` × the shortest.

    The subsequences of one call can be very unequal (the whole dialogue for the full-context rows of a
    stacked CMERC batch, half of it for view "X"); padding them all to the longest would multiply the RNN
    work, so each bucket runs with its own padded length.
    """
    order = torch.argsort(lengths, stable=True)
    sorted_lengths = lengths[order].tolist()
    buckets, start = [], 0
    for i, n in enumerate(sorted_lengths):
        if n > ratio * sorted_lengths[start]:
            buckets.append(order[start:i])
            start = i
    buckets.append(order[start:])
    return buckets
