"""merc-train / merc-evaluate (merc_hf.cli, called by examples/train.py and examples/evaluate.py) end to end on
a tiny synthetic set: outputs, model card, reload with AutoModel, evaluation on the recorded dataset."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

import merc_hf
from merc_hf.data import DialogueCollator
from merc_hf.models.ensemble import MercEnsembleModel

ROOT = Path(__file__).resolve().parents[2]


def load_example(name: str = "train"):
    """``merc_hf.cli.<name>``: the module behind ``examples/<name>.py`` and the ``merc-<name>`` console script."""
    return importlib.import_module(f"merc_hf.cli.{name}")


def test_examples_are_thin_callers_of_the_cli():
    from merc_hf.cli import evaluate, train

    for name, cli in (("train", train), ("evaluate", evaluate)):
        spec = importlib.util.spec_from_file_location(f"thin_{name}", ROOT / "examples" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.main is cli.main


def test_train_example_end_to_end(tmp_path):
    train = load_example()
    report = train.main([
        "--output_dir", str(tmp_path), "--num_train_epochs", "2", "--disable_tqdm", "true",
        "--dataset_options", '{"preset": "meld-like", "n_dialogues": 30, "dims": {"text": 16, "audio": 8, "visual": 8}}',
        "--model_options", '{"hidden_size": 16, "graph_hidden_size": 16, "num_L": 1, "num_K": 1}',
        "--calibration_options", '{"difficulty_patience": 1}',
    ])  # fmt: skip
    assert {"classification", "calibration", "failure_prediction", "cmerc"} <= set(report)
    model_dir = tmp_path / "model"
    assert {"model.safetensors", "config.json", "README.md"} <= {p.name for p in model_dir.iterdir()}
    assert not list(model_dir.glob("*.bin"))
    card = (model_dir / "README.md").read_text()
    assert "model-index" in card and "ece" in card and "Weighted F1" in card
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["calibration"]["name"] == "cmerc" and metrics["test"]["cmerc"]["cel"] >= 0
    assert (tmp_path / "reliability_test.png").stat().st_size > 1000

    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    assert model.config.calibration["name"] == "cmerc"
    test = merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=30, seed=0, dims={"text": 16, "audio": 8, "visual": 8}
    )["test"]
    batch = DialogueCollator()([test[i] for i in range(len(test))])
    with torch.no_grad():
        logits = model(**batch).logits
    probs = torch.softmax(logits, -1)[batch["utterance_mask"]]
    assert probs.shape[0] == metrics["test"]["n_samples"]
    accuracy = (probs.argmax(-1) == batch["labels"][batch["utterance_mask"]]).float().mean().item()
    assert abs(accuracy - metrics["test"]["classification"]["accuracy"]) < 1e-6

    assert model.config.training_data["options"]["preset"] == "meld-like"
    evaluate_example = load_example("evaluate")
    # no dataset flags: the dataset recorded in the checkpoint (not the synthetic default) is evaluated
    result = evaluate_example.main(["--model", str(model_dir), "--missing_rates", "0,0.5"])
    assert result["report"]["classification"]["accuracy"] == metrics["test"]["classification"]["accuracy"]
    assert result["missing_modality"][0]["weighted_f1"] == metrics["test"]["classification"]["weighted_f1"]
    assert set(result["report"]["cmerc"]["uncertain_sample_rates"]) == {
        "A",
        "V",
        "T",
        "X",
        "O",
        "M",
        "C",
        "MC",
    }
    assert json.loads((tmp_path / "eval_synthetic_test.json").read_text())["split"] == "test"
    assert not list(model_dir.glob("eval_*"))  # results go next to the checkpoint, never into it


@pytest.mark.parametrize("method", ["temperature_scaling", "ensemble", "crl", "fmfp", "cml"])
def test_train_example_with_each_comparator(tmp_path, method):
    """Every calibration comparator trains through examples/train.py; the post-hoc and ensemble
    checkpoints reload with AutoModel and reproduce the reported test accuracy."""
    report = load_example().main([
        "--output_dir", str(tmp_path), "--num_train_epochs", "2", "--disable_tqdm", "true",
        "--calibration", method, "--calibration_options", '{"n_members": 2}' if method == "ensemble" else "{}",
        "--dataset_options", '{"preset": "meld-like", "n_dialogues": 30, "dims": {"text": 16, "audio": 8, "visual": 8}}',
        "--model_options", '{"hidden_size": 16, "graph_hidden_size": 16, "num_L": 1, "num_K": 1}',
    ])  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["calibration"]["name"] == method
    model = AutoModel.from_pretrained(tmp_path / "model", dtype=torch.float32).eval()
    assert model.config.calibration == metrics["calibration"]
    if method == "temperature_scaling":
        assert metrics["calibration"]["fitted_on"] == "validation"
        assert model.config.logit_temperature == metrics["calibration"]["temperature"] != 1.0
    if method == "ensemble":
        assert isinstance(model, MercEnsembleModel) and len(model.members) == 2
    test = merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=30, seed=0, dims={"text": 16, "audio": 8, "visual": 8}
    )["test"]
    batch = DialogueCollator()([test[i] for i in range(len(test))])
    with torch.no_grad():
        probs = torch.softmax(model(**batch).logits, -1)[batch["utterance_mask"]]
    accuracy = (probs.argmax(-1) == batch["labels"][batch["utterance_mask"]]).float().mean().item()
    assert abs(accuracy - report["classification"]["accuracy"]) < 1e-6


def test_another_dataset_does_not_inherit_the_hub_data_options(tmp_path):
    """--dataset other than the hub config's starts from that dataset's defaults (no preset/seed leak)."""
    train = load_example()
    _, _, run = train.parse_arguments(["--output_dir", str(tmp_path), "--dataset", "meld"])
    assert run.hub["data"]["name"] == "synthetic" and run.dataset == "meld" and run.dataset_options == {}
    with pytest.raises(
        merc_hf.DataFormatError, match="data_dir does not exist; meld looks there for .*dev_sent_emo.csv"
    ):  # reached the MELD reader
        train.main(
            ["--output_dir", str(tmp_path), "--dataset", "meld", "--data_dir", str(tmp_path / "missing")]
        )


TINY_BACKBONES = {
    "mmgcn": {"D_e": 8, "graph_hidden_size": 8, "num_layers": 2},
    "mmdfn": {"D_e": 8, "graph_hidden_size": 8, "num_layers": 2},
    "dialoguegcn": {"D_e": 8, "graph_hidden_size": 8},
    "dialoguernn": {"D_g": 8, "D_p": 8, "D_e": 8, "D_h": 8, "D_a": 8},
    "sure": {"hidden_size": 16, "num_heads": 2, "latent_size": 4},
}


@pytest.mark.parametrize("backbone", sorted(TINY_BACKBONES))
def test_train_example_trains_every_backbone_with_cmerc(tmp_path, backbone):
    """Each backbone's IEMOCAP hub config (with CMERC) trains through examples/train.py on synthetic data."""
    report = load_example().main([
        "--hub_config", str(ROOT / "hub_configs" / f"{backbone}-cmerc-iemocap.json"), "--dataset", "synthetic",
        "--dataset_options", '{"preset": "meld-like", "n_dialogues": 30, "dims": {"text": 16, "audio": 8, "visual": 8}}',
        "--model_options", json.dumps(TINY_BACKBONES[backbone]), "--num_train_epochs", "1",
        "--per_device_train_batch_size", "8", "--output_dir", str(tmp_path), "--disable_tqdm", "true",
    ])  # fmt: skip
    assert report["cmerc"]["cel"] >= 0
    model = AutoModel.from_pretrained(tmp_path / "model")
    assert model.config.model_type == f"merc_{backbone}" and model.config.calibration["name"] == "cmerc"


def test_measure_difficulty_then_train_cmerc_with_the_file(tmp_path):
    """The reference's two steps from the command line: a plain baseline, its difficulties (one per training
    dialogue, equal to dialogue_difficulties on the checkpoint), then CMERC reading the file instead of
    training its own baseline."""
    from merc_hf.training import dialogue_difficulties

    data = '{"preset": "meld-like", "n_dialogues": 30, "dims": {"text": 16, "audio": 8, "visual": 8}}'
    small = '{"hidden_size": 16, "graph_hidden_size": 16, "num_L": 1, "num_K": 1}'
    common = [
        "--num_train_epochs",
        "1",
        "--disable_tqdm",
        "true",
        "--dataset_options",
        data,
        "--model_options",
        small,
    ]
    load_example().main(["--calibration", "none", "--output_dir", str(tmp_path / "plain"), *common])
    difficulties = load_example("measure_difficulty").main(
        ["--model", str(tmp_path / "plain" / "model"), "--output", str(tmp_path / "df.json")]
    )
    train = merc_hf.load_dataset("synthetic", preset="meld-like", n_dialogues=30, seed=0,
                                 dims={"text": 16, "audio": 8, "visual": 8})["train"]  # fmt: skip
    model = AutoModel.from_pretrained(tmp_path / "plain" / "model", dtype=torch.float32)
    assert (
        json.loads((tmp_path / "df.json").read_text()) == difficulties == dialogue_difficulties(model, train)
    )
    load_example().main(
        ["--calibration", "cmerc", "--difficulties", str(tmp_path / "df.json"), "--output_dir",
         str(tmp_path / "cmerc"), *common]
    )  # fmt: skip
    assert (tmp_path / "cmerc" / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "cmerc" / "difficulties.json").exists()  # no baseline was trained for them
