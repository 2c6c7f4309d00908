"""Baby-step curriculum over conversation difficulty (CMERC Algorithm 1, lines 1–4).

As in the reference code (``HITSZ-HLT/CMERC: train_cm.py``, ``dataloader.py``): dialogues are sorted by
difficulty DF (:func:`merc_hf.calibration.cmerc.conversation_difficulty`), and epoch ``e`` (from 0) trains on
the easiest ``min(1, ratio · (⌊e / epochs_per_stage⌋ + 1))`` share of them, **once each, without
replacement**: early epochs are short, and from the stage where the share reaches 1 every epoch is a
full pass. The active dialogues are shuffled with a generator seeded by (seed, epoch) (the reference
resets its seed every epoch).

Difficulty is data: a list aligned with the training set, measured once with a trained model (the
reference's offline ``caldiff`` step; :meth:`merc_hf.training.MercTrainer.warmup_difficulties`) or read
from a file. The sampler never measures anything. It is a pure function of (seed, epoch, difficulties),
and the difficulties are saved in every checkpoint (``curriculum.json``), so a resumed run replays the
same schedule.

``transformers.Trainer`` sizes its epoch loop by ``len(sampler)``, the full training set; a short epoch
simply ends early. :meth:`batches_before` lets the trainer map a global step back to (epoch, step) on
resume, and :meth:`total_batches` sizes the learning-rate schedule.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Sampler

from ..data.errors import DataFormatError

STATE_FILE = "curriculum.json"
logger = logging.getLogger(__name__)


def load_difficulties(path: str | os.PathLike) -> dict[str, float]:
    """``{dialogue_id: DF}`` from a file: the JSON written by ``merc-measure-difficulty`` /
    :meth:`~merc_hf.training.MercTrainer.warmup_difficulties`, or a pickle holding a dict dialogue id →
    float such as the reference's published ``caldiff/IEMOCAP_diff.pkl`` (read with the restricted
    unpickler, :mod:`merc_hf.data.safe_pickle`). Ids become strings (the reference's MELD ids are ints)."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            table: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFormatError("file not found", file=path) from None
        except (ValueError, RecursionError) as exc:
            raise DataFormatError(f"not valid JSON ({exc})", file=path) from None
    else:
        from ..data.safe_pickle import load_pickle

        table = load_pickle(path)
    if not isinstance(table, Mapping) or not table:
        raise DataFormatError("expected a non-empty mapping of dialogue id to difficulty", file=path)
    difficulties: dict[str, float] = {}
    for key, value in table.items():
        if isinstance(key, bool) or not isinstance(key, (str, numbers.Integral)):
            raise DataFormatError(f"dialogue ids must be strings or integers, got {key!r}", file=path)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise DataFormatError(
                f"difficulty must be a finite number, got {value!r}", file=path, dialogue=key
            )
        if str(key) in difficulties:
            raise DataFormatError("two keys name the same dialogue id", file=path, dialogue=key)
        difficulties[str(key)] = float(value)
    return difficulties


def training_difficulties(
    difficulties: Mapping[str, float], splits: Mapping[str, Sequence[str]], source: str | os.PathLike
) -> dict[str, float]:
    """The difficulties of the training dialogues, checked against every split's dialogue ids.

    Ids of other splits are dropped with a log line (the reference's ``MELD_diff.pkl`` covers train and dev,
    which it trains on together); an id that names no dialogue of any split is an error, as is a training
    dialogue without a difficulty (:class:`~merc_hf.data.errors.DataFormatError` naming ``source``).
    """
    known = {str(i): split for split, ids in splits.items() for i in ids}
    unknown = [i for i in difficulties if i not in known]
    if unknown:
        raise DataFormatError(
            f"{len(unknown)} dialogue ids match no dialogue of the dataset (e.g. {unknown[:3]}; its training "
            f"ids look like {list(map(str, splits['train']))[:3]}): were the difficulties measured on another "
            "dataset?",
            file=source,
        )
    other = sorted({known[i] for i in difficulties if known[i] != "train"})
    if other:
        logger.info(
            f"{source}: ignoring the difficulties of {other} dialogues; the curriculum orders train only"
        )
    train = {str(i): difficulties.get(str(i)) for i in splits["train"]}
    missing = [i for i, v in train.items() if v is None]
    if missing:
        raise DataFormatError(
            f"no difficulty for {len(missing)} of {len(train)} training dialogues (e.g. {missing[:3]})",
            file=source,
        )
    return train


class CurriculumSampler(Sampler[int]):
    """Yields, at each epoch, the indices of that epoch's curriculum subset once, in a seeded order."""

    def __init__(self, n: int, ratio: float, epochs_per_stage: int = 1, seed: int = 0) -> None:
        if n <= 0:
            raise ValueError("the curriculum needs a non-empty training set")
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.n = n
        self.ratio = ratio
        self.epochs_per_stage = max(1, epochs_per_stage)
        self.seed = seed
        self.epoch = 0
        self.difficulties: list[float] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def active_size(self, epoch: int) -> int:
        """Number of dialogues in use at ``epoch`` (from 0): ⌈min(1, ratio·(⌊epoch/steps⌋ + 1))·n⌉."""
        share = min(1.0, self.ratio * (epoch // self.epochs_per_stage + 1))
        return max(1, min(self.n, math.ceil(share * self.n - 1e-9)))

    def active_indices(self, epoch: int) -> list[int]:
        """Dataset indices in use at ``epoch``: the easiest :meth:`active_size` dialogues (ties broken by
        dataset order), in dataset order."""
        if self.difficulties is None:
            raise RuntimeError("the curriculum has no difficulties yet: call set_difficulties first")
        order = sorted(range(self.n), key=lambda i: (self.difficulties[i], i))
        return sorted(order[: self.active_size(epoch)])

    def __iter__(self) -> Iterator[int]:
        active = torch.tensor(self.active_indices(self.epoch))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        yield from active[torch.randperm(len(active), generator=generator)].tolist()

    def __len__(self) -> int:
        return self.n

    def batches_in_epoch(self, epoch: int, batch_size: int, world_size: int = 1) -> int:
        """Batches one process sees at ``epoch`` (batches are dealt round-robin to ``world_size`` processes)."""
        return math.ceil(math.ceil(self.active_size(epoch) / batch_size) / world_size)

    def batches_before(self, global_batches: int, batch_size: int, world_size: int = 1) -> tuple[int, int]:
        """``(epoch, batches into that epoch)`` after ``global_batches`` batches from the start of training."""
        epoch = 0
        while global_batches >= (in_epoch := self.batches_in_epoch(epoch, batch_size, world_size)):
            global_batches -= in_epoch
            epoch += 1
        return epoch, global_batches

    def total_batches(self, epochs: int, batch_size: int, world_size: int = 1) -> int:
        return sum(self.batches_in_epoch(e, batch_size, world_size) for e in range(epochs))

    def save(self, directory: str | os.PathLike) -> None:
        with open(os.path.join(directory, STATE_FILE), "w") as fh:
            json.dump({"difficulties": self.difficulties, "ratio": self.ratio, "seed": self.seed}, fh)

    def load(self, directory: str | os.PathLike) -> bool:
        path = os.path.join(directory, STATE_FILE)
        if not os.path.isfile(path):
            return False
        with open(path) as fh:
            self.set_difficulties(json.load(fh)["difficulties"])
        return True

    def set_difficulties(self, difficulties: Sequence[float]) -> None:
        if len(difficulties) != self.n:
            raise ValueError(f"expected {self.n} difficulties, got {len(difficulties)}")
        values = [float(d) for d in difficulties]
        if not all(math.isfinite(v) for v in values):
            raise ValueError("difficulties must be finite")
        self.difficulties = values
