"""``merc-train``: train, select on validation, evaluate on test, and save a checkpoint with its model card.

    merc-train                                                   # embedded synthetic default, a few minutes on CPU
    merc-train --hub_config m3net-cmerc-synthetic --num_train_epochs 3
    merc-train --hub_config m3net-synthetic                      # plain backbone, no calibration
    merc-train --hub_config pair-scorer-rpcl-ecf --data_dir ../shared/data/ecf   # emotion-cause pairs + RPCL
    merc-train --hub_config cmc-chsims --data_dir /path/to/CH-SIMS   # CMC, 2 stages
    accelerate launch -m merc_hf.cli.train --hub_config ...      # several GPUs (or torchrun --nproc_per_node N)

A hub config (a name shipped with merc_hf, see :func:`merc_hf.hub.hub_config_names`, or a JSON file; format in
:mod:`merc_hf.hub`) gives the model, calibration, data and training sections; command-line flags override it,
any ``TrainingArguments`` field included. The task follows the data: emotion–cause datasets (``ecf``,
``mecad``, ``mec4``) train a pair scorer, whose decision threshold is then chosen on validation (maximum
Pair-F1) and fixed for test; utterance-level sentiment datasets (``chsims``, ``chsims2``, ``mosi``, ``mosei``,
synthetic ``chsims-like``) train CMC (:func:`merc_hf.training.cmc.train_cmc`: unimodal stage, then multimodal
stage; ``--calibration cmc_gt`` uses gold unimodal labels, ``none`` one multimodal stage). The hub config's
model and calibration sections apply only to data of its own task.

The run is named after what is trained (``<backbone>[-<calibration>]-<dataset>``, the hub config's name when
nothing differs from it, or ``--model_name``), and its outputs go to ``--output_dir`` (default
``outputs/<name>`` under the current directory), in this order: ``model/`` (safetensors + config with the
calibration and the training data recorded + ``preprocessor_config.json`` + README model card, and CMC's
stage-1 pseudo labels) and ``metrics.json``; then the optional steps, whose failure loses nothing:
``reliability_test.png`` (needs ``merc_hf[plots]``) and, with ``--push_to_hub``, one Hub commit of ``model/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, EarlyStoppingCallback, HfArgumentParser, TrainingArguments

from ..calibration import CMERC, CML, CRL, FMFP, REMOVALS, RPCL, TemperatureScaling
from ..hub import build_model_card, card_template_path, load_hub_config, push_checkpoint
from ..inference import predict_dataset, predict_pairs, predict_sentiment
from ..metrics import (
    best_pair_threshold,
    pair_extraction_report,
    pair_report_table,
    reliability_report,
    sentiment_report,
    sentiment_report_table,
)
from ..models.base import inverse_frequency_class_weights
from ..models.ensemble import MercEnsembleModel
from ..training import MercTrainer, MercTrainingArguments, load_difficulties, training_difficulties
from ..training.cmc import PSEUDO_LABELS_FILE, selection_arguments, train_cmc
from . import json_option

DEFAULT_HUB_CONFIG = "m3net-cmerc-synthetic"
logger = logging.getLogger("merc_hf.train")
PAIR_DATASETS = ("ecf", "mecad", "mec4")
SENTIMENT_DATASETS = ("chsims", "chsims2", "mosi", "mosei")
CALIBRATIONS = {
    "none": None,
    "cmerc": CMERC,
    "crl": CRL,
    "fmfp": FMFP,
    "cml": CML,
    "temperature_scaling": TemperatureScaling,
    "ensemble": None,
}
POST_HOC = ("temperature_scaling",)  # fitted on the validation split after training
PAIR_CALIBRATIONS = {"none": None, "rpcl": RPCL}
SENTIMENT_CALIBRATIONS = {"cmc": "pseudo", "cmc_gt": "gold", "none": None}  # name -> train_cmc variant
METHODS = {"emotion": CALIBRATIONS, "pairs": PAIR_CALIBRATIONS, "sentiment": SENTIMENT_CALIBRATIONS}
DEFAULT_MODEL_TYPES = {"emotion": "merc_m3net", "pairs": "merc_pair_scorer", "sentiment": "merc_cmc"}


@dataclass
class ExperimentArguments:
    """What to train; every field overrides the hub config. Add new flags here (``TrainingArguments`` come
    with the parser)."""

    hub_config: str = field(
        default=DEFAULT_HUB_CONFIG,
        metadata={
            "help": "a hub config shipped with merc_hf, by name (e.g. m3net-synthetic), or a JSON file"
        },
    )
    dataset: str | None = field(
        default=None, metadata={"help": "merc_hf.load_dataset name (None: the hub config's)"}
    )
    data_dir: str | None = field(default=None, metadata={"help": "dataset folder (not for synthetic)"})
    dataset_options: str | None = field(
        default=None, metadata={"help": 'JSON, e.g. \'{"preset": "meld-like"}\''}
    )
    text_encoder: str | None = field(default=None, metadata={"help": "local encoder for transcripts"})
    model_options: str | None = field(default=None, metadata={"help": "JSON overrides of the model config"})
    calibration: str | None = field(
        default=None,
        metadata={
            "help": "emotions: none, cmerc, crl, fmfp, cml, temperature_scaling, ensemble; pairs: none, rpcl; "
            "sentiment: none, cmc, cmc_gt (None: the hub config's)"
        },
    )
    calibration_options: str | None = field(
        default=None, metadata={"help": "JSON overrides, e.g. '{\"gamma_s\": 0.01}'"}
    )
    class_weighted: bool | None = field(default=None, metadata={"help": "inverse-frequency class weights"})
    model_name: str | None = field(
        default=None, metadata={"help": "checkpoint name (None: <backbone>[-<calibration>]-<dataset>)"}
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "stop after this many evaluations without improvement"}
    )
    difficulties: str | None = field(
        default=None,
        metadata={
            "help": "CMERC curriculum difficulties: JSON {dialogue_id: DF} from merc-measure-difficulty, or the "
            "reference's caldiff/*_diff.pkl (None: a plain baseline is trained first to measure them)"
        },
    )


@dataclass
class Run:
    """What is actually trained: the hub config merged with the command line, resolved before any data is
    read so that a wrong flag is refused at once."""

    name: str
    task: str  # "emotion", "pairs" or "sentiment"
    dataset: str
    data_dir: str | None
    text_encoder: str | None
    dataset_options: dict[str, Any]
    model_type: str
    model_options: dict[str, Any]
    class_weighted: bool
    calibration: str
    calibration_options: dict[str, Any]
    hub: dict[str, Any]

    @property
    def training_data(self) -> dict[str, Any]:
        """The dataset as recorded in the checkpoint's config (``merc-evaluate`` reads it back)."""
        return {
            "name": self.dataset,
            "data_dir": self.data_dir,
            "text_encoder": self.text_encoder,
            "options": self.dataset_options,
        }


def task_of(dataset: str, options: dict[str, Any]) -> str:
    """``"pairs"``, ``"sentiment"`` (one clip per row) or ``"emotion"``, from the dataset name and preset."""
    if dataset in PAIR_DATASETS:
        return "pairs"
    if dataset in SENTIMENT_DATASETS or (dataset == "synthetic" and options.get("preset") == "chsims-like"):
        return "sentiment"
    return "emotion"


def run_name(run: Run, hub_name: str) -> str:
    """``<backbone>[-<calibration>]-<dataset>`` (hub-id style), or ``hub_name`` when the run is the hub
    config's own model, calibration and data."""
    hub = run.hub
    hub_options = hub["data"].get("options", {})
    hub_data = hub["data"].get("name", "synthetic")
    same = (
        run.model_type == hub["model"].get("model_type", DEFAULT_MODEL_TYPES[task_of(hub_data, hub_options)])
        and run.calibration == hub["calibration"].get("name", "none")
        and run.dataset == hub_data
        and run.dataset_options.get("preset") == hub_options.get("preset")
    )
    if same:
        return hub_name
    backbone = run.model_type.removeprefix("merc_").replace("_", "-")
    method = run.calibration.replace("_", "-")
    if run.calibration == "none":
        head = backbone
    elif method.startswith(backbone):  # CMC's variants: cmc, cmc-gt
        head = method
    else:
        head = f"{backbone}-{method}"
    data = run.dataset
    if run.dataset == "synthetic":  # hub configs call the default iemocap-like preset "synthetic"
        preset = run.dataset_options.get("preset", "iemocap-like")
        data = "synthetic" if preset == "iemocap-like" else preset
    return f"{head}-{data}"


def _pre_parser() -> argparse.ArgumentParser:
    """The few flags needed to build the full parser's defaults (hub config, output folder)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--hub_config", default=DEFAULT_HUB_CONFIG)
    pre.add_argument("--output_dir", default=None)
    pre.add_argument("--dataset", default=None)
    return pre


def build_parser(
    hub_config: str = DEFAULT_HUB_CONFIG, dataset: str | None = None
) -> tuple[HfArgumentParser, dict[str, Any]]:
    """The ``merc-train`` parser (experiment flags + every ``TrainingArguments`` field), with the hub
    config's training section as defaults; returns it with the loaded hub config."""
    parser = HfArgumentParser(
        (ExperimentArguments, MercTrainingArguments),
        prog="merc-train",
        description="Train a merc_hf model from a hub config; any TrainingArguments flag overrides it.",
    )
    try:
        hub = load_hub_config(hub_config)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    parser.set_defaults(
        **{
            "output_dir": None,
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            "save_total_limit": 2,
            "load_best_model_at_end": True,
            # CMC's stages replace it by the validation NLL (selection_arguments)
            "metric_for_best_model": "pair_f1"
            if (dataset or hub["data"].get("name")) in PAIR_DATASETS
            else "weighted_f1",
            "greater_is_better": True,
            "logging_strategy": "epoch",
            "ddp_find_unused_parameters": False,
            "report_to": "none",
            "dataloader_num_workers": 0,
            "dataloader_pin_memory": torch.cuda.is_available(),
            **hub["training"],
        }
    )
    return parser, hub


def parse_arguments(argv: list[str]) -> tuple[ExperimentArguments, TrainingArguments, Run]:
    """Parse the command line into the experiment flags, the ``TrainingArguments`` and the resolved
    :class:`Run`. Unknown flags, malformed JSON, unknown datasets and calibrations that do not apply to the
    data are usage errors (exit status 2, no traceback)."""
    from ..data import available_datasets

    known, _ = _pre_parser().parse_known_args(argv)
    parser, hub = build_parser(known.hub_config, known.dataset)
    exp, args, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")

    data_section = hub["data"]
    dataset = exp.dataset or data_section.get("name", "synthetic")
    if dataset not in available_datasets():
        parser.error(f"--dataset {dataset!r} is unknown; available: {', '.join(available_datasets())}")
    if dataset != data_section.get("name", "synthetic"):
        data_section = {"name": dataset}  # the hub config's data options belong to its own dataset
    options = {
        **data_section.get("options", {}),
        **json_option(parser, "--dataset_options", exp.dataset_options),
    }
    if "seed" not in options and dataset == "synthetic":
        options["seed"] = 0
    task = task_of(dataset, options)
    hub_data = hub["data"]
    own_task = task == task_of(hub_data.get("name", "synthetic"), hub_data.get("options", {}))
    if not own_task:
        logger.info(f"{dataset} is {task} data: the hub config's model and calibration sections do not apply")

    model_section = {
        **(hub["model"] if own_task else {}),
        **json_option(parser, "--model_options", exp.model_options),
    }
    model_type = model_section.pop("model_type", DEFAULT_MODEL_TYPES[task])
    class_weighted = model_section.pop("class_weighted", False)
    if exp.class_weighted is not None:
        class_weighted = exp.class_weighted
    hub_method = hub["calibration"].get("name", "none") if own_task else "none"
    method = exp.calibration or hub_method
    if method not in METHODS[task]:
        parser.error(
            f"--calibration {method!r} does not apply to {task} data ({dataset}); choose one of "
            f"{', '.join(sorted(METHODS[task]))}"
        )
    # the hub config's hyper-parameters belong to its own method; another --calibration starts from defaults
    calibration_options = {
        **(hub["calibration"] if method == hub_method and own_task else {}),
        **json_option(parser, "--calibration_options", exp.calibration_options),
    }
    calibration_options.pop("name", None)
    run = Run(
        name="",
        task=task,
        dataset=dataset,
        data_dir=exp.data_dir or data_section.get("data_dir"),
        text_encoder=exp.text_encoder or data_section.get("text_encoder"),
        dataset_options=options,
        model_type=model_type,
        model_options=model_section,
        class_weighted=bool(class_weighted),
        calibration=method,
        calibration_options=calibration_options,
        hub=hub,
    )
    hub_path = Path(known.hub_config)
    run.name = exp.model_name or run_name(run, hub_path.stem if hub_path.suffix == ".json" else hub_path.name)
    exp.model_name = run.name
    if known.output_dir is None:
        args = replace(args, output_dir=str(Path("outputs") / run.name))
    return exp, args, run


@dataclass
class SavedRun:
    """What a finished run saved, and what the optional steps after saving need."""

    report: dict[str, Any]
    model_dir: Path
    probs: np.ndarray | None = None  # test probabilities and references for the reliability diagram
    references: np.ndarray | None = None
    test_split: Any = None


def main(argv: list[str] | None = None) -> dict:
    """Train as the command line says; return the test report (empty on non-zero ranks)."""
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    import merc_hf

    exp, args, run = parse_arguments(sys.argv[1:] if argv is None else argv)
    push = args.push_to_hub
    if push:  # the Trainer would create the Hub repo before training; we push once everything is saved
        args = replace(args, push_to_hub=False)
    dsd = merc_hf.load_dataset(
        run.dataset, run.data_dir, text_encoder=run.text_encoder, **run.dataset_options
    )
    saved = (
        train_sentiment(exp, args, run, dsd)
        if run.task == "sentiment"
        else train_conversations(exp, args, run, dsd)
    )
    if saved is None:  # not the main process
        return {}
    out = Path(args.output_dir)
    if saved.probs is not None:
        plot_reliability(saved, out / "reliability_test.png", title=f"{run.name} (test)")
    if saved.test_split is not None:
        show_pipeline_example(saved.model_dir, saved.test_split)
    if push:
        push_run(saved.model_dir, args, run.name)
    return saved.report


def show_pipeline_example(model_dir: Path, test_split: Any) -> None:
    """Print what ``merc_hf.pipeline`` makes of the shortest test conversation (its features given), with the
    removal-view reliability flags: how the saved checkpoint is used on new data."""
    from ..pipelines import describe_predictions, pipeline

    lengths = [len(speakers) for speakers in test_split["speakers"]]
    row = test_split[lengths.index(min(lengths))]
    utterances = row.get("utterances") or [""] * len(row["speakers"])
    turns = []
    for i, speaker in enumerate(row["speakers"]):
        turn: dict[str, Any] = {"speaker": f"speaker {speaker}", "text": utterances[i]}
        for m in ("text", "audio", "visual"):
            if m in row:
                turn["text_features" if m == "text" else m] = row[m][i]
        turns.append(turn)
    predict = pipeline(model=str(model_dir))
    result = predict(turns, reliability=True)
    print(f"\nmerc_hf.pipeline on test conversation {row.get('dialogue_id', 0)} (features given):")
    print(describe_predictions(result))


def train_conversations(
    exp: ExperimentArguments, args: TrainingArguments, run: Run, dsd: Any
) -> SavedRun | None:
    """Emotion recognition (any backbone, any calibration method) or emotion–cause pair scoring."""
    features = dsd["train"].features
    pairs = run.task == "pairs"
    label_column = "emotions" if pairs else "labels"
    label_names = features[label_column].feature.names
    dims = {
        f"{m}_dim": (features[m].shape[1] if m in features else None) for m in ("text", "audio", "visual")
    }
    model_section = dict(run.model_options)
    if run.class_weighted:
        train_labels = [row[label_column] for row in dsd["train"].select_columns([label_column]).to_list()]
        model_section["class_weights"] = inverse_frequency_class_weights(train_labels, len(label_names))
    n_speakers = 1 + max(
        max(row["speakers"]) for split in dsd.values() for row in split.select_columns(["speakers"]).to_list()
    )
    method = run.calibration
    calibration_section = dict(run.calibration_options)
    n_members = calibration_section.pop("n_members", 5) if method == "ensemble" else 1
    method_class = METHODS[run.task][method]
    calibration = method_class(**calibration_section) if method_class else None
    trained_with = None if method in POST_HOC else calibration

    config = AutoConfig.for_model(
        run.model_type,
        **{**dims, "n_speakers": max(n_speakers, model_section.pop("n_speakers", 1)), **model_section},
        id2label=dict(enumerate(label_names)),
        label2id={n: i for i, n in enumerate(label_names)},
        calibration=trained_with.to_dict() if trained_with else None,
    )

    difficulties = None
    if exp.difficulties and getattr(trained_with, "curriculum_ratio", None) is not None:
        ids = {split: [str(i) for i in data["dialogue_id"]] for split, data in dsd.items()}
        difficulties = training_difficulties(load_difficulties(exp.difficulties), ids, exp.difficulties)

    def train_one(run_args: TrainingArguments) -> tuple[MercTrainer, float]:
        torch.manual_seed(run_args.seed)
        model = AutoModel.from_config(config)
        n_params = sum(p.numel() for p in model.parameters())
        logger.info(
            f"{run.name}: {run.model_type} ({n_params / 1e6:.2f}M parameters), calibration={method}, "
            f"seed={run_args.seed}, data={run.dataset} {dict((s, d.num_rows) for s, d in dsd.items())}"
        )
        trainer = MercTrainer(
            model=model,
            args=run_args,
            train_dataset=dsd["train"],
            eval_dataset=dsd["validation"],
            calibration=trained_with,
            difficulties=difficulties,
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
    if not trainer.is_world_process_zero():
        return None
    batch_size = args.per_device_eval_batch_size
    epochs_run = trainer.state.epoch or args.num_train_epochs  # fewer after early stopping
    summary = {
        "dataset": run.dataset,
        "dataset_options": run.dataset_options,
        "train_seconds": round(train_seconds, 1),  # with CMERC's baseline run when it measured difficulties
        "epochs_run": epochs_run,
        "train_seconds_per_epoch": round(train_seconds / max(epochs_run, 1), 2),
        "train_loss": train_loss,
        "validation": validation,
    }
    if pairs:
        report, table = evaluate_pairs(trainer.model, dsd, batch_size)
        model_dir = save_run(trainer, run, dsd, report, table, summary)
        return SavedRun(report, model_dir)
    report, table, preds = evaluate_emotions(trainer.model, dsd, label_names, dims, batch_size)
    model_dir = save_run(trainer, run, dsd, report, table, summary)
    return SavedRun(report, model_dir, preds.probs, preds.references, dsd["test"])


def _early_stopping(exp: ExperimentArguments) -> list:
    return [EarlyStoppingCallback(exp.early_stopping_patience)] if exp.early_stopping_patience else []


def train_sentiment(exp: ExperimentArguments, args: TrainingArguments, run: Run, dsd: Any) -> SavedRun | None:
    """CMC on an utterance-level sentiment dataset: two stages for ``cmc`` (pseudo labels) and ``cmc_gt``
    (gold unimodal labels; stage 1 runs at most ``num_train_epochs`` epochs too), one multimodal stage for
    ``none`` (e.g. the concatenation baseline); selection on the fused validation NLL; test report with the
    consistent / inconsistent subsets when the data has unimodal labels."""
    features = dsd["train"].features
    method = run.calibration
    options_cmc = dict(run.calibration_options)
    label_names = features["label"].names
    config = AutoConfig.for_model(
        run.model_type,
        **{f"{m}_dim": features[m].shape[1] for m in ("text", "audio", "visual") if m in features},
        **run.model_options,
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
        stage1_epochs = min(stage1_epochs or args.num_train_epochs, args.num_train_epochs)
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
        info["stage1_epochs"] = stage1_epochs
        train_loss = info["train_loss"]
    train_seconds = time.perf_counter() - start
    validation = trainer.evaluate()
    if not trainer.is_world_process_zero():
        return None
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
    model_dir = save_run(trainer, run, dsd, report, sentiment_report_table(report), {
        "dataset": run.dataset,
        "dataset_options": run.dataset_options,
        "train_seconds": round(train_seconds, 1),
        "train_loss": train_loss,
        "training": info,
        "validation": validation,
    })  # fmt: skip
    pseudo = Path(info.get("stage1_dir", "")) / PSEUDO_LABELS_FILE
    if pseudo.is_file():  # the stage-1 pseudo labels travel with the checkpoint (stage 2 is reproducible)
        shutil.copy(pseudo, model_dir / PSEUDO_LABELS_FILE)
    return SavedRun(report, model_dir, test.probs, test.references)


def save_run(trainer: MercTrainer, run: Run, dsd: Any, report: dict, table: str, summary: dict) -> Path:
    """Save the selected model to ``<output_dir>/model`` (config with the training data recorded, the
    processor, the model card) and ``metrics.json`` (``summary`` plus the name, calibration, best checkpoint
    and test report); print the results table. Nothing optional happens here, so nothing here can fail for
    want of an extra."""
    out = Path(trainer.args.output_dir)
    model_dir = out / "model"
    model = trainer.model
    model.config.training_data = run.training_data
    model.save_pretrained(model_dir)
    processor = _save_processor(dsd, model_dir)
    summary = {
        "model_name": run.name,
        "calibration": model.config.calibration,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        **summary,
        "test": report,
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    card = build_model_card(
        model_name=run.name,
        dataset_name=run.dataset,
        dataset_description=dsd["train"].info.description,
        report=report,
        config=model.config,
        template_path=card_template_path(),
        repo_id=_repo_id(trainer.args, run.name),
        base_model=processor.base_model,
        extra={"results_table": table},
    )
    card.save(model_dir / "README.md")
    print(f"\n{run.name} — test split, selected on validation\n{table}")
    print(f"\nSaved {model_dir} (model.safetensors, config.json, README.md) and {out / 'metrics.json'}")
    return model_dir


def _save_processor(dsd: Any, model_dir: Path) -> Any:
    """Save the preprocessing record next to the weights (``preprocessor_config.json``)."""
    from ..processing import MercProcessor

    processor = MercProcessor.from_dataset(dsd)
    processor.save_pretrained(model_dir)
    return processor


def _repo_id(args: TrainingArguments, name: str) -> str:
    """The Hub id shown in the card's loading snippet: ``--hub_model_id`` when it names an org."""
    hub_id = args.hub_model_id or name
    return hub_id if "/" in hub_id else f"<org>/{hub_id}"


def plot_reliability(saved: SavedRun, path: Path, title: str) -> None:
    """Draw the test reliability diagram; without matplotlib say which extra to install (results stay)."""
    from ..metrics import plot_reliability_diagram

    try:
        plot_reliability_diagram(saved.probs, saved.references, path, title=title)
    except ImportError as err:
        logger.warning(f"{path.name} not drawn: {err}. The model and metrics are saved.")


def push_run(model_dir: Path, args: TrainingArguments, name: str) -> None:
    """Upload the saved checkpoint (``--push_to_hub``); a failure says what to do, the files stay."""
    from ..hub import HubPushError

    repo_id = args.hub_model_id or name
    try:
        url = push_checkpoint(model_dir, repo_id, token=args.hub_token, private=args.hub_private_repo)
    except HubPushError as err:
        raise SystemExit(f"merc-train: {err}") from None
    print(f"Pushed {model_dir} to {url}")


def evaluate_emotions(model, dsd, label_names, dims, batch_size) -> tuple[dict, str, Any]:
    """Full reliability report on test, with every removal view the data allows; also the predictions."""
    modality = {"A": "audio", "V": "visual", "T": "text"}
    removals = [r for r in REMOVALS if r in ("X", "O") or dims[f"{modality[r]}_dim"]]
    preds = predict_dataset(model, dsd["test"], removals=removals, batch_size=batch_size)
    report = reliability_report(preds.probs, preds.references, label_names, masked_probs=preds.masked_probs)
    return report, results_table(report), preds


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
    """The emotion report's headline numbers as a Markdown table (printed and put in the model card)."""
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


def cli() -> None:
    """The ``merc-train`` console script: :func:`main`, whose return value the script wrapper would otherwise
    take for an exit status."""
    main()


if __name__ == "__main__":
    main()
