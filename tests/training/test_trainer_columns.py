"""MercTrainer keeps the dataset columns its collators read: the README's pair-scorer snippet runs with the
default ``TrainingArguments`` (``remove_unused_columns=True``), which used to drop ``emotions``/``pairs``."""

from __future__ import annotations

import numpy as np
import torch
from datasets import Array2D as Array
from datasets import ClassLabel, Dataset, Features, List, Value
from transformers import TrainingArguments

from merc_hf.calibration import RPCL
from merc_hf.models.pair_scorer import PairScorerConfig, PairScorerModel
from merc_hf.training import MercTrainer


def pair_dataset(n: int = 6, seed: int = 0) -> Dataset:
    """ECF-like rows: a few conversations with 384-d-style (here 6-d) text features and 0-based pairs."""
    rng = np.random.default_rng(seed)
    rows = {"conversation_id": [], "speakers": [], "emotions": [], "text": [], "pairs": [], "utterances": []}
    for c in range(n):
        length = 3 + c % 3
        rows["conversation_id"].append(str(c))
        rows["speakers"].append([t % 2 for t in range(length)])
        rows["emotions"].append([int(e) for e in rng.integers(0, 3, length)])
        rows["text"].append(rng.normal(size=(length, 6)).astype(np.float32))
        rows["pairs"].append([[length - 1, length - 2], [0, 0]])
        rows["utterances"].append([f"u{t}" for t in range(length)])
    features = Features(
        {
            "conversation_id": Value("string"),
            "speakers": List(Value("int32")),
            "emotions": List(ClassLabel(names=["neutral", "joy", "anger"])),
            "text": Array((None, 6), "float32"),
            "pairs": List(List(Value("int32"))),
            "utterances": List(Value("string")),
        }
    )
    return Dataset.from_dict(rows, features=features)


def test_pair_scorer_trains_with_default_remove_unused_columns(tmp_path):
    data = pair_dataset()
    torch.manual_seed(0)
    model = PairScorerModel(
        PairScorerConfig(
            text_dim=6, audio_dim=None, visual_dim=None, hidden_size=8, n_speakers=2, num_labels=3
        )
    )
    args = TrainingArguments(output_dir=str(tmp_path), num_train_epochs=1, per_device_train_batch_size=3,
                             report_to="none", disable_tqdm=True, use_cpu=True)  # fmt: skip
    assert args.remove_unused_columns  # the transformers default, as in the README snippet
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = MercTrainer(model=model, args=args, train_dataset=data, eval_dataset=data, calibration=RPCL())
    result = trainer.train()
    assert np.isfinite(result.training_loss)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert "eval_pair_f1" in trainer.evaluate()
    assert args.remove_unused_columns  # the caller's arguments are left as they were
