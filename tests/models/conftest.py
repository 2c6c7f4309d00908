"""Fixtures for the model tests: small random MERC batches that follow the collator contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch

BatchFactory = Callable[..., dict[str, torch.Tensor]]


def random_batch(
    lengths: Sequence[int],
    dims: dict[str, int | None],
    n_speakers: int = 2,
    num_labels: int = 6,
    max_len: int | None = None,
    speakers: Sequence[Sequence[int]] | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A padded batch with the collator's keys: features for the modalities with a dim, ``speakers``
    (relabelled by order of first appearance), ``utterance_mask``, ``labels`` (-100 at padding) and
    ``same_speaker``. Padded feature rows are random (not zero), to catch padding leaks."""
    generator = torch.Generator().manual_seed(seed)
    batch_size = len(lengths)
    length = max_len or max(lengths)
    utterance_mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    batch: dict[str, torch.Tensor] = {}
    for name, dim in dims.items():
        if dim is not None:
            batch[name] = torch.randn(batch_size, length, dim, generator=generator)
    if speakers is None:
        raw = torch.randint(0, n_speakers, (batch_size, length), generator=generator)
    else:
        raw = torch.zeros(batch_size, length, dtype=torch.long)
        for b, row in enumerate(speakers):
            raw[b, : len(row)] = torch.tensor(row)
    spk = torch.zeros(batch_size, length, dtype=torch.long)
    for b, n in enumerate(lengths):
        order: dict[int, int] = {}
        for t in range(n):
            spk[b, t] = order.setdefault(int(raw[b, t]), len(order))
    labels = torch.randint(0, num_labels, (batch_size, length), generator=generator)
    batch["speakers"] = spk
    batch["utterance_mask"] = utterance_mask
    batch["labels"] = labels.masked_fill(~utterance_mask, -100)
    batch["same_speaker"] = (
        (spk[:, :, None] == spk[:, None, :]) & utterance_mask[:, :, None] & utterance_mask[:, None, :]
    )
    return batch


@pytest.fixture
def make_batch() -> BatchFactory:
    """``make_batch(lengths, dims, ...)``: see :func:`random_batch`."""
    return random_batch
