"""MEC4 reader (Chinese multimodal emotion–cause pairs; Wu et al., ACM MM 2025).

**The layout is only known from documentation.** No MEC4 file was available when this reader was
written; it follows the ``DanWu2003/M3F-MECPE`` README (``data/MEC4_text/{train,valid,test}.json``,
``data/dialogue_videos/<dialogue>.mp4``, ``data/subtitles.json``) and the field names that
``xiay9/BridgeProt: data/adapters/mec4.py`` reads. It therefore parses defensively: every accepted
variant is listed here, and anything else is a :class:`DataFormatError` naming file, dialogue and field.

A split file is a JSON list of rows, one per dialogue:

* id: ``dia_id`` (or ``dialogue_id``) — string or integer;
* utterances, either ``text`` — one string ``"1.<speaker>：<text> 2.<speaker>：<text> ..."`` (full-width
  or ASCII colon; turns numbered from 1, each number followed by ``.`` or ``．``; a turn number counts only
  after whitespace and before a speaker name without spaces and a colon) — or a list under
  ``utterances`` / ``conversation`` of objects with ``speaker`` and ``text`` (or ``utterance``), optional
  ``turn`` (1-based) and optional ``emotion``;
* ``dia_len`` (optional): the number of turns, checked against the parsed turns (catches truncation);
* pairs: ``pairs`` (or ``emotion_cause_pairs``) — a string such as ``"(1,2),(3,3)"`` (ASCII or
  full-width brackets and commas) or a list of ``[emotion turn, cause turn]``; 1-based, may be empty;
* emotions (optional): per utterance as above, or per row under ``emotion`` / ``emotions`` as a list
  with one name per turn or an object ``{turn: name}``.

Emotion names are matched case-insensitively against :data:`MEC4_EMOTIONS` (the ECF names) with the
aliases in :data:`EMOTION_ALIASES` (English variants and common Chinese names), because the label
vocabulary of the release is not documented. When no row of a corpus has emotion labels, the emotions are
derived from the pairs as BridgeProt does — ``emotion`` for utterances that are the emotion side of a
pair, ``neutral`` otherwise — and ``class_names["emotions"]`` is :data:`BINARY_EMOTIONS`. A corpus that
labels some rows but not others is refused.

Records follow :mod:`merc_hf.data.records`; ``pairs`` are 0-based (the file is 1-based). Because the data
are unseen, a labelled pair whose emotion utterance is neutral is a warning here, not an error as in the
ECF and MECAD readers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ..errors import DataFormatError, names_file_on_failure
from ..records import Corpus
from ._ecpe import (
    as_int,
    check_numbering,
    check_pairs,
    conversation_id,
    emotion_index,
    existing,
    load_json,
    make_record,
    pair_position_stats,
    refuse_duplicate_keys,
    refuse_repeated_conversations,
    require_keys,
)
from .ecf import ECF_EMOTIONS

__all__ = [
    "BINARY_EMOTIONS",
    "EMOTION_ALIASES",
    "MEC4_EMOTIONS",
    "pair_position_stats",
    "read_mec4",
    "read_mec4_json",
]

MEC4_EMOTIONS = list(ECF_EMOTIONS)
BINARY_EMOTIONS = ["neutral", "emotion"]
EMOTION_ALIASES = {
    "neutral": "neutral", "neu": "neutral", "中性": "neutral", "平静": "neutral",
    "anger": "anger", "angry": "anger", "ang": "anger", "生气": "anger", "愤怒": "anger",
    "disgust": "disgust", "disgusted": "disgust", "厌恶": "disgust",
    "fear": "fear", "fearful": "fear", "恐惧": "fear", "害怕": "fear",
    "joy": "joy", "happy": "joy", "happiness": "joy", "高兴": "joy", "快乐": "joy", "开心": "joy",
    "sadness": "sadness", "sad": "sadness", "悲伤": "sadness", "伤心": "sadness", "难过": "sadness",
    "surprise": "surprise", "surprised": "surprise", "sur": "surprise", "惊讶": "surprise",
}  # fmt: skip
SPLIT_FILES = {"train": ("train.json",), "validation": ("valid.json", "dev.json"), "test": ("test.json",)}
CITATION = """@inproceedings{wu2025emotion,
  title={Emotion across modalities and cultures: Multilingual multimodal emotion-cause analysis with memory-inspired framework},
  author={Wu, Dan and Ju, Xincheng and Zhang, Dong and Li, Shoushan and Cambria, Erik and Zhou, Guodong},
  booktitle={Proceedings of the 33rd ACM International Conference on Multimedia},
  pages={5775--5783}, year={2025}, doi={10.1145/3746027.3755655}}"""
HOMEPAGE = "https://github.com/DanWu2003/M3F-MECPE"

_PAIR_ITEM = r"[(（]\s*(\d+)\s*[,，]\s*(\d+)\s*[)）]"
_PAIR_STRING = re.compile(rf"\s*(?:{_PAIR_ITEM}(?:\s*[,，;；]?\s*{_PAIR_ITEM})*)?\s*")


@names_file_on_failure
def read_mec4_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read one MEC4 split file (layout in the module docstring) into records, in file order.

    Records of a file without any emotion labels have no ``emotions`` key; :func:`read_mec4` derives
    binary labels for them. A file that labels some dialogues and not others is refused.
    """
    data = load_json(path)
    if not isinstance(data, list):
        raise DataFormatError(f"expected a JSON list of dialogues, got a {type(data).__name__}", file=path)
    if not data:
        raise DataFormatError("file holds no dialogues", file=path)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, row in enumerate(data, start=1):
        if not isinstance(row, Mapping):
            raise DataFormatError(
                f"dialogue {position} must be a JSON object, got {type(row).__name__}", file=path
            )
        id_field = next((k for k in ("dia_id", "dialogue_id") if k in row), None)
        if id_field is None:
            raise DataFormatError(
                f"dialogue {position} has no 'dia_id' or 'dialogue_id'", file=path, field="dia_id"
            )
        conv_id = conversation_id(row[id_field], file=path, field=id_field)
        refuse_duplicate_keys(row, file=path, dialogue=conv_id, what="dialogue")
        if conv_id in seen:
            raise DataFormatError("dialogue id appears twice", file=path, dialogue=conv_id, field=id_field)
        seen.add(conv_id)
        records.append(_row(row, conv_id, path))
    labelled = ["emotions" in r for r in records]
    if any(labelled) and not all(labelled):
        bad = records[labelled.index(False)]["conversation_id"]
        raise DataFormatError(
            "dialogue has no emotion labels but others in the file do",
            file=path,
            dialogue=bad,
            field="emotion",
        )
    return records


def _row(row: Mapping[str, Any], conv_id: str, path: str | os.PathLike) -> dict[str, Any]:
    list_field = next((k for k in ("utterances", "conversation") if k in row), None)
    if list_field is not None:
        speakers, texts, utt_labels = _structured_utterances(row[list_field], list_field, conv_id, path)
    elif "text" in row:
        speakers, texts = _numbered_turns(row["text"], conv_id, path)
        utt_labels = None
    else:
        raise DataFormatError(
            "dialogue has neither 'text' nor an 'utterances' list", file=path, dialogue=conv_id, field="text"
        )
    n = len(texts)
    if "dia_len" in row:
        declared = as_int(row["dia_len"], file=path, dialogue=conv_id, field="dia_len", what="dia_len")
        if declared != n:
            raise DataFormatError(
                f"dia_len says {declared} utterances but {n} were found (truncated text?)",
                file=path,
                dialogue=conv_id,
                field="dia_len",
            )
    label_field = next((k for k in ("emotion", "emotions") if k in row), None)
    if label_field is not None and utt_labels is not None:
        raise DataFormatError(
            "emotions are given both per utterance and per dialogue",
            file=path,
            dialogue=conv_id,
            field=label_field,
        )
    if label_field is not None:
        utt_labels = _row_labels(row[label_field], n, label_field, conv_id, path)
    emotions = None
    if utt_labels is not None:
        emotions = [
            emotion_index(
                label,
                MEC4_EMOTIONS,
                aliases=EMOTION_ALIASES,
                file=path,
                dialogue=conv_id,
                field=label_field or "emotion",
                utterance=k,
            )
            for k, label in enumerate(utt_labels, start=1)
        ]
    pair_field = next((k for k in ("pairs", "emotion_cause_pairs") if k in row), None)
    if pair_field is None:
        raise DataFormatError(
            "dialogue has no 'pairs' or 'emotion_cause_pairs'", file=path, dialogue=conv_id, field="pairs"
        )
    raw_pairs = _pairs(row[pair_field], pair_field, conv_id, path)
    pairs = check_pairs(
        raw_pairs,
        length=n,
        emotions=emotions,
        file=path,
        dialogue=conv_id,
        field=pair_field,
        neutral_pairs="warn",
    )
    return make_record(
        conv_id, texts=texts, speaker_names=speakers, emotions=emotions, pairs=pairs, file=path
    )


def _turn_marker(k: int | None) -> re.Pattern[str]:
    # "<k>." at the start or after whitespace, then a speaker name (no spaces, at most 20 characters) and a
    # colon: this keeps "第 2. 名" or "2.5" inside an utterance from being taken as the next turn.
    number = r"\d+" if k is None else str(k)
    return re.compile(rf"(?<!\S)({number})[.．](?=\s*[^：:\s]{{1,20}}\s*[：:])")


def _numbered_turns(text: Any, conv_id: str, path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Speakers and texts of a ``"1.<speaker>：<text> 2.<speaker>：<text> ..."`` string."""
    if not isinstance(text, str):
        raise DataFormatError(
            f"expected the numbered dialogue as one string, got {type(text).__name__}",
            file=path,
            dialogue=conv_id,
            field="text",
        )
    body = text.strip()
    match = _turn_marker(1).match(body)
    if match is None:
        raise DataFormatError(
            "text must start with turn '1.<speaker>：<utterance>'", file=path, dialogue=conv_id, field="text"
        )
    speakers, texts = [], []
    k = 1
    while match is not None:
        following = _turn_marker(k + 1).search(body, match.end())
        chunk = body[match.end() : following.start() if following else len(body)]
        stray = _turn_marker(None).search(chunk)
        if stray is not None:
            raise DataFormatError(
                f"turn {k} is followed by turn {stray.group(1)} where turn {k + 1} was expected; turns must be "
                "numbered 1, 2, 3, ... in order",
                file=path,
                dialogue=conv_id,
                field="text",
            )
        speaker, utterance = re.split(r"[：:]", chunk, maxsplit=1)  # the marker guarantees a colon
        speakers.append(speaker.strip())
        texts.append(utterance.strip())
        match, k = following, k + 1
    return speakers, texts


def _structured_utterances(
    items: Any, field: str, conv_id: str, path: str | os.PathLike
) -> tuple[list[str], list[str], list[Any] | None]:
    if not isinstance(items, list):
        raise DataFormatError(
            f"expected a list of utterances, got {type(items).__name__}",
            file=path,
            dialogue=conv_id,
            field=field,
        )
    speakers, texts, labels, turns = [], [], [], []
    for position, item in enumerate(items, start=1):
        what = f"utterance {position}"
        require_keys(item, ("speaker",), file=path, dialogue=conv_id, what=what)
        text_key = next((k for k in ("text", "utterance") if k in item), None)
        if text_key is None or not isinstance(item[text_key], str):
            raise DataFormatError(f"{what} has no 'text' string", file=path, dialogue=conv_id, field="text")
        if not isinstance(item["speaker"], str) or not item["speaker"].strip():
            raise DataFormatError(
                f"{what} has no speaker name ({item['speaker']!r})",
                file=path,
                dialogue=conv_id,
                field="speaker",
            )
        speakers.append(item["speaker"].strip())
        texts.append(item[text_key])
        turns.append(
            as_int(item["turn"], file=path, dialogue=conv_id, field="turn", what=f"turn of {what}")
            if "turn" in item
            else position
        )
        labels.append(item.get("emotion"))
    check_numbering(turns, file=path, dialogue=conv_id, field="turn")
    given = [label is not None for label in labels]
    if any(given) and not all(given):
        missing = given.index(False) + 1
        raise DataFormatError(
            f"utterance {missing} has no emotion but others do", file=path, dialogue=conv_id, field="emotion"
        )
    return speakers, texts, labels if any(given) else None


def _row_labels(value: Any, n: int, field: str, conv_id: str, path: str | os.PathLike) -> list[Any]:
    """Per-turn labels from a list (one per turn) or an object ``{turn: name}`` covering every turn."""
    if isinstance(value, list):
        if len(value) != n:
            raise DataFormatError(
                f"has {len(value)} labels but the dialogue has {n} utterances",
                file=path,
                dialogue=conv_id,
                field=field,
            )
        return value
    if isinstance(value, Mapping):
        refuse_duplicate_keys(value, file=path, dialogue=conv_id, what=field)
        by_turn = {
            as_int(k, file=path, dialogue=conv_id, field=field, what=f"turn {k!r}"): v
            for k, v in value.items()
        }
        if sorted(by_turn) != list(range(1, n + 1)):
            raise DataFormatError(
                f"labels are given for turns {sorted(by_turn)}, expected every turn 1..{n}",
                file=path,
                dialogue=conv_id,
                field=field,
            )
        return [by_turn[k] for k in range(1, n + 1)]
    raise DataFormatError(
        f"expected a list of labels or an object {{turn: label}}, got {type(value).__name__}",
        file=path,
        dialogue=conv_id,
        field=field,
    )


def _pairs(value: Any, field: str, conv_id: str, path: str | os.PathLike) -> list[tuple[int, int]]:
    """1-based pairs from ``"(1,2),(3,3)"`` (ASCII or full-width) or ``[[1, 2], [3, 3]]``."""
    if isinstance(value, str):
        if not _PAIR_STRING.fullmatch(value):
            raise DataFormatError(
                f"malformed pair string {value!r}; expected '(e,c),(e,c),...'",
                file=path,
                dialogue=conv_id,
                field=field,
            )
        return [(int(e), int(c)) for e, c in re.findall(_PAIR_ITEM, value)]
    if isinstance(value, list):
        pairs = []
        for item in value:
            if not (isinstance(item, list) and len(item) == 2):
                raise DataFormatError(
                    f"malformed pair {item!r}; expected [emotion turn, cause turn]",
                    file=path,
                    dialogue=conv_id,
                    field=field,
                )
            e, c = (
                as_int(v, file=path, dialogue=conv_id, field=field, what=f"turn in pair {item!r}")
                for v in item
            )
            pairs.append((e, c))
        return pairs
    raise DataFormatError(
        f"expected a pair string or a list of pairs, got {type(value).__name__}",
        file=path,
        dialogue=conv_id,
        field=field,
    )


def read_mec4(data_dir: str | os.PathLike) -> Corpus:
    """MEC4 from ``data_dir`` (the release's ``data`` folder holding ``MEC4_text/``, or ``MEC4_text``
    itself): any of ``train.json``, ``valid.json`` (or ``dev.json``; → ``validation``) and ``test.json``."""
    folder = (
        os.path.join(data_dir, "MEC4_text")
        if os.path.isdir(os.path.join(data_dir, "MEC4_text"))
        else data_dir
    )
    files = {
        split: path
        for split, names in SPLIT_FILES.items()
        if (path := existing(os.path.join(folder, name) for name in names)) is not None
    }
    if not files:
        raise DataFormatError(
            "no MEC4 split files found (expected train.json, valid.json, test.json)", file=folder
        )
    splits = {split: read_mec4_json(path) for split, path in files.items()}
    refuse_repeated_conversations({files[s]: records for s, records in splits.items()})
    labelled = {split: bool(records) and "emotions" in records[0] for split, records in splits.items()}
    if any(labelled.values()) and not all(labelled.values()):
        unlabelled = next(s for s, v in labelled.items() if not v)
        raise DataFormatError(
            "split has no emotion labels but other splits do", file=files[unlabelled], field="emotion"
        )
    names = MEC4_EMOTIONS if all(labelled.values()) else BINARY_EMOTIONS
    if names is BINARY_EMOTIONS:
        splits = {split: [_binary_emotions(r) for r in records] for split, records in splits.items()}
    return Corpus(
        name="mec4",
        splits=splits,
        class_names={"emotions": list(names)},
        description=(
            "MEC4: Chinese multimodal emotion-cause pairs in conversations (dialogue-level videos). The file "
            "layout is implemented from documentation only. Pairs are 0-based [emotion utterance, cause "
            "utterance]."
        ),
        citation=CITATION,
        homepage=HOMEPAGE,
        sources=list(files.values()),
    )


def _binary_emotions(record: dict[str, Any]) -> dict[str, Any]:
    emotion_side = {emo for emo, _cause in record["pairs"]}
    labels = [int(k in emotion_side) for k in range(len(record["utterances"]))]
    return {**record, "emotions": labels}
