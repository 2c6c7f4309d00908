"""Every backbone with and without CMERC on the same data and seeds (the generalisation study of CMERC's Table 6).

    python examples/compare_backbones.py                                   # all backbones, settings, 3 seeds
    python examples/compare_backbones.py --settings meld-text --seeds 0 --backbones m3net mmgcn

Each run is ``examples/train.py`` with the backbone's reference hub config for the dataset family
(``<backbone>[-cmerc]-iemocap.json`` for ``iemocap-like``, ``-meld.json`` otherwise: reference
hyper-parameters and, for ``-cmerc``, the CMERC weights), the setting's data and ``--epochs`` epochs; M3Net
runs exactly as in ``compare_calibration.py``. Results:
``--output_dir/results.json`` (resumable) and ``table.md`` (mean ± std over seeds of weighted F1, ECE, CEL
and seconds per epoch).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BACKBONES = ("m3net", "mmgcn", "mmdfn", "dialoguegcn", "dialoguernn", "sure")
METHODS = ("none", "cmerc")


def _compare_calibration():
    """The settings, ``train`` and ``summarize`` helpers of ``examples/compare_calibration.py``."""
    spec = importlib.util.spec_from_file_location(
        "compare_calibration", ROOT / "examples" / "compare_calibration.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(setting: str, backbone: str, method: str, seed: int, epochs: int, output_dir: Path) -> dict:
    common = _compare_calibration()
    if backbone == "m3net":  # exactly the protocol of compare_calibration.py (its synthetic-default config)
        return {**common.run(setting, method, seed, epochs, output_dir / "m3net"), "backbone": backbone}
    flags, _ = common.SETTINGS[setting]
    family = "iemocap" if setting == "iemocap-like" else "meld"
    out = output_dir / setting / backbone / method / f"seed{seed}"
    hub_config = ROOT / "hub_configs" / f"{backbone}{'-cmerc' if method == 'cmerc' else ''}-{family}.json"
    common.train([
        "--hub_config", str(hub_config), *flags, "--seed", str(seed), "--num_train_epochs", str(epochs),
        "--output_dir", str(out), "--disable_tqdm", "true", "--save_total_limit", "1",
        "--model_name", f"{backbone}{'-cmerc' if method == 'cmerc' else ''}-{setting}",
    ])  # fmt: skip
    return {**common.summarize(setting, method, seed, out), "backbone": backbone}


def table(results: list[dict]) -> str:
    lines = ["| setting | backbone | method | seeds | W-F1 ↑ | ECE ↓ | CEL ↓ | s/epoch |", "|" + "---|" * 8]
    keys = sorted(
        {(r["setting"], r["backbone"], r["method"]) for r in results},
        key=lambda k: (k[0], BACKBONES.index(k[1]), METHODS.index(k[2])),
    )
    for setting, backbone, method in keys:
        rows = [
            r for r in results if (r["setting"], r["backbone"], r["method"]) == (setting, backbone, method)
        ]
        cells = []
        for column in ("weighted_f1", "ece", "cel", "seconds_per_epoch"):
            values = np.array([r[column] for r in rows], dtype=float)
            cells.append(f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.2f}")
        lines.append(f"| {setting} | {backbone} | {method} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    settings = list(_compare_calibration().SETTINGS)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=settings, choices=settings)
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "outputs" / "compare_backbones")
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    results_file = args.output_dir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else []
    done = {(r["setting"], r["backbone"], r["method"], r["seed"]) for r in results}
    for setting in args.settings:
        for seed in args.seeds:
            for backbone in args.backbones:
                for method in args.methods:
                    if (setting, backbone, method, seed) not in done:
                        results.append(run(setting, backbone, method, seed, args.epochs, args.output_dir))
                        results_file.write_text(json.dumps(results, indent=2))
    selected = [
        r
        for r in results
        if r["setting"] in args.settings
        and r["backbone"] in args.backbones
        and r["method"] in args.methods
        and r["seed"] in args.seeds
    ]
    text = table(selected)
    (args.output_dir / "table.md").write_text(text + "\n")
    print(text)
    return selected


if __name__ == "__main__":
    main()
