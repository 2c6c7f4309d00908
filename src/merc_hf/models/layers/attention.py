"""Attention over the utterances of padded dialogues that honours a context mask.

``mask[b, i, j]`` is True when key ``j`` may inform query ``i`` (the orientation of a context mask). A
context mask from :func:`~merc_hf.models.base.resolve_context_mask` has no padding pairs and a True diagonal
for real utterances; :func:`attention_mask_with_self` also sets the diagonal of padding rows, so that every
query row has at least one allowed key (a fully masked row would give NaNs) while no real query ever reads a
padding key. With such a mask, per-layer masking removes disallowed context exactly within that layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def attention_mask_with_self(context_mask: torch.Tensor) -> torch.Tensor:
    """``(B, T, T)`` bool: ``context_mask`` with the whole diagonal set (padding rows attend to themselves
    only, real rows are unchanged since their diagonal is already True)."""
    eye = torch.eye(context_mask.shape[-1], dtype=torch.bool, device=context_mask.device)
    return context_mask.bool() | eye


def sinusoidal_positions(
    length: int, dim: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``(length, dim)`` sinusoidal position encodings of Vaswani et al. (2017):
    ``PE[t, 2i] = sin(t / 10000^(2i/dim))``, ``PE[t, 2i+1] = cos(t / 10000^(2i/dim))`` (``dim`` even)."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even dim, got {dim}")
    positions = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    frequencies = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    angles = positions * frequencies  # (length, dim / 2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(length, dim).to(dtype)


class MaskedMultiheadAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al., 2017) with a per-query key mask.

    ``forward(query (B, Tq, H), key_value (B, Tk, H), mask (B, Tq, Tk) bool)`` computes, per head ``h`` with
    ``d = H / heads``::

        a_ij = softmax_{j : mask[i, j]}((W_q x_i)_h · (W_k y_j)_h / √d)
        out_i = W_o [Σ_j a_ij (W_v y_j)_h]_{h = 1..heads}

    (all projections with bias). Every row of ``mask`` must allow at least one key
    (:func:`attention_mask_with_self`). ``dropout`` is applied to the attention weights in training.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.dropout = dropout
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:2], self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attended = F.scaled_dot_product_attention(
            self._heads(self.query(query)),
            self._heads(self.key(key_value)),
            self._heads(self.value(key_value)),
            attn_mask=mask.bool()[:, None],
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.output(attended.transpose(1, 2).reshape(*query.shape[:2], -1))
