"""Corpus → ``datasets.DatasetDict``, cached by content.

:func:`build_dataset_dict` turns the records of a :class:`~merc_hf.data.records.Corpus` into Arrow
datasets with ``Dataset.from_generator``. The cache key is a fingerprint of the input files' *contents*
plus the reader options (see :func:`merc_hf.data.cache.fingerprint`), never the path alone, so a changed
file is re-read. Features are derived from the record keys (see :mod:`merc_hf.data.records`); which
modalities are present is written into the dataset description and returned by :func:`modalities`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import Array2D, ClassLabel, Dataset, DatasetDict, DatasetInfo, Features, List, Value

from .cache import cache_root
from .records import MODALITIES, Corpus

_STRING_KEYS = ("dialogue_id", "conversation_id", "sample_id", "transcript")
_INT_LIST_KEYS = ("speakers", "misleading_modality", "misleading_class", "label_source")
_STRING_LIST_KEYS = ("utterances", "speaker_names")
# Utterance-level records (CH-SIMS family): one scalar per example.
_FLOAT_KEYS = (
    "regression_label",
    "regression_label_text",
    "regression_label_audio",
    "regression_label_visual",
)
_INT_KEYS = ("inconsistent_modality",)


def corpus_features(corpus: Corpus) -> Features:
    """``datasets.Features`` for the keys present in the corpus records."""
    first = next((r for records in corpus.splits.values() for r in records), None)
    if first is None:
        raise ValueError(f"corpus {corpus.name!r} has no records")
    spec: dict[str, Any] = {}
    for key, value in first.items():
        if key in _STRING_KEYS:
            spec[key] = Value("string")
        elif key in corpus.class_names:
            label = ClassLabel(names=list(corpus.class_names[key]))
            spec[key] = label if _is_int_scalar(value) else List(label)
        elif key in MODALITIES:
            spec[key] = Array2D(shape=(None, int(value.shape[1])), dtype="float32")
        elif key in _INT_LIST_KEYS:
            spec[key] = List(Value("int32"))
        elif key in _STRING_LIST_KEYS:
            spec[key] = List(Value("string"))
        elif key in _FLOAT_KEYS:
            spec[key] = Value("float32")
        elif key in _INT_KEYS:
            spec[key] = Value("int32")
        elif key == "pairs":
            spec[key] = List(List(Value("int32"), length=2))
        elif key == "cause_spans":
            spec[key] = List(List(Value("int32"), length=4))
        else:
            raise ValueError(f"corpus {corpus.name!r}: no feature type known for record key {key!r}")
    return Features(spec)


def _is_int_scalar(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def modalities(dataset: Dataset | DatasetDict) -> tuple[str, ...]:
    """The feature modalities (``text``, ``audio``, ``visual``) present in a dataset."""
    if isinstance(dataset, DatasetDict):
        dataset = next(iter(dataset.values()))
    return tuple(m for m in MODALITIES if m in dataset.features)


def _description(corpus: Corpus, features: Features) -> str:
    present = [f"{m} ({features[m].shape[1]}-d)" for m in MODALITIES if m in features]
    absent = [m for m in MODALITIES if m not in features]
    return (
        f"{corpus.description}\nModalities present: {', '.join(present) or 'none'}."
        f" Modalities absent: {', '.join(absent) or 'none'}."
    )


def build_dataset_dict(
    name: str, fingerprint: str, read: Callable[[], Corpus], *, cache_dir: str | None = None
) -> DatasetDict:
    """Build (or load from cache) the ``DatasetDict`` of the corpus that ``read()`` returns.

    ``read`` is only called on a cache miss. A small manifest next to the Arrow cache stores the features
    and metadata, written last, so an interrupted build is simply rebuilt.
    """
    root = cache_root() / "datasets" if cache_dir is None else Path(cache_dir)
    manifest_path = root / f"{name}-{fingerprint}.json"
    corpus: Corpus | None = None
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        features = Features.from_dict(manifest["features"])
    else:
        corpus = read()
        features = corpus_features(corpus)
        manifest = {
            "features": features.to_dict(),
            "splits": {split: len(records) for split, records in corpus.splits.items()},
            "description": _description(corpus, features),
            "citation": corpus.citation,
            "homepage": corpus.homepage,
        }

    def generate(split: str):
        nonlocal corpus
        if corpus is None:  # the manifest survived but the Arrow cache was deleted
            corpus = read()
        yield from corpus.splits[split]

    info = DatasetInfo(
        description=manifest["description"],
        citation=manifest["citation"],
        homepage=manifest["homepage"],
        dataset_name=name,
    )
    with _quiet_progress():
        dsd = DatasetDict(
            {
                split: Dataset.from_generator(
                    generate,
                    features=features,
                    gen_kwargs={"split": split},
                    fingerprint=f"{name}-{fingerprint}-{split}",
                    cache_dir=str(root / "arrow"),
                    split=datasets.NamedSplit(split),
                    info=info.copy(),
                )
                if size
                else Dataset.from_dict({k: [] for k in features}, features=features, info=info.copy())
                for split, size in manifest["splits"].items()
            }
        )
    if not manifest_path.is_file():
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest))
    return dsd


class _quiet_progress:
    """Hide datasets' per-split "Generating ..." bars for small builds; keep the user's setting after."""

    def __enter__(self) -> None:
        self._was_enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()

    def __exit__(self, *exc: object) -> None:
        if self._was_enabled:
            datasets.enable_progress_bars()
