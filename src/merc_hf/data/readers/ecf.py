"""ECF (Emotion-Cause-in-Friends) readers: the ECF 1.0 text files, the SemEval-2024 Task 3 JSON files
(ECF 2.0, gold and prediction), M3HG's JSON copy of ECF, and the published audio/visual embeddings.

**ECF 1.0 text** (``NUSTM/MECPE: data/{train,dev,test}.txt``; identical copies in WHULACC/hilo as
``data/dataset/{train,valid,test}.txt``). One block per conversation, blocks back to back:

1. ``<conversation id> <number of utterances>``
2. the pairs ``(e,c),(e,c),...`` — 1-based emotion and cause utterance numbers; the line may be empty.
   Pairs with two extra span numbers ``(e,c,start,end)`` are also accepted and reduced to unique
   utterance pairs, as NUSTM/MECPE's loader does.
3. one line per utterance: ``<n> | <speaker> | <emotion> | <text> | <timestamps>`` (the last column is a
   MELD clip key such as ``train_dia559_utt3`` in ``all_data_pair_ECFvsMELD.txt``; it is not read).

**SemEval-2024 Task 3 JSON** (``NUSTM/SemEval-2024_ECAC: data/Subtask_{1,2}_{train,test}.json`` and the
``CodaLab/submission/Subtask_{1,2}_pred.json`` examples): a list of ``{"conversation_ID", "conversation":
[{"utterance_ID", "text", "speaker", "emotion", ...}], "emotion-cause_pairs": [[emotion, cause], ...]}``.
The emotion side of a pair is ``"<utt>_<emotion>"``. The cause side is ``"<utt>"`` in Subtask 2,
``"<utt>_<span text>"`` in Subtask 1 gold files and ``"<utt>_<start>_<end>"`` (whitespace-token indices,
end exclusive) in Subtask 1 predictions. An optional ``U`` before an utterance number is accepted.

**M3HG JSON copy of ECF** (``redifinition/M3HG: data/ECF/{train,valid,test}_data_pair.json``): the layout
of :mod:`.mecad` with the lowercase ECF emotion names.

**Features** (``audio_embedding_6373.npy``, ``video_embedding_4096.npy`` from the Google Drive links in
``NUSTM/MECPE: data/README.md``; ``video_id_mapping.npy`` in the repository): two numeric tables with one
row per utterance (6373-d openSMILE, 4096-d 3D-CNN) and a 0-d object array holding a dict
``"dia{conversation}utt{utterance}" -> row`` (both numbers 1-based; row 0 of the tables is padding).

Records follow :mod:`merc_hf.data.records`: ``conversation_id``, ``utterances``, ``speakers`` (order of
first appearance), ``speaker_names``, ``emotions`` (indices into :data:`ECF_EMOTIONS`) and ``pairs`` —
**0-based** ``[emotion_utt, cause_utt]``, whereas every file numbers utterances from 1. Decisions:

* :data:`ECF_EMOTIONS` is the index order of NUSTM/MECPE (``utils/pre_data_bert.py``) and of the SemEval
  scorer (``CodaLab/evaluation/evaluate.py``): neutral first, then the six emotions alphabetically.
* A gold pair whose emotion utterance is labelled neutral is an error (none in ECF 1.0: 0 of 9794 pairs).
  In SemEval prediction files it is allowed: the official scorer accepts such pairs.
* A repeated pair is an error in the ECF 1.0 text (none in the real files); in SemEval JSON it is dropped,
  as the official scorer deduplicates each list.
* A SemEval prediction may give one utterance several emotions in different pairs: the scorer scores
  each ``(emotion utt, cause utt, emotion)`` on its own, so prediction records keep these triples in
  ``emotion_cause_pairs`` (see :func:`semeval_pairs`).
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DataFormatError, names_file_on_failure
from ..records import Corpus, feature_matrix
from ..safe_pickle import load_npy
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
    refuse_repeated_conversations,
    require_keys,
)
from .common import split_off_validation
from .mecad import SPLIT_FILES as M3HG_SPLIT_FILES
from .mecad import read_m3hg_splits

__all__ = [
    "ECF_EMOTIONS",
    "attach_ecf_features",
    "pair_position_stats",
    "read_ecf",
    "read_ecf_txt",
    "read_semeval_json",
    "semeval_pairs",
]

ECF_EMOTIONS = ["neutral", "anger", "disgust", "fear", "joy", "sadness", "surprise"]
TXT_SPLIT_FILES = {"train": ("train.txt",), "validation": ("dev.txt", "valid.txt"), "test": ("test.txt",)}
#: The gold files of ``NUSTM/SemEval-2024_ECAC: data/`` by subtask and split (no development file).
SEMEVAL_SPLIT_FILES = {
    task: {"train": f"Subtask_{task}_train.json", "test": f"Subtask_{task}_test.json"} for task in (1, 2)
}
FEATURE_FILES = {
    "audio": "audio_embedding_6373.npy",
    "visual": "video_embedding_4096.npy",
    "mapping": "video_id_mapping.npy",
}
CITATION = """@article{wang2023multimodal,
  title={Multimodal Emotion-Cause Pair Extraction in Conversations},
  author={Wang, Fanfan and Ding, Zixiang and Xia, Rui and Li, Zhaoyu and Yu, Jianfei},
  journal={IEEE Transactions on Affective Computing}, volume={14}, number={3}, pages={1832--1844},
  year={2023}, doi={10.1109/TAFFC.2022.3226559}}
@inproceedings{wang2024semeval,
  title={{SemEval}-2024 Task 3: Multimodal Emotion Cause Analysis in Conversations},
  author={Wang, Fanfan and Ma, Heqing and Xia, Rui and Yu, Jianfei and Cambria, Erik},
  booktitle={Proceedings of the 18th International Workshop on Semantic Evaluation (SemEval-2024)},
  pages={2022--2033}, year={2024}}"""
HOMEPAGE = "https://github.com/NUSTM/MECPE"

_HEADER = re.compile(r"\s*(\S+)\s+(\d+)\s*")
_PAIR_ITEM = r"\(\s*\d+(?:\s*,\s*\d+)*\s*\)"
_PAIR_LINE = re.compile(rf"{_PAIR_ITEM}(?:\s*,\s*{_PAIR_ITEM})*")
_UTT_NUMBER = re.compile(r"[Uu]?(\d+)")


# --------------------------------------------------------------------------- ECF 1.0 text


@names_file_on_failure
def read_ecf_txt(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read one ECF 1.0 text file (format in the module docstring) into records, in file order.

    Errors name the file, the conversation, the field and the line number.
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            # split on "\n" only: str.splitlines would also break on separators that may occur in text
            lines = [line.rstrip("\r") for line in fh.read().split("\n")]
    except FileNotFoundError:
        raise DataFormatError("file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    records: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        header = _HEADER.fullmatch(lines[i])
        if header is None and "|" in lines[i] and records:
            previous = records[-1]["conversation_id"]
            raise DataFormatError(
                f"line {i + 1}: utterance line after the last of the {len(records[-1]['utterances'])} "
                f"utterances declared at line {first_line[previous]}",
                file=path,
                dialogue=previous,
                field="header",
            )
        if header is None:
            raise DataFormatError(
                f"line {i + 1}: expected a conversation header '<conversation id> <number of utterances>', "
                f"got {lines[i]!r}",
                file=path,
                field="header",
            )
        conv_id, n = header.group(1), int(header.group(2))
        if conv_id in first_line:
            raise DataFormatError(
                f"line {i + 1}: conversation id already used at line {first_line[conv_id]}",
                file=path,
                dialogue=conv_id,
                field="conversation_id",
            )
        first_line[conv_id] = i + 1
        if n == 0:
            raise DataFormatError(
                f"line {i + 1}: conversation declares 0 utterances",
                file=path,
                dialogue=conv_id,
                field="header",
            )
        records.append(_txt_block(lines, i, conv_id, n, path))
        i += 2 + n
    if not records:
        raise DataFormatError("file holds no conversations", file=path)
    return records


def _txt_block(lines: list[str], i: int, conv_id: str, n: int, path: str | os.PathLike) -> dict[str, Any]:
    """One conversation whose header is at ``lines[i]`` and declares ``n`` utterances."""
    if i + 1 >= len(lines):
        raise DataFormatError(
            f"file ends after the header at line {i + 1}; expected the pair line and {n} utterances",
            file=path,
            dialogue=conv_id,
            field="pairs",
        )
    raw_pairs, span_pairs = _txt_pairs(lines[i + 1], i + 2, conv_id, path)
    numbers, speakers, emotions, texts, where = [], [], [], [], []
    for k in range(n):
        ln = i + 2 + k  # 0-based index of the line of utterance k + 1
        at_end = ln >= len(lines) or (ln == len(lines) - 1 and not lines[ln].strip())
        if at_end:
            raise DataFormatError(
                f"file ends after {k} of the {n} utterances declared at line {i + 1} (truncated file?)",
                file=path,
                dialogue=conv_id,
                field="utterances",
            )
        parts = lines[ln].split("|")
        if len(parts) < 5:
            raise DataFormatError(
                f"line {ln + 1}: expected utterance {k + 1} of {n} as '<n> | <speaker> | <emotion> | <text> | "
                f"<timestamps>', got {lines[ln]!r}",
                file=path,
                dialogue=conv_id,
                field="utterances",
            )
        where.append(f" (line {ln + 1})")
        number, speaker, emotion = (p.strip() for p in parts[:3])
        if not number.isdigit():
            raise DataFormatError(
                f"line {ln + 1}: utterance number {number!r} is not an integer",
                file=path,
                dialogue=conv_id,
                field="utterance_id",
            )
        if not speaker:
            raise DataFormatError(
                f"line {ln + 1}: empty speaker name", file=path, dialogue=conv_id, field="speaker"
            )
        numbers.append(int(number))
        speakers.append(speaker)
        emotions.append(
            emotion_index(
                emotion,
                ECF_EMOTIONS,
                file=path,
                dialogue=conv_id,
                field="emotion",
                utterance=k + 1,
                where=where[-1],
            )
        )
        # the text is everything between the third and the last bar, so a "|" inside it survives
        texts.append("|".join(parts[3:-1]).strip())
    check_numbering(numbers, file=path, dialogue=conv_id, field="utterance_id", where=where)
    pairs = check_pairs(
        raw_pairs,
        length=n,
        emotions=emotions,
        file=path,
        dialogue=conv_id,
        field="pairs",
        duplicates="drop" if span_pairs else "error",
        where=f" (line {i + 2})",
    )
    return make_record(
        conv_id, texts=texts, speaker_names=speakers, emotions=emotions, pairs=pairs, file=path
    )


def _txt_pairs(
    line: str, line_no: int, conv_id: str, path: str | os.PathLike
) -> tuple[list[tuple[int, int]], bool]:
    """1-based pairs of a pair line, and whether they carried span indices (4 numbers)."""
    text = line.strip()
    if not text:
        return [], False
    if "|" in text or not _PAIR_LINE.fullmatch(text):
        raise DataFormatError(
            f"line {line_no}: malformed pair line {line!r}; expected '(e,c),(e,c),...' or an empty line",
            file=path,
            dialogue=conv_id,
            field="pairs",
        )
    pairs, with_spans = [], False
    for item in re.findall(_PAIR_ITEM, text):
        numbers = [int(v) for v in re.findall(r"\d+", item)]
        if len(numbers) not in (2, 4):
            raise DataFormatError(
                f"line {line_no}: pair {item} must hold 2 numbers (emotion, cause) or 4 (with a cause span)",
                file=path,
                dialogue=conv_id,
                field="pairs",
            )
        with_spans = with_spans or len(numbers) == 4
        pairs.append((numbers[0], numbers[1]))
    return pairs, with_spans


# --------------------------------------------------------------------------- SemEval-2024 JSON


@names_file_on_failure
def read_semeval_json(
    path: str | os.PathLike, subtask: int = 2, *, prediction: bool = False
) -> list[dict[str, Any]]:
    """Read a SemEval-2024 Task 3 file (gold, or a system's prediction with ``prediction=True``).

    Gold files must give every utterance an ``emotion``, and the emotion written in each pair must equal
    that label. Prediction files follow what the official scorer (``NUSTM/SemEval-2024_ECAC:
    CodaLab/evaluation/evaluate.py``) reads: a predicted pair is ``(emotion utt, cause utt, emotion)`` with
    the emotion taken from the pair alone, so per-utterance ``emotion`` may be missing or differ from the
    pairs, one utterance may carry several emotions (each pair is scored on its own), pairs with a neutral
    emotion are allowed, and ``emotion-cause_pairs`` must be present (the scorer stops without it). The
    transcript (``conversation``) is required in both, to check pair indices; unlike the scorer, which
    would count a pair outside its conversation as a false positive, such a pair is refused.

    Records carry the utterance pairs in ``pairs`` (0-based, unique, first-seen order). Prediction records
    also carry ``emotion_cause_pairs``: the scorer's unit ``[emotion_utt, cause_utt, emotion]`` (0-based
    utterances, emotion index into :data:`ECF_EMOTIONS`, unique, first-seen order), and their ``emotions``
    are the per-utterance labels when given, else the emotion of the utterance's first pair, neutral for
    the others; :func:`semeval_pairs` turns gold or prediction records into the input of
    :func:`merc_hf.metrics.semeval_pair_f1`. For Subtask 1 they
    also carry ``cause_spans``: ``[emotion_utt, cause_utt, start, end]`` with 0-based utterances and the
    whitespace-token range ``[start, end)`` of the span in the cause utterance. Gold spans are located by
    matching their tokens in the cause utterance (first occurrence; if needed after stripping punctuation
    at both ends, as the scorer does); a span that cannot be found is an error.
    """
    if subtask not in (1, 2):
        raise ValueError(f"subtask must be 1 or 2, got {subtask!r}")
    data = load_json(path)
    if not isinstance(data, list):
        raise DataFormatError(
            f"expected a JSON list of conversations, got a {type(data).__name__}", file=path
        )
    if not data:
        raise DataFormatError("file holds no conversations", file=path)
    records, seen = [], set()
    for position, conv in enumerate(data, start=1):
        require_keys(
            conv, ("conversation_ID", "conversation"), file=path, dialogue=None, what=f"entry {position}"
        )
        conv_id = conversation_id(conv["conversation_ID"], file=path, field="conversation_ID")
        if conv_id in seen:
            raise DataFormatError(
                "conversation id appears twice", file=path, dialogue=conv_id, field="conversation_ID"
            )
        seen.add(conv_id)
        records.append(_semeval_conversation(conv, conv_id, subtask, prediction, path))
    return records


def _semeval_conversation(
    conv: Mapping[str, Any], conv_id: str, subtask: int, prediction: bool, path: str | os.PathLike
) -> dict[str, Any]:
    utterances = conv["conversation"]
    if not isinstance(utterances, list):
        raise DataFormatError(
            f"expected a list of utterances, got a {type(utterances).__name__}",
            file=path,
            dialogue=conv_id,
            field="conversation",
        )
    keys = (
        ("utterance_ID", "text", "speaker") if prediction else ("utterance_ID", "text", "speaker", "emotion")
    )
    numbers, texts, speakers, labels = [], [], [], []
    for position, utt in enumerate(utterances, start=1):
        what = f"utterance {position}"
        require_keys(utt, keys, file=path, dialogue=conv_id, what=what)
        numbers.append(
            as_int(utt["utterance_ID"], file=path, dialogue=conv_id, field="utterance_ID", what=what)
        )
        for field in ("text", "speaker"):
            if not isinstance(utt[field], str) or (field == "speaker" and not utt[field].strip()):
                raise DataFormatError(
                    f"{what}: {field} must be a non-empty string, got {utt[field]!r}",
                    file=path,
                    dialogue=conv_id,
                    field=field,
                )
        texts.append(utt["text"])
        speakers.append(utt["speaker"].strip())
        labels.append(
            emotion_index(
                utt["emotion"], ECF_EMOTIONS, file=path, dialogue=conv_id, field="emotion", utterance=position
            )
            if "emotion" in utt
            else None
        )
    check_numbering(numbers, file=path, dialogue=conv_id, field="utterance_ID")
    if len(texts) == 0:
        raise DataFormatError(
            "conversation has no utterances", file=path, dialogue=conv_id, field="conversation"
        )
    field = "emotion-cause_pairs"
    if field not in conv:
        raise DataFormatError("no 'emotion-cause_pairs' key", file=path, dialogue=conv_id, field=field)
    raw = conv[field]
    if not isinstance(raw, list):
        raise DataFormatError(
            f"expected a list of pairs, got {raw!r}", file=path, dialogue=conv_id, field=field
        )
    n = len(texts)
    pair_emotion: dict[int, int] = {}
    utt_pairs, spans, triples = [], [], []
    for item in raw:
        emo, emotion, cause, span = _semeval_pair(item, subtask, prediction, n, texts, conv_id, path)
        # the scorer reads the emotion of a predicted pair from the pair alone: only gold is cross-checked
        if not prediction and 1 <= emo <= n and labels[emo - 1] != emotion:
            raise DataFormatError(
                f"pair {item!r}: emotion {ECF_EMOTIONS[emotion]!r} differs from the label "
                f"{ECF_EMOTIONS[labels[emo - 1]]!r} of utterance {emo}",
                file=path,
                dialogue=conv_id,
                field=field,
            )
        pair_emotion.setdefault(emo, emotion)
        utt_pairs.append((emo, cause))
        triples.append((emo - 1, cause - 1, emotion))
        if span is not None:
            spans.append([emo - 1, cause - 1, *span])
    # prediction files may omit per-utterance emotions: take each from the utterance's first pair, neutral
    # for the others
    labels = [pair_emotion.get(k, 0) if label is None else label for k, label in enumerate(labels, start=1)]
    pairs = check_pairs(
        utt_pairs,
        length=n,
        emotions=labels,
        file=path,
        dialogue=conv_id,
        field=field,
        duplicates="drop",
        neutral_pairs="allow" if prediction else "error",
    )
    record = make_record(
        conv_id, texts=texts, speaker_names=speakers, emotions=labels, pairs=pairs, file=path
    )
    if prediction:
        # check_pairs has checked the indices; one utterance may carry several emotions here
        record["emotion_cause_pairs"] = list(map(list, dict.fromkeys(triples)))
    if subtask == 1:
        record["cause_spans"] = list(map(list, dict.fromkeys(map(tuple, spans))))
    return record


def _semeval_pair(
    item: Any,
    subtask: int,
    prediction: bool,
    n: int,
    texts: Sequence[str],
    conv_id: str,
    path: str | os.PathLike,
) -> tuple[int, int, int, tuple[int, int] | None]:
    """``(emotion utt, emotion index, cause utt, token span or None)`` of one pair, utterances 1-based."""

    def fail(problem: str) -> DataFormatError:
        return DataFormatError(
            f"pair {item!r}: {problem}", file=path, dialogue=conv_id, field="emotion-cause_pairs"
        )

    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        raise fail('expected ["<utt>_<emotion>", <cause>]')
    emo_text, _, emotion_name = item[0].strip().partition("_")
    emo_match = _UTT_NUMBER.fullmatch(emo_text)
    if emo_match is None or not emotion_name.strip():
        raise fail("the emotion side must read '<utterance number>_<emotion>'")
    if emotion_name.strip() not in ECF_EMOTIONS:
        raise fail(f"unknown emotion {emotion_name.strip()!r}; expected one of {ECF_EMOTIONS}")
    emo, emotion = int(emo_match.group(1)), ECF_EMOTIONS.index(emotion_name.strip())
    cause_raw = item[1]
    if subtask == 2 and isinstance(cause_raw, int) and not isinstance(cause_raw, bool):
        cause_raw = str(cause_raw)
    if not isinstance(cause_raw, str):
        raise fail("the cause side must be a string")
    if subtask == 2:
        cause_match = _UTT_NUMBER.fullmatch(cause_raw.strip())
        if cause_match is None:
            raise fail("the cause side must be an utterance number (is this a Subtask 1 file?)")
        return emo, emotion, int(cause_match.group(1)), None
    cause_id, _, rest = cause_raw.strip().partition("_")
    cause_match = _UTT_NUMBER.fullmatch(cause_id)
    if cause_match is None or not rest.strip():
        raise fail(
            f"the cause side must read {'<utt>_<start>_<end>' if prediction else '<utt>_<span text>'!r}"
        )
    cause = int(cause_match.group(1))
    if not 1 <= cause <= n:
        return emo, emotion, cause, None  # check_pairs reports the range error with the others
    tokens = texts[cause - 1].split()
    if prediction:
        bounds = rest.split("_")
        if len(bounds) != 2 or not all(b.strip().isdigit() for b in bounds):
            raise fail("the cause side must read '<utt>_<start>_<end>' with token indices")
        start, end = (int(b) for b in bounds)
        if not 0 <= start < end <= len(tokens):
            raise fail(f"token span [{start}, {end}) is outside utterance {cause} ({len(tokens)} tokens)")
        return emo, emotion, cause, (start, end)
    span = _locate_span(rest, tokens)
    if span is None:
        raise fail(f"span {rest!r} does not occur in utterance {cause}")
    return emo, emotion, cause, span


def _locate_span(span: str, tokens: Sequence[str]) -> tuple[int, int] | None:
    """Whitespace-token range ``[start, end)`` of the first occurrence of ``span`` in ``tokens``."""
    for candidate in (span, span.strip(string.punctuation + string.whitespace)):
        wanted = candidate.split()
        if not wanted:
            continue
        for start in range(len(tokens) - len(wanted) + 1):
            if list(tokens[start : start + len(wanted)]) == wanted:
                return start, start + len(wanted)
    return None


def semeval_pairs(records: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[int, int, int]]]:
    """Conversation id → ``(emotion_utt, cause_utt, emotion)`` triples: what the SemEval scorer compares.

    Prediction records of :func:`read_semeval_json` give them in ``emotion_cause_pairs``; any other ECF
    record pairs each of its ``pairs`` with the label of its emotion utterance. Utterances are 0-based
    and emotions index :data:`ECF_EMOTIONS`, which is the scorer's order, so the result is the input of
    :func:`merc_hf.metrics.semeval_pair_f1` as it is (default ``emotion_names``).
    """
    out: dict[str, list[tuple[int, int, int]]] = {}
    for record in records:
        conv_id = str(record["conversation_id"])
        if conv_id in out:
            raise ValueError(f"conversation {conv_id!r} appears in two records")
        if "emotion_cause_pairs" in record:
            out[conv_id] = [(int(e), int(c), int(emotion)) for e, c, emotion in record["emotion_cause_pairs"]]
        else:
            out[conv_id] = [(int(e), int(c), int(record["emotions"][e])) for e, c in record["pairs"]]
    return out


# --------------------------------------------------------------------------- splits and features


def read_ecf(
    data_dir: str | os.PathLike,
    *,
    features_dir: str | os.PathLike | None = None,
    normalize_features: bool = False,
    subtask: int | None = None,
    validation_fraction: float = 0.1,
    validation_seed: int = 42,
) -> Corpus:
    """ECF from ``data_dir``, from the first of these layouts found there:

    1. ECF 1.0 text files ``train.txt``, ``dev.txt`` (or ``valid.txt``) and ``test.txt``;
    2. M3HG's ``{train,valid,test}_data_pair.json`` (ECF 1.0 splits);
    3. the SemEval-2024 Task 3 gold files as distributed (ECF 2.0), ``Subtask_2_train.json`` /
       ``Subtask_2_test.json`` or ``Subtask_1_train.json`` / ``Subtask_1_test.json`` (Subtask 1 records
       also carry ``cause_spans``, see :func:`read_semeval_json`). Whichever of the two splits are present
       are read; SemEval has no development file, so a seeded ``validation_fraction`` of the training
       conversations (``validation_seed``) becomes ``validation``. When files of both subtasks are there,
       ``subtask`` must say which to read; giving ``subtask`` reads the SemEval files even when a layout
       above is present.

    ``dev``/``valid`` → ``validation``. Audio/visual embeddings are attached (see
    :func:`attach_ecf_features`) from ``features_dir`` when given — then ``video_id_mapping.npy`` and at
    least one embedding table must be there — or else from ``data_dir`` when the mapping and at least one
    table happen to be there.
    """
    txt_files = {
        split: path
        for split, names in TXT_SPLIT_FILES.items()
        if (path := existing(os.path.join(data_dir, name) for name in names)) is not None
    }
    description = (
        "ECF 1.0 (Emotion-Cause-in-Friends): 1374 conversations from the sitcom Friends (built on "
        "MELD) with seven emotion labels and utterance-level emotion-cause pairs. Pairs are 0-based "
        "[emotion utterance, cause utterance]."
    )
    semeval_files = {
        task: {
            split: path
            for split, name in names.items()
            if (path := existing([os.path.join(data_dir, name)])) is not None
        }
        for task, names in SEMEVAL_SPLIT_FILES.items()
    }
    if subtask is None and txt_files:
        splits = {split: read_ecf_txt(path) for split, path in txt_files.items()}
        sources = list(txt_files.values())
        refuse_repeated_conversations(dict(zip(sources, splits.values())))
    elif subtask is None and any(
        existing(os.path.join(data_dir, n) for n in names) for names in M3HG_SPLIT_FILES.values()
    ):
        splits, sources = read_m3hg_splits(data_dir, emotion_names=ECF_EMOTIONS, dataset="ECF")
    elif subtask is not None or any(semeval_files.values()):
        subtask = _semeval_subtask(semeval_files, subtask, data_dir)
        splits, sources = _read_semeval_splits(
            semeval_files[subtask], subtask, validation_fraction, validation_seed
        )
        description = (
            f"ECF 2.0 (SemEval-2024 Task 3, Subtask {subtask} gold files): conversations from the sitcom "
            "Friends with seven emotion labels and utterance-level emotion-cause pairs (the distributed "
            "training file holds the 1374 ECF 1.0 conversations, the test file 341 new ones). Validation = seeded "
            f"{validation_fraction:.0%} of the training conversations (seed {validation_seed}). Pairs are "
            "0-based [emotion utterance, cause utterance]"
            + (
                "; cause_spans are [emotion utterance, cause utterance, start, end) token spans."
                if subtask == 1
                else "."
            )
        )
    else:
        raise DataFormatError(
            "no ECF split files found (expected train.txt, dev.txt, test.txt, M3HG's *_data_pair.json or "
            "the SemEval-2024 Subtask_2_train.json / Subtask_2_test.json, or Subtask_1_*)",
            file=data_dir,
        )
    feature_paths = _feature_paths(
        data_dir if features_dir is None else features_dir, required=features_dir is not None
    )
    if feature_paths is not None:
        # one call for all splits: the tables are opened (and min-max ranges computed) once
        attached = iter(
            attach_ecf_features(
                [r for records in splits.values() for r in records],
                **feature_paths,
                normalize=normalize_features,
            )
        )
        splits = {split: [next(attached) for _ in records] for split, records in splits.items()}
        sources += [p for p in feature_paths.values() if p is not None]
    return Corpus(
        name="ecf",
        splits=splits,
        class_names={"emotions": list(ECF_EMOTIONS)},
        description=description,
        citation=CITATION,
        homepage=HOMEPAGE,
        sources=sources,
    )


def _semeval_subtask(
    found: Mapping[int, Mapping[str, str]], subtask: int | None, data_dir: str | os.PathLike
) -> int:
    """The subtask to read: the one asked for, else the only one whose files are in ``data_dir``."""
    if subtask is not None:
        if subtask not in SEMEVAL_SPLIT_FILES:
            raise ValueError(f"subtask must be 1 or 2, got {subtask!r}")
        if not found[subtask]:
            names = " or ".join(SEMEVAL_SPLIT_FILES[subtask].values())
            raise DataFormatError(
                f"no SemEval-2024 Subtask {subtask} file found (expected {names})", file=data_dir
            )
        return subtask
    present = [task for task, files in found.items() if files]
    if len(present) > 1:
        raise DataFormatError(
            "holds SemEval-2024 files of both Subtask 1 and Subtask 2; choose one with subtask=1 or subtask=2",
            file=data_dir,
        )
    return present[0]


def _read_semeval_splits(
    files: Mapping[str, str], subtask: int, validation_fraction: float, validation_seed: int
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Records per split of the SemEval gold files found, with validation carved from train."""
    read = {split: read_semeval_json(path, subtask) for split, path in files.items()}
    refuse_repeated_conversations({files[split]: records for split, records in read.items()})
    splits: dict[str, list[dict[str, Any]]] = {}
    if "train" in read:
        ids = [r["conversation_id"] for r in read["train"]]
        _, validation_ids = split_off_validation(ids, validation_fraction, validation_seed)
        chosen = set(validation_ids)
        splits["train"] = [r for r in read["train"] if r["conversation_id"] not in chosen]
        if chosen:
            splits["validation"] = [r for r in read["train"] if r["conversation_id"] in chosen]
    if "test" in read:
        splits["test"] = read["test"]
    return splits, list(files.values())


def _feature_paths(folder: str | os.PathLike, *, required: bool) -> dict[str, str | None] | None:
    found = {key: existing([os.path.join(folder, name)]) for key, name in FEATURE_FILES.items()}
    if found["mapping"] is not None and (found["audio"] or found["visual"]):
        return {"audio_npy": found["audio"], "video_npy": found["visual"], "id_mapping_npy": found["mapping"]}
    if required:
        raise DataFormatError(
            f"features need {FEATURE_FILES['mapping']} and at least one of {FEATURE_FILES['audio']}, "
            f"{FEATURE_FILES['visual']}",
            file=folder,
        )
    return None


def attach_ecf_features(
    records: Iterable[Mapping[str, Any]],
    audio_npy: str | os.PathLike | None,
    video_npy: str | os.PathLike | None,
    id_mapping_npy: str | os.PathLike,
    *,
    normalize: bool = False,
) -> list[dict[str, Any]]:
    """Copies of ``records`` with ``audio`` and/or ``visual`` float32 ``(T, D)`` matrices from ECF's tables.

    Utterance ``k`` (0-based) of conversation ``c`` is looked up as ``dia{c}utt{k+1}`` in the id mapping
    (loaded with the restricted unpickler), whose value is the row of each table. ``normalize=True``
    min-max scales every dimension over the rows the mapping uses, as NUSTM/MECPE's step 1 does.
    Missing ids, rows outside a table, and non-finite values raise :class:`DataFormatError`.
    """
    if audio_npy is None and video_npy is None:
        raise ValueError("give at least one of audio_npy and video_npy")
    mapping = _load_id_mapping(id_mapping_npy)
    tables = {
        modality: _load_table(path, mapping, id_mapping_npy, normalize)
        for modality, path in (("audio", audio_npy), ("visual", video_npy))
        if path is not None
    }
    out = []
    for record in records:
        conv_id = str(record["conversation_id"])
        n = len(record["utterances"])
        rows = []
        for k in range(n):
            key = f"dia{int(conv_id) if conv_id.isdigit() else conv_id}utt{k + 1}"
            if key not in mapping:
                raise DataFormatError(
                    f"no row for utterance {key!r} in the id mapping",
                    file=id_mapping_npy,
                    dialogue=conv_id,
                    field="utterance_id",
                )
            rows.append(mapping[key])
        new = dict(record)
        for modality, (path, table, scale) in tables.items():
            matrix = np.asarray(table[rows], dtype=np.float64)
            if scale is not None:
                matrix = (matrix - scale[0]) / scale[1]
            new[modality] = feature_matrix(
                matrix, file=path, dialogue=conv_id, field=modality, length=n, dim=table.shape[1]
            )
        out.append(new)
    return out


def _load_id_mapping(path: str | os.PathLike) -> dict[str, int]:
    array = load_npy(path)
    mapping = array.item() if isinstance(array, np.ndarray) and array.shape == () else array
    if not isinstance(mapping, Mapping):
        raise DataFormatError(
            f"expected a 0-d object array holding a dict 'dia<c>utt<u>' -> row, got {type(mapping).__name__}",
            file=path,
            field="video_id_mapping",
        )
    out = {}
    for key, row in mapping.items():
        if (
            not isinstance(key, str)
            or isinstance(row, bool)
            or not isinstance(row, (int, np.integer))
            or row < 0
        ):
            raise DataFormatError(
                f"entry {key!r}: {row!r} must map an utterance id string to a non-negative row index",
                file=path,
                field="video_id_mapping",
            )
        out[key] = int(row)
    return out


def _load_table(
    path: str | os.PathLike, mapping: Mapping[str, int], mapping_path: str | os.PathLike, normalize: bool
) -> tuple[str, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``(path, table, scale)`` of one embedding table; ``scale`` is ``(minimum, range)`` per dimension
    when normalising. Numeric tables are memory-mapped, so only the rows used are read (ECF's are ~700 MB)."""
    table = load_npy(path, mmap_mode="r")  # header checked against the file size; errors name the file
    if table.dtype == object:
        try:
            table = np.asarray(table, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise DataFormatError(f"object array is not a numeric table ({err})", file=path) from None
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.number) or table.dtype.kind == "c":
        raise DataFormatError(
            f"expected a numeric (rows, dim) table, got {table.dtype} {table.shape}", file=path
        )
    used = np.unique(np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping)))
    if used.size and used[-1] >= table.shape[0]:
        bad = next(k for k, v in mapping.items() if v >= table.shape[0])
        raise DataFormatError(
            f"utterance {bad!r} maps to row {mapping[bad]}, but {os.fspath(path)!r} has {table.shape[0]} rows",
            file=mapping_path,
            field="video_id_mapping",
        )
    scale = _minmax(table, used) if normalize and used.size else None
    return os.fspath(path), table, scale


def _minmax(table: np.ndarray, rows: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension minimum and range (plus 1e-8, as NUSTM/MECPE) over ``rows``, read in chunks."""
    low = np.full(table.shape[1], np.inf)
    high = np.full(table.shape[1], -np.inf)
    for start in range(0, rows.size, chunk):
        block = np.asarray(table[rows[start : start + chunk]], dtype=np.float64)
        low = np.minimum(low, block.min(axis=0))
        high = np.maximum(high, block.max(axis=0))
    return low, high - low + 1e-8
