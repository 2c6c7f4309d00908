"""Baby-step curriculum over conversation difficulty (CMERC Algorithm 1, lines 1–4).

Dialogues are sorted by difficulty DF (:func:`merc_hf.calibration.cmerc.conversation_difficulty`) and
split into buckets of ``ratio`` of the training set; stage ``s`` trains on the ``s`` easiest buckets, and a
new stage begins every ``epochs_per_stage`` epochs until the whole set is in use.

Where difficulty comes from: after ``warmup_epochs`` epochs on the full training set, the *current* model
scores every training dialogue once (the reference code instead loads difficulties precomputed with a fully
trained M3Net, ``HITSZ-HLT/CMERC: caldiff/``; pass ``difficulties`` to reproduce that). With
``warmup_epochs=0`` and no difficulties given, the initial model scores them.

Deviation from the reference, for ``transformers.Trainer``: the reference iterates the active subset once
per epoch, so early epochs are short. The Trainer needs a fixed number of batches per epoch for gradient
accumulation, learning-rate schedules and exact resumption, so here every epoch draws ``len(train)``
dialogues from the active subset (reshuffled passes over it). Every epoch therefore has the same number of
optimisation steps as without curriculum.

The schedule is resumable: the sampler is a pure function of (seed, epoch, difficulties), and the
difficulties are saved in every checkpoint (``curriculum.json``) and restored on resume.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

STATE_FILE = "curriculum.json"


class CurriculumSampler(Sampler[int]):
    """Yields ``n`` dataset indices per epoch, drawn from the curriculum stage of that epoch."""

    def __init__(
        self, n: int, ratio: float, epochs_per_stage: int = 1, warmup_epochs: int = 0, seed: int = 0
    ) -> None:
        if n <= 0:
            raise ValueError("the curriculum needs a non-empty training set")
        self.n = n
        self.ratio = ratio
        self.epochs_per_stage = max(1, epochs_per_stage)
        self.warmup_epochs = max(0, warmup_epochs)
        self.seed = seed
        self.epoch = 0
        self.difficulties: list[float] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def stage(self, epoch: int) -> int:
        """1-based curriculum stage of ``epoch``; 0 during warm-up (full training set)."""
        if epoch < self.warmup_epochs or self.difficulties is None:
            return 0
        return (epoch - self.warmup_epochs) // self.epochs_per_stage + 1

    def active_indices(self, epoch: int) -> list[int]:
        """Dataset indices in use at ``epoch``: the easiest ``min(1, ratio·stage)`` share of dialogues."""
        stage = self.stage(epoch)
        if stage == 0:
            return list(range(self.n))
        k = max(1, math.ceil(min(1.0, self.ratio * stage) * self.n))
        order = sorted(range(self.n), key=lambda i: (self.difficulties[i], i))
        return sorted(order[:k])

    def __iter__(self) -> Iterator[int]:
        active = torch.tensor(self.active_indices(self.epoch))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        passes = [
            active[torch.randperm(len(active), generator=generator)]
            for _ in range(math.ceil(self.n / len(active)))
        ]
        yield from torch.cat(passes)[: self.n].tolist()

    def __len__(self) -> int:
        return self.n

    def save(self, directory: str | os.PathLike) -> None:
        with open(os.path.join(directory, STATE_FILE), "w") as fh:
            json.dump({"difficulties": self.difficulties, "ratio": self.ratio, "seed": self.seed}, fh)

    def load(self, directory: str | os.PathLike) -> bool:
        path = os.path.join(directory, STATE_FILE)
        if not os.path.isfile(path):
            return False
        with open(path) as fh:
            self.difficulties = json.load(fh)["difficulties"]
        return True

    def set_difficulties(self, difficulties: Sequence[float]) -> None:
        if len(difficulties) != self.n:
            raise ValueError(f"expected {self.n} difficulties, got {len(difficulties)}")
        self.difficulties = [float(d) for d in difficulties]
