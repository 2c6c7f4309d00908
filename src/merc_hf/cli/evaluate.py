"""``merc-evaluate``: evaluate a merc_hf checkpoint (local directory or Hub id) on any split.

    merc-evaluate --model outputs/m3net-cmerc-synthetic/model
    merc-evaluate --model org/m3net-cmerc-iemocap --data_dir data/iemocap --split test
    merc-evaluate --model outputs/pair-scorer-rpcl-ecf/model --data_dir ../shared/data/ecf

The dataset is the one recorded in the checkpoint (``config.training_data``: name, options, folder, text
encoder, written by ``merc-train``); ``--dataset`` evaluates on another one (starting from its own default
options) and ``--data_dir``, ``--dataset_options``, ``--text_encoder`` override what is recorded.
Prints the reliability metrics, the uncertain-sample table (share of utterances whose gold-class
confidence rises when a modality or a context is removed, CMERC Table 2) and a missing-modality sweep
(CMERC Table 3): at each rate, every modality of every dialogue is removed with that probability (at least
one modality is kept), seeded, and weighted F1 / ECE are recomputed; the sweep does not apply to a model
that uses one modality. For an emotion–cause pair scorer it prints Pair-F1 (at the threshold stored in the
checkpoint), the SemEval weighted Pair-F1, Pair-AUPRC and the confidence diagnostics instead; for a
sentiment model (CMC) the sentiment report (consistent and inconsistent subsets when the data has unimodal
labels) and the test accuracy with each modality removed. Writes everything to ``--output`` (default:
``eval_<dataset>_<split>.json`` next to the checkpoint folder, never inside it, so that pushing the folder
uploads only the checkpoint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import AutoModel, HfArgumentParser

from ..calibration import REMOVALS
from ..data import DialogueCollator, load_dataset
from ..inference import predict_dataset, predict_pairs, predict_sentiment
from ..metrics import (
    calibration_errors,
    classification_scores,
    pair_extraction_report,
    pair_report_table,
    reliability_report,
    sentiment_report,
    sentiment_report_table,
)
from . import json_option


@dataclass
class CheckpointDataArguments:
    """A checkpoint and the data to run it on: by default the dataset the checkpoint records
    (:func:`dataset_arguments`); shared by ``merc-evaluate`` and ``merc-measure-difficulty``."""

    model: str = field(metadata={"help": "checkpoint directory or Hub id"})
    dataset: str | None = field(
        default=None, metadata={"help": "merc_hf.load_dataset name (None: the one the checkpoint records)"}
    )
    data_dir: str | None = field(default=None, metadata={"help": "dataset folder (None: the recorded one)"})
    dataset_options: str | None = field(
        default=None, metadata={"help": "JSON load_dataset options (None: the recorded ones)"}
    )
    text_encoder: str | None = field(
        default=None, metadata={"help": "local text encoder (None: the recorded one)"}
    )


@dataclass
class EvaluationArguments(CheckpointDataArguments):
    """The ``merc-evaluate`` flags."""

    split: str = "test"
    batch_size: int = 16
    missing_rates: str = field(default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7", metadata={"help": "comma-separated"})
    seed: int = 0
    output: str | None = field(
        default=None,
        metadata={"help": "JSON file (None: eval_<dataset>_<split>.json next to the model folder)"},
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


def build_parser() -> HfArgumentParser:
    """The ``merc-evaluate`` parser."""
    return HfArgumentParser(
        EvaluationArguments,
        prog="merc-evaluate",
        description="Evaluate a merc_hf checkpoint on the dataset it records, or another one.",
    )


def dataset_arguments(args: CheckpointDataArguments, config: Any, parser: HfArgumentParser) -> dict[str, Any]:
    """``load_dataset`` arguments: the checkpoint's recorded training data, overridden by the flags; another
    ``--dataset`` starts from that dataset's defaults."""
    recorded = dict(getattr(config, "training_data", None) or {})
    name = args.dataset or recorded.get("name")
    if name is None:
        parser.error(
            f"{args.model} does not record the dataset it was trained on: pass --dataset (and --data_dir, "
            "--dataset_options as needed)"
        )
    if name != recorded.get("name"):
        recorded = {}
    options = {
        **(recorded.get("options") or {}),
        **json_option(parser, "--dataset_options", args.dataset_options),
    }
    return {
        "name": name,
        "data_dir": args.data_dir or recorded.get("data_dir"),
        "text_encoder": args.text_encoder or recorded.get("text_encoder"),
        **options,
    }


def main(argv: list[str] | None = None) -> dict:
    """Evaluate as the command line says; return the result written to ``--output``."""
    parser = build_parser()
    args, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    model = AutoModel.from_pretrained(args.model, dtype=torch.float32).eval()
    data = dataset_arguments(args, model.config, parser)
    args.dataset = data["name"]
    dsd = load_dataset(data.pop("name"), data.pop("data_dir"), **data)
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
    if "labels" not in dataset.features:
        return write_result(unlabeled_predictions(model, dataset, args), args)
    label_names = dataset.features["labels"].feature.names
    preds = predict_dataset(model, dataset, removals=REMOVALS, batch_size=args.batch_size)
    report = reliability_report(preds.probs, preds.references, label_names, masked_probs=preds.masked_probs)
    # modalities the model uses and the data has (an ensemble's config has no dims: the data decides)
    present = [
        m
        for m in ("text", "audio", "visual")
        if m in dataset.features and getattr(model.config, f"{m}_dim", 1) is not None
    ]
    sweep = None
    if len(present) > 1:
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
    if sweep is None:
        print(f"\nmissing-modality sweep: does not apply, the model uses only {present[0]} features")
    else:
        print("\nmissing rate | weighted F1 | ECE")
        for row in sweep:
            print(f"{row['rate']:>12.2f} | {row['weighted_f1'] * 100:>11.2f} | {row['ece'] * 100:.2f}")
    return write_result(result, args)


def unlabeled_predictions(model, dataset, args) -> dict:
    """A split without gold labels has no metrics: per utterance, the predicted label, its confidence and the
    removal views under which that confidence rises (the reliability flags of ``merc_hf.pipeline``)."""
    preds = predict_dataset(model, dataset, removals=REMOVALS, batch_size=args.batch_size)
    names = [model.config.id2label[i] for i in range(preds.probs.shape[1])]
    predicted = preds.probs.argmax(-1)
    confidence = preds.probs[np.arange(len(predicted)), predicted]
    ids = [str(i) for i in dataset["dialogue_id"]]
    rows, position = [], {}
    for k, (dialogue, label, conf) in enumerate(zip(preds.dialogue_index, predicted, confidence)):
        turn = position[dialogue] = position.get(dialogue, -1) + 1
        rises = [r for r, p in preds.masked_probs.items() if p[k, label] > conf]
        rows.append(
            {"dialogue_id": ids[dialogue], "utterance": turn, "label": names[label],
             "confidence": float(conf), "rises_under": rises}
        )  # fmt: skip
    flagged = sum(bool(r["rises_under"]) for r in rows)
    print(
        f"{args.model} on {args.dataset}/{args.split}: {len(rows)} utterances without gold labels, so no metrics; "
        f"predictions written, {flagged} utterances ({100 * flagged / max(len(rows), 1):.1f} %) flagged uncertain"
    )
    return {"model": args.model, "dataset": args.dataset, "split": args.split, "predictions": rows}


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


def default_output(model: str, dataset: str, split: str) -> Path:
    """``eval_<dataset>_<split>.json`` next to a local checkpoint folder (not inside: the folder is what
    gets pushed), or in the current directory for a Hub id."""
    name = f"eval_{dataset}_{split}.json"
    local = Path(model)
    return local.resolve().parent / name if local.is_dir() else Path(name)


def write_result(result: dict, args) -> dict:
    """Write ``result`` as JSON to ``--output`` (or :func:`default_output`); return it."""
    output = Path(args.output) if args.output else default_output(args.model, args.dataset, args.split)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {output}")
    return result


def cli() -> None:
    """The ``merc-evaluate`` console script: :func:`main`, whose return value the script wrapper would otherwise
    take for an exit status."""
    main()


if __name__ == "__main__":
    main()
