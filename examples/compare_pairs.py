"""Train the base pair scorer, RPCL and its two ablations on the same data and seeds; print a comparison table.

    python examples/compare_pairs.py                          # ECF, base / rpcl / cdmr-only / ccps-only, seeds 42 345 456
    python examples/compare_pairs.py --settings mecad-valid --methods base rpcl

Settings: ``ecf`` is ECF 1.0 with its official splits. ``mecad-valid`` uses the only MECAD file available
here, the validation split (126 conversations from 7 TV series), re-split **by series** into 4 series for
training, 1 for validation and 2 for test (seeded), so no series is seen in training and test; its
numbers are not comparable with the paper's MECAD results (official train/test splits, Chinese RoBERTa).

Every run goes through ``examples/train.py`` (validation-based epoch selection and decision threshold, test
evaluated once). Results: ``--output_dir/results.json`` (one entry per run; the script resumes from it) and
``--output_dir/table.md`` (mean ± std over seeds of Pair-F1, precision, recall, Pair-AUPRC, the SemEval
weighted Pair-F1, the gold − hard-negative gap and the margin-violation severity).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from experiments import ROOT, mean_std, run_grid, save_table, train

SHARED_DATA = ROOT.parent / "shared" / "data"
SETTINGS = {"ecf": "ecf", "mecad-valid": "mecad"}  # setting -> dataset of the hub config
# method -> RPCL overrides (None = the base scorer without RPCL)
METHODS = {
    "base": None,
    "rpcl": {},
    "cdmr-only": {"lambda_cor": 0.0, "lambda_ali": 0.0},
    "ccps-only": {"lambda_row": 0.0},
}
COLUMNS = {
    "pair_f1": "Pair-F1",
    "precision": "P",
    "recall": "R",
    "pair_auprc": "Pair-AUPRC",
    "semeval_weighted_f1": "SemEval w-F1",
    "gap": "gold−neg gap",
    "severity": "violation severity",
    "seconds_per_epoch": "s/epoch",
}


def mecad_series_split(source: Path, target: Path, seed: int = 0) -> Path:
    """Write ``{train,valid,test}_data_pair.json`` to ``target`` from one M3HG-layout MECAD file, whole TV
    series per split (conversation ids are ``<series>_<n>``): 4 series train, 1 validation, 2 test."""
    conversations = json.loads(source.read_text(encoding="utf-8"))
    series = sorted({key.rsplit("_", 1)[0] for key in conversations})
    order = [series[i] for i in np.random.default_rng(seed).permutation(len(series))]
    assignment = {name: "train" if i < 4 else "valid" if i == 4 else "test" for i, name in enumerate(order)}
    target.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        part = {k: v for k, v in conversations.items() if assignment[k.rsplit("_", 1)[0]] == split}
        (target / f"{split}_data_pair.json").write_text(
            json.dumps(part, ensure_ascii=False), encoding="utf-8"
        )
    return target


def data_dir(setting: str, output_dir: Path) -> Path:
    if setting == "mecad-valid":
        return mecad_series_split(
            SHARED_DATA / "mecad" / "valid_data_pair.json", output_dir / "mecad_series_split"
        )
    return SHARED_DATA / setting


def run(setting: str, method: str, seed: int, epochs: int, output_dir: Path) -> dict:
    out = output_dir / setting / method / f"seed{seed}"
    rpcl = METHODS[method]
    hub_config = f"pair-scorer{'' if rpcl is None else '-rpcl'}-{SETTINGS[setting]}.json"
    argv = [
        "--hub_config", str(ROOT / "hub_configs" / hub_config),
        "--data_dir", str(data_dir(setting, output_dir)), "--seed", str(seed), "--num_train_epochs", str(epochs),
        "--output_dir", str(out), "--disable_tqdm", "true", "--save_total_limit", "1",
        "--model_name", f"pair-scorer-{method}-{setting}",
    ]  # fmt: skip
    if rpcl:
        argv += ["--calibration_options", json.dumps(rpcl)]
    train(argv)
    summary = json.loads((out / "metrics.json").read_text())
    test = summary["test"]
    return {
        "setting": setting,
        "method": method,
        "seed": seed,
        "pair_f1": test["pairs"]["f1"] * 100,
        "precision": test["pairs"]["precision"] * 100,
        "recall": test["pairs"]["recall"] * 100,
        "pair_auprc": test["pair_auprc"] * 100,
        "semeval_weighted_f1": test["semeval"]["weighted_f1"] * 100,
        "gap": test["diagnostics"]["gold_negative_gap"],
        "severity": test["diagnostics"]["margin_violation_severity"],
        "threshold": test["threshold"],
        "seconds_per_epoch": summary["train_seconds_per_epoch"],
    }


def table(results: list[dict]) -> str:
    header = "| setting | method | seeds | " + " | ".join(COLUMNS.values()) + " |"
    lines = [header, "|" + "---|" * (3 + len(COLUMNS))]
    keys = sorted(
        {(r["setting"], r["method"]) for r in results}, key=lambda k: (k[0], list(METHODS).index(k[1]))
    )
    for setting, method in keys:
        rows = [r for r in results if r["setting"] == setting and r["method"] == method]
        cells = []
        for column in COLUMNS:
            digits = 3 if column in ("gap", "severity") else 2
            cells.append(mean_std([r[column] for r in rows], digits))
        lines.append(f"| {setting} | {method} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=["ecf"], choices=list(SETTINGS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 345, 456])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "outputs" / "compare_pairs")
    args = parser.parse_args(argv)
    selected = run_grid(
        args.output_dir,
        lambda **key: run(**key, epochs=args.epochs, output_dir=args.output_dir),
        setting=args.settings,
        seed=args.seeds,
        method=args.methods,
    )
    save_table(args.output_dir, table(selected))
    return selected


if __name__ == "__main__":
    main()
