"""Checks and statistics shared by the emotion–cause pair readers (:mod:`.ecf`, :mod:`.mecad`, :mod:`.mec4`).

All emotion–cause files number utterances from 1; records store 0-based indices. The helpers here take
1-based ``(emotion, cause)`` pairs as written in a file, check them against the conversation and return
the 0-based ``[emotion_utt, cause_utt]`` lists of the record convention (:mod:`merc_hf.data.records`).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ..errors import DataFormatError
from ..records import check_dialogue_length, speaker_indices

PolicyName = Literal["error", "warn", "allow"]
_MAX_DIGITS = 100  # far beyond any utterance number or id; Python refuses int() of 4300+ digits


class JsonObject(dict):
    """A JSON object that remembers the keys it saw more than once (``json`` keeps only the last value)."""

    __slots__ = ("duplicate_keys",)

    def __init__(self, pairs: Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__()
        self.duplicate_keys: list[str] = []
        for key, value in pairs:
            if key in self:
                self.duplicate_keys.append(key)
            self[key] = value


def load_json(path: str | os.PathLike) -> Any:
    """Parse a UTF-8 JSON file; objects come back as :class:`JsonObject` so duplicated keys can be refused."""
    if not os.path.isfile(path):
        raise DataFormatError("file not found", file=path)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return json.load(fh, object_pairs_hook=JsonObject)
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"truncated or invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", file=path
        ) from None
    except RecursionError:
        raise DataFormatError("JSON nested too deeply to read", file=path) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DataFormatError(f"unreadable JSON value ({exc})", file=path) from None
    except OSError as exc:
        raise DataFormatError(f"cannot read the file ({exc.strerror or exc})", file=path) from None


def refuse_duplicate_keys(
    obj: Mapping[str, Any], *, file: str | os.PathLike, dialogue: object | None, what: str
) -> None:
    """Raise when a JSON object repeated a key; ``what`` says which object (an utterance, a row, ...)."""
    duplicates = getattr(obj, "duplicate_keys", ())
    if duplicates:
        raise DataFormatError(
            f"{what} has the key {duplicates[0]!r} twice", file=file, dialogue=dialogue, field=duplicates[0]
        )


def require_keys(
    obj: Any, keys: Sequence[str], *, file: str | os.PathLike, dialogue: object | None, what: str
) -> None:
    """``obj`` must be a JSON object holding every key in ``keys``."""
    if not isinstance(obj, Mapping):
        raise DataFormatError(
            f"{what} must be a JSON object, got {type(obj).__name__}", file=file, dialogue=dialogue
        )
    refuse_duplicate_keys(obj, file=file, dialogue=dialogue, what=what)
    for key in keys:
        if key not in obj:
            raise DataFormatError(f"{what} has no {key!r} key", file=file, dialogue=dialogue, field=key)


def as_int(value: Any, *, file: str | os.PathLike, dialogue: object | None, field: str, what: str) -> int:
    """An integer given as a JSON number or a string of digits (bools and floats are refused)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        if len(value.strip()) > _MAX_DIGITS:
            raise DataFormatError(
                f"{what} has {len(value.strip())} digits; not a usable integer",
                file=file,
                dialogue=dialogue,
                field=field,
            )
        return int(value.strip())
    if isinstance(value, int):
        return value
    raise DataFormatError(
        f"{what} must be an integer, got {value!r}", file=file, dialogue=dialogue, field=field
    )


def conversation_id(value: Any, *, file: str | os.PathLike, field: str) -> str:
    """A conversation id (JSON string or integer) as a non-empty string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise DataFormatError(
            f"conversation id must be a non-empty string or integer, got {value!r}", file=file, field=field
        )
    return str(value).strip()


def check_numbering(
    numbers: Sequence[int],
    *,
    file: str | os.PathLike,
    dialogue: object,
    field: str,
    where: Sequence[str] | None = None,
) -> None:
    """Utterances must be numbered 1, 2, ..., n in order (this also refuses duplicated utterance ids).

    ``where`` optionally gives a location suffix per utterance (``" (line 12)"``) for the message.
    """
    for position, number in enumerate(numbers, start=1):
        if number != position:
            problem = (
                "repeats an earlier utterance id" if number in numbers[: position - 1] else "is out of order"
            )
            suffix = where[position - 1] if where is not None else ""
            raise DataFormatError(
                f"utterance {position} is numbered {number}, which {problem}; utterances must be numbered "
                f"1..{len(numbers)} in order{suffix}",
                file=file,
                dialogue=dialogue,
                field=field,
            )


def emotion_index(
    label: Any,
    names: Sequence[str],
    *,
    aliases: Mapping[str, str] | None = None,
    file: str | os.PathLike,
    dialogue: object,
    field: str,
    utterance: int,
    where: str = "",
) -> int:
    """Index of an emotion name in ``names`` (after ``aliases``); ``utterance`` is 1-based, as in the files.

    Unlike :func:`merc_hf.data.records.class_indices`, the message numbers utterances from 1 so it matches
    what the user sees in the file.
    """
    key = aliases.get(label.strip().lower(), label) if aliases and isinstance(label, str) else label
    if isinstance(key, str) and key in names:
        return names.index(key)
    raise DataFormatError(
        f"unknown emotion {label!r} at utterance {utterance}; expected one of {list(names)}{where}",
        file=file,
        dialogue=dialogue,
        field=field,
    )


def check_pairs(
    pairs: Iterable[tuple[int, int]],
    *,
    length: int,
    emotions: Sequence[int] | None,
    file: str | os.PathLike,
    dialogue: object,
    field: str,
    duplicates: Literal["error", "drop"] = "error",
    neutral_pairs: PolicyName = "error",
    where: str = "",
) -> list[list[int]]:
    """Check 1-based ``(emotion, cause)`` pairs of one conversation and return them 0-based.

    Refused: indices outside ``1..length``; a repeated pair (unless ``duplicates='drop'``, which keeps the
    first); a pair whose emotion utterance has label 0, which is neutral in every label set of these
    readers (``neutral_pairs`` says whether that is an error, a warning or allowed). ``where`` (e.g.
    ``" (line 12)"``) is appended to messages.
    """
    out: list[list[int]] = []
    seen: set[tuple[int, int]] = set()
    for emo, cause in pairs:
        for role, index in (("emotion", emo), ("cause", cause)):
            if not 1 <= index <= length:
                raise DataFormatError(
                    f"pair ({emo}, {cause}): {role} utterance {index} is outside the conversation "
                    f"(utterances 1..{length}){where}",
                    file=file,
                    dialogue=dialogue,
                    field=field,
                )
        if (emo, cause) in seen:
            if duplicates == "drop":
                continue
            raise DataFormatError(
                f"pair ({emo}, {cause}) is listed twice{where}", file=file, dialogue=dialogue, field=field
            )
        seen.add((emo, cause))
        if emotions is not None and emotions[emo - 1] == 0:
            message = f"pair ({emo}, {cause}): emotion utterance {emo} is labelled neutral{where}"
            if neutral_pairs == "error":
                raise DataFormatError(message, file=file, dialogue=dialogue, field=field)
            if neutral_pairs == "warn":
                warnings.warn(
                    str(DataFormatError(message, file=file, dialogue=dialogue, field=field)), stacklevel=3
                )
        out.append([emo - 1, cause - 1])
    return out


def make_record(
    conv_id: str,
    *,
    texts: Sequence[str],
    speaker_names: Sequence[str],
    emotions: Sequence[int] | None,
    pairs: list[list[int]],
    file: str | os.PathLike,
) -> dict[str, Any]:
    """The record of one conversation (keys as in :mod:`merc_hf.data.records`); empty ones are refused."""
    check_dialogue_length(len(texts), file=file, dialogue=conv_id, field="utterances")
    record: dict[str, Any] = {
        "conversation_id": conv_id,
        "utterances": list(texts),
        "speakers": speaker_indices(speaker_names),
        "speaker_names": list(speaker_names),
    }
    if emotions is not None:
        record["emotions"] = list(emotions)
    record["pairs"] = pairs
    return record


def refuse_repeated_conversations(
    records_by_file: Mapping[str, Sequence[Mapping[str, Any]]],
) -> None:
    """A conversation id may appear in only one split file (and once in it; readers check that too)."""
    owner: dict[str, str] = {}
    for path, records in records_by_file.items():
        for record in records:
            cid = record["conversation_id"]
            if cid in owner:
                raise DataFormatError(
                    f"conversation id also appears in {owner[cid]!r}"
                    if owner[cid] != path
                    else "conversation id appears twice",
                    file=path,
                    dialogue=cid,
                    field="conversation_id",
                )
            owner[cid] = path


def pair_position_stats(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Where causes sit relative to their emotion utterance, over the records of one split.

    Returns ``pairs`` (total), ``before`` (cause utterance earlier than the emotion utterance), ``at``
    (the emotion utterance is its own cause), ``after`` (a future cause), ``max_distance``
    (largest ``|emotion - cause|``), and ``max_distance_before`` / ``max_distance_after`` (largest distance
    among past / future causes). A candidate space that only admits causes at or before the emotion
    utterance can recall at most ``(pairs - after) / pairs`` of the gold pairs; a window of ±K admits
    every pair when ``K >= max_distance``.
    """
    stats = {"pairs": 0, "before": 0, "at": 0, "after": 0}
    stats.update(max_distance=0, max_distance_before=0, max_distance_after=0)
    for record in records:
        for emo, cause in record.get("pairs", ()):
            stats["pairs"] += 1
            distance = abs(emo - cause)
            stats["max_distance"] = max(stats["max_distance"], distance)
            if cause < emo:
                stats["before"] += 1
                stats["max_distance_before"] = max(stats["max_distance_before"], distance)
            elif cause == emo:
                stats["at"] += 1
            else:
                stats["after"] += 1
                stats["max_distance_after"] = max(stats["max_distance_after"], distance)
    return stats


def existing(paths: Iterable[str | os.PathLike]) -> str | None:
    """The first of ``paths`` that is a file, or None."""
    for path in paths:
        if os.path.isfile(path):
            return os.fspath(path)
    return None
