"""What a new user meets on the command line: usage errors instead of tracebacks, --help, run names, results
that survive a missing optional dependency or a failed push, evaluation next to the checkpoint, merc-predict."""

from __future__ import annotations

import json
import logging
import sys

import pytest
import torch
from huggingface_hub import HfApi
from transformers import AutoModel

import merc_hf
from merc_hf.cli import evaluate, predict, train
from merc_hf.data import DialogueCollator
from merc_hf.hub import hub_config_names
from merc_hf.models.m3net.configuration_m3net import M3NetConfig
from merc_hf.models.m3net.modeling_m3net import M3NetModel

TINY_DATA = {"preset": "meld-like", "n_dialogues": 30, "dims": {"text": 16, "audio": 8, "visual": 8}}
TINY_M3NET = {"hidden_size": 16, "graph_hidden_size": 16, "num_L": 1, "num_K": 1}


def tiny_run(tmp_path, *extra: str) -> list[str]:
    return [
        "--hub_config", "m3net-synthetic", "--output_dir", str(tmp_path), "--num_train_epochs", "1",
        "--disable_tqdm", "true", "--dataset_options", json.dumps(TINY_DATA),
        "--model_options", json.dumps(TINY_M3NET), *extra,
    ]  # fmt: skip


@pytest.fixture
def no_dataset(monkeypatch):
    """Fail the test if a dataset is built (a flag must be refused before)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the dataset was built before the command line was checked")

    monkeypatch.setattr(merc_hf.data, "load_dataset", refuse)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--no_such_flag", "1"], "unrecognized arguments: --no_such_flag 1"),
        (["--calibration", "foo"], "--calibration 'foo' does not apply to emotion data"),
        (["--dataset", "ecf", "--calibration", "cmerc"], "choose one of none, rpcl"),
        (["--dataset", "nosuch"], "--dataset 'nosuch' is unknown"),
        (["--model_options", "{hidden: 3}"], "--model_options is not valid JSON"),
        (["--hub_config", "no-such-config"], "hub config 'no-such-config' not found"),
    ],
)
def test_bad_flags_are_usage_errors_before_any_data_is_read(argv, message, no_dataset, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: merc-train") and message in err and "Traceback" not in err


def test_help_lists_training_arguments_and_each_default_once(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # no line wrapping inside the values
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--hub_config", "--calibration_options", "--num_train_epochs", "--learning_rate", "--seed"):
        assert flag in text
    # the hub config's training section is what --help shows as defaults
    assert "Total number of training epochs to perform. (default: 12)" in text
    start = text.index("--hub_config HUB_CONFIG, ")
    hub_help = text[start : text.index("--dataset DATASET", start)]
    assert hub_help.count("default") == 1 and "(default: m3net-cmerc-synthetic)" in hub_help


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        ([], "m3net-cmerc-synthetic"),
        (["--calibration", "none"], "m3net-synthetic"),
        (["--calibration", "crl"], "m3net-crl-synthetic"),
        (["--dataset_options", '{"preset": "meld-like"}'], "m3net-cmerc-meld-like"),
        (["--dataset", "meld", "--data_dir", "x"], "m3net-cmerc-meld"),
        (["--dataset", "ecf", "--data_dir", "x"], "pair-scorer-ecf"),
        (["--dataset_options", '{"preset": "chsims-like"}'], "cmc-chsims-like"),
        (["--dataset_options", '{"preset": "chsims-like"}', "--calibration", "cmc_gt"], "cmc-gt-chsims-like"),
        (["--hub_config", "mmgcn-cmerc-iemocap"], "mmgcn-cmerc-iemocap"),
        (["--hub_config", "mmgcn-cmerc-iemocap", "--dataset", "synthetic"], "mmgcn-cmerc-synthetic"),
        (["--calibration", "none", "--model_name", "mine"], "mine"),
    ],
)
def test_run_name_says_what_is_trained(argv, name, no_dataset):
    _, args, run = train.parse_arguments(argv)
    assert run.name == name
    assert args.output_dir == f"outputs/{name}"
    # another task does not inherit the hub config's backbone and method
    if run.dataset == "ecf":
        assert (run.model_type, run.calibration, args.metric_for_best_model) == (
            "merc_pair_scorer",
            "none",
            "pair_f1",
        )


def test_hub_configs_by_bare_name():
    assert "m3net-cmerc-synthetic" in hub_config_names() and len(hub_config_names()) > 30
    by_name = merc_hf.hub.load_hub_config("m3net-cmerc-synthetic")
    by_file = merc_hf.hub.load_hub_config(
        merc_hf.hub.shipped_folder("hub_configs") / "m3net-cmerc-synthetic.json"
    )
    assert by_name == by_file and by_name["calibration"]["name"] == "cmerc"


def test_missing_matplotlib_warns_and_keeps_the_results(tmp_path, monkeypatch, caplog):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with caplog.at_level(logging.WARNING, logger="merc_hf.train"):
        report = train.main(tiny_run(tmp_path))
    assert "pip install 'merc_hf[plots]'" in caplog.text and "reliability_test.png not drawn" in caplog.text
    assert not (tmp_path / "reliability_test.png").exists()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test"]["classification"] == report["classification"]
    assert {"model.safetensors", "config.json", "README.md", "preprocessor_config.json"} <= {
        p.name for p in (tmp_path / "model").iterdir()
    }


@pytest.mark.parametrize("failure", ["offline", "network"])
def test_failed_push_says_what_to_do_and_keeps_the_results(tmp_path, monkeypatch, failure):
    if failure == "network":

        def unreachable(self, *args, **kwargs):
            raise ConnectionError("[Errno -2] Name or service not known")

        monkeypatch.setattr(HfApi, "create_repo", unreachable)
    # the test session runs with HF_HUB_OFFLINE=1 (conftest): the "offline" case is the real hub client
    with pytest.raises(SystemExit) as exit_info:
        train.main(tiny_run(tmp_path, "--push_to_hub", "true", "--hub_model_id", "someone/m3net-tiny"))
    message = str(exit_info.value.code)
    assert message.startswith(
        f"merc-train: pushing {str(tmp_path / 'model')!r} to 'someone/m3net-tiny' failed"
    )
    if failure == "offline":
        assert "HF_HUB_OFFLINE is set" in message
    else:
        assert "could not be reached" in message and "HF_TOKEN" in message and "HF_HUB_OFFLINE=1" in message
    assert "push_checkpoint(" in message
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "model" / "model.safetensors").is_file()
    assert 'from_pretrained("someone/m3net-tiny")' in (tmp_path / "model" / "README.md").read_text()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny trained checkpoint shared by the evaluate and predict tests."""
    out = tmp_path_factory.mktemp("run")
    train.main(tiny_run(out))
    return out


def test_text_only_model_skips_the_missing_modality_sweep(trained, tmp_path, monkeypatch, capsys):
    """A model that uses one modality gets no sweep rows (they would all be identical), and says why."""
    model = M3NetModel(
        M3NetConfig(
            text_dim=16, audio_dim=None, visual_dim=None, hidden_size=8, graph_hidden_size=8, n_speakers=9,
            num_labels=7, training_data={"name": "synthetic", "options": {**TINY_DATA, "seed": 0}},
        )
    )  # fmt: skip
    model.save_pretrained(tmp_path / "model")
    data = merc_hf.load_dataset("synthetic", seed=0, **TINY_DATA)
    text_only = data.remove_columns(["audio", "visual"])
    monkeypatch.setattr(evaluate, "load_dataset", lambda *args, **kwargs: text_only)
    result = evaluate.main(["--model", str(tmp_path / "model")])
    assert result["missing_modality"] is None
    assert (
        "missing-modality sweep: does not apply, the model uses only text features" in capsys.readouterr().out
    )
    monkeypatch.undo()  # a multimodal model on its own data gets the rows
    multimodal = evaluate.main(["--model", str(trained / "model"), "--missing_rates", "0,0.5"])
    assert [row["rate"] for row in multimodal["missing_modality"]] == [0.0, 0.5]


def test_evaluate_on_an_unlabeled_split_writes_predictions(trained, tmp_path, monkeypatch, capsys):
    """No gold labels: no metrics, but every utterance's predicted label, confidence and reliability flags,
    equal to the model's own softmax."""
    data = merc_hf.load_dataset("synthetic", seed=0, **TINY_DATA)
    monkeypatch.setattr(evaluate, "load_dataset", lambda *args, **kwargs: data.remove_columns(["labels"]))
    result = evaluate.main(["--model", str(trained / "model"), "--output", str(tmp_path / "out.json")])
    assert "without gold labels, so no metrics" in capsys.readouterr().out
    rows = result["predictions"]
    test = data["test"]
    assert len(rows) == sum(len(s) for s in test["speakers"]) and rows[0]["dialogue_id"] == str(
        test[0]["dialogue_id"]
    )
    model = AutoModel.from_pretrained(trained / "model", dtype=torch.float32).eval()
    batch = DialogueCollator()([test[0]])
    with torch.no_grad():
        probs = torch.softmax(model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0], -1)
    first = [r for r in rows if r["dialogue_id"] == str(test[0]["dialogue_id"])]
    assert [r["utterance"] for r in first] == list(range(len(test[0]["speakers"])))
    for r, p in zip(first, probs):
        assert r["label"] == model.config.id2label[int(p.argmax())] and r["confidence"] == pytest.approx(
            float(p.max()), rel=1e-5
        )
    assert json.loads((tmp_path / "out.json").read_text())["predictions"] == rows


def test_evaluate_rejects_unknown_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--model", "x", "--datset", "meld"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --datset meld" in capsys.readouterr().err


def _conversation(n_turns: int = 5) -> tuple[list[dict], dict]:
    test = merc_hf.load_dataset("synthetic", seed=0, **TINY_DATA)["test"]
    row = test[0]
    turns = [
        {"speaker": f"s{s}", "text": f"turn {i}", "text_features": row["text"][i], "audio": row["audio"][i],
         "visual": row["visual"][i]}
        for i, s in enumerate(row["speakers"][:n_turns])
    ]  # fmt: skip
    return turns, row


def test_predict_json_matches_the_model(trained, tmp_path, capsys):
    turns, row = _conversation()
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps([turns, turns[:3]]))  # a list of conversations
    capsys.readouterr()
    result = predict.main(["--model", str(trained / "model"), str(path), "--reliability"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result)) and [len(c) for c in printed] == [5, 3]
    model = M3NetModel.from_pretrained(trained / "model").eval()
    first_turns = {k: row[k][:5] for k in ("speakers", "labels", "text", "audio", "visual")}
    batch = DialogueCollator()([first_turns])
    batch.pop("labels")
    with torch.no_grad():
        probs = torch.softmax(model(**batch).logits[0], -1)
    labels = [model.config.id2label[i] for i in probs.argmax(-1).tolist()]
    assert [u["label"] for u in printed[0]] == labels
    assert [u["confidence"] for u in printed[0]] == pytest.approx(probs.max(-1).values.tolist(), abs=1e-6)
    assert all("rises_under" in u for u in printed[0])

    table = tmp_path / "table.txt"
    predict.main(["--model", str(trained / "model"), str(path), "--format", "table", "--output", str(table)])
    assert "label" in table.read_text() and "conversation 1" in table.read_text()


def test_predict_refuses_bad_input_naming_the_file(trained, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(SystemExit, match=r"merc-predict: file '.*bad.json': not valid JSON"):
        predict.main(["--model", str(trained / "model"), str(bad)])
    text_only = tmp_path / "text_only.json"
    text_only.write_text(json.dumps([{"speaker": "a", "text": "hi"}]))
    with pytest.raises(SystemExit, match=r"text_only.json.*give every turn 'text_features'"):
        predict.main(["--model", str(trained / "model"), str(text_only)])


def test_missing_data_dir_lists_the_files_looked_for(tmp_path):
    with pytest.raises(merc_hf.DataFormatError, match="missing.*data_dir does not exist; iemocap looks there for "
                       "IEMOCAP_features.pkl, iemocap_features_roberta.pkl, iemocap.pkl"):  # fmt: skip
        merc_hf.load_dataset("iemocap", tmp_path / "missing")
