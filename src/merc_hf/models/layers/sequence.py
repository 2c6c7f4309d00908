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

Everything is vectorised (``torch.unique`` over context rows, gathers); padding never reaches a real
utterance. With gradients the subsequences run through the ``nn.GRU``/``nn.LSTM`` modules in buckets of
similar length. Without gradients on CPU (the CMERC views) they run packed through the same recurrence
written out, with about half the work: each utterance's first-layer input projection is computed once, not once
per subsequence it appears in, and the last layer stops at the targets (see
:meth:`ContextMaskedRNN._targets_without_grad`).
"""

from __future__ import annotations

from collections.abc import Callable
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

    def encode_sequences(self, sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Run the RNN over left-aligned ``(G, L, D)`` sequences of the given lengths (>= 1).

        Returns ``(G, L, output_size)``; entries past a sequence's length are meaningless.
        """
        steps = torch.arange(sequences.shape[1], device=sequences.device)[None, :]
        # reversal within each length (an involution); positions past the length stay in place
        reverse = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
        hidden = sequences
        for layer in range(self.num_layers):
            if layer > 0:
                hidden = self.dropout(hidden)
            forward_out = self.forward_layers[layer](hidden)[0]
            if self.backward_layers is None:
                hidden = forward_out
                continue
            index = reverse[..., None].expand(-1, -1, hidden.shape[-1])
            backward_out = self.backward_layers[layer](hidden.gather(1, index))[0]
            backward_out = backward_out.gather(1, reverse[..., None].expand(-1, -1, backward_out.shape[-1]))
            hidden = torch.cat([forward_out, backward_out], dim=-1)
        return hidden

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
        # the packed recurrence is written out step by step: 1.5-16x faster than the modules on CPU, but
        # slower than cuDNN's fused kernels on a GPU (benchmarks/context_rnn.py)
        if torch.is_grad_enabled() or x.device.type != "cpu":
            targets = self._targets_by_length(x, plan)
        else:
            targets = self._targets_without_grad(x, plan)
        out[plan.target_batch, plan.target_time] = targets
        return out

    def _targets_by_length(self, x: torch.Tensor, plan: ContextSubsequences) -> torch.Tensor:
        """Each target's output ``(N, output_size)``, the subsequences run through the ``nn.GRU``/``nn.LSTM``
        modules in buckets of similar length (differentiable)."""
        targets = x.new_empty(plan.target_group.shape[0], self.output_size)
        local = torch.full_like(plan.lengths, -1)
        for groups in _length_buckets(plan.lengths):
            local[groups] = torch.arange(groups.shape[0], device=groups.device)
            longest = int(plan.lengths[groups].max())
            encoded = self.encode_sequences(
                x[plan.group_batch[groups, None], plan.positions[groups, :longest]], plan.lengths[groups]
            )
            chosen = local[plan.target_group] >= 0
            targets[chosen] = encoded[local[plan.target_group[chosen]], plan.target_position[chosen]]
            local[groups] = -1
        return targets

    def _targets_without_grad(self, x: torch.Tensor, plan: ContextSubsequences) -> torch.Tensor:
        """The same outputs as :meth:`_targets_by_length` with about half the work, for no-grad passes on
        CPU (the CMERC views): each utterance appears in many subsequences (about T/2 for view "X"), so

        * the first layer's input projection runs once per utterance, not once per position;
        * the last layer runs each direction only as far as its group's targets (forward up to the last
          target, backward down to the first): the other positions reach no output;
        * the subsequences run packed, time-major (:func:`_packed_rows`): step ``t`` touches only the
          subsequences still running, in one contiguous block, so no work is spent on padding.
        """
        lengths = plan.lengths
        groups, longest = plan.positions.shape
        steps = torch.arange(longest, device=x.device)[None, :]
        reverse = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
        first = torch.full_like(lengths, longest).scatter_reduce(
            0, plan.target_group, plan.target_position, "amin"
        )
        last = torch.zeros_like(lengths).scatter_reduce(0, plan.target_group, plan.target_position, "amax")
        # per direction: its modules, the subsequence index it reads at each step, its last layer's run lengths
        directions = [(self.forward_layers, steps.expand(groups, longest), last + 1)]
        if self.backward_layers is not None:
            directions.append((self.backward_layers, reverse, lengths - first))
        flat_x = x.reshape(-1, x.shape[-1])
        utterance = plan.group_batch[:, None] * x.shape[1] + plan.positions  # row of flat_x, (G, L)
        previous: list[tuple[torch.Tensor, torch.Tensor]] = []  # per direction: (packed outputs, row_of)
        for layer in range(self.num_layers):
            final = layer == self.num_layers - 1
            current = []
            for modules, order, truncated in directions:
                module = modules[layer]
                rows = _packed_rows(truncated if final else lengths, order)
                if layer == 0:
                    # one projection per utterance, gathered for a step's rows when the step runs (never
                    # held for all positions at once)
                    projected = F.linear(flat_x, module.weight_ih_l0, module.bias_ih_l0)
                    read = utterance[rows.group, rows.index]

                    def gates(start: int, end: int, projected=projected, read=read) -> torch.Tensor:
                        return projected.index_select(0, read[start:end])
                else:
                    # every position's own input: one large product (per step, the few rows of long
                    # subsequences' last steps would make many small, slow ones)
                    inputs = torch.cat(
                        [out.index_select(0, row_of[rows.group, rows.index]) for out, row_of in previous], -1
                    )
                    projected = F.linear(self.dropout(inputs), module.weight_ih_l0, module.bias_ih_l0)

                    def gates(start: int, end: int, projected=projected) -> torch.Tensor:
                        return projected[start:end]

                current.append((_packed_recurrence(module, gates, rows.batch_sizes), rows.row_of))
            previous = current
        return torch.cat(
            [
                out.index_select(0, row_of[plan.target_group, plan.target_position])
                for out, row_of in previous
            ],
            -1,
        )


@dataclass
class _PackedRows:
    """Time-major packed layout of one direction's subsequences (as ``nn.utils.rnn.PackedSequence``).

    Attributes:
        batch_sizes: subsequences still running at each step (non-increasing).
        group, index: ``(P,)`` the subsequence and the position in it that each packed row reads.
        row_of: ``(G, L)`` the packed row of each (subsequence, position), -1 where none runs.
    """

    batch_sizes: list[int]
    group: torch.Tensor
    index: torch.Tensor
    row_of: torch.Tensor


def _packed_rows(run_lengths: torch.Tensor, order: torch.Tensor) -> _PackedRows:
    """Pack subsequences that run ``run_lengths`` steps, step ``t`` of subsequence ``g`` reading position
    ``order[g, t]``; the longest come first, so that the ones still running at a step are a prefix."""
    groups, longest = order.shape
    by_length = torch.argsort(run_lengths, descending=True, stable=True)
    sorted_lengths = run_lengths[by_length]
    running = sorted_lengths[None, :] > torch.arange(int(sorted_lengths[0]), device=order.device)[:, None]
    step, rank = running.nonzero(as_tuple=True)  # time-major
    group = by_length[rank]
    index = order[group, step]
    row_of = torch.full((groups, longest), -1, dtype=torch.long, device=order.device)
    row_of[group, index] = torch.arange(group.shape[0], device=order.device)
    return _PackedRows(running.sum(1).tolist(), group, index, row_of)


def _packed_recurrence(
    module: nn.GRU | nn.LSTM, gates: Callable[[int, int], torch.Tensor], batch_sizes: list[int]
) -> torch.Tensor:
    """The recurrence of a single-layer ``nn.GRU``/``nn.LSTM`` over packed rows whose input projections
    ``W_ih x + b_ih`` for rows ``start:end`` are ``gates(start, end)`` ``(end - start, gates)``; returns the
    hidden states ``(P, hidden)``, with the modules' arithmetic (gate order r, z, n for the GRU and i, f, g, o
    for the LSTM; zero initial state)."""
    size = module.hidden_size
    weight, bias = module.weight_hh_l0.t(), module.bias_hh_l0
    out = weight.new_empty(sum(batch_sizes), size)
    h = weight.new_zeros(batch_sizes[0], size)
    c = torch.zeros_like(h) if isinstance(module, nn.LSTM) else None
    start = 0
    for n in batch_sizes:
        h, step_gates = h[:n], gates(start, start + n)
        recurrent = torch.addmm(bias, h, weight)
        if c is not None:
            i, f, g, o = (step_gates + recurrent).chunk(4, 1)
            c = torch.sigmoid(f) * c[:n] + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            h = gru_update(step_gates, recurrent, h)
        out[start : start + n] = h
        start += n
    return out


def gru_update(input_gates: torch.Tensor, hidden_gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The new state of a GRU cell given its input gates ``W_ih x + b_ih`` and hidden gates ``W_hh h + b_hh``
    (``(..., 3·hidden)``, order r, z, n as in ``nn.GRU``/``nn.GRUCell``) and the state ``h``, for recurrences
    that compute the input gates their own way (once per utterance, or in parts)."""
    size = h.shape[-1]
    reset_update = torch.sigmoid(input_gates[..., : 2 * size] + hidden_gates[..., : 2 * size])
    reset, update = reset_update[..., :size], reset_update[..., size:]
    candidate = torch.tanh(input_gates[..., 2 * size :] + reset * hidden_gates[..., 2 * size :])
    return candidate + update * (h - candidate)


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
