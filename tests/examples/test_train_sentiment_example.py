"""examples/train.py on utterance-level sentiment data (CMC's two stages, CMC-GT, the concatenation baseline)
and :func:`merc_hf.training.cmc.train_cmc` on its own: outputs, pseudo labels, reload, reproducible stage 2."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, TrainingArguments

import merc_hf
from merc_hf.inference import predict_sentiment
from merc_hf.training.cmc import PSEUDO_LABELS_FILE, train_cmc
from tests.data.factories import write_mmsa_pickle
from tests.examples.test_train_example import ROOT, load_example

TINY_DATA = {"preset": "chsims-like", "n_samples": 60, "dims": {"text": 8, "audio": 6, "visual": 6}}
TINY_MODEL = {"num_layers": 1, "num_heads": 2, "embed_dim": 8, "feedforward_dim": 16}


def _train(tmp_path, hub_config: str, *extra: str) -> dict:
    return load_example().main([
        "--hub_config", str(ROOT / "hub_configs" / hub_config), "--output_dir", str(tmp_path),
        "--num_train_epochs", "1", "--disable_tqdm", "true", "--per_device_train_batch_size", "16",
        "--dataset_options", json.dumps(TINY_DATA), "--model_options", json.dumps(TINY_MODEL), *extra,
    ])  # fmt: skip


def test_cmc_two_stages_end_to_end(tmp_path):
    report = _train(tmp_path, "cmc-chsims-like.json", "--calibration_options", '{"stage1_epochs": 1}')
    assert {"classification", "calibration", "subsets"} <= set(report)
    assert (
        report["subsets"]["consistent"]["n"] + report["subsets"]["inconsistent"]["n"] == report["n_samples"]
    )
    model_dir = tmp_path / "model"
    assert {"model.safetensors", "config.json", "README.md", PSEUDO_LABELS_FILE} <= {
        p.name for p in model_dir.iterdir()
    }
    pseudo = json.loads((model_dir / PSEUDO_LABELS_FILE).read_text())
    data = merc_hf.load_dataset("synthetic", seed=0, **TINY_DATA)
    assert set(pseudo) == set(data["train"]["sample_id"])
    assert all(len(v) == 3 and set(v) <= {0, 1, 2} for v in pseudo.values())
    card = (model_dir / "README.md").read_text()
    assert "Acc-3" in card and "multimodal-sentiment-analysis" in card
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["calibration"]["name"] == "cmc" and metrics["training"]["variant"] == "pseudo"
    assert "eval_nll" in metrics["validation"]  # what both stages select on
    assert (tmp_path / "reliability_test.png").stat().st_size > 1000

    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32)
    assert model.config.stage == "multimodal" and model.config.fusion == "consensus"
    test = predict_sentiment(model, data["test"], show_progress=False)
    accuracy = float((test.probs.argmax(-1) == test.references).mean())
    assert accuracy == pytest.approx(report["classification"]["acc_3"], abs=1e-9)

    evaluated = load_example("evaluate").main([
        "--model", str(model_dir), "--dataset_options", json.dumps({**TINY_DATA, "seed": 0}),
        "--output", str(tmp_path / "eval.json"),
    ])  # fmt: skip
    assert evaluated["report"]["classification"] == report["classification"]
    removal = {row["removed"]: row for row in evaluated["modality_removal"]}
    assert set(removal) == {"none", "text", "audio", "visual"}
    assert removal["none"]["acc_3"] == pytest.approx(accuracy)
    without_text = predict_sentiment(model, data["test"], keep_modalities=(0, 1, 1), show_progress=False)
    assert removal["text"]["acc_3"] == pytest.approx(
        float((without_text.probs.argmax(-1) == test.references).mean())
    )
    assert not np.allclose(without_text.probs, test.probs)


@pytest.mark.parametrize(
    ("hub_config", "stages"), [("cmc-gt-chsims-like.json", 2), ("concat-fusion-chsims-like.json", 1)]
)
def test_cmc_gt_and_concat_baseline(tmp_path, hub_config, stages):
    report = _train(
        tmp_path, hub_config
    )  # the hub config's 20 stage-1 epochs, capped by --num_train_epochs 1
    assert report["subsets"]["inconsistent"]["n"] > 0
    assert (tmp_path / "stage1").is_dir() == (stages == 2)
    if stages == 2:
        assert json.loads((tmp_path / "metrics.json").read_text())["training"]["stage1_epochs"] == 1
        state = json.loads(max((tmp_path / "stage1").glob("checkpoint-*/trainer_state.json")).read_text())
        assert state["epoch"] == 1.0
    assert not (tmp_path / "model" / PSEUDO_LABELS_FILE).exists()
    config = AutoConfig.from_pretrained(tmp_path / "model")
    assert config.fusion == ("concat" if stages == 1 else "consensus")


def _arguments(tmp_path) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=1,
        per_device_train_batch_size=16,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        seed=3,
        use_cpu=True,
    )


def test_stage_two_is_reproducible_from_the_saved_stage_one(tmp_path):
    data = merc_hf.load_dataset("synthetic", seed=0, **TINY_DATA)
    config = AutoConfig.for_model("merc_cmc", text_dim=8, audio_dim=6, visual_dim=6, **TINY_MODEL)
    args = _arguments(tmp_path / "first")
    first, info = train_cmc(config, data, args)
    quality = info["pseudo_labels"]
    assert set(quality) == {"text", "audio", "visual"}
    assert all(0 <= q["moved"] <= 1 and 0 <= q["accuracy"] <= 1 for q in quality.values())
    again, _ = train_cmc(
        config, data, replace(args, output_dir=str(tmp_path / "again")), stage1=info["stage1_dir"]
    )
    probs = [predict_sentiment(t.model, data["test"], show_progress=False).probs for t in (first, again)]
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)


def test_gold_variant_needs_unimodal_labels(tmp_path):
    write_mmsa_pickle(tmp_path / "data" / "unaligned_50.pkl", "mosi", n=(6, 3, 3))
    data = merc_hf.load_dataset("mosi", tmp_path / "data", cache_dir=tmp_path / "cache")
    config = AutoConfig.for_model(
        "merc_cmc", **{f"{m}_dim": data["train"].features[m].shape[1] for m in ("text", "audio", "visual")}
    )
    with pytest.raises(ValueError, match="unimodal labels.*MOSI/MOSEI have none"):
        train_cmc(config, data, _arguments(tmp_path / "out"), variant="gold")


def test_cmc_chsims_hub_config_on_an_mmsa_pickle(tmp_path):
    """The published CH-SIMS config end to end on a generated pickle in MMSA's layout and folder structure."""
    write_mmsa_pickle(tmp_path / "CH-SIMS" / "Processed" / "unaligned_39.pkl", "chsims", n=(24, 8, 8))
    report = load_example().main([
        "--hub_config", str(ROOT / "hub_configs" / "cmc-chsims.json"), "--data_dir", str(tmp_path / "CH-SIMS"),
        "--output_dir", str(tmp_path / "out"), "--num_train_epochs", "1", "--disable_tqdm", "true",
        "--model_options", json.dumps(TINY_MODEL), "--calibration_options", '{"stage1_epochs": 1}',
    ])  # fmt: skip
    assert report["n_samples"] == 8 and report["convention"] == "sims"
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["dataset"] == "chsims" and metrics["calibration"]["name"] == "cmc"
    assert len(json.loads((tmp_path / "out" / "model" / PSEUDO_LABELS_FILE).read_text())) == 24


def test_pseudo_label_quality_by_hand():
    from datasets import Dataset

    from merc_hf.training.cmc import pseudo_label_quality

    train = Dataset.from_dict(
        {
            "label": [0, 1, 2, 2],
            "label_text": [0, 2, 1, 2],
            "label_audio": [0, 1, 2, 2],
            "label_visual": [0, 1, 2, 0],
        }
    )
    quality = pseudo_label_quality([[0, 0, 0], [2, 1, 1], [2, 2, 2], [2, 2, 0]], train)
    # text: moved on sample 1 only; matches gold on 0, 1, 3; gold differs on samples 1, 2, recovered on 1
    assert quality["text"] == {"moved": 0.25, "accuracy": 0.75, "recovered": 0.5}
    assert quality["audio"] == {"moved": 0.0, "accuracy": 1.0, "recovered": None}
    # visual: moved on 3 (0 != 2); gold differs only on 3, recovered (pseudo 0 == gold 0)
    assert quality["visual"] == {"moved": 0.25, "accuracy": 1.0, "recovered": 1.0}
    assert set(pseudo_label_quality([[0, 0, 0]] * 4, train.remove_columns(["label_text"]))["text"]) == {
        "moved"
    }
