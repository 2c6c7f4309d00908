"""Train, select on validation, evaluate on test, and save a merc_hf checkpoint with its model card.

    python examples/train.py                                   # embedded synthetic default, a few minutes on CPU
    python examples/train.py --hub_config hub_configs/m3net-cmerc-synthetic.json --num_train_epochs 3
    python examples/train.py --hub_config hub_configs/m3net-synthetic.json     # plain backbone, no calibration
    python examples/train.py --hub_config hub_configs/pair-scorer-rpcl-ecf.json   # emotion-cause pairs + RPCL
    python examples/train.py --hub_config hub_configs/cmc-chsims.json --data_dir /path/to/CH-SIMS   # CMC, 2 stages
    accelerate launch examples/train.py --hub_config ...       # several GPUs (or torchrun --nproc_per_node N)

A hub config (``hub_configs/*.json``, see :mod:`merc_hf.hub`) gives the model, calibration, data and
training sections; command-line flags override it. The task follows the data: emotion–cause datasets
(``ecf``, ``mecad``, ``mec4``) train a pair scorer, whose decision threshold is then chosen on validation
(maximum Pair-F1) and fixed for test; utterance-level sentiment datasets (``chsims``, ``chsims2``, ``mosi``,
``mosei``, synthetic ``chsims-like``) train CMC (:func:`merc_hf.training.cmc.train_cmc`: unimodal stage, then
multimodal stage; ``--calibration cmc_gt`` uses gold unimodal labels, ``none`` one multimodal stage). Outputs go
to ``--output_dir``: ``model/`` (safetensors + config + README model card, and CMC's stage-1 pseudo labels),
``metrics.json`` and, for emotion and sentiment recognition, ``reliability_test.png``.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, EarlyStoppingCallback, HfArgumentParser, TrainingArguments

import merc_hf
from merc_hf.calibration import CMERC, CML, CRL, FMFP, REMOVALS, RPCL, TemperatureScaling
from merc_hf.hub import build_model_card, load_hub_config
from merc_hf.inference import predict_dataset, predict_pairs, predict_sentiment
from merc_hf.metrics import (
    best_pair_threshold,
    pair_extraction_report,
    pair_report_table,
    plot_reliability_diagram,
    reliability_report,
    sentiment_report,
    sentiment_report_table,
)
from merc_hf.models.base import inverse_frequency_class_weights
from merc_hf.models.ensemble import MercEnsembleModel
from merc_hf.training import MercTrainer
from merc_hf.training.cmc import PSEUDO_LABELS_FILE, selection_arguments, train_cmc

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HUB_CONFIG = ROOT / "hub_configs" / "m3net-cmerc-synthetic.json"
logger = logging.getLogger("merc_hf.train")
PAIR_DATASETS = ("ecf", "mecad", "mec4")
CALIBRATIONS = {
    "none": None,
    "cmerc": CMERC,
    "rpcl": RPCL,
    "crl": CRL,
    "fmfp": FMFP,
    "cml": CML,
    "temperature_scaling": TemperatureScaling,
    "ensemble": None,
}
POST_HOC = ("temperature_scaling",)  # fitted on the validation split after training


@dataclass
class ExperimentArguments:
    hub_config: str | None = field(
        default=None, metadata={"help": f"hub config JSON (default: {DEFAULT_HUB_CONFIG.relative_to(ROOT)})"}
    )
    dataset: str | None = field(default=None, metadata={"help": "merc_hf.load_dataset name"})
    data_dir: str | None = field(default=None, metadata={"help": "dataset folder (not for synthetic)"})
    dataset_options: str | None = field(
        default=None, metadata={"help": 'JSON, e.g. \'{"preset": "meld-like"}\''}
    )
    text_encoder: str | None = field(default=None, metadata={"help": "local encoder for transcripts"})
    model_options: str | None = field(default=None, metadata={"help": "JSON overrides of the model config"})
    calibration: str | None = field(
        default=None,
        metadata={
            "help": "none, cmerc, crl, fmfp, cml, temperature_scaling, ensemble (emotions); rpcl (pairs)"
        },
    )
    calibration_options: str | None = field(
        default=None, metadata={"help": "JSON overrides, e.g. '{\"gamma_s\": 0.01}'"}
    )
    class_weighted: bool | None = field(default=None, metadata={"help": "inverse-frequency class weights"})
    model_name: str | None = field(
        default=None, metadata={"help": "checkpoint name (default: hub config name)"}
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "stop after this many evaluations without improvement"}
    )


def _merged(section: dict, override: str | None) -> dict:
    return {**section, **(json.loads(override) if override else {})}


def parse_arguments(argv: list[str]) -> tuple[ExperimentArguments, TrainingArguments, dict]:
    exp, _ = HfArgumentParser(ExperimentArguments).parse_args_into_dataclasses(
        argv, return_remaining_strings=True
    )
    hub_path = Path(exp.hub_config) if exp.hub_config else DEFAULT_HUB_CONFIG
    hub = load_hub_config(hub_path)
    name = exp.model_name or hub_path.stem
    pairs = (exp.dataset or hub["data"].get("name")) in PAIR_DATASETS
    training_defaults = {
        "output_dir": str(ROOT / "outputs" / name),
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": "pair_f1" if pairs else "weighted_f1",
        "greater_is_better": True,
        "logging_strategy": "epoch",
        "remove_unused_columns": False,
        "ddp_find_unused_parameters": False,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": torch.cuda.is_available(),
        **hub["training"],
    }
    parser = HfArgumentParser((ExperimentArguments, TrainingArguments))
    parser.set_defaults(**training_defaults)
    exp, training_args = parser.parse_args_into_dataclasses(argv)
    exp.model_name = name
    return exp, training_args, hub


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    exp, args, hub = parse_arguments(sys.argv[1:] if argv is None else argv)
    data_section = hub["data"]
    dataset_name = exp.dataset or data_section.get("name", "synthetic")
    if dataset_name != data_section.get("name", "synthetic"):
        data_section = {"name": dataset_name}  # the hub config's data options belong to its own dataset
    options = _merged(data_section.get("options", {}), exp.dataset_options)
    if "seed" not in options and dataset_name == "synthetic":
        options["seed"] = 0
    dsd = merc_hf.load_dataset(
        dataset_name,
        exp.data_dir or data_section.get("data_dir"),
        text_encoder=exp.text_encoder or data_section.get("text_encoder"),
        **options,
    )
    features = dsd["train"].features
    if "sample_id" in features:  # one clip per row: utterance-level sentiment (CH-SIMS family), CMC
        return train_sentiment(exp, args, hub, dsd, dataset_name, options)
    pairs = "pairs" in features
    label_column = "emotions" if pairs else "labels"
    label_names = features[label_column].feature.names
    dims = {
        f"{m}_dim": (features[m].shape[1] if m in features else None) for m in ("text", "audio", "visual")
    }

    model_section = _merged(hub["model"], exp.model_options)
    model_type = model_section.pop("model_type", "merc_pair_scorer" if pairs else "merc_m3net")
    class_weighted = (
        exp.class_weighted if exp.class_weighted is not None else model_section.pop("class_weighted", False)
    )
    model_section.pop("class_weighted", None)
    if class_weighted:
        train_labels = [row[label_column] for row in dsd["train"].select_columns([label_column]).to_list()]
        model_section["class_weights"] = inverse_frequency_class_weights(train_labels, len(label_names))
    n_speakers = 1 + max(
        max(row["speakers"]) for split in dsd.values() for row in split.select_columns(["speakers"]).to_list()
    )
    method = exp.calibration or hub["calibration"].get("name", "none")
    # the hub config's hyper-parameters belong to its own method; another --calibration starts from defaults
    hub_section = hub["calibration"] if hub["calibration"].get("name", "none") == method else {}
    calibration_section = _merged(hub_section, exp.calibration_options)
    calibration_section.pop("name", None)
    if method not in CALIBRATIONS:
        raise SystemExit(f"--calibration must be one of {sorted(CALIBRATIONS)}, got {method!r}")
    if pairs and method in ("ensemble", "temperature_scaling", "crl", "fmfp", "cml", "cmerc"):
        raise SystemExit(
            f"--calibration {method} is for emotion recognition; pair scorers take 'rpcl' or 'none'"
        )
    n_members = calibration_section.pop("n_members", 5) if method == "ensemble" else 1
    method_class = CALIBRATIONS[method]
    calibration = method_class(**calibration_section) if method_class else None
    trained_with = None if method in POST_HOC else calibration

    config = AutoConfig.for_model(
        model_type,
        **{**dims, "n_speakers": max(n_speakers, model_section.pop("n_speakers", 1)), **model_section},
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
        calibration=trained_with.to_dict() if trained_with else None,
    )

    def train_one(run_args: TrainingArguments) -> tuple[MercTrainer, float]:
        torch.manual_seed(run_args.seed)
        model = AutoModel.from_config(config)
        n_params = sum(p.numel() for p in model.parameters())
        logger.info(
            f"{exp.model_name}: {model_type} ({n_params / 1e6:.2f}M parameters), calibration={method}, "
            f"seed={run_args.seed}, data={dataset_name} {dict((s, d.num_rows) for s, d in dsd.items())}"
        )
        trainer = MercTrainer(
            model=model,
            args=run_args,
            train_dataset=dsd["train"],
            eval_dataset=dsd["validation"],
            calibration=trained_with,
            callbacks=_early_stopping(exp),
        )
        output = trainer.train(resume_from_checkpoint=run_args.resume_from_checkpoint)
        return trainer, output.training_loss

    start = time.perf_counter()
    if method == "ensemble":
        # independently seeded members, each selected on validation, averaged into one checkpoint
        seeds = [args.seed + k for k in range(n_members)]
        members, losses = [], []
        for k, seed in enumerate(seeds):
            member, loss = train_one(replace(args, seed=seed, output_dir=f"{args.output_dir}/member{k}"))
            members.append(member.model)
            losses.append(loss)
        ensemble = MercEnsembleModel.from_members(members, seeds=seeds)
        trainer = MercTrainer(model=ensemble, args=args, eval_dataset=dsd["validation"])
        train_loss = float(np.mean(losses))
    else:
        trainer, train_loss = train_one(args)
        if method in POST_HOC:
            calibration.fit(trainer.model, dsd["validation"], batch_size=args.per_device_eval_batch_size)
    train_seconds = time.perf_counter() - start
    validation = trainer.evaluate()

    out = Path(args.output_dir)
    report = {}
    if trainer.is_world_process_zero():
        batch_size = args.per_device_eval_batch_size
        if pairs:
            report, table = evaluate_pairs(trainer.model, dsd, batch_size)
        else:
            report, table = evaluate_emotions(
                trainer.model,
                dsd,
                label_names,
                dims,
                batch_size,
                plot_path=out / "reliability_test.png",
                title=f"{exp.model_name} (test)",
            )
        save_run(trainer, exp, dsd, report, table, {
            "dataset": dataset_name,
            "dataset_options": options,
            "train_seconds": round(train_seconds, 1),
            "train_seconds_per_epoch": round(train_seconds / max(args.num_train_epochs, 1), 2),
            "train_loss": train_loss,
            "validation": validation,
        })  # fmt: skip
    return report


SENTIMENT_CALIBRATIONS = {"cmc": "pseudo", "cmc_gt": "gold", "none": None}  # name -> train_cmc variant


def _early_stopping(exp: ExperimentArguments) -> list:
    return [EarlyStoppingCallback(exp.early_stopping_patience)] if exp.early_stopping_patience else []


def train_sentiment(exp, args, hub, dsd, dataset_name, options) -> dict:
    """CMC on an utterance-level sentiment dataset: two stages for ``cmc`` (pseudo labels) and ``cmc_gt``
    (gold unimodal labels), one multimodal stage for ``none`` (e.g. the concatenation baseline); selection
    on the fused validation NLL; test report with the consistent / inconsistent
    subsets when the data has unimodal labels."""
    features = dsd["train"].features
    method = exp.calibration or hub["calibration"].get("name", "none")
    if method not in SENTIMENT_CALIBRATIONS:
        raise SystemExit(
            f"--calibration {method!r} does not apply to sentiment data; use one of {sorted(SENTIMENT_CALIBRATIONS)}"
        )
    hub_section = hub["calibration"] if hub["calibration"].get("name", "none") == method else {}
    options_cmc = _merged(hub_section, exp.calibration_options)
    options_cmc.pop("name", None)
    model_section = _merged(hub["model"], exp.model_options)
    model_type = model_section.pop("model_type", "merc_cmc")
    label_names = features["label"].names
    config = AutoConfig.for_model(
        model_type,
        **{f"{m}_dim": features[m].shape[1] for m in ("text", "audio", "visual") if m in features},
        **model_section,
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
        calibration={"name": method, **options_cmc} if method != "none" else None,
    )
    start = time.perf_counter()
    info: dict = {}
    if method == "none":
        torch.manual_seed(args.seed)
        model = AutoModel.from_config(config)
        trainer = MercTrainer(
            model=model,
            args=selection_arguments(args),
            train_dataset=dsd["train"],
            eval_dataset=dsd["validation"],
            callbacks=_early_stopping(exp),
        )
        train_loss = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint).training_loss
    else:
        stage1_epochs = options_cmc.pop("stage1_epochs", None)
        stage1 = options_cmc.pop("stage1", None)
        trainer, info = train_cmc(
            config,
            dsd,
            args,
            variant=SENTIMENT_CALIBRATIONS[method],
            stage1_epochs=stage1_epochs,
            early_stopping_patience=exp.early_stopping_patience,
            pseudo_label_options=options_cmc,
            stage1=stage1,
        )
        train_loss = info["train_loss"]
    train_seconds = time.perf_counter() - start
    validation = trainer.evaluate()
    if not trainer.is_world_process_zero():
        return {}
    out = Path(args.output_dir)
    model = trainer.model
    test = predict_sentiment(model, dsd["test"], batch_size=args.per_device_eval_batch_size)
    report = sentiment_report(
        test.probs,
        test.references,
        regression_references=test.regression_references,
        unimodal_labels=test.unimodal_references,
        convention=model.config.polarity,
    )
    report["mean_gates"] = dict(zip(("text", "audio", "visual"), test.gates.mean(0).round(4).tolist()))
    plot_reliability_diagram(
        test.probs, test.references, out / "reliability_test.png", title=f"{exp.model_name} (test)"
    )
    model_dir = save_run(trainer, exp, dsd, report, sentiment_report_table(report), {
        "dataset": dataset_name,
        "dataset_options": options,
        "train_seconds": round(train_seconds, 1),
        "train_loss": train_loss,
        "training": info,
        "validation": validation,
    })  # fmt: skip
    pseudo = Path(info.get("stage1_dir", "")) / PSEUDO_LABELS_FILE
    if pseudo.is_file():  # the stage-1 pseudo labels travel with the checkpoint (stage 2 is reproducible)
        shutil.copy(pseudo, model_dir / PSEUDO_LABELS_FILE)
    return report


def save_run(
    trainer: MercTrainer, exp: ExperimentArguments, dsd, report: dict, table: str, summary: dict
) -> Path:
    """Save the selected model to ``<output_dir>/model`` with its model card, and ``metrics.json`` (``summary``
    plus the name, calibration, best checkpoint and test report); print the results table."""
    out = Path(trainer.args.output_dir)
    model_dir = out / "model"
    trainer.model.save_pretrained(model_dir)
    summary = {
        "model_name": exp.model_name,
        "calibration": trainer.model.config.calibration,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        **summary,
        "test": report,
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    card = build_model_card(
        model_name=exp.model_name,
        dataset_name=summary["dataset"],
        dataset_description=dsd["train"].info.description,
        report=report,
        config=trainer.model.config,
        template_path=ROOT / "model_cards" / "merc_model_card.md",
        extra={"results_table": table},
    )
    card.save(model_dir / "README.md")
    print(f"\n{exp.model_name} — test split, selected on validation\n{table}")
    print(f"\nSaved {model_dir} (model.safetensors, config.json, README.md) and {out / 'metrics.json'}")
    return model_dir


def evaluate_emotions(model, dsd, label_names, dims, batch_size, plot_path, title) -> tuple[dict, str]:
    """Full reliability report on test, with every removal view the data allows, and its diagram."""
    modality = {"A": "audio", "V": "visual", "T": "text"}
    removals = [r for r in REMOVALS if r in ("X", "O") or dims[f"{modality[r]}_dim"]]
    preds = predict_dataset(model, dsd["test"], removals=removals, batch_size=batch_size)
    report = reliability_report(preds.probs, preds.references, label_names, masked_probs=preds.masked_probs)
    plot_reliability_diagram(preds.probs, preds.references, plot_path, title=title)
    return report, results_table(report)


def evaluate_pairs(model, dsd, batch_size) -> tuple[dict, str]:
    """Choose the pair threshold on validation (stored in the config), then report on test."""
    validation = predict_pairs(model, dsd["validation"], batch_size=batch_size)
    chosen = best_pair_threshold(validation.scores, validation.gold)
    model.config.pair_threshold = chosen["threshold"]
    test = predict_pairs(model, dsd["test"], batch_size=batch_size)
    report = pair_extraction_report(
        test.scores,
        test.gold,
        chosen["threshold"],
        predicted_emotions=test.predicted_emotions,
        gold_emotions=test.gold_emotions,
        emotion_names=list(model.config.id2label.values()),
    )
    report["validation_pair_f1"] = chosen["f1"]
    return report, pair_report_table(report)


def results_table(report: dict) -> str:
    cls, cal, fail = report["classification"], report["calibration"], report["failure_prediction"]
    rows = [
        ("weighted F1", cls["weighted_f1"] * 100, "%"),
        ("accuracy", cls["accuracy"] * 100, "%"),
        ("ECE", cal["ece"] * 100, "%"),
        ("MCE", cal["mce"] * 100, "%"),
        ("AUROC", (fail["auroc"] or np.nan) * 100, "%"),
        ("CEL", report.get("cmerc", {}).get("cel", np.nan), ""),
    ]
    rates = report.get("cmerc", {}).get("uncertain_sample_rates") or {}
    rows += [(f"uncertain {k}", v, "%") for k, v in rates.items()]
    return "\n".join(["| metric | value |", "|---|---|"] + [f"| {k} | {v:.2f}{u} |" for k, v, u in rows])


if __name__ == "__main__":
    main()
