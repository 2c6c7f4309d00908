"""MELD readers: reference feature pickles, COSMIC pickles and the official CSVs.

Accepted inputs (formats in the reference notes, sections 1.4–1.7 and 1.10):

* ``MELD_features_raw1.pkl`` — the MMGCN/M3Net 10-tuple (text 600 / audio 300 / visual 342, dims read
  from the arrays). Its ``trainVid`` merges official train and dev; dev is split back out by id ≥ 1039.
* ``meld_features_roberta.pkl`` — the COSMIC 11-list ``speakers, emotion_labels, sentiment_labels,
  roberta1..4, sentences, trainIds, testIds, validIds``; text = mean of the four layers. Combined with the
  10-tuple it gives M3Net's input.
* ``meld.pkl`` — the COSMIC 7-list ``speakers (9-d one-hot), emotion_labels, sentiment_labels, sentences,
  trainIds, testIds, validIds`` (transcripts; text features from a local encoder).
* ``{train,dev,test}_sent_emo.csv`` — the official CSVs (transcripts; text features from a local encoder).

All four use the same dialogue ids (train ``Dialogue_ID``, dev 1039 + id, test 1153 + id) and the same
speaker indices (order of first appearance in the dialogue), so they give identical labels and speakers.
The splits are the official ones: train 1038 dialogues, validation (dev) 114, test 280.

The CSVs are read twice so that a build holds one dialogue at a time: a first pass checks each file
(everything that could be wrong with it is reported by :func:`read_meld`, as when it held the whole
file), and each split is a :class:`~merc_hf.data.records.RecordStream` that reads its CSV again, one
dialogue per run of rows, whenever it is iterated. A CSV whose dialogues are not each one run of rows
is read into memory instead (its split is a list).
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import DataFormatError, file_errors, names_file_on_failure
from ..records import Corpus, RecordStream, refuse_split_leaks
from ..safe_pickle import load_pickle
from .common import (
    PickleSource,
    _assemble_one,
    assemble_records,
    choose_text_source,
    find_file,
    id_list,
    unpack_fields,
    warn_repaired_transcripts,
)

EMOTION_NAMES = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
SENTIMENT_NAMES = ["neutral", "positive", "negative"]
DEV_OFFSET, TEST_OFFSET = 1039, 1153
FILE_NAMES = {
    "features": "MELD_features_raw1.pkl",
    "roberta": "meld_features_roberta.pkl",
    "transcripts": "meld.pkl",
}
CSV_NAMES = {"train": "train_sent_emo.csv", "validation": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
CSV_COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
# the CSV columns a record is built from; the first _SHARED_COLUMNS repeat a few names over many rows
_KEPT_COLUMNS = ("Speaker", "Emotion", "Sentiment", "Utterance")
_SHARED_COLUMNS = 3
_CSV_ROLES = {"speakers": "Speaker", "emotion": "Emotion", "sentiment": "Sentiment", "sentences": "Utterance"}
_OFFSETS = {"train": 0, "validation": DEV_OFFSET, "test": TEST_OFFSET}
FEATURE_FIELDS = (
    "videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio", "videoVisual",
    "videoSentence", "trainVid", "testVid", "unused",
)  # fmt: skip
ROBERTA_FIELDS = (
    "speakers", "emotion_labels", "sentiment_labels", "roberta1", "roberta2", "roberta3", "roberta4",
    "sentences", "trainIds", "testIds", "validIds",
)  # fmt: skip
TRANSCRIPT_FIELDS = (
    "speakers",
    "emotion_labels",
    "sentiment_labels",
    "sentences",
    "trainIds",
    "testIds",
    "validIds",
)
CITATION = """@inproceedings{poria2019meld,
  title={{MELD}: A Multimodal Multi-Party Dataset for Emotion Recognition in Conversations},
  author={Poria, Soujanya and Hazarika, Devamanyu and Majumder, Navonil and Naik, Gautam and Cambria, Erik and Mihalcea, Rada},
  booktitle={ACL}, year={2019}}"""


def _features_source(path: str) -> PickleSource:
    fields = unpack_fields(
        load_pickle(path), FEATURE_FIELDS, file=path, layout="MELD_features_raw1.pkl 10-tuple"
    )
    train_and_dev = id_list(fields["trainVid"], file=path, field="trainVid")
    try:
        is_dev = [int(v) >= DEV_OFFSET for v in train_and_dev]
    except ValueError:
        raise DataFormatError("MELD dialogue ids must be integers", file=path, field="trainVid") from None
    splits = {
        "train": [v for v, dev in zip(train_and_dev, is_dev) if not dev],
        "validation": [v for v, dev in zip(train_and_dev, is_dev) if dev],
        "test": id_list(fields["testVid"], file=path, field="testVid"),
    }
    roles = {
        "speakers": "videoSpeakers", "emotion": "videoLabels", "text": "videoText",
        "audio": "videoAudio", "visual": "videoVisual", "sentences": "videoSentence",
    }  # fmt: skip
    return PickleSource(path, fields, roles, splits)


def _cosmic_source(path: str, names: tuple[str, ...], layout: str, extra_roles: dict) -> PickleSource:
    fields = unpack_fields(load_pickle(path), names, file=path, layout=layout)
    splits = {
        split: id_list(fields[key], file=path, field=key)
        for split, key in (("train", "trainIds"), ("validation", "validIds"), ("test", "testIds"))
    }
    roles = {"speakers": "speakers", "emotion": "emotion_labels", "sentiment": "sentiment_labels",
             "sentences": "sentences", **extra_roles}  # fmt: skip
    return PickleSource(path, fields, roles, splits)


def _csv_rows(path: str, split: str) -> Iterator[tuple[str, int, list[Any]]]:
    """The non-blank rows of one official CSV: (dialogue id with ``split``'s offset added,
    ``Utterance_ID``, the :data:`_KEPT_COLUMNS` values with ``None`` for one a short row lacks).

    A file that cannot be decoded or parsed fails where that is found; a row with a non-integer id fails
    only once the whole file has been read (no row after it is yielded), so that a decoding error further
    on is the one reported. ``line`` in messages counts non-blank rows, the header being line 1.
    """
    offset = _OFFSETS[split]
    bad_id: DataFormatError | None = None
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            missing = [c for c in CSV_COLUMNS if c not in (header or [])]
            if missing:
                raise DataFormatError(f"missing columns {missing}; found {header}", file=path)
            # a repeated column name means its last occurrence, as in csv.DictReader
            at = {name: i for i, name in enumerate(header)}
            at_dialogue, at_utterance = at["Dialogue_ID"], at["Utterance_ID"]
            kept = [at[c] for c in _KEPT_COLUMNS]
            line = 1
            for row in reader:
                # blank rows are skipped, as csv.DictReader does
                if not row or bad_id is not None:
                    continue
                line += 1
                width = len(row)
                dialogue_text = row[at_dialogue] if at_dialogue < width else None
                utterance_text = row[at_utterance] if at_utterance < width else None
                try:
                    dialogue, utterance = int(dialogue_text), int(utterance_text)
                except (TypeError, ValueError):
                    bad_id = DataFormatError(
                        f"line {line}: Dialogue_ID/Utterance_ID must be integers, got "
                        f"{dialogue_text!r}/{utterance_text!r}",
                        file=path,
                        field="Dialogue_ID",
                    )
                    continue
                yield str(dialogue + offset), utterance, [row[i] if i < width else None for i in kept]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataFormatError(f"cannot read CSV ({exc})", file=path) from None
    if bad_id is not None:
        raise bad_id


def _duplicated_utterance(path: str, vid: str) -> DataFormatError:
    """The error for a dialogue that repeats an ``Utterance_ID``."""
    return DataFormatError("duplicated Utterance_ID", file=path, dialogue=vid, field="Utterance_ID")


def _in_utterance_order(numbers: list[int], columns: list[list[Any]]) -> list[list[Any]]:
    """One dialogue's column lists reordered by ``Utterance_ID`` (stable, like sorting the rows)."""
    order = sorted(range(len(numbers)), key=numbers.__getitem__)
    if all(i == j for i, j in enumerate(order)):
        return columns
    return [[values[i] for i in order] for values in columns]


@names_file_on_failure
def read_meld_csv(path: str | os.PathLike, split: str) -> PickleSource:
    """Read one official CSV into the same field layout as the pickles (dialogue id → per-utterance list).

    Holds the whole file; :func:`read_meld` uses it for a CSV whose dialogues are not each one run of
    rows (see :func:`_scan_csv`). Rows are streamed: only the four columns the records use are kept,
    with the speaker, emotion and sentiment names shared between rows, so reading needs little more
    memory than the transcripts themselves. Errors come in the order of a read that first loads every
    row: an unreadable file (bad UTF-8, malformed CSV) before the first row with a non-integer id,
    before a duplicated ``Utterance_ID`` (first dialogue first). ``line`` in messages counts non-blank
    rows, the header being line 1.
    """
    path = os.fspath(path)
    # dialogue id -> (Utterance_IDs, one list per _KEPT_COLUMNS entry), rows in file order
    dialogues: dict[str, tuple[list[int], list[list[Any]]]] = {}
    shared: dict[str, str] = {}  # one object per distinct speaker/emotion/sentiment name
    for vid, utterance, row in _csv_rows(path, split):
        entry = dialogues.get(vid)
        if entry is None:
            entry = dialogues[vid] = ([], [[] for _ in _KEPT_COLUMNS])
        entry[0].append(utterance)
        for column, (value, values) in enumerate(zip(row, entry[1])):
            if column < _SHARED_COLUMNS and value is not None:
                value = shared.setdefault(value, value)
            values.append(value)
    fields: dict[str, dict[str, list[Any]]] = {c: {} for c in _KEPT_COLUMNS}
    for vid, (numbers, columns) in dialogues.items():
        if len(set(numbers)) != len(numbers):
            raise _duplicated_utterance(path, vid)
        for name, values in zip(_KEPT_COLUMNS, _in_utterance_order(numbers, columns)):
            fields[name][vid] = values
    return PickleSource(path, fields, _CSV_ROLES, {split: list(dialogues)})


def _dialogue_runs(path: str, split: str) -> Iterator[tuple[str, list[int], list[list[Any]]]]:
    """Runs of consecutive rows with the same dialogue id: (id, Utterance_IDs, column lists), file order.

    A run is yielded as soon as the next one starts, so only one is held at a time.
    """
    vid: str | None = None
    numbers: list[int] = []
    columns: list[list[Any]] = []
    for row_vid, utterance, row in _csv_rows(path, split):
        if row_vid != vid:
            if vid is not None:
                yield vid, numbers, columns
            vid, numbers, columns = row_vid, [], [[] for _ in _KEPT_COLUMNS]
        numbers.append(utterance)
        for values, value in zip(columns, row):
            values.append(value)
    if vid is not None:
        yield vid, numbers, columns


def _csv_record(
    path: str, vid: str, numbers: list[int], columns: list[list[Any]], label_role: str, names: list[str]
) -> tuple[dict[str, Any], int]:
    """The record of one dialogue's rows, as :func:`assemble_records` builds it from
    :func:`read_meld_csv`'s table, and how many of its transcripts had C1 controls repaired."""
    ordered = _in_utterance_order(numbers, columns)
    source = PickleSource(path, {c: {vid: v} for c, v in zip(_KEPT_COLUMNS, ordered)}, _CSV_ROLES, {})
    owners = {"sentences": source, "audio": None, "visual": None}
    with file_errors(path):
        record = _assemble_one([source], vid, source, label_role, names, owners, None)
    return record, source.table.repaired_utterances


@dataclass
class _CsvScan:
    """What checking one CSV found: its dialogue ids in file order, the first error its records would
    raise (``None``: none), and how many transcripts have C1 controls repaired."""

    ids: list[str]
    error: DataFormatError | None
    repaired: int


@names_file_on_failure
def _scan_csv(path: str, split: str, label_role: str, names: list[str]) -> _CsvScan | None:
    """Check one CSV, holding one dialogue at a time; ``None`` when a dialogue's rows are not one run.

    Raises what :func:`read_meld_csv` raises, in the same order. Each dialogue's record is built (and
    dropped) so that what building it would raise is found now, without holding the records; the first
    such error is returned rather than raised, since errors of the other CSVs and leaks between them are
    reported first. A CSV whose rows are not grouped by dialogue (valid, but not how the official files
    are written) is left to :func:`read_meld_csv`.
    """
    ids: list[str] = []
    seen: set[str] = set()
    duplicated: str | None = None
    error: DataFormatError | None = None
    repaired = 0
    for vid, numbers, columns in _dialogue_runs(path, split):
        if vid in seen:
            return None
        seen.add(vid)
        ids.append(vid)
        if duplicated is None and len(set(numbers)) != len(numbers):
            duplicated = vid
        if duplicated is None and error is None:
            try:
                repaired += _csv_record(path, vid, numbers, columns, label_role, names)[1]
            except DataFormatError as exc:
                error = exc
    if duplicated is not None:
        raise _duplicated_utterance(path, duplicated)
    return _CsvScan(ids, error, repaired)


def _csv_records(
    path: str, split: str, ids: tuple[str, ...], label_role: str, names: list[str]
) -> Iterator[dict[str, Any]]:
    """The records of a CSV that :func:`_scan_csv` checked, read again, one dialogue at a time."""
    expected = iter(ids)
    with file_errors(path):
        for vid, numbers, columns in _dialogue_runs(path, split):
            if next(expected, None) != vid:
                break
            yield _csv_record(path, vid, numbers, columns, label_role, names)[0]
        else:
            if next(expected, None) is None:
                return
    raise DataFormatError(
        "the file changed after it was checked (its dialogues differ); read it again", file=path, split=split
    )


def read_meld(
    data_dir: str | os.PathLike | None = None,
    *,
    features_file: str | os.PathLike | None = None,
    roberta_file: str | os.PathLike | None = None,
    transcripts_file: str | os.PathLike | None = None,
    labels: str = "emotion",
    text: str = "auto",
) -> Corpus:
    """Read MELD from the reference pickles or, when no pickle is given, the official CSVs.

    Args:
        data_dir: folder searched for the canonical names (:data:`FILE_NAMES`, :data:`CSV_NAMES`).
        features_file, roberta_file, transcripts_file: explicit pickle paths (override ``data_dir``).
        labels: ``"emotion"`` (7 classes) or ``"sentiment"`` (3 classes; not in the 10-tuple).
        text: ``"roberta"``, ``"features"``, ``"none"`` or ``"auto"`` (RoBERTa, else 10-tuple text, else none).

    From the pickles each split is a list of records; from the CSVs it is a
    :class:`~merc_hf.data.records.RecordStream` (see the module docstring), checked in full here.
    """
    if labels not in ("emotion", "sentiment"):
        raise ValueError(f"labels must be 'emotion' or 'sentiment', got {labels!r}")
    names = EMOTION_NAMES if labels == "emotion" else SENTIMENT_NAMES
    paths = {
        "features": find_file(data_dir, features_file, FILE_NAMES["features"]),
        "roberta": find_file(data_dir, roberta_file, FILE_NAMES["roberta"]),
        "transcripts": find_file(data_dir, transcripts_file, FILE_NAMES["transcripts"]),
    }
    sources: dict[str, PickleSource] = {}
    if paths["features"]:
        sources["features"] = _features_source(paths["features"])
    if paths["roberta"]:
        text_roles = {"text": ("roberta1", "roberta2", "roberta3", "roberta4")}
        sources["roberta"] = _cosmic_source(
            paths["roberta"], ROBERTA_FIELDS, "COSMIC RoBERTa 11-list", text_roles
        )
    if paths["transcripts"]:
        sources["transcripts"] = _cosmic_source(paths["transcripts"], TRANSCRIPT_FIELDS, "COSMIC 7-list", {})

    if sources:
        text_source = choose_text_source(sources, text, FILE_NAMES)
        primary = next(iter(sources.values()))
        splits = assemble_records(
            list(sources.values()),
            splits=primary.splits,
            label_role=labels,
            label_names=names,
            text_source=text_source,
        )
    else:
        csv_paths = {s: find_file(data_dir, None, n) for s, n in CSV_NAMES.items()}
        if not all(csv_paths.values()):
            raise DataFormatError(
                f"no MELD file found; expected {sorted(FILE_NAMES.values())} or the CSVs {sorted(CSV_NAMES.values())}",
                file=data_dir,
            )
        if text in ("roberta", "features"):
            raise DataFormatError(
                f"text={text!r} needs a feature pickle; the CSVs hold transcripts only", file=data_dir
            )
        checked: dict[str, _CsvScan | PickleSource] = {}
        for split, path in csv_paths.items():
            scan = _scan_csv(path, split, labels, names)
            checked[split] = scan if scan is not None else read_meld_csv(path, split)
        # each CSV has its own split and id offset, so a leak can only show across files
        refuse_split_leaks(
            {s: c.ids if isinstance(c, _CsvScan) else c.splits[s] for s, c in checked.items()}, file=csv_paths
        )
        splits = {}
        for split, found in checked.items():
            if isinstance(found, PickleSource):
                splits.update(
                    assemble_records(
                        [found], splits=found.splits, label_role=labels, label_names=names, text_source=None
                    )
                )
                continue
            if found.error is not None:
                raise found.error
            warn_repaired_transcripts(csv_paths[split], found.repaired, stacklevel=2)
            ids = tuple(found.ids)
            splits[split] = RecordStream(
                ids, functools.partial(_csv_records, csv_paths[split], split, ids, labels, names)
            )
    return Corpus(
        name="meld",
        splits=splits,
        class_names={"labels": names},
        description=(
            f"MELD, {len(names)}-way {labels} ({', '.join(names)}), read from "
            + ", ".join(sorted({os.path.basename(p) for p in paths.values() if p} or set(CSV_NAMES.values())))
            + ". Splits: official train / dev (validation) / test."
        ),
        citation=CITATION,
        homepage="https://affective-meld.github.io/",
        sources=[p for p in paths.values() if p]
        or [os.path.join(os.fspath(data_dir), n) for n in CSV_NAMES.values()],
    )
