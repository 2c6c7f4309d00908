"""Corpus → ``datasets.DatasetDict``, cached by content and checked on every load.

:func:`build_dataset_dict` streams the records of a :class:`~merc_hf.data.records.Corpus` into one Arrow
file per split with ``datasets``' own ``ArrowWriter``, converting a bounded batch at a time, and
memory-maps them. A split given as a list needs little memory beyond the list itself; a split given as a
:class:`~merc_hf.data.records.RecordStream` is read from its files while it is written, so the build
holds about one batch of it at a time. The cache key is a fingerprint of the
input files' *contents* and the role each is read as, plus the reader options (see
:func:`merc_hf.data.cache.fingerprint`), never the path alone, so a changed file is re-read. The manifest
records a checksum of every Arrow file; a cache file that fails it is rebuilt. Features are derived from
the record keys (see :mod:`merc_hf.data.records`); which modalities are present is written into the dataset
description and returned by :func:`modalities`.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import Array2D, ClassLabel, Dataset, DatasetDict, DatasetInfo, Features, List, Value
from datasets.arrow_writer import ArrowWriter

from .cache import cache_dir_error, cache_root, checksum_problem, file_checksum
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
    """``datasets.Features`` for the keys present in the corpus records (the first record's keys; for a
    :class:`~merc_hf.data.records.RecordStream` only that record is read)."""
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
    name: str, fingerprint: str, read: Callable[[], Corpus], *, cache_dir: str | os.PathLike | None = None
) -> DatasetDict:
    """Build (or load from cache) the ``DatasetDict`` of the corpus that ``read()`` returns.

    ``read`` is only called on a cache miss. The cache is one Arrow file per split in
    ``<cache>/<name>-<fingerprint>/`` plus a manifest ``<cache>/<name>-<fingerprint>.json`` with the
    features, the metadata and the size and sha256 of each Arrow file. Files are written under temporary
    names and renamed, the manifest last, so an interrupted build is simply rebuilt; a cache file that no
    longer matches its checksum (truncated, bit-flipped, deleted) is rebuilt with a warning, never served.
    """
    root = cache_root() / "datasets" if cache_dir is None else Path(cache_dir)
    manifest_path = root / f"{name}-{fingerprint}.json"
    folder = root / f"{name}-{fingerprint}"
    manifest = _read_manifest(manifest_path)
    if manifest is not None:
        problem = next(
            (
                found
                for split, expected in manifest["files"].items()
                if (found := checksum_problem(folder / f"{split}.arrow", expected)) is not None
            ),
            None,
        )
        if problem is None:
            return _open(name, folder, manifest)
        warnings.warn(
            f"dataset cache of {name!r}: {problem}; rebuilding it from the input files", stacklevel=3
        )
    corpus = read()
    try:
        manifest = _write_cache(corpus, folder, manifest_path)
    except OSError as exc:
        raise cache_dir_error(root, exc) from None
    return _open(name, folder, manifest)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path``; ``None`` when there is none or it is unreadable (then a warning)."""
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        Features.from_dict(manifest["features"])
        if not all(isinstance(c, dict) for c in manifest["files"].values()):
            raise TypeError("checksums are not objects")
        if not {"description", "citation", "homepage"} <= manifest.keys():
            raise KeyError("metadata")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(
            f"dataset cache manifest {os.fspath(path)!r} is unreadable ({exc}); rebuilding", stacklevel=4
        )
        return None
    return manifest


def _write_cache(corpus: Corpus, folder: Path, manifest_path: Path) -> dict[str, Any]:
    """Write one Arrow file per split of ``corpus`` into ``folder``, then the manifest; return it."""
    features = corpus_features(corpus)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, records in corpus.splits.items():
        path = folder / f"{split}.arrow"
        _write_split(records, features, path)
        files[split] = file_checksum(path)
    manifest = {
        "features": features.to_dict(),
        "files": files,
        "description": _description(corpus, features),
        "citation": corpus.citation,
        "homepage": corpus.homepage,
    }
    tmp = manifest_path.with_name(f".{manifest_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, manifest_path)
    return manifest


# At most this many rows, and about this many bytes of feature arrays, are converted to Arrow at once:
# the copy the conversion makes stays small next to the corpus however large the dataset is.
WRITE_BATCH_ROWS = 1000
WRITE_BATCH_BYTES = 16 << 20


def _write_split(records: Iterable[dict[str, Any]], features: Features, path: Path) -> None:
    """Stream ``records`` into the Arrow file ``path`` (written under a temporary name, then renamed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with ArrowWriter(
            features=features, path=os.fspath(tmp), writer_batch_size=WRITE_BATCH_ROWS
        ) as writer:
            pending = 0
            for record in records:
                writer.write(features.encode_example(record))
                if not writer.current_examples:  # the writer flushed a full batch of rows itself
                    pending = 0
                    continue
                pending += sum(v.nbytes for v in record.values() if isinstance(v, np.ndarray))
                if pending >= WRITE_BATCH_BYTES:
                    writer.write_examples_on_file()
                    pending = 0
            writer.finalize()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _open(name: str, folder: Path, manifest: dict[str, Any]) -> DatasetDict:
    """The memory-mapped ``DatasetDict`` of a verified cache."""
    info = DatasetInfo(
        description=manifest["description"],
        citation=manifest["citation"],
        homepage=manifest["homepage"],
        dataset_name=name,
        features=Features.from_dict(manifest["features"]),
    )
    return DatasetDict(
        {
            split: Dataset.from_file(
                os.fspath(folder / f"{split}.arrow"), info=info.copy(), split=datasets.NamedSplit(split)
            )
            for split in manifest["files"]
        }
    )
