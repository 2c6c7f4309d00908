"""Hub helpers: ``hub_configs/*.json`` experiment files and model cards with evaluation results.

A hub config describes one published checkpoint (file name = Hub id without the org,
``<backbone>[-<calibration>]-<dataset>``)::

    {"model": {"model_type": "merc_m3net", ...config fields...},
     "calibration": {"name": "cmerc", ...hyper-parameters...} | {"name": "none"},
     "data": {"name": "synthetic", "options": {...load_dataset options...}, "text_encoder": null},
     "training": {...transformers.TrainingArguments fields...}}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HUB_CONFIG_SECTIONS = ("model", "calibration", "data", "training")


def load_hub_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a hub config; every section is optional, unknown sections are an error."""
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"hub config {str(path)!r} not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"hub config {str(path)!r} is not valid JSON: {exc}") from None
    unknown = sorted(set(config) - set(HUB_CONFIG_SECTIONS) - {"description"})
    if unknown:
        raise ValueError(
            f"hub config {str(path)!r}: unknown sections {unknown}; expected {list(HUB_CONFIG_SECTIONS)}"
        )
    return {section: dict(config.get(section) or {}) for section in HUB_CONFIG_SECTIONS} | {
        "description": config.get("description", "")
    }


EMOTION_EVALUATION_NOTES = (
    "Test-split results (fractions, not percentages; ECE/MCE with 15 equal-width `(lo, hi]` bins; CEL is the "
    "raw sum of confidence boosts over utterances and removal types, as in the CMERC paper):"
)
PAIR_EVALUATION_NOTES = (
    "Test-split results (fractions). Pair-F1 is set-based, micro and emotion-independent over "
    "(conversation, emotion utterance, cause utterance); the decision threshold on the pair probability "
    "was chosen on the validation split and is stored in the config (`pair_threshold`). Pair-AUPRC counts "
    "gold pairs outside the candidate space as misses:"
)

SENTIMENT_EVALUATION_NOTES = (
    "Test-split results (fractions) of the 3-class sentiment classifier (negative / neutral / positive by the "
    "sign of the multimodal label); Has0 Acc-2 follows the dataset's convention (see "
    "`merc_hf.metrics.sentiment`); the modality-inconsistent subset holds the samples whose unimodal labels "
    "do not all agree with the multimodal label:"
)


def build_model_card(
    *,
    model_name: str,
    dataset_name: str,
    dataset_description: str,
    report: Mapping[str, Any],
    config: Any,
    template_path: str | os.PathLike,
    split: str = "test",
    extra: Mapping[str, Any] | None = None,
):
    """A ``huggingface_hub.ModelCard`` rendered from ``template_path`` with the report's key results in the
    ``model-index`` metadata: weighted F1, accuracy, ECE, MCE, AUROC and CEL for an emotion report
    (:func:`~merc_hf.metrics.reliability_report`, binning recorded in ``metric_args``); Pair-F1,
    Pair-AUPRC and the SemEval weighted Pair-F1 for a pair report
    (:func:`~merc_hf.metrics.pair_extraction_report`, decision threshold in ``metric_args``)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    pairs = "pairs" in report
    sentiment = "acc_3" in report.get("classification", {})
    task_name = (
        "Emotion-cause pair extraction"
        if pairs
        else "Multimodal sentiment analysis"
        if sentiment
        else "Emotion recognition in conversation"
    )

    def result(
        metric_type: str, name: str, value: float | None, args: dict | None = None
    ) -> EvalResult | None:
        if value is None:
            return None
        return EvalResult(
            task_type="text-classification",
            task_name=task_name,
            dataset_type=dataset_name,
            dataset_name=dataset_name,
            dataset_split=split,
            metric_type=metric_type,
            metric_name=name,
            metric_value=round(float(value), 4),
            metric_args=args,
        )

    if pairs:
        results = [
            result(
                "f1",
                "Pair-F1",
                report["pairs"].get("f1"),
                {"threshold": report.get("threshold"), "definition": "set-based, emotion-independent, micro"},
            ),
            result("auprc", "Pair-AUPRC", report.get("pair_auprc")),
            result("f1", "SemEval-2024 weighted Pair-F1", report.get("semeval", {}).get("weighted_f1")),
        ]
        notes = PAIR_EVALUATION_NOTES
    elif sentiment:
        cls, cal = report["classification"], report.get("calibration", {})
        inconsistent = report.get("subsets", {}).get("inconsistent", {})
        results = [
            result("accuracy", "Acc-3", cls.get("acc_3")),
            result("f1", "Weighted F1-3", cls.get("f1_3")),
            result("accuracy", "Has0 Acc-2", cls.get("has0_acc_2"), {"convention": report.get("convention")}),
            result("ece", "ECE", cal.get("ece"), {"n_bins": cal.get("n_bins", 15)}),
            result("accuracy", "Acc-3 (modality-inconsistent subset)", inconsistent.get("acc_3")),
        ]
        notes = SENTIMENT_EVALUATION_NOTES
    else:
        cls, cal, fail = (
            report.get("classification", {}),
            report.get("calibration", {}),
            report.get("failure_prediction", {}),
        )
        n_bins = cal.get("n_bins", 15)
        results = [
            result("f1", "Weighted F1", cls.get("weighted_f1")),
            result("accuracy", "Accuracy", cls.get("accuracy")),
            result(
                "ece",
                "ECE",
                cal.get("ece"),
                {"n_bins": n_bins, "binning": "equal-width (lo, hi]", "norm": "l1"},
            ),
            result("mce", "MCE", cal.get("mce"), {"n_bins": n_bins}),
            result("auroc", "AUROC (failure prediction)", fail.get("auroc")),
            result("cel", "CEL", report.get("cmerc", {}).get("cel")),
        ]
        notes = EMOTION_EVALUATION_NOTES
    card_data = ModelCardData(
        model_name=model_name,
        library_name="merc_hf",
        tags=[
            "emotion-cause-pair-extraction"
            if pairs
            else "multimodal-sentiment-analysis"
            if sentiment
            else "emotion-recognition",
            *([] if sentiment else ["conversation"]),
            "merc_hf",
        ],
        metrics=["f1", "auprc"] if pairs else ["f1", "ece"],
        eval_results=[r for r in results if r is not None],
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        dataset_name=dataset_name,
        dataset_description=dataset_description,
        model_type=getattr(config, "model_type", "?"),
        task_name=task_name.lower(),
        evaluation_notes=notes,
        calibration=json.dumps(getattr(config, "calibration", None) or {"name": "none"}, indent=2),
        report=json.dumps(report, indent=2),
        **(extra or {}),
    )


def push_checkpoint(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a saved checkpoint directory (safetensors, config, model card, metrics) to the Hub.

    Only the checkpoint files are uploaded; optimizer states and pickled training arguments are never
    part of a merc_hf checkpoint directory. Returns the commit URL.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    model_dir = Path(model_dir)
    if not (model_dir / "model.safetensors").is_file() or not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(model_dir)!r} is not a saved merc_hf checkpoint (model.safetensors + config.json)"
        )
    files = sorted(
        p
        for p in model_dir.iterdir()
        if p.is_file() and (p.suffix in (".safetensors", ".json", ".png") or p.name == "README.md")
    )
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.create_commit(
        repo_id,
        operations=[CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in files],
        commit_message=commit_message or f"Upload {repo_id} (merc_hf)",
    )
    return str(info)
