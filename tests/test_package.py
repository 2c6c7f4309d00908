"""`import merc_hf`: registers the Auto classes and nothing else (no data/metrics stack, no files written);
the built wheel carries the package data and its console scripts run outside the clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import merc_hf

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light_and_registers_auto_classes(tmp_path):
    code = (
        "import sys, merc_hf\n"
        "from transformers import AutoConfig, AutoModel\n"
        "heavy = [m for m in ('datasets', 'evaluate', 'matplotlib', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "config = AutoConfig.for_model('merc_m3net', text_dim=8, audio_dim=None, visual_dim=None, hidden_size=8, graph_hidden_size=8)\n"
        "print(type(AutoModel.from_config(config)).__name__)\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "M3NetModel"
    assert not (tmp_path / "home").exists()  # nothing written at import or registration


def test_lazy_attributes():
    assert merc_hf.load_dataset is merc_hf.data.load_dataset
    assert merc_hf.metric_path("ece").endswith("ece")
    assert "iemocap" in merc_hf.data.available_datasets()


def test_merc_models_are_registered_with_automodel_only():
    """Per-utterance outputs fit no task-specific Auto class (see merc_hf.models.register_auto_classes)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

    config = AutoConfig.for_model("merc_m3net", text_dim=8, audio_dim=None, visual_dim=None)
    for auto in (AutoModelForSequenceClassification, AutoModelForTokenClassification):
        with pytest.raises(ValueError, match="Unrecognized configuration class"):
            auto.from_config(config)


SOURCE_ITEMS = ("setup.py", "README.md", "LICENSE", "src", "hub_configs", "model_cards")


def test_wheel_installs_and_its_console_scripts_run_from_any_directory(tmp_path):
    """Build the wheel (no warnings), install it in a fresh virtual environment whose only other packages are
    this environment's dependencies, and run merc-train / merc-evaluate / merc-predict outside the clone."""
    source = tmp_path / "source"
    source.mkdir()
    for item in SOURCE_ITEMS:  # a copy, so the build writes nothing into the checkout
        path = ROOT / item
        if path.is_dir():
            shutil.copytree(path, source / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(path, source / item)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
         source],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    assert "warning" not in (build.stdout + build.stderr).lower(), (build.stdout + build.stderr)[-3000:]
    wheel = next((tmp_path / "dist").glob("merc_hf-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"merc_hf/py.typed", "merc_hf/hub_configs/m3net-cmerc-synthetic.json",
            "merc_hf/model_cards/merc_model_card.md", "merc_hf/evaluate_modules/ece/ece.py"} <= names  # fmt: skip
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
        check=True, capture_output=True,
    )  # fmt: skip
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # the dependencies (torch, transformers, ...) come from this environment, after the venv's own packages
    (Path(site) / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}

    def run(*argv: str) -> str:
        out = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    where = run(
        python, "-c", "import merc_hf, merc_hf.hub as h; print(merc_hf.__file__, h.card_template_path())"
    )
    assert where.startswith(str(venv)) and str(ROOT) not in where

    data = {"preset": "meld-like", "n_dialogues": 30, "dims": {"text": 16, "audio": 8, "visual": 8}}
    model = {"hidden_size": 16, "graph_hidden_size": 16, "num_L": 1, "num_K": 1}
    trained = run(venv / "bin" / "merc-train", "--hub_config", "m3net-synthetic", "--num_train_epochs", "1",
                  "--disable_tqdm", "true", "--dataset_options", json.dumps(data),
                  "--model_options", json.dumps(model))  # fmt: skip
    model_dir = cwd / "outputs" / "m3net-meld-like" / "model"  # named after what was trained, under cwd
    assert "merc_hf.pipeline on test conversation" in trained
    assert {"model.safetensors", "config.json", "README.md", "preprocessor_config.json"} <= {
        p.name for p in model_dir.iterdir()
    }
    assert "license: mit" in (model_dir / "README.md").read_text()

    evaluated = run(
        venv / "bin" / "merc-evaluate", "--model", "outputs/m3net-meld-like/model", "--missing_rates", "0"
    )
    assert "weighted F1" in evaluated and (model_dir.parent / "eval_synthetic_test.json").is_file()

    row = merc_hf.load_dataset("synthetic", seed=0, **data)["test"][0]
    turns = [{"speaker": s, "text_features": row["text"][i], "audio": row["audio"][i], "visual": row["visual"][i]}
             for i, s in enumerate(row["speakers"])]  # fmt: skip
    (cwd / "conversation.json").write_text(json.dumps(turns))
    predicted = json.loads(run(venv / "bin" / "merc-predict", "--model", model_dir, "conversation.json"))
    assert len(predicted) == len(turns) and {"label", "confidence", "probabilities"} <= set(predicted[0])
