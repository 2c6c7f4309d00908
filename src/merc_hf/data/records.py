"""Python records: what every reader returns, and the checks every reader applies.

A reader turns files into a :class:`Corpus`: for each split the plain-dict records, one per dialogue
(or conversation), or one per utterance (video clip) for the utterance-level sentiment datasets of the
CH-SIMS family. Records hold only Python/numpy values — no torch, no ``datasets`` — so readers stay pure
and easy to test. :mod:`merc_hf.data.builders` turns a corpus into a ``datasets.DatasetDict``.

A split is a list of records, or a :class:`RecordStream` when the whole split need not be held in memory
(the official MELD CSVs): its record ids are known up front (``ids``, ``len()``), and each iteration reads
the files again and yields fresh records, equal to those of the previous iteration. Code that only
iterates a split works with both; code that indexes a split or changes its records in place must first
turn a stream into a list (``list(stream)``).

Record keys understood by the builders (all optional except the id). Any key named in
``Corpus.class_names`` becomes a ``ClassLabel`` — a list of them for a list of ints (dialogues), a single
one for an int (utterance level).

Dialogue level (one record = one dialogue or conversation):

=========================  =======================================================================
``dialogue_id``            str — emotion-recognition datasets (one record = one dialogue)
``conversation_id``        str — emotion–cause datasets (one record = one conversation)
``speakers``               list[int] — speaker index by order of first appearance in the dialogue
``labels``                 list[int] — per-utterance emotion class (names in ``Corpus.class_names``)
``emotions``               list[int] — per-utterance emotion class of emotion–cause datasets
``sentiment``              list[int] — per-utterance sentiment class (MELD)
``text/audio/visual``      float32 array ``(T, D_m)`` — utterance features of one modality
``utterances``             list[str] — transcripts
``pairs``                  list[[int, int]] — (emotion utterance, cause utterance), 0-based
=========================  =======================================================================

Utterance level (one record = one video clip; CH-SIMS, CH-SIMS v2, MOSI, MOSEI and the synthetic
``chsims-like`` preset, see :mod:`merc_hf.data.readers.mmsa`):

=========================  =======================================================================
``sample_id``              str — MMSA ``id`` (``"<video_id>$_$<clip_id>"``)
``transcript``             str — MMSA ``raw_text``, when present
``text/audio/visual``      float32 array ``(L_m, D_m)`` — one feature *sequence* per modality,
                           trimmed to its true length (at least one frame)
``regression_label``       float — multimodal label M (SIMS family [-1, 1], MOSI/MOSEI [-3, 3])
``label``                  int — 3-class by sign of M: 0 negative (< 0), 1 neutral (= 0),
                           2 positive (> 0)
``regression_label_text``  float — unimodal labels (also ``_audio``, ``_visual``); SIMS family and
                           ``chsims-like`` only
``label_text``             int — their 3-class labels (also ``label_audio``, ``label_visual``)
``inconsistent_modality``  int — synthetic ground truth: -1 none, 0 text, 1 audio, 2 visual
=========================  =======================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DataFormatError

MODALITIES = ("text", "audio", "visual")
SPLITS = ("train", "validation", "test")


class RecordStream:
    """A split whose records are read from the files again on every iteration, one at a time.

    For inputs too large to hold as a list of records: ``ids`` (the record ids in order) are known when
    the stream is made, and ``open_records()`` returns a fresh iterator over the records, which must
    yield exactly one record per id, in that order. Each ``iter()`` calls it again, so every iteration
    yields new dicts (changing one does not change the next iteration's). Errors met while reading
    (for instance a file changed since it was checked) surface from the iteration.
    """

    def __init__(self, ids: Iterable[Any], open_records: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._ids = tuple(str(i) for i in ids)
        self._open_records = open_records

    @property
    def ids(self) -> tuple[str, ...]:
        """The record ids, in the order the records come."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._open_records())

    def __repr__(self) -> str:
        return f"RecordStream({len(self)} records)"


Split = list[dict[str, Any]] | RecordStream


@dataclass
class Corpus:
    """What a reader returns: records per split plus the metadata the builders need.

    Each split is a list of records or a :class:`RecordStream`, which is read again on every iteration
    (see the module docstring). ``modalities`` and ``feature_dims`` look at the first record only, which
    for a stream reads the files up to that record.
    """

    name: str
    splits: dict[str, Split]
    class_names: dict[str, list[str]]
    description: str = ""
    citation: str = ""
    homepage: str = ""
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # the last line of defence against a train/test leak; readers check earlier, naming the exact file
        # (a stream's ids are known up front: checking them does not read its files)
        refuse_split_leaks(
            {
                split: records.ids if isinstance(records, RecordStream) else (_record_id(r) for r in records)
                for split, records in self.splits.items()
            },
            file=", ".join(self.sources) or self.name,
        )

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities with feature matrices in this corpus (the others are absent from the features)."""
        first = next((r for records in self.splits.values() for r in records), {})
        return tuple(m for m in MODALITIES if m in first)

    def feature_dims(self) -> dict[str, int]:
        """Feature dimension of each modality in :attr:`modalities`, from the first record."""
        first = next((r for records in self.splits.values() for r in records), {})
        return {m: int(first[m].shape[1]) for m in self.modalities}


_ID_KEYS = ("dialogue_id", "conversation_id", "sample_id")


def _record_id(record: Mapping[str, Any]) -> str | None:
    return next((str(record[k]) for k in _ID_KEYS if k in record), None)


def refuse_split_leaks(
    ids_by_split: Mapping[str, Iterable[Any]],
    *,
    file: str | os.PathLike | Mapping[str, str | os.PathLike],
    field: str | None = None,
) -> None:
    """A dialogue (or sample) id may belong to one split only: one in two splits is a train/test leak.

    ``file`` is the file the ids come from, or a mapping split -> file when each split has its own. The
    error names both splits (and both files when they differ) and the id.
    """
    owner: dict[str, str] = {}
    for split, ids in ids_by_split.items():
        for value in ids:
            if value is None:
                continue
            vid = str(value)
            first = owner.setdefault(vid, split)
            if first == split:
                continue
            if isinstance(file, Mapping):
                here, there = os.fspath(file[split]), os.fspath(file[first])
                also = f" (also in {there!r})" if there != here else ""
            else:
                here, also = os.fspath(file), ""
            raise DataFormatError(
                f"id is in both split {first!r}{also} and split {split!r}: a leak between splits",
                file=here,
                dialogue=vid,
                split=split,
                field=field,
            )


def repair_c1_controls(text: str) -> tuple[str, bool]:
    """Undo Windows-1252 punctuation that was decoded as C1 control characters (U+0080-U+009F).

    Such text (``'don\x92t'`` in the COSMIC ``meld.pkl``) came from cp1252 bytes read as latin-1: each
    C1 character is mapped back through its cp1252 meaning (``'\x92'`` -> ``'\u2019'``), which is what
    the official MELD CSVs hold. The five code points cp1252 leaves undefined are kept. Returns the text
    and whether anything changed.
    """
    if not any("\x80" <= ch <= "\x9f" for ch in text):
        return text, False
    repaired = text.translate(_C1_TO_CP1252)
    return repaired, repaired != text


def _cp1252(code: int) -> str | None:
    try:
        return bytes([code]).decode("cp1252")
    except UnicodeDecodeError:
        return None


_C1_TO_CP1252 = {code: ch for code in range(0x80, 0xA0) if (ch := _cp1252(code)) is not None}


def speaker_indices(names: Sequence[Any]) -> list[int]:
    """Index each speaker by order of first appearance: ``['M', 'F', 'M'] -> [0, 1, 0]``."""
    order: dict[Any, int] = {}
    return [order.setdefault(name, len(order)) for name in names]


def feature_matrix(
    rows: Any,
    *,
    file: str | os.PathLike,
    dialogue: object,
    field: str,
    length: int,
    dim: int | None = None,
) -> np.ndarray:
    """Stack one dialogue's per-utterance vectors into a finite float32 ``(length, dim)`` matrix.

    Raises :class:`DataFormatError` naming file, dialogue and field when the rows are ragged, have
    the wrong count or dimension, or hold NaN/inf.
    """
    try:
        matrix = np.asarray(rows)
        if matrix.dtype.kind == "c" or (
            matrix.dtype == object and any(isinstance(v, complex) for v in matrix.flat)
        ):
            raise DataFormatError(
                "complex-valued features (converting them would drop the imaginary part)",
                file=file,
                dialogue=dialogue,
                field=field,
            )
        matrix = matrix.astype(np.float32, copy=False)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(
            f"cannot read utterance features as a numeric matrix ({exc})",
            file=file,
            dialogue=dialogue,
            field=field,
        ) from None
    if matrix.ndim == 1 and length == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2:
        raise DataFormatError(
            f"expected one feature vector per utterance, got an array of shape {matrix.shape}",
            file=file,
            dialogue=dialogue,
            field=field,
        )
    if matrix.shape[0] != length:
        raise DataFormatError(
            f"has {matrix.shape[0]} utterances but the labels have {length}",
            file=file,
            dialogue=dialogue,
            field=field,
        )
    if dim is not None and matrix.shape[1] != dim:
        raise DataFormatError(
            f"feature dimension {matrix.shape[1]} differs from {dim} used elsewhere in the file",
            file=file,
            dialogue=dialogue,
            field=field,
        )
    if not np.isfinite(matrix).all():
        bad = int(np.argwhere(~np.isfinite(matrix))[0][0])
        raise DataFormatError(
            f"NaN or infinite value at utterance {bad}", file=file, dialogue=dialogue, field=field
        )
    return matrix


def class_indices(
    values: Sequence[Any],
    *,
    names: Sequence[str],
    file: str | os.PathLike,
    dialogue: object,
    field: str,
) -> list[int]:
    """Check per-utterance class ids (ints, or names from ``names``) and return them as ints.

    Booleans are refused (``True`` would silently become class 1), as are floats with a fraction.
    """
    out = []
    lookup = {name: i for i, name in enumerate(names)}
    for position, value in enumerate(values):
        if isinstance(value, (bool, np.bool_)):
            raise DataFormatError(
                f"label {value!r} at utterance {position} is a boolean, not a class index or name",
                file=file,
                dialogue=dialogue,
                field=field,
            )
        if isinstance(value, str):
            if value not in lookup:
                raise DataFormatError(
                    f"unknown class {value!r} at utterance {position}; expected one of {list(names)}",
                    file=file,
                    dialogue=dialogue,
                    field=field,
                )
            out.append(lookup[value])
            continue
        try:
            index = int(value)
        except (TypeError, ValueError):
            index = None
        if index is None or index != value or not 0 <= index < len(names):
            raise DataFormatError(
                f"label {value!r} at utterance {position} is out of range 0..{len(names) - 1}",
                file=file,
                dialogue=dialogue,
                field=field,
            )
        out.append(index)
    return out


def check_dialogue_length(n: int, *, file: str | os.PathLike, dialogue: object, field: str) -> None:
    """Empty dialogues are an error; length-1 and single-speaker dialogues are valid."""
    if n == 0:
        raise DataFormatError("dialogue has no utterances", file=file, dialogue=dialogue, field=field)


def require_same_length(
    expected: int, values: Sequence[Any], *, file: str | os.PathLike, dialogue: object, field: str
) -> None:
    if len(values) != expected:
        raise DataFormatError(
            f"has {len(values)} entries but the dialogue has {expected} utterances",
            file=file,
            dialogue=dialogue,
            field=field,
        )
