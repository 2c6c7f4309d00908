"""Shared by the ``compare_*.py`` scripts: one ``examples/train.py`` run per process, a resumable grid of
runs, and the mean ± std cells of their tables."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def train(argv: list[str]) -> None:
    """One ``examples/train.py`` run in its own process (isolated memory, the code as it is on disk now)."""
    subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), *argv], check=True)


def run_grid(output_dir: Path, run: Callable[..., dict], **axes: Iterable[object]) -> list[dict]:
    """Call ``run(**key)`` for every key of the grid ``axes`` spans (``seed=[0, 1], method=[...]``; the first
    axis varies slowest) without an entry in ``output_dir/results.json`` yet, saving the file after each run;
    return the entries of the grid."""
    output_dir.mkdir(parents=True, exist_ok=True)
    results_file = output_dir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else []
    grid = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]

    def matches(entry: dict, key: Mapping[str, object]) -> bool:
        return all(entry[field] == value for field, value in key.items())

    for key in grid:
        if not any(matches(entry, key) for entry in results):
            results.append(run(**key))
            results_file.write_text(json.dumps(results, indent=2))
    return [entry for entry in results if any(matches(entry, key) for key in grid)]


def save_table(output_dir: Path, text: str) -> None:
    """Write a comparison table to ``output_dir/table.md`` and print it."""
    (output_dir / "table.md").write_text(text + "\n")
    print(text)


def mean_std(values: Iterable[float], digits: int = 2) -> str:
    """``mean ± sample std`` of a table cell (std 0 for a single run)."""
    array = np.asarray(list(values), dtype=float)
    spread = array.std(ddof=1) if len(array) > 1 else 0.0
    return f"{array.mean():.{digits}f} ± {spread:.{digits}f}"
