"""CMC against a concatenation-fusion baseline of the same size on the ``chsims-like`` synthetic preset:
accuracy and F1 on the full test set and on its modality-consistent and -inconsistent subsets, and ECE.

    python examples/compare_cmc.py                                  # 3 methods x 3 seeds
    python examples/compare_cmc.py --methods concat cmc --seeds 0 --epochs 5

Methods (each one ``examples/train.py`` run with its hub config): ``concat`` (``concat-fusion-chsims-like``:
the CMC encoders and heads, modality vectors concatenated, one multimodal stage with CE on the multimodal
label), ``cmc`` (``cmc-chsims-like``: pseudo-label unimodal stage, then consensus fusion) and ``cmc_gt``
(``cmc-gt-chsims-like``: gold unimodal labels in both stages). Every run trains on the same data (preset seed
0) with the run's seed. Results: ``--output_dir/results.json`` (resumable) and ``table.md`` (mean ± std).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments import ROOT, mean_std, run_grid, save_table, train

METHODS = {"concat": "concat-fusion-chsims-like", "cmc": "cmc-chsims-like", "cmc_gt": "cmc-gt-chsims-like"}
COLUMNS = {
    "acc_3": "Acc-3 ↑",
    "f1_3": "W-F1 ↑",
    "has0_acc_2": "Has0 Acc-2 ↑",
    "consistent_acc_3": "consistent Acc-3 ↑",
    "inconsistent_acc_3": "inconsistent Acc-3 ↑",
    "inconsistent_f1_3": "inconsistent W-F1 ↑",
    "ece": "ECE ↓",
    "seconds": "train s",
}


def run(method: str, seed: int, epochs: int | None, output_dir: Path) -> dict:
    out = output_dir / method / f"seed{seed}"
    argv = [
        "--hub_config", str(ROOT / "hub_configs" / f"{METHODS[method]}.json"), "--seed", str(seed),
        "--output_dir", str(out), "--disable_tqdm", "true", "--save_total_limit", "1",
    ]  # fmt: skip
    if epochs is not None:
        argv += ["--num_train_epochs", str(epochs)]
        if method != "concat":
            argv += ["--calibration_options", json.dumps({"stage1_epochs": epochs})]
    train(argv)
    return summarize(method, seed, out)


def summarize(method: str, seed: int, out: Path) -> dict:
    """The table's numbers (percentages) from one run's ``metrics.json``."""
    summary = json.loads((out / "metrics.json").read_text())
    test = summary["test"]
    subsets = test["subsets"]
    return {
        "method": method,
        "seed": seed,
        "acc_3": test["classification"]["acc_3"] * 100,
        "f1_3": test["classification"]["f1_3"] * 100,
        "has0_acc_2": test["classification"]["has0_acc_2"] * 100,
        "consistent_acc_3": subsets["consistent"]["acc_3"] * 100,
        "inconsistent_acc_3": subsets["inconsistent"]["acc_3"] * 100,
        "inconsistent_f1_3": subsets["inconsistent"]["f1_3"] * 100,
        "n_inconsistent": subsets["inconsistent"]["n"],
        "ece": test["calibration"]["ece"] * 100,
        "mean_gates": test.get("mean_gates"),
        "seconds": summary["train_seconds"],
    }


def table(results: list[dict]) -> str:
    lines = ["| method | seeds | " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * (2 + len(COLUMNS))]
    for method in (m for m in METHODS if any(r["method"] == m for r in results)):
        rows = [r for r in results if r["method"] == method]
        cells = [mean_std(r[column] for r in rows) for column in COLUMNS]
        lines.append(f"| {method} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs of each stage (default: hub configs)"
    )
    parser.add_argument("--output_dir", type=Path, default=ROOT / "outputs" / "compare_cmc")
    args = parser.parse_args(argv)
    selected = run_grid(
        args.output_dir,
        lambda **key: run(**key, epochs=args.epochs, output_dir=args.output_dir),
        seed=args.seeds,
        method=args.methods,
    )
    save_table(args.output_dir, table(selected))
    return selected


if __name__ == "__main__":
    main()
