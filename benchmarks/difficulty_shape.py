"""How much of CMERC's conversation difficulty is dialogue shape: before and after the reference's form.

    python benchmarks/difficulty_shape.py --model outputs/study/meld-text/none/seed0/model \
        --model outputs/study/meld-text/none-1epoch/seed0/model

For each checkpoint (a plain backbone; the dataset it records), the difficulty of every training dialogue in
two forms, side by side:

* **before** (this package until the CMERC issue): Σ of *probability* boosts max(0, p_ξ[y] − p[y]) over the
  exact removal views, (Σ + S) / (S + T);
* **after** (``HITSZ-HLT/CMERC: caldiff/cal_diff.py``): Σ of *log-probability* rises over the reference views.

and their Spearman correlation with the dialogue length T and with S/(S+T) (the value DF takes when no
removal raises any confidence), plus the share of DF that the boosts make up (the rest is S/(S+T)).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from transformers import AutoModel

from merc_hf.calibration import REMOVALS, conversation_difficulty, removal_view_logits
from merc_hf.cli.measure_difficulty import spearman
from merc_hf.data import DialogueCollator, load_dataset


@torch.no_grad()
def forms(model, dataset) -> dict[str, np.ndarray]:
    """Per training dialogue: DF before / after, and S/(S+T)."""
    collator = DialogueCollator()
    before, after, smoothing = [], [], []
    for row in dataset:
        batch = collator([row])
        labels, speakers, mask = batch["labels"], batch["speakers"], batch["utterance_mask"]
        full = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        s = float(speakers.max() + 1)
        t = float(mask.sum())
        exact = removal_view_logits(model, batch, REMOVALS, view_mode="exact")
        gold = labels.clamp(min=0)[..., None]
        p_full = full.softmax(-1).gather(-1, gold)[..., 0]
        boosts = sum(
            ((v.softmax(-1).gather(-1, gold)[..., 0] - p_full).clamp(min=0) * (labels >= 0)).sum()
            for v in exact.values()
        )
        before.append((float(boosts) + s) / (s + t))
        reference = removal_view_logits(model, batch, REMOVALS, view_mode="reference")
        after.append(float(conversation_difficulty(full, reference, labels, speakers, mask)[0]))
        smoothing.append(s / (s + t))
    return {"before": np.array(before), "after": np.array(after), "smoothing": np.array(smoothing)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="plain checkpoint (repeatable)")
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    print("| checkpoint | form | Spearman with T | Spearman with S/(S+T) | boost share of DF |")
    print("|---|---|---|---|---|")
    for path in args.model:
        model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        recorded = dict(model.config.training_data)
        dataset = load_dataset(
            recorded["name"], recorded.get("data_dir"), text_encoder=recorded.get("text_encoder"),
            **(recorded.get("options") or {}),
        )[args.split]  # fmt: skip
        values = forms(model, dataset)
        lengths = np.array([len(s) for s in dataset["speakers"]], float)
        for form in ("before", "after"):
            df = values[form]
            share = float(np.mean(1 - values["smoothing"] / df))
            print(
                f"| {path} | {form} | {spearman(df, lengths):+.2f} | {spearman(df, values['smoothing']):+.2f} | "
                f"{100 * share:.0f} % |"
            )


if __name__ == "__main__":
    main()
