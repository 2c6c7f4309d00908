"""Hub round trips, offline: load by repo id from a populated cache; push with the commit intercepted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi
from transformers import AutoConfig

import merc_hf  # noqa: F401  (registers the Auto classes)
from merc_hf.calibration import CMERC, RPCL, PseudoLabelGeneration
from merc_hf.hub import load_hub_config, push_checkpoint
from merc_hf.models.m3net.configuration_m3net import M3NetConfig
from merc_hf.models.m3net.modeling_m3net import M3NetModel

ROOT = Path(__file__).resolve().parents[2]


def saved_model(path: Path) -> Path:
    torch.manual_seed(0)
    config = M3NetConfig(text_dim=6, audio_dim=4, visual_dim=None, hidden_size=8, graph_hidden_size=8,
                         calibration={"name": "cmerc", "gamma_m": 0.05})  # fmt: skip
    M3NetModel(config).save_pretrained(path)
    (path / "README.md").write_text("---\nlibrary_name: merc_hf\n---\n# card\n")
    return path


def test_from_pretrained_by_repo_id_from_an_offline_cache(tmp_path):
    model_dir = saved_model(tmp_path / "model")
    hf_home = tmp_path / "home"
    snapshot = hf_home / "hub" / "models--org--m3net-cmerc-iemocap" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / name, snapshot / name)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    code = (
        "import torch, merc_hf\n"
        "from transformers import AutoModel\n"
        "a = AutoModel.from_pretrained('org/m3net-cmerc-iemocap', dtype=torch.float32).eval()\n"
        f"b = AutoModel.from_pretrained({str(model_dir)!r}, dtype=torch.float32).eval()\n"
        "g = torch.Generator().manual_seed(0)\n"
        "batch = dict(text=torch.randn(2, 5, 6, generator=g), audio=torch.randn(2, 5, 4, generator=g),\n"
        "             speakers=torch.tensor([[0, 1, 0, 1, 0], [0, 0, 1, 0, 0]]), utterance_mask=torch.ones(2, 5, dtype=torch.bool))\n"
        "assert torch.equal(a(**batch).logits, b(**batch).logits)\n"
        "print(type(a).__name__, a.config.calibration['name'])\n"
    )
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "M3NetModel cmerc"


def test_push_checkpoint_uploads_the_checkpoint_files(tmp_path, monkeypatch):
    model_dir = saved_model(tmp_path / "model")
    (model_dir / "training_args.bin").write_bytes(b"not part of a checkpoint")
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["repo"] = repo_id

    def create_commit(self, repo_id, operations, **kwargs):
        calls["files"] = sorted(op.path_in_repo for op in operations)
        calls["card"] = next(op for op in operations if op.path_in_repo == "README.md").path_or_fileobj
        return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    url = push_checkpoint(model_dir, "org/m3net-cmerc-synthetic", token="hf_fake")
    assert calls["repo"] == "org/m3net-cmerc-synthetic" and url.endswith("/commit/0")
    assert calls["files"] == ["README.md", "config.json", "model.safetensors"]
    assert "library_name: merc_hf" in Path(calls["card"]).read_text()
    with pytest.raises(FileNotFoundError, match="not a saved merc_hf checkpoint"):
        push_checkpoint(tmp_path, "org/x")


@pytest.mark.parametrize("path", sorted((ROOT / "hub_configs").glob("*.json")), ids=lambda p: p.stem)
def test_hub_configs_are_valid(path):
    """Every hub config builds its model config and calibration method, and its file name says both."""
    config = load_hub_config(path)
    model = {k: v for k, v in config["model"].items() if k not in ("model_type", "class_weighted")}
    AutoConfig.for_model(config["model"]["model_type"], **model)
    calibration = dict(config["calibration"])
    name = calibration.pop("name")
    assert name in ("none", "cmerc", "rpcl", "cmc", "cmc_gt")
    if config["model"]["model_type"] == "merc_cmc":  # CMC's stages are part of the model, not a method
        calibration.pop("stage1_epochs", None)
        if name == "cmc":
            PseudoLabelGeneration(**calibration)
        concat = config["model"].get("fusion") == "concat"
        expected = "concat-fusion" if concat else {"cmc": "cmc", "cmc_gt": "cmc-gt"}[name]
        assert path.stem.startswith(expected + "-")
        assert name == "none" if concat else name != "none"
        assert path.stem.endswith(config["data"].get("options", {}).get("preset", config["data"]["name"]))
        return
    if name != "none":
        method = {"cmerc": CMERC, "rpcl": RPCL}[name](**calibration)
        assert method.to_dict() == {**method.to_dict(), **config["calibration"]}
    prefixes = {
        "merc_m3net": "m3net",
        "merc_mmgcn": "mmgcn",
        "merc_mmdfn": "mmdfn",
        "merc_dialoguegcn": "dialoguegcn",
        "merc_dialoguernn": "dialoguernn",
        "merc_sure": "sure",
        "merc_pair_scorer": "pair-scorer",
    }
    assert path.stem.startswith(prefixes[config["model"]["model_type"]])
    assert (f"-{name}-" in path.stem) == (name != "none")
    assert path.stem.endswith(config["data"]["name"])


def test_model_card_metadata_parses_with_huggingface_hub(tmp_path):
    """The card's YAML carries license, language, datasets, metrics, pipeline_tag, base_model, library_name
    and the test results in model-index; the snippet loads the org-prefixed id and runs the pipeline."""
    from huggingface_hub import ModelCard

    from merc_hf.hub import build_model_card

    report = {
        "classification": {"weighted_f1": 0.61234, "accuracy": 0.625},
        "calibration": {"ece": 0.0567, "mce": 0.2, "n_bins": 15},
        "failure_prediction": {"auroc": 0.7},
        "cmerc": {"cel": 3.5},
    }
    config = M3NetConfig(text_dim=384, audio_dim=None, visual_dim=None, hidden_size=8, graph_hidden_size=8)
    build_model_card(
        model_name="m3net-meld-text", dataset_name="meld", dataset_description="MELD test", report=report,
        config=config, repo_id="org/m3net-meld-text", base_model="sentence-transformers/all-MiniLM-L6-v2",
        extra={"results_table": "| metric | value |"},
    ).save(tmp_path / "README.md")  # fmt: skip
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data
    assert (data.license, data.language, data.datasets) == ("mit", "en", ["meld"])
    assert (data.pipeline_tag, data.library_name) == ("text-classification", "merc_hf")
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.metrics == ["f1", "accuracy", "ece", "mce", "auroc", "cel"]
    results = {r.metric_name: r for r in data.eval_results}
    assert results["Weighted F1"].metric_value == 0.6123 and results["ECE"].metric_value == 0.0567
    assert results["ECE"].metric_args["n_bins"] == 15 and results["CEL"].dataset_split == "test"
    assert {r.dataset_type for r in data.eval_results} == {"meld"}
    assert 'AutoModel.from_pretrained("org/m3net-meld-text")' in card.text
    assert 'merc_hf.pipeline("conversational-emotion", model="org/m3net-meld-text")' in card.text
    # a text encoder was recorded: the snippet passes transcripts only, no feature rows
    assert '"text": "I got the job!"' in card.text and "text_features" not in card.text

    multimodal = M3NetConfig(text_dim=100, audio_dim=1582, visual_dim=342, hidden_size=8, graph_hidden_size=8)
    text = build_model_card(
        model_name="m3net-cmerc-synthetic", dataset_name="synthetic", dataset_description="", report=report,
        config=multimodal,
    ).content  # fmt: skip
    assert 'from_pretrained("<org>/m3net-cmerc-synthetic")' in text
    assert '"audio": [...],  # 1582 floats' in text and '"text_features": [...],  # 100 floats' in text
    assert "base_model" not in text and "language" not in text  # none used / synthetic data has none


def test_push_failures_say_what_to_do(tmp_path, monkeypatch):
    from huggingface_hub.errors import HfHubHTTPError

    from merc_hf.hub import HubPushError

    model_dir = saved_model(tmp_path / "model")
    # the test session runs offline (HF_HUB_OFFLINE=1): the real client refuses
    with pytest.raises(HubPushError, match="HF_HUB_OFFLINE is set") as offline:
        push_checkpoint(model_dir, "org/x")
    assert "push_checkpoint(" in str(offline.value) and offline.value.__cause__ is not None

    class Response:  # what HfHubHTTPError reads from an HTTP response
        def __init__(self) -> None:
            self.status_code, self.headers, self.request = 401, {}, None

    def unauthorized(self, *args, **kwargs):
        raise HfHubHTTPError("401 Client Error: Unauthorized", response=Response())

    monkeypatch.setattr(HfApi, "create_repo", unauthorized)
    with pytest.raises(HubPushError, match=r"no valid token: run `hf auth login` or set HF_TOKEN"):
        push_checkpoint(model_dir, "org/x", token="hf_bad")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("m3net-synthetic", "m3net-synthetic.json"), ("m3net-synthetic.json", "m3net-synthetic.json")],
)
def test_hub_config_path_by_name_or_file(name, expected, tmp_path):
    from merc_hf.hub import hub_config_path, shipped_folder

    assert hub_config_path(name) == shipped_folder("hub_configs") / expected
    own = tmp_path / "m3net-synthetic.json"
    own.write_text("{}")
    assert hub_config_path(own) == own  # an existing file wins over the shipped name
    with pytest.raises(FileNotFoundError, match="one of the shipped names .*m3net-cmerc-synthetic"):
        hub_config_path("no-such")
