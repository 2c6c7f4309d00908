"""Hub helpers: ``hub_configs/*.json`` experiment files, model cards with evaluation results, pushing.

A hub config describes one published checkpoint (file name = Hub id without the org,
``<backbone>[-<calibration>]-<dataset>``)::

    {"model": {"model_type": "merc_m3net", ...config fields...},
     "calibration": {"name": "cmerc", ...hyper-parameters...} | {"name": "none"},
     "data": {"name": "synthetic", "options": {...load_dataset options...}, "text_encoder": null},
     "training": {...transformers.TrainingArguments fields...}}

The repository's top-level ``hub_configs/`` and ``model_cards/`` folders are installed with the package
(``merc_hf/hub_configs``, ``merc_hf/model_cards`` in a wheel), so ``load_hub_config("m3net-synthetic")``
works from any directory; in a source checkout or an editable install they are read in place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

HUB_CONFIG_SECTIONS = ("model", "calibration", "data", "training")
CARD_TEMPLATE = "merc_model_card.md"
LICENSE = "mit"
#: transcript language of each dataset family (model cards' ``language``); synthetic data has none
DATASET_LANGUAGES = {
    "iemocap": "en",
    "meld": "en",
    "ecf": "en",
    "mosi": "en",
    "mosei": "en",
    "chsims": "zh",
    "chsims2": "zh",
    "mecad": "zh",
    "mec4": "zh",
}
#: The Hub's pipeline tag for every merc_hf checkpoint. The Hub has no tag for per-utterance labels of a
#: conversation; each utterance is classified, so ``text-classification`` is the closest, and with
#: ``library_name: merc_hf`` the Hub shows no inference widget that would feed it plain text.
PIPELINE_TAG = "text-classification"


def shipped_folder(name: str) -> Path:
    """The folder ``name`` (``"hub_configs"`` or ``"model_cards"``) shipped with merc_hf: inside the
    installed package, or at the top of the source checkout this package is imported from."""
    installed = resources.files("merc_hf") / name
    if installed.is_dir():
        return Path(str(installed))
    source = Path(__file__).resolve().parents[2] / name
    if source.is_dir():
        return source
    raise FileNotFoundError(
        f"merc_hf was installed without its {name}/ folder (looked in {installed}, {source})"
    )


def hub_config_names() -> list[str]:
    """Names of the hub configs shipped with merc_hf (file names without ``.json``)."""
    return sorted(p.stem for p in shipped_folder("hub_configs").glob("*.json"))


def hub_config_path(name_or_path: str | os.PathLike) -> Path:
    """A hub config file: ``name_or_path`` itself when it is an existing file, else the shipped config of
    that name (``"m3net-cmerc-synthetic"``, with or without ``.json``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.parent == Path(".") and path.suffix in ("", ".json"):
        shipped = shipped_folder("hub_configs") / f"{path.stem}.json"
        if shipped.is_file():
            return shipped
    raise FileNotFoundError(
        f"hub config {os.fspath(name_or_path)!r} not found: give a JSON file or one of the shipped names "
        f"({', '.join(hub_config_names())})"
    )


def card_template_path() -> Path:
    """The model-card template shipped with merc_hf."""
    return shipped_folder("model_cards") / CARD_TEMPLATE


def load_hub_config(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a hub config, given by file or by shipped name (:func:`hub_config_names`); every
    section is optional, unknown sections are an error."""
    path = hub_config_path(name_or_path)
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"hub config {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"hub config {str(path)!r} must be a JSON object")
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
    template_path: str | os.PathLike | None = None,
    repo_id: str | None = None,
    base_model: str | None = None,
    raw_text: bool | None = None,
    split: str = "test",
    extra: Mapping[str, Any] | None = None,
):
    """A ``huggingface_hub.ModelCard`` rendered from ``template_path`` (default: the shipped template).

    The metadata carries ``license`` (MIT), ``language`` (of the dataset's transcripts, none for synthetic
    data), ``datasets``, ``metrics``, ``pipeline_tag`` (:data:`PIPELINE_TAG`), ``base_model`` (the Hub id of
    the text encoder that made the text features, when there was one), ``library_name: merc_hf`` and the
    report's key results in ``model-index``: weighted F1, accuracy, ECE, MCE, AUROC and CEL for an emotion
    report (:func:`~merc_hf.metrics.reliability_report`, binning recorded in ``metric_args``); Pair-F1,
    Pair-AUPRC and the SemEval weighted Pair-F1 for a pair report
    (:func:`~merc_hf.metrics.pair_extraction_report`, decision threshold in ``metric_args``); the sentiment
    scores for a CMC report. ``repo_id`` (default ``<org>/<model_name>``) is what the card's loading snippet
    passes to ``from_pretrained`` and to the pipeline; ``raw_text`` (default: whether ``base_model`` is given)
    says whether the snippet may pass transcripts alone (the checkpoint's processor records a text encoder)."""
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
        metrics=list(dict.fromkeys(r.metric_type for r in results if r is not None)),
        eval_results=[r for r in results if r is not None],
        license=LICENSE,
        language=DATASET_LANGUAGES.get(dataset_name),
        datasets=[dataset_name],
        pipeline_tag=PIPELINE_TAG,
        base_model=base_model,
    )
    repo_id = repo_id or f"<org>/{model_name}"
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path or card_template_path()),
        model_name=model_name,
        repo_id=repo_id,
        usage=_usage_snippet(
            repo_id,
            config,
            pairs=pairs,
            sentiment=sentiment,
            raw_text=base_model is not None if raw_text is None else raw_text,
        ),
        dataset_name=dataset_name,
        dataset_description=dataset_description,
        model_type=getattr(config, "model_type", "?"),
        task_name=task_name.lower(),
        evaluation_notes=notes,
        calibration=json.dumps(getattr(config, "calibration", None) or {"name": "none"}, indent=2),
        report=json.dumps(report, indent=2),
        **(extra or {}),
    )


#: the merc_hf pipeline task (:mod:`merc_hf.pipelines`), for emotion, pair and sentiment checkpoints alike
PIPELINE_TASK = "conversational-emotion"


def _usage_snippet(repo_id: str, config: Any, *, pairs: bool, sentiment: bool, raw_text: bool) -> str:
    """Python code for the card: load the checkpoint, and run the pipeline on an input of the right shape."""
    per = " per frame" if sentiment else ""
    value = "[[...]]" if sentiment else "[...]"
    fields = [] if sentiment else ['"speaker": "A"']
    fields.append('"text": "I got the job!"')
    for m in ("text", "audio", "visual"):
        dim = getattr(config, f"{m}_dim", None)
        if dim is not None and not (m == "text" and raw_text):
            fields.append(f'"{"text_features" if m == "text" else m}": {value}  # {dim} floats{per}')
    lines = [
        "import merc_hf  # registers the merc_hf architectures with AutoModel, and the pipelines",
        "from transformers import AutoModel",
        "",
        f'model = AutoModel.from_pretrained("{repo_id}")',
        f'predict = merc_hf.pipeline("{PIPELINE_TASK}", model="{repo_id}")',
    ]
    lines.append("clip = {" if sentiment else "conversation = [{  # one dict per turn")
    lines += [f"    {f.replace('  #', ',  #', 1) if '#' in f else f + ','}" for f in fields]
    if sentiment:
        lines += ["}", "print(predict(clip))"]
    else:
        lines += [
            "}, ...]",
            "print(predict(conversation))" if pairs else "print(predict(conversation, reliability=True))",
        ]
    return "\n".join(lines)


class HubPushError(RuntimeError):
    """Uploading a checkpoint failed; the message says why and what to do."""


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
    part of a merc_hf checkpoint directory. Returns the commit URL. Any failure of the Hub calls (no
    network, ``HF_HUB_OFFLINE``, missing or read-only token, ...) raises :class:`HubPushError` saying what
    failed and what to do; the original error is its ``__cause__``.
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
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations=[CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in files],
            commit_message=commit_message or f"Upload {repo_id} (merc_hf)",
        )
    except Exception as err:  # every Hub failure becomes one actionable message
        raise HubPushError(_push_failure(err, model_dir, repo_id)) from err
    return str(info)


def _push_failure(err: Exception, model_dir: Path, repo_id: str) -> str:
    """What went wrong when pushing, in one paragraph: the error, the likely fix, how to retry."""
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, OfflineModeIsEnabled):
        advice = "HF_HUB_OFFLINE is set: unset it (and have network access) to push"
    elif isinstance(err, LocalTokenNotFoundError) or status == 401:
        advice = "no valid token: run `hf auth login` or set HF_TOKEN (or pass --hub_token) with write access"
    elif status == 403:
        advice = f"the token may not write to {repo_id!r}: use a write token for that user or organisation"
    elif isinstance(err, HfHubHTTPError):
        advice = "the Hub refused the request; check the repo id and your token's permissions"
    else:
        advice = (
            "huggingface.co could not be reached: check the network (or a proxy), and that a token is set "
            "(`hf auth login` or HF_TOKEN); set HF_HUB_OFFLINE=1 to work offline without trying"
        )
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (
        f"pushing {str(model_dir)!r} to {repo_id!r} failed ({type(err).__name__}: {message}). {advice}. "
        f'The checkpoint is saved; to retry: python -c "from merc_hf.hub import push_checkpoint; '
        f"push_checkpoint('{model_dir}', '{repo_id}')\""
    )


# --------------------------------------------------------------------------------------------------
# Checkpoint integrity
# --------------------------------------------------------------------------------------------------


class CheckpointError(OSError):
    """A checkpoint file is truncated or corrupt. ``file`` is that file; ``usable`` the latest complete
    checkpoint before it in the same output folder, or ``None``."""

    def __init__(self, message: str, *, file: Path, usable: Path | None) -> None:
        super().__init__(message)
        self.file, self.usable = file, usable


def _file_problem(path: Path) -> str | None:
    """Why one checkpoint file cannot be loaded, or ``None``. safetensors files: the header and that the
    file holds every tensor it declares; torch files (``optimizer.pt``, ``scheduler.pt``, ``rng_state.pth``,
    ``training_args.bin``): the zip structure and the CRC-32 of every member; JSON files: that they parse."""
    import zipfile
    import zlib

    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(os.fspath(path), framework="pt") as fh:
                fh.keys()
        elif path.suffix in (".pt", ".pth", ".bin"):
            if not zipfile.is_zipfile(path):
                return "not a complete torch zip archive"
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                return f"member {bad!r} fails its CRC check"
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # safetensors raises its own SafetensorError, not an OSError
        if type(exc).__name__ != "SafetensorError":
            raise
        return f"SafetensorError: {exc}"
    return None


def _checkpoint_problem(folder: Path, weights_only: bool) -> tuple[Path, str] | None:
    names = sorted(p for p in folder.iterdir() if p.is_file())
    if weights_only:
        names = [p for p in names if p.suffix == ".safetensors" or p.name == "config.json"]
    for path in names:
        problem = _file_problem(path)
        if problem is not None:
            return path, problem
    return None


def _step(folder: Path) -> int | None:
    prefix, _, number = folder.name.rpartition("-")
    return int(number) if prefix == "checkpoint" and number.isdigit() else None


def check_checkpoint(folder: str | os.PathLike, *, weights_only: bool = False) -> None:
    """Raise :class:`CheckpointError` naming the file when a checkpoint folder holds a truncated or corrupt
    file, and the latest complete ``checkpoint-<step>`` before it in the same output folder (to resume from).

    ``weights_only`` checks only ``config.json`` and the safetensors files (what ``from_pretrained``
    reads); otherwise the trainer state files too (what resuming reads). Used by
    :meth:`merc_hf.training.MercTrainer.train` on resume and by the merc_hf backbones' ``from_pretrained``.
    A changed byte inside a tensor's data is not detected (safetensors has no checksum); a truncated or
    corrupt header, a missing tensor and any damage to the torch zip files are.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    found = _checkpoint_problem(folder, weights_only)
    if found is None:
        return
    path, problem = found
    step = _step(folder)
    earlier = sorted(
        (
            p
            for p in folder.parent.glob("checkpoint-*")
            if p.is_dir() and p != folder and _step(p) is not None
        ),
        key=_step,
        reverse=True,
    )
    usable = next(
        (p for p in earlier if (step is None or _step(p) < step) and _checkpoint_problem(p, False) is None),
        None,
    )
    advice = (
        f"the latest complete checkpoint before it is {os.fspath(usable)!r} "
        f"(resume_from_checkpoint={os.fspath(usable)!r})"
        if usable is not None
        else f"no earlier complete checkpoint in {os.fspath(folder.parent)!r}"
    )
    raise CheckpointError(
        f"checkpoint file {os.fspath(path)!r} is truncated or corrupt ({problem}); {advice}",
        file=path,
        usable=usable,
    )
