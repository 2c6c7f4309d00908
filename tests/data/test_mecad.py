"""MECAD / M3HG JSON layout reader."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from merc_hf.data.errors import DataFormatError
from merc_hf.data.readers.mecad import MECAD_EMOTIONS, pair_position_stats, read_m3hg_json, read_mecad


def where(path: Path, dialogue: str | None = None, field: str | None = None) -> str:
    """Regex for the location prefix of a DataFormatError message."""
    parts = [f"file {str(path)!r}"]
    if dialogue is not None:
        parts.append(f"dialogue {dialogue!r}")
    if field is not None:
        parts.append(f"field {field!r}")
    return re.escape(", ".join(parts) + ": ")


# ------------------------------------------------------------------ real file (redifinition/M3HG data/MECAD)


@functools.cache
def read_real_mecad(folder: Path):
    return read_mecad(folder)


def test_real_mecad_validation_statistics(shared_data):
    corpus = read_real_mecad(shared_data / "mecad")
    assert corpus.name == "mecad" and list(corpus.splits) == ["validation"]
    assert corpus.class_names == {"emotions": MECAD_EMOTIONS}
    assert corpus.sources == [str(shared_data / "mecad" / "valid_data_pair.json")]
    records = corpus.splits["validation"]
    assert len(records) == 126
    assert sum(len(r["utterances"]) for r in records) == 1168
    assert max(len(r["utterances"]) for r in records) == 19
    assert pair_position_stats(records) == {
        "pairs": 977, "before": 562, "at": 381, "after": 34,
        "max_distance": 7, "max_distance_before": 7, "max_distance_after": 5,
    }  # fmt: skip
    emotions = Counter(MECAD_EMOTIONS[e] for r in records for e in r["emotions"])
    assert emotions == {
        "Neutral": 424, "Anger": 237, "Sad": 174, "Happy": 159, "Surprise": 87, "Disgust": 62, "Fear": 25
    }  # fmt: skip
    assert all(r["emotions"][e] != 0 for r in records for e, _ in r["pairs"])  # no neutral emotion utterance
    # one emotion utterance has no cause evidence (yueguangbianzouqu_17, turn 1)
    without_cause = [
        (r["conversation_id"], k)
        for r in records
        for k, e in enumerate(r["emotions"])
        if e != 0 and k not in {emo for emo, _ in r["pairs"]}
    ]
    assert without_cause == [("yueguangbianzouqu_17", 0)]


def test_real_mecad_first_record(shared_data):
    first = read_real_mecad(shared_data / "mecad").splits["validation"][0]
    assert first["conversation_id"] == "bianchengnidenayitian_1"
    assert first["speaker_names"][:4] == ["姜大川", "江熠", "姜大川", "江熠"]
    assert first["speakers"][:4] == [0, 1, 0, 1]
    assert first["utterances"][1] == "六十万"
    assert [MECAD_EMOTIONS[e] for e in first["emotions"][:5]] == [
        "Anger",
        "Neutral",
        "Surprise",
        "Neutral",
        "Sad",
    ]
    assert first["pairs"][:2] == [[0, 0], [2, 1]]  # turns (1, 1) and (3, 2) in the file


# ------------------------------------------------------------------ hand-made files


def utterance(conv: str, turn: int, emotion: str, causes=None, **extra) -> dict:
    utt = {
        "turn": turn,
        "speaker": "甲" if turn % 2 else "乙",
        "utterance": f"第{turn}句",
        "emotion": emotion,
        "utterance_name": f"{conv}_{turn}",
        "video": f"{conv}_{turn}.mp4",
    }
    if causes is not None:
        utt.update({"cause_modality": ["t"], "confidence": [4, 5, 5], "cause_type": "event",
                    "expanded emotion cause evidence": causes, "annotator_name": ["a1", "a2", "a3"]})  # fmt: skip
    utt.update(extra)
    return utt


def small_corpus(prefix: str = "show") -> dict:
    a, b = f"{prefix}_1", f"{prefix}_2"
    return {
        a: [[utterance(a, 1, "Neutral"), utterance(a, 2, "Happy", [1, 2]), utterance(a, 3, "Sad", [4]),
             utterance(a, 4, "Anger", [])]],
        b: [[utterance(b, 1, "Fear", [1])]],
    }  # fmt: skip


def dump(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def test_read_m3hg_json_small_file(tmp_path):
    records = read_m3hg_json(dump(tmp_path / "valid_data_pair.json", small_corpus()))
    assert records == [
        {
            "conversation_id": "show_1",
            "utterances": ["第1句", "第2句", "第3句", "第4句"],
            "speakers": [0, 1, 0, 1],
            "speaker_names": ["甲", "乙", "甲", "乙"],
            "emotions": [0, 4, 5, 1],
            "pairs": [[1, 0], [1, 1], [2, 3]],  # 1-based turns in the file; a future cause is kept
        },
        {
            "conversation_id": "show_2",
            "utterances": ["第1句"],
            "speakers": [0],
            "speaker_names": ["甲"],
            "emotions": [3],
            "pairs": [[0, 0]],
        },
    ]
    assert pair_position_stats(records)["after"] == 1


def test_read_mecad_all_splits(tmp_path):
    dump(tmp_path / "train_data_pair.json", small_corpus("train"))
    dump(tmp_path / "valid_data_pair.json", small_corpus("valid"))
    dump(tmp_path / "test_data_pair.json", small_corpus("test"))
    corpus = read_mecad(tmp_path)
    assert list(corpus.splits) == ["train", "validation", "test"]
    assert corpus.splits["test"][0]["conversation_id"] == "test_1"
    assert "Liang" in corpus.citation and corpus.homepage.endswith("redifinition/M3HG")


def test_read_mecad_refuses_a_conversation_in_two_splits(tmp_path):
    dump(tmp_path / "train_data_pair.json", small_corpus("same"))
    test = dump(tmp_path / "test_data_pair.json", small_corpus("same"))
    with pytest.raises(
        DataFormatError, match=where(test, "same_1", "conversation_id") + "conversation id also appears in"
    ):
        read_mecad(tmp_path)


def test_read_mecad_without_files(tmp_path):
    with pytest.raises(DataFormatError, match="no MECAD split files found"):
        read_mecad(tmp_path)


def test_read_m3hg_json_with_ecf_names(tmp_path):
    from merc_hf.data.readers.ecf import ECF_EMOTIONS

    data = {"3": [[{"turn": 1, "speaker": "Joey", "utterance": "Hey !", "emotion": "joy", "video": "dia3utt1.mp4",
                    "expanded emotion cause evidence": [1]}]]}  # fmt: skip
    path = dump(tmp_path / "test_data_pair.json", data)
    assert read_m3hg_json(path, emotion_names=ECF_EMOTIONS)[0]["emotions"] == [4]
    with pytest.raises(DataFormatError, match="unknown emotion 'joy'"):
        read_m3hg_json(path)  # MECAD names by default


# ------------------------------------------------------------------ bad input


def broken(mutate):
    def make():
        data = small_corpus()
        mutate(data)
        return data

    return make


def set_utt(conv: str, index: int, **changes):
    return broken(lambda d: d[conv][0][index].update(changes))


def drop_key(conv: str, index: int, key: str):
    return broken(lambda d: d[conv][0][index].pop(key))


def duplicated_conversation():
    text = json.dumps(small_corpus(), ensure_ascii=False)
    first = json.dumps({"show_2": small_corpus()["show_2"]}, ensure_ascii=False)[1:-1]
    return text[:-1] + ", " + first + "}"


M3HG_BAD = [
    # (id, data factory or raw JSON text, dialogue, field, message)
    ("duplicate conversation id", duplicated_conversation, "show_2", "conversation_id", "appears twice"),
    ("unwrapped utterance list", broken(lambda d: d.__setitem__("show_2", d["show_2"][0])), "show_2", "utterances",
     "expected a one-element list wrapping the utterance list"),
    ("two wrapped lists", broken(lambda d: d["show_2"].append([])), "show_2", "utterances", "got a list of 2 items"),
    ("repeated turn", set_utt("show_1", 2, turn=2, utterance_name="show_1_2"), "show_1", "turn",
     "utterance 3 is numbered 2, which repeats an earlier utterance id"),
    ("turns out of order", set_utt("show_1", 0, turn=5, utterance_name="show_1_5"), "show_1", "turn",
     "utterance 1 is numbered 5, which is out of order"),
    ("turn is not an integer", set_utt("show_1", 1, turn="two"), "show_1", "turn", "must be an integer"),
    ("wrong utterance name", set_utt("show_1", 1, utterance_name="show_9_2"), "show_1", "utterance_name",
     "utterance 2 is named 'show_9_2', expected 'show_1_2'"),
    ("unknown emotion", set_utt("show_1", 2, emotion="Joy"), "show_1", "emotion",
     "unknown emotion 'Joy' at utterance 3"),
    ("cause outside conversation", set_utt("show_1", 1, **{"expanded emotion cause evidence": [1, 7]}), "show_1",
     "expanded emotion cause evidence", r"pair \(2, 7\): cause utterance 7 is outside the conversation"),
    ("cause on neutral utterance", set_utt("show_1", 0, **{"expanded emotion cause evidence": [1]}), "show_1",
     "expanded emotion cause evidence", "emotion utterance 1 is labelled neutral"),
    ("repeated cause", set_utt("show_1", 1, **{"expanded emotion cause evidence": [1, 1]}), "show_1",
     "expanded emotion cause evidence", r"pair \(2, 1\) is listed twice"),
    ("cause evidence not a list", set_utt("show_1", 1, **{"expanded emotion cause evidence": "1"}), "show_1",
     "expanded emotion cause evidence", "must be a list of turns"),
    ("cause turn not an integer", set_utt("show_1", 1, **{"expanded emotion cause evidence": [1.5]}), "show_1",
     "expanded emotion cause evidence", "cause turn of utterance 2 must be an integer"),
    ("missing speaker", drop_key("show_1", 1, "speaker"), "show_1", "speaker", "utterance 2 has no 'speaker' key"),
    ("empty speaker", set_utt("show_1", 1, speaker=""), "show_1", "speaker", "utterance 2 has no speaker name"),
    ("transcript not a string", set_utt("show_1", 1, utterance=None), "show_1", "utterance", "must be a string"),
    ("empty conversation", broken(lambda d: d.__setitem__("show_2", [[]])), "show_2", "utterances",
     "dialogue has no utterances"),
    ("duplicate key in utterance", lambda: json.dumps(small_corpus(), ensure_ascii=False).replace(
        '"emotion": "Fear"', '"emotion": "Fear", "emotion": "Sad"'), "show_2", "emotion",
     "utterance 1 has the key 'emotion' twice"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "dialogue", "field", "message"), [c[1:] for c in M3HG_BAD], ids=[c[0] for c in M3HG_BAD]
)
def test_m3hg_bad_input(tmp_path, make, dialogue, field, message):
    data = make()
    path = tmp_path / "test_data_pair.json"
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        dump(path, copy.deepcopy(data))
    with pytest.raises(DataFormatError, match=where(path, dialogue, field) + ".*" + message):
        read_m3hg_json(path)


def test_m3hg_bad_files(tmp_path):
    text = json.dumps(small_corpus(), ensure_ascii=False)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: len(text) - 40], encoding="utf-8")
    with pytest.raises(DataFormatError, match=where(truncated) + "truncated or invalid JSON"):
        read_m3hg_json(truncated)
    with pytest.raises(DataFormatError, match="expected a JSON object keyed by conversation id"):
        read_m3hg_json(dump(tmp_path / "list.json", [small_corpus()]))
    with pytest.raises(DataFormatError, match="holds no conversations"):
        read_m3hg_json(dump(tmp_path / "empty.json", {}))
    with pytest.raises(DataFormatError, match="file not found"):
        read_m3hg_json(tmp_path / "missing.json")
