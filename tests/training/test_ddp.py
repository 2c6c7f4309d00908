"""Two CPU processes with DDP (gloo) train exactly like one process on the same global batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainingArguments

from merc_hf.training import MercTrainer

from .ddp_worker import pair_data, pair_model

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def _torchrun(out: Path, method: str) -> None:
    _run([
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), str(WORKER), str(out), "2", method,
    ])  # fmt: skip


def test_ddp_matches_single_process(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _run([sys.executable, str(WORKER), str(single), "4", "none"])
    _torchrun(ddp, "none")
    reference = load_file(single / "weights-rank0.safetensors")
    for rank in (0, 1):
        weights = load_file(ddp / f"weights-rank{rank}.safetensors")
        for name, value in reference.items():
            torch.testing.assert_close(weights[name], value, atol=2e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("method", ["cmerc", "rpcl"])
def test_ddp_with_calibration_keeps_ranks_in_sync(tmp_path, method):
    """CMERC's no-grad view pass and RPCL's second (corrupted) forward with gradients run under DDP with
    find_unused_parameters=False, and the ranks stay identical."""
    _torchrun(tmp_path, method)
    rank0 = load_file(tmp_path / "weights-rank0.safetensors")
    rank1 = load_file(tmp_path / "weights-rank1.safetensors")
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], msg=name)
    if method == "rpcl":
        evals = [json.loads((tmp_path / f"eval-rank{r}.json").read_text()) for r in (0, 1)]
        assert evals[0]["eval_pair_f1"] == evals[1]["eval_pair_f1"] and evals[0]["eval_pair_f1"] > 0
        # the gathered evaluation scores the whole split: same value as one process on the same weights
        model = pair_model()
        model.load_state_dict(rank0)
        single = MercTrainer(
            model=model,
            args=TrainingArguments(
                str(tmp_path / "single"), report_to="none", use_cpu=True, remove_unused_columns=False
            ),
        ).evaluate(eval_dataset=pair_data())
        assert single["eval_pair_f1"] == pytest.approx(evals[0]["eval_pair_f1"], abs=1e-12)
        assert single["eval_pair_auprc"] == pytest.approx(evals[0]["eval_pair_auprc"], abs=1e-12)
