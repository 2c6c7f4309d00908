"""Dense, batched graph utilities for utterance graphs of padded dialogues.

Graphs are dense ``(B, T, T)`` (or ``(B, ..., T, T)``) adjacency tensors where ``adjacency[b, i, j]`` is
the weight of the edge that carries a message from utterance ``j`` to utterance ``i`` (same orientation as
a context mask). Working densely keeps every backbone free of torch-geometric and of per-dialogue Python
loops, and makes "padding never talks to real utterances" a matter of zero entries.
"""

from __future__ import annotations

import torch


def without_self_loops(adjacency: torch.Tensor) -> torch.Tensor:
    """Copy of ``adjacency`` with the diagonal of the last two dims removed (False / 0)."""
    eye = torch.eye(adjacency.shape[-1], dtype=torch.bool, device=adjacency.device)
    return adjacency.masked_fill(eye, 0)


def safe_inverse(x: torch.Tensor) -> torch.Tensor:
    """``1 / x`` with 0 where ``x == 0`` (isolated nodes and padding get no message)."""
    zero = x == 0
    return torch.where(zero, torch.zeros_like(x), 1.0 / torch.where(zero, torch.ones_like(x), x))


def safe_inverse_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``x ** -0.5`` with 0 where ``x == 0`` (the GCN-style ``inf -> 0`` convention)."""
    zero = x == 0
    return torch.where(zero, torch.zeros_like(x), torch.where(zero, torch.ones_like(x), x).rsqrt())


def row_normalize(adjacency: torch.Tensor) -> torch.Tensor:
    """``D^-1 A`` for a float adjacency: each row sums to 1 (mean aggregation); empty rows stay 0."""
    return adjacency * safe_inverse(adjacency.sum(-1, keepdim=True))


def symmetric_normalize(adjacency: torch.Tensor, degree: torch.Tensor | None = None) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` with ``D`` the row sums of ``A`` (or the given ``degree``, ``(..., T)``)."""
    if degree is None:
        degree = adjacency.sum(-1)
    inv = safe_inverse_sqrt(degree)
    return inv[..., :, None] * adjacency * inv[..., None, :]


def pairwise_scores(target_scores: torch.Tensor, source_scores: torch.Tensor) -> torch.Tensor:
    """``s_i + t_j`` as a ``(..., T, T)`` tensor from per-node ``(..., T)`` scores.

    A linear layer on the concatenation ``[x_i ‖ x_j]`` splits into a target and a source part, so an edge
    gate ``f(W [x_i ‖ x_j] + b)`` over all pairs costs two matrix-vector products instead of ``T²``
    concatenations.
    """
    return target_scores[..., :, None] + source_scores[..., None, :]


def propagate(coefficients: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum aggregation ``out_i = Σ_j c_ij x_j`` for dense ``(..., T, T)`` coefficients and ``(..., T, H)``
    node features (broadcasting over leading dims)."""
    return coefficients @ x
