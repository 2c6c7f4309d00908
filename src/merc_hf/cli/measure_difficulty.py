"""``merc-measure-difficulty``: CMERC's curriculum difficulties from a trained checkpoint.

    merc-measure-difficulty --model outputs/m3net-meld/model --output difficulties.json
    merc-train --hub_config m3net-cmerc-meld --difficulties difficulties.json ...

The reference code measures conversation difficulty once, offline, with a fully trained M3Net
(``HITSZ-HLT/CMERC: caldiff/cal_diff.py``) and trains CMERC from scratch with it. This is that step: every
training dialogue of the dataset the checkpoint records (or ``--dataset``) is scored one at a time with
:func:`merc_hf.training.dialogue_difficulties` and written as ``{dialogue_id: DF}`` JSON, which
``merc-train --difficulties`` reads (as it reads the reference's published ``caldiff/*_diff.pkl``).
It also prints how much of DF is dialogue shape: the Spearman correlation of DF with the number of
utterances and with S/(S+T), the value DF takes when no removal raises any confidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, HfArgumentParser

from ..calibration import REMOVALS
from ..data import load_dataset
from ..training import dialogue_difficulties
from .evaluate import CheckpointDataArguments, dataset_arguments


@dataclass
class DifficultyArguments(CheckpointDataArguments):
    """The ``merc-measure-difficulty`` flags (``--model``: a trained plain backbone)."""

    output: str = field(default="difficulties.json", metadata={"help": "JSON file to write"})
    view_mode: str = field(default="reference", metadata={"help": "removal views: reference or exact"})
    split: str = field(default="train", metadata={"help": "the split to score (the curriculum orders train)"})


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""

    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for value in np.unique(x):  # average the ranks of ties
            tied = x == value
            r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    return float(np.corrcoef(ra, rb)[0, 1])


def shape_correlations(difficulties: dict[str, float], dataset) -> dict[str, float]:
    """Spearman of DF with the dialogue length T and with S/(S+T) (S speakers), over ``dataset``'s rows."""
    ids = [str(i) for i in dataset["dialogue_id"]]
    speakers = dataset["speakers"]
    lengths = np.array([len(s) for s in speakers], float)
    n_speakers = np.array([max(s) + 1 for s in speakers], float)
    df = np.array([difficulties[i] for i in ids])
    return {
        "spearman_length": spearman(df, lengths),
        "spearman_smoothing": spearman(df, n_speakers / (n_speakers + lengths)),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = HfArgumentParser(
        DifficultyArguments, prog="merc-measure-difficulty", description=__doc__.split("\n")[0]
    )
    args, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    if args.view_mode not in ("reference", "exact"):
        parser.error(f"--view_mode must be reference or exact, got {args.view_mode!r}")
    model = AutoModel.from_pretrained(args.model, dtype=torch.float32).eval()
    data = dataset_arguments(args, model.config, parser)
    dsd = load_dataset(data.pop("name"), data.pop("data_dir"), **data)
    if args.split not in dsd:
        parser.error(f"split {args.split!r} not in the dataset; available: {list(dsd)}")
    removals = getattr(model.config, "calibration", None) or {}
    difficulties = dialogue_difficulties(
        model, dsd[args.split], removals=removals.get("removals", REMOVALS), view_mode=args.view_mode
    )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(difficulties, indent=1))
    values = np.array(list(difficulties.values()))
    shape = shape_correlations(difficulties, dsd[args.split])
    print(
        f"{len(values)} {args.split} dialogues: DF min {values.min():.3f}, median {np.median(values):.3f}, "
        f"max {values.max():.3f}; Spearman with length {shape['spearman_length']:+.2f}, "
        f"with S/(S+T) {shape['spearman_smoothing']:+.2f}\nwrote {args.output}"
    )
    return difficulties


def cli() -> None:
    """The console script (its return value would otherwise become the exit status)."""
    main()


if __name__ == "__main__":
    main()
