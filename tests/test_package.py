"""`import merc_hf`: registers the Auto classes and nothing else (no data/metrics stack, no files written)."""

from __future__ import annotations

import os
import subprocess
import sys

import merc_hf


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
