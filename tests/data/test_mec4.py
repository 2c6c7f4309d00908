"""MEC4 reader. No real MEC4 file is available: the fixtures follow the documented layout (M3F-MECPE README,
BridgeProt's MEC4 adapter field names), so these tests pin the reader's interpretation of that layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from merc_hf.data.errors import DataFormatError
from merc_hf.data.readers.mec4 import (
    BINARY_EMOTIONS,
    MEC4_EMOTIONS,
    pair_position_stats,
    read_mec4,
    read_mec4_json,
)


def where(path: Path, dialogue: str | None = None, field: str | None = None) -> str:
    """Regex for the location prefix of a DataFormatError message."""
    parts = [f"file {str(path)!r}"]
    if dialogue is not None:
        parts.append(f"dialogue {dialogue!r}")
    if field is not None:
        parts.append(f"field {field!r}")
    return re.escape(", ".join(parts) + ": ")


def row(dia_id="jyen_001", **changes) -> dict:
    """A dialogue in the documented text layout: numbered turns in one string, pairs as a string."""
    data = {
        "dia_id": dia_id,
        "dia_len": 3,
        "text": "1.刘梅：小雪，今天考了2.5分？排第 2. 名？ 2.夏雪: 妈，是95分！ 3.刘梅：真的呀，太好了。",
        "pairs": "（3，2），(2,2)",
        "emotion": ["中性", "Happy", "joy"],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def dump(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_read_mec4_json_text_layout(tmp_path):
    (record,) = read_mec4_json(dump(tmp_path / "train.json", [row()]))
    assert record == {
        "conversation_id": "jyen_001",
        # "2.5" and " 2. " inside turn 1 are not turn markers: a marker needs "<speaker>：" after it
        "utterances": ["小雪，今天考了2.5分？排第 2. 名？", "妈，是95分！", "真的呀，太好了。"],
        "speakers": [0, 1, 0],
        "speaker_names": ["刘梅", "夏雪", "刘梅"],
        "emotions": [0, MEC4_EMOTIONS.index("joy"), MEC4_EMOTIONS.index("joy")],
        "pairs": [[2, 1], [1, 1]],  # 1-based in the file, full-width brackets accepted
    }


def test_read_mec4_json_variants(tmp_path):
    structured = {
        "dialogue_id": 7,
        "utterances": [
            {"turn": 1, "speaker": "A", "text": "你好", "emotion": "neutral"},
            {"turn": 2, "speaker": "B", "utterance": "滚！", "emotion": "Angry"},
        ],
        "emotion_cause_pairs": [[2, 1], ["2", "2"]],
    }
    by_turn = row("jyen_002", emotion=None, emotions={"1": "neutral", "2": "悲伤", "3": "surprise"}, pairs=[])
    records = read_mec4_json(dump(tmp_path / "valid.json", [structured, by_turn]))
    assert records[0]["conversation_id"] == "7"
    assert records[0]["utterances"] == ["你好", "滚！"]
    assert records[0]["emotions"] == [0, MEC4_EMOTIONS.index("anger")]
    assert records[0]["pairs"] == [[1, 0], [1, 1]]
    assert records[1]["emotions"] == [0, MEC4_EMOTIONS.index("sadness"), MEC4_EMOTIONS.index("surprise")]
    assert records[1]["pairs"] == []


def test_read_mec4_labelled_corpus(tmp_path):
    dump(
        tmp_path / "MEC4_text" / "train.json",
        [row("a"), row("b", pairs="(1,1)", emotion=["愤怒", "中性", "中性"])],
    )
    dump(tmp_path / "MEC4_text" / "dev.json", [row("c")])
    dump(tmp_path / "MEC4_text" / "test.json", [row("d")])
    corpus = read_mec4(tmp_path)  # the release's data/ folder
    assert list(corpus.splits) == ["train", "validation", "test"]
    assert corpus.class_names == {"emotions": MEC4_EMOTIONS}
    assert corpus.splits["train"][1]["emotions"] == [1, 0, 0]
    assert pair_position_stats(corpus.splits["train"]) == {
        "pairs": 3, "before": 1, "at": 2, "after": 0,
        "max_distance": 1, "max_distance_before": 1, "max_distance_after": 0,
    }  # fmt: skip
    assert read_mec4(tmp_path / "MEC4_text").splits.keys() == corpus.splits.keys()


def test_read_mec4_unlabelled_corpus_gets_binary_emotions(tmp_path):
    dump(tmp_path / "train.json", [row("a", emotion=None), row("b", emotion=None, pairs="")])
    dump(tmp_path / "test.json", [row("c", emotion=None, pairs="(1,3)")])
    assert "emotions" not in read_mec4_json(tmp_path / "train.json")[0]
    corpus = read_mec4(tmp_path)
    assert corpus.class_names == {"emotions": BINARY_EMOTIONS}
    assert corpus.splits["train"][0]["emotions"] == [0, 1, 1]  # emotion side of (3,2) and (2,2)
    assert corpus.splits["train"][1]["emotions"] == [0, 0, 0]
    assert corpus.splits["test"][0]["emotions"] == [1, 0, 0]


def test_read_mec4_neutral_pair_is_a_warning(tmp_path):
    path = dump(tmp_path / "test.json", [row(pairs="(1,1)")])
    with pytest.warns(
        UserWarning, match=where(path, "jyen_001", "pairs") + ".*emotion utterance 1 is labelled neutral"
    ):
        (record,) = read_mec4_json(path)
    assert record["pairs"] == [[0, 0]]


MEC4_BAD = [
    # (id, rows, dialogue, field, message)
    ("dia_len mismatch", [row(dia_len=4)], "jyen_001", "dia_len", "dia_len says 4 utterances but 3 were found"),
    ("truncated text", [row(text="1.刘梅：小雪 2.夏雪：妈")], "jyen_001", "dia_len",
     "dia_len says 3 utterances but 2 were found"),
    ("malformed pair string", [row(pairs="(3,2),(2,")], "jyen_001", "pairs", "malformed pair string"),
    ("pair outside dialogue", [row(pairs="(3,5)")], "jyen_001", "pairs",
     "cause utterance 5 is outside the conversation"),
    ("repeated pair", [row(pairs="(3,2),（3，2）")], "jyen_001", "pairs", r"pair \(3, 2\) is listed twice"),
    ("malformed pair list", [row(pairs=[[3, 2, 1]])], "jyen_001", "pairs", "expected \\[emotion turn, cause turn\\]"),
    ("pair turn not an integer", [row(pairs=[[3, "two"]])], "jyen_001", "pairs", "must be an integer"),
    ("pairs of a wrong type", [row(pairs=3)], "jyen_001", "pairs", "expected a pair string or a list"),
    ("missing pairs", [row(pairs=None)], "jyen_001", "pairs", "no 'pairs' or 'emotion_cause_pairs'"),
    ("duplicate dialogue id", [row(), row()], "jyen_001", "dia_id", "dialogue id appears twice"),
    ("text without turn 1", [row(text="刘梅：小雪")], "jyen_001", "text", "must start with turn '1."),
    ("turn 1 without speaker", [row(text="1.刘梅 2.夏雪：妈 3.刘梅：好")], "jyen_001", "text",
     "must start with turn '1."),
    ("turn 2 without colon", [row(text="1.刘梅：小雪 2.夏雪 妈 3.刘梅：好", dia_len=None)], "jyen_001", "text",
     "turn 1 is followed by turn 3 where turn 2 was expected"),
    ("turns misnumbered", [row(text="1.刘梅：小雪 3.夏雪：妈 4.刘梅：好", dia_len=None)], "jyen_001", "text",
     "turn 1 is followed by turn 3 where turn 2 was expected"),
    ("turn repeated", [row(text="1.刘梅：小雪 2.夏雪：妈 2.刘梅：好", dia_len=None)], "jyen_001", "text",
     "turn 2 is followed by turn 2 where turn 3 was expected"),
    ("text not a string", [row(text=["1.刘梅：小雪"])], "jyen_001", "text", "as one string"),
    ("no utterances at all", [row(text=None)], "jyen_001", "text", "neither 'text' nor an 'utterances' list"),
    ("unknown emotion", [row(emotion=["中性", "excited", "joy"])], "jyen_001", "emotion",
     "unknown emotion 'excited' at utterance 2"),
    ("label count", [row(emotion=["中性", "joy"])], "jyen_001", "emotion", "has 2 labels but the dialogue has 3"),
    ("labels by turn miss one", [row(emotion={"1": "joy", "3": "joy"})], "jyen_001", "emotion",
     r"labels are given for turns \[1, 3\]"),
    ("labels of a wrong type", [row(emotion="joy")], "jyen_001", "emotion", "expected a list of labels"),
    ("some dialogues unlabelled", [row("a"), row("b", emotion=None)], "b", "emotion",
     "no emotion labels but others in the file do"),
    ("structured turn numbering", [{"dia_id": "s", "pairs": "", "utterances": [
        {"turn": 1, "speaker": "A", "text": "x"}, {"turn": 1, "speaker": "B", "text": "y"}]}], "s", "turn",
     "utterance 2 is numbered 1, which repeats"),
    ("structured partial labels", [{"dia_id": "s", "pairs": "", "utterances": [
        {"speaker": "A", "text": "x", "emotion": "joy"}, {"speaker": "B", "text": "y"}]}], "s", "emotion",
     "utterance 2 has no emotion but others do"),
    ("structured missing speaker", [{"dia_id": "s", "pairs": "", "utterances": [{"text": "x"}]}], "s", "speaker",
     "utterance 1 has no 'speaker' key"),
    ("labels given twice", [{"dia_id": "s", "pairs": "", "emotion": ["joy"], "utterances": [
        {"speaker": "A", "text": "x", "emotion": "joy"}]}], "s", "emotion", "both per utterance and per dialogue"),
    ("empty dialogue", [{"dia_id": "s", "pairs": "", "utterances": []}], "s", "utterances", "no utterances"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "dialogue", "field", "message"), [c[1:] for c in MEC4_BAD], ids=[c[0] for c in MEC4_BAD]
)
def test_mec4_bad_input(tmp_path, rows, dialogue, field, message):
    path = dump(tmp_path / "test.json", rows)
    with pytest.raises(DataFormatError, match=where(path, dialogue, field) + ".*" + message):
        read_mec4_json(path)


def test_mec4_bad_files(tmp_path):
    no_id = dump(tmp_path / "no_id.json", [{k: v for k, v in row().items() if k != "dia_id"}])
    with pytest.raises(DataFormatError, match=where(no_id, None, "dia_id") + "dialogue 1 has no 'dia_id'"):
        read_mec4_json(no_id)
    with pytest.raises(DataFormatError, match="expected a JSON list of dialogues"):
        read_mec4_json(dump(tmp_path / "object.json", {"jyen_001": row()}))
    with pytest.raises(DataFormatError, match="holds no dialogues"):
        read_mec4_json(dump(tmp_path / "empty.json", []))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps([row()], ensure_ascii=False)[:-10], encoding="utf-8")
    with pytest.raises(DataFormatError, match=where(truncated) + "truncated or invalid JSON"):
        read_mec4_json(truncated)


def test_read_mec4_split_checks(tmp_path):
    with pytest.raises(DataFormatError, match="no MEC4 split files found"):
        read_mec4(tmp_path)
    dump(tmp_path / "train.json", [row("a")])
    test = dump(tmp_path / "test.json", [row("a")])
    with pytest.raises(
        DataFormatError, match=where(test, "a", "conversation_id") + "conversation id also appears"
    ):
        read_mec4(tmp_path)
    dump(tmp_path / "test.json", [row("b", emotion=None)])
    with pytest.raises(DataFormatError, match=where(test, None, "emotion") + "split has no emotion labels"):
        read_mec4(tmp_path)
