"""Helpers shared by the readers of the reference feature pickles (IEMOCAP, MELD).

The reference implementations store a dataset as a tuple of dicts keyed by dialogue id, one dict per
field (``videoSpeakers``, ``videoLabels``, ``videoText``, ...). :func:`unpack_fields` checks the tuple
shape, :class:`FieldTable` checks one dialogue of one field, and :func:`split_off_validation` carves the
seeded validation split used when a file has none.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DataFormatError, file_errors
from ..records import (
    check_dialogue_length,
    class_indices,
    feature_matrix,
    refuse_split_leaks,
    repair_c1_controls,
    require_same_length,
    speaker_indices,
)


def unpack_fields(obj: Any, names: Sequence[str], *, file: str | os.PathLike, layout: str) -> dict[str, Any]:
    """Name the items of a pickled tuple/list; a wrong length is a :class:`DataFormatError`."""
    if not isinstance(obj, (tuple, list)):
        raise DataFormatError(
            f"expected the {layout} (a {len(names)}-item tuple/list), got {type(obj).__name__}", file=file
        )
    if len(obj) != len(names):
        raise DataFormatError(
            f"expected the {layout} with {len(names)} items ({', '.join(names)}), got {len(obj)} items",
            file=file,
        )
    return dict(zip(names, obj))


def id_list(value: Any, *, file: str | os.PathLike, field: str) -> list[str]:
    """Dialogue ids of a split list (ints or strings) as strings, with duplicates refused."""
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes, Mapping)):
        raise DataFormatError(
            f"expected a list of dialogue ids, got {type(value).__name__}", file=file, field=field
        )
    ids = [str(v) for v in value]
    seen: set[str] = set()
    for vid in ids:
        if vid in seen:
            raise DataFormatError("dialogue id listed twice", file=file, dialogue=vid, field=field)
        seen.add(vid)
    return ids


class FieldTable:
    """Checked access to ``{field name: {dialogue id: per-utterance list}}`` of one file.

    Keys are compared as strings (MELD pickles use int keys, IEMOCAP str keys). Feature dimensions are
    fixed by the first dialogue read and enforced for the rest of the file.
    """

    def __init__(self, fields: Mapping[str, Any], *, file: str | os.PathLike) -> None:
        self.file = os.fspath(file)
        self._fields: dict[str, dict[str, Any]] = {}
        for name, table in fields.items():
            if not isinstance(table, Mapping):
                raise DataFormatError(
                    f"expected a dict keyed by dialogue id, got {type(table).__name__}", file=file, field=name
                )
            normalised: dict[str, Any] = {}
            original: dict[str, Any] = {}
            for key, value in table.items():
                vid = str(key)
                if vid in normalised:
                    raise DataFormatError(
                        f"keys {original[vid]!r} and {key!r} both name dialogue {vid!r}; one would overwrite "
                        "the other",
                        file=file,
                        dialogue=vid,
                        field=name,
                    )
                normalised[vid], original[vid] = value, key
            self._fields[name] = normalised
        self._dims: dict[str, int] = {}
        self.repaired_utterances = 0  # transcripts whose C1 control characters were repaired

    def get(self, field: str, dialogue: str) -> Any:
        try:
            value = self._fields[field][dialogue]
        except KeyError:
            raise DataFormatError(
                "dialogue missing from this field", file=self.file, dialogue=dialogue, field=field
            ) from None
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            raise DataFormatError(
                f"expected one entry per utterance, got {type(value).__name__}",
                file=self.file,
                dialogue=dialogue,
                field=field,
            )
        return value

    def labels(self, field: str, dialogue: str, names: Sequence[str]) -> list[int]:
        values = self.get(field, dialogue)
        check_dialogue_length(len(values), file=self.file, dialogue=dialogue, field=field)
        return class_indices(list(values), names=names, file=self.file, dialogue=dialogue, field=field)

    def features(self, field: str, dialogue: str, length: int) -> np.ndarray:
        matrix = feature_matrix(
            self.get(field, dialogue),
            file=self.file,
            dialogue=dialogue,
            field=field,
            length=length,
            dim=self._dims.get(field),
        )
        self._dims.setdefault(field, matrix.shape[1])
        return matrix

    def mean_features(self, fields: Sequence[str], dialogue: str, length: int) -> np.ndarray:
        """Average of several feature fields (the four RoBERTa layers of the COSMIC pickles)."""
        return np.mean([self.features(f, dialogue, length) for f in fields], axis=0, dtype=np.float32)

    def strings(self, field: str, dialogue: str, length: int) -> list[str]:
        """Transcripts, with Windows-1252 punctuation read as C1 controls repaired (and counted)."""
        values = list(self.get(field, dialogue))
        require_same_length(length, values, file=self.file, dialogue=dialogue, field=field)
        out = []
        for value in values:
            text, changed = repair_c1_controls(str(value))
            self.repaired_utterances += changed
            out.append(text)
        return out

    def speakers(self, field: str, dialogue: str, length: int) -> list[int]:
        """Speaker indices by order of first appearance, from names (``'M'``/``'F'``) or one-hot rows."""
        values = list(self.get(field, dialogue))
        require_same_length(length, values, file=self.file, dialogue=dialogue, field=field)
        keys = []
        for position, value in enumerate(values):
            if isinstance(value, str):
                keys.append(value)
                continue
            row = np.asarray(value, dtype=np.float32).reshape(-1)
            if row.size == 0 or np.count_nonzero(row) != 1 or row.max() != 1.0:
                raise DataFormatError(
                    f"speaker at utterance {position} is neither a name nor a one-hot vector: {value!r}",
                    file=self.file,
                    dialogue=dialogue,
                    field=field,
                )
            keys.append(int(row.argmax()))
        return speaker_indices(keys)


def check_same(
    first: Sequence[Any],
    second: Sequence[Any],
    *,
    file: str | os.PathLike,
    dialogue: str,
    field: str,
    other: str | os.PathLike,
) -> None:
    """Two files that describe the same dialogue must agree (labels, speakers)."""
    if list(first) != list(second):
        raise DataFormatError(
            f"disagrees with {os.fspath(other)!r} for the same dialogue",
            file=file,
            dialogue=dialogue,
            field=field,
        )


def split_off_validation(train_ids: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Move a seeded ``fraction`` of training dialogues to a validation split (order preserved).

    This is the CMERC paper's protocol for IEMOCAP (10 % of the 120 training dialogues); the reference
    code itself has no validation split and selects epochs on the test set.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    n_valid = max(1, round(len(train_ids) * fraction)) if fraction > 0 and len(train_ids) > 1 else 0
    chosen = set(random.Random(seed).sample(sorted(train_ids), n_valid))
    return [v for v in train_ids if v not in chosen], [v for v in train_ids if v in chosen]


class PickleSource:
    """One reference pickle, with the roles of its fields.

    ``roles`` maps a role (``speakers``, ``labels``, ``sentiment``, ``sentences``, ``text``, ``audio``,
    ``visual``) to the field that holds it (``text`` may name several fields, which are averaged: the four
    RoBERTa layers of the COSMIC pickles, as M3Net and CMERC do). ``splits`` maps split name to ids.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fields: Mapping[str, Any],
        roles: Mapping[str, str | tuple[str, ...]],
        splits: Mapping[str, list[str]],
    ) -> None:
        self.path = os.fspath(path)
        self.roles = dict(roles)
        self.splits = dict(splits)
        self.table = FieldTable({f: fields[f] for r in self.roles.values() for f in _as_tuple(r)}, file=path)

    def has(self, role: str) -> bool:
        return role in self.roles


def _as_tuple(fields: str | tuple[str, ...]) -> tuple[str, ...]:
    return (fields,) if isinstance(fields, str) else fields


def assemble_records(
    sources: Sequence[PickleSource],
    *,
    splits: Mapping[str, list[str]],
    label_role: str,
    label_names: Sequence[str],
    text_source: PickleSource | None,
) -> dict[str, list[dict[str, Any]]]:
    """Join several pickles describing the same dialogues into records, one per dialogue.

    The first source that has a role provides it; every other source that has the labels or speakers
    must agree with it, so mixing files of different releases fails loudly instead of silently.
    """
    owner = {
        role: next((s for s in sources if s.has(role)), None) for role in ("sentences", "audio", "visual")
    }
    label_owner = next((s for s in sources if s.has(label_role)), None)
    if label_owner is None:
        raise DataFormatError(
            f"none of the given files has {label_role} labels", file=", ".join(s.path for s in sources)
        )
    # the splits come from the first source (the primary file)
    refuse_split_leaks(splits, file=sources[0].path)
    out: dict[str, list[dict[str, Any]]] = {}
    with file_errors(", ".join(s.path for s in sources)):
        for split, ids in splits.items():
            out[split] = [
                _assemble_one(sources, vid, label_owner, label_role, label_names, owner, text_source)
                for vid in ids
            ]
    for source in sources:
        warn_repaired_transcripts(source.path, source.table.repaired_utterances, stacklevel=3)
    return out


def warn_repaired_transcripts(path: str, count: int, *, stacklevel: int) -> None:
    """Tell the user that ``count`` transcripts of ``path`` had their Windows-1252 punctuation repaired.

    Nothing when ``count`` is 0. ``stacklevel`` counts from the caller, as for ``warnings.warn``.
    """
    if count:
        warnings.warn(
            f"{path}: {count} transcripts held Windows-1252 punctuation "
            "decoded as control characters (e.g. '\\x92' for '\u2019'); repaired",
            stacklevel=stacklevel + 1,
        )


def _assemble_one(
    sources: Sequence[PickleSource],
    vid: str,
    label_owner: PickleSource,
    label_role: str,
    label_names: Sequence[str],
    owner: Mapping[str, PickleSource | None],
    text_source: PickleSource | None,
) -> dict[str, Any]:
    """The record of one dialogue (see :func:`assemble_records`)."""
    labels = label_owner.table.labels(label_owner.roles[label_role], vid, label_names)
    n = len(labels)
    speakers = label_owner.table.speakers(label_owner.roles["speakers"], vid, n)
    for other in sources:
        if other is label_owner:
            continue
        if other.has(label_role):
            theirs = other.table.labels(other.roles[label_role], vid, label_names)
            check_same(
                theirs,
                labels,
                file=other.path,
                dialogue=vid,
                field=other.roles[label_role],
                other=label_owner.path,
            )
        if other.has("speakers"):
            theirs = other.table.speakers(other.roles["speakers"], vid, n)
            check_same(
                theirs,
                speakers,
                file=other.path,
                dialogue=vid,
                field=other.roles["speakers"],
                other=label_owner.path,
            )
    record: dict[str, Any] = {"dialogue_id": vid, "speakers": speakers, "labels": labels}
    if text_source is not None:
        record["text"] = text_source.table.mean_features(_as_tuple(text_source.roles["text"]), vid, n)
    for modality in ("audio", "visual"):
        if owner[modality] is not None:
            record[modality] = owner[modality].table.features(owner[modality].roles[modality], vid, n)
    if owner["sentences"] is not None:
        record["utterances"] = owner["sentences"].table.strings(owner["sentences"].roles["sentences"], vid, n)
    return record


def find_file(
    data_dir: str | os.PathLike | None, explicit: str | os.PathLike | None, name: str
) -> str | None:
    """An explicitly given file (which must exist), else ``data_dir/name`` when present."""
    if explicit is not None:
        if not os.path.isfile(explicit):
            raise DataFormatError("file not found", file=explicit)
        return os.fspath(explicit)
    if data_dir is not None:
        candidate = os.path.join(data_dir, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def choose_text_source(
    sources: Mapping[str, PickleSource], text: str, file_names: Mapping[str, str]
) -> PickleSource | None:
    """Resolve the ``text=`` option of the IEMOCAP/MELD readers to the source of the text features."""
    if text == "auto":
        return sources.get("roberta") or sources.get("features")
    if text == "none":
        return None
    if text in ("roberta", "features"):
        if text not in sources:
            raise DataFormatError(f"text={text!r} needs the {file_names[text]} file, which was not given")
        return sources[text]
    raise ValueError(f"text must be 'auto', 'roberta', 'features' or 'none', got {text!r}")
