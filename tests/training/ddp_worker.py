"""Worker for test_ddp.py: a few MercTrainer steps, in one process or under torchrun (gloo, CPU)."""

from __future__ import annotations

import json
import os
import sys

import torch
from datasets import Dataset
from safetensors.torch import save_file
from torch.utils.data import SequentialSampler
from transformers import TrainingArguments

import merc_hf
from merc_hf.calibration import CMERC, RPCL
from merc_hf.models.m3net.configuration_m3net import M3NetConfig
from merc_hf.models.m3net.modeling_m3net import M3NetModel
from merc_hf.models.pair_scorer import PairScorerConfig, PairScorerModel
from merc_hf.training import MercTrainer


class SequentialTrainer(MercTrainer):
    """Same data order in 1 and 2 processes, so the global batches are identical."""

    def _get_train_sampler(self, train_dataset=None):
        return SequentialSampler(self.train_dataset)


def main(out_dir: str, per_device_batch: int, method: str) -> None:
    # every dialogue has 6 utterances: per-device mean losses then average to the global mean exactly
    data = merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=40, seed=4, length_range=(6, 6), length_mean=6,
        dims={"text": 10, "audio": 6, "visual": 6},
    )["train"]  # fmt: skip
    torch.manual_seed(0)
    config = M3NetConfig(
        text_dim=10, audio_dim=6, visual_dim=6, hidden_size=12, graph_hidden_size=12, num_L=1, num_K=1,
        n_speakers=9, dropout=0.0, id2label=dict(enumerate("abcdefg")),
    )  # fmt: skip
    args = TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=per_device_batch, max_steps=3, learning_rate=1e-2,
        use_cpu=True, ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", 1)) > 1 else None,
        ddp_find_unused_parameters=False, report_to="none",
        save_strategy="no", remove_unused_columns=False, disable_tqdm=True, dataloader_pin_memory=False, seed=0,
    )  # fmt: skip
    model = M3NetModel(config)
    calibration = CMERC(curriculum_ratio=None) if method == "cmerc" else None
    if method == "rpcl":
        data, model, calibration = pair_data(), pair_model(), RPCL()
    trainer = SequentialTrainer(model=model, args=args, train_dataset=data, calibration=calibration)
    trainer.train()
    rank = int(os.environ.get("RANK", 0))
    if method == "rpcl":  # evaluation gathers (B, T, T) pair matrices across ranks
        metrics = trainer.evaluate(eval_dataset=data)
        with open(os.path.join(out_dir, f"eval-rank{rank}.json"), "w") as fh:
            json.dump({**metrics, "n": len(data)}, fh)
    state = {k: v.contiguous() for k, v in trainer.model.state_dict().items()}
    save_file(state, os.path.join(out_dir, f"weights-rank{rank}.safetensors"))
    if torch.distributed.is_initialized():  # an undestroyed gloo group sometimes aborts the process at exit
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def pair_data() -> Dataset:
    """40 random emotion–cause conversations of 6 utterances with 1–2 gold pairs (cause <= emotion)."""
    generator = torch.Generator().manual_seed(4)
    rows = []
    for n in range(40):
        emotion = int(torch.randint(1, 6, (1,), generator=generator))
        causes = sorted({int(torch.randint(0, emotion + 1, (1,), generator=generator)) for _ in range(2)})
        rows.append({
            "conversation_id": str(n), "speakers": [0, 1, 0, 1, 2, 0],
            "emotions": torch.randint(0, 7, (6,), generator=generator).tolist(),
            "pairs": [[emotion, c] for c in causes], "text": torch.randn(6, 10, generator=generator).tolist(),
        })  # fmt: skip
    return Dataset.from_list(rows)


def pair_model() -> PairScorerModel:
    torch.manual_seed(0)
    config = PairScorerConfig(
        text_dim=10, audio_dim=None, visual_dim=None, hidden_size=12, n_speakers=3, dropout=0.0
    )
    return PairScorerModel(config)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
