"""ECF readers: ECF 1.0 text, SemEval-2024 Task 3 JSON (gold and prediction), M3HG JSON, feature tables."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from merc_hf.data.errors import DataFormatError
from merc_hf.data.readers.ecf import (
    ECF_EMOTIONS,
    attach_ecf_features,
    pair_position_stats,
    read_ecf,
    read_ecf_txt,
    read_semeval_json,
)


def where(path: Path, dialogue: str | None = None, field: str | None = None) -> str:
    """Regex for the location prefix of a DataFormatError message."""
    parts = [f"file {str(path)!r}"]
    if dialogue is not None:
        parts.append(f"dialogue {dialogue!r}")
    if field is not None:
        parts.append(f"field {field!r}")
    return re.escape(", ".join(parts) + ": ")


# ------------------------------------------------------------------ real files (NUSTM/MECPE data/*.txt)

REAL_COUNTS = {  # conversations, utterances, pairs, emotion (non-neutral) utterances
    "train": (1001, 9966, 7055, 5577),
    "validation": (112, 1087, 866, 668),
    "test": (261, 2566, 1873, 1445),
}
REAL_POSITIONS = {  # before, at, after, max |e - c|
    "train": (3259, 3520, 276, 14),
    "validation": (427, 415, 24, 10),
    "test": (836, 957, 80, 9),
}


@functools.cache
def read_real_ecf(folder: Path):
    return read_ecf(folder)


@pytest.fixture
def real_ecf(shared_data):
    return read_real_ecf(shared_data / "ecf")


def test_real_ecf_statistics(shared_data, real_ecf):
    corpus = real_ecf
    assert corpus.name == "ecf"
    assert corpus.class_names == {"emotions": ECF_EMOTIONS}
    assert corpus.sources == [str(shared_data / "ecf" / f"{n}.txt") for n in ("train", "dev", "test")]
    for split, (n_conv, n_utt, n_pairs, n_emo) in REAL_COUNTS.items():
        records = corpus.splits[split]
        assert len(records) == n_conv
        assert sum(len(r["utterances"]) for r in records) == n_utt
        assert sum(len(r["pairs"]) for r in records) == n_pairs
        assert sum(e != 0 for r in records for e in r["emotions"]) == n_emo
        before, at, after, max_distance = REAL_POSITIONS[split]
        stats = pair_position_stats(records)
        assert (stats["pairs"], stats["before"], stats["at"], stats["after"]) == (n_pairs, before, at, after)
        assert stats["max_distance"] == max_distance
    ids = [r["conversation_id"] for records in corpus.splits.values() for r in records]
    assert len(set(ids)) == len(ids) == 1374
    assert max(len(r["utterances"]) for r in corpus.splits["test"]) == 33


def test_real_ecf_test_split_recall_ceiling(real_ecf):
    # 80 of the 1873 test pairs have the cause after the emotion: a candidate space with cause <= emotion
    # can recall at most 1793 / 1873.
    stats = pair_position_stats(real_ecf.splits["test"])
    assert stats["after"] == 80 and stats["pairs"] == 1873
    assert stats["max_distance_before"] == 8 and stats["max_distance_after"] == 9


def test_real_ecf_records_are_consistent(real_ecf):
    pair_emotions = Counter()
    for records in real_ecf.splits.values():
        for r in records:
            n = len(r["utterances"])
            assert len(r["speakers"]) == len(r["speaker_names"]) == len(r["emotions"]) == n
            assert all(0 <= e < n and 0 <= c < n for e, c in r["pairs"])
            assert all(r["emotions"][e] != 0 for e, _ in r["pairs"])  # no neutral emotion utterance
            assert len({tuple(p) for p in r["pairs"]}) == len(r["pairs"])
            pair_emotions.update(ECF_EMOTIONS[r["emotions"][e]] for e, _ in r["pairs"])
    assert pair_emotions == {
        "joy": 2814, "surprise": 2338, "anger": 2242, "sadness": 1475, "disgust": 560, "fear": 365
    }  # fmt: skip
    first = real_ecf.splits["test"][0]
    assert first["conversation_id"] == "16"
    assert first["speaker_names"] == ["Alan", "Monica", "Alan", "Monica", "Alan"]
    assert first["speakers"] == [0, 1, 0, 1, 0]
    assert first["emotions"] == [6, 0, 0, 6, 0]
    assert first["pairs"] == [[3, 2]]  # "(4,3)" in the file


# ------------------------------------------------------------------ hand-made ECF 1.0 text

TXT = """\
7 3
(1,1),(3,1),(3,3)
1 | Ross | joy | Hi | there ! | Friends_S1E1: 00:00:01.000 - 00:00:02.000
2 | Rachel | neutral | Hey . | Friends_S1E1: 00:00:02.000 - 00:00:03.000
3 | Ross | surprise | What ? | Friends_S1E1: 00:00:03.000 - 00:00:04.000
9 2

1 | Monica | neutral | Okay . | Friends_S1E2: 00:01:00.000 - 00:01:01.000
2 | Chandler | neutral | Fine . | Friends_S1E2: 00:01:01.000 - 00:01:02.000
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_ecf_txt_small_file(tmp_path):
    records = read_ecf_txt(write(tmp_path / "test.txt", TXT))
    assert records == [
        {
            "conversation_id": "7",
            "utterances": ["Hi | there !", "Hey .", "What ?"],  # a bar inside the text survives
            "speakers": [0, 1, 0],
            "speaker_names": ["Ross", "Rachel", "Ross"],
            "emotions": [4, 0, 6],
            "pairs": [[0, 0], [2, 0], [2, 2]],  # 1-based in the file
        },
        {
            "conversation_id": "9",
            "utterances": ["Okay .", "Fine ."],
            "speakers": [0, 1],
            "speaker_names": ["Monica", "Chandler"],
            "emotions": [0, 0],
            "pairs": [],
        },
    ]
    assert pair_position_stats(records) == {
        "pairs": 3, "before": 1, "at": 2, "after": 0,
        "max_distance": 2, "max_distance_before": 2, "max_distance_after": 0,
    }  # fmt: skip


def test_read_ecf_txt_tolerates_crlf_blank_lines_and_meld_keys(tmp_path):
    text = TXT.split("9 2\n")[0].replace("\n", "\r\n") + "\r\n\r\n9 1\r\n(1,1)\r\n"
    text += "1 | Joey | anger | No ! | \r\n"  # ECFvsMELD layout: empty clip key column
    records = read_ecf_txt(write(tmp_path / "all.txt", text))
    assert [r["conversation_id"] for r in records] == ["7", "9"]
    assert records[0]["utterances"][2] == "What ?"
    assert records[1]["utterances"] == ["No !"] and records[1]["pairs"] == [[0, 0]]


def test_read_ecf_txt_span_pairs_are_reduced_to_unique_utterance_pairs(tmp_path):
    text = "3 2\n(2,1,0,3),(2,1,4,5),(2,2,0,1)\n1 | A | neutral | a b c d e | x\n2 | B | joy | f | x\n"
    assert read_ecf_txt(write(tmp_path / "spans.txt", text))[0]["pairs"] == [[1, 0], [1, 1]]


def test_read_ecf_finds_split_files(tmp_path):
    write(tmp_path / "train.txt", TXT)
    write(tmp_path / "valid.txt", "11 1\n\n1 | Phoebe | fear | Oh no . | x\n")  # HiLo's name for dev
    corpus = read_ecf(tmp_path)
    assert list(corpus.splits) == ["train", "validation"]
    assert corpus.splits["validation"][0]["emotions"] == [3]
    assert corpus.modalities == ()


def test_read_ecf_refuses_a_conversation_in_two_splits(tmp_path):
    write(tmp_path / "train.txt", TXT)
    write(tmp_path / "test.txt", "9 1\n\n1 | Phoebe | fear | Oh no . | x\n")
    with pytest.raises(
        DataFormatError, match=where(tmp_path / "test.txt", "9", "conversation_id") + ".*train"
    ):
        read_ecf(tmp_path)


def test_read_ecf_without_files(tmp_path):
    with pytest.raises(DataFormatError, match="no ECF split files"):
        read_ecf(tmp_path)


def test_read_ecf_m3hg_json_copy(tmp_path):
    utts = [
        {"turn": 1, "speaker": "Ross", "utterance": "Hi .", "emotion": "joy", "video": "dia5utt1.mp4",
         "expanded emotion cause evidence": [1, 2]},
        {"turn": 2, "speaker": "Rachel", "utterance": "Hey .", "emotion": "neutral", "video": "dia5utt2.mp4"},
    ]  # fmt: skip
    (tmp_path / "test_data_pair.json").write_text(json.dumps({"5": [utts]}), encoding="utf-8")
    corpus = read_ecf(tmp_path)
    assert corpus.splits["test"][0]["pairs"] == [[0, 0], [0, 1]]
    assert corpus.splits["test"][0]["emotions"] == [ECF_EMOTIONS.index("joy"), 0]


# ------------------------------------------------------------------ SemEval-2024 Task 3 JSON


def conversation(cid=1, pairs=None, *, emotions=("neutral", "joy", "surprise"), video=False, **extra):
    texts = ["I got the job .", "That is great , Rach !", "Wait , what job ?"]
    speakers = ["Rachel", "Monica", "Ross"]
    conv = []
    for k, (text, speaker) in enumerate(zip(texts, speakers), start=1):
        utt = {"utterance_ID": k, "text": text, "speaker": speaker}
        if emotions is not None:
            utt["emotion"] = emotions[k - 1]
        if video:
            utt["video_name"] = f"dia{cid}utt{k}.mp4"
        conv.append(utt)
    if pairs is None:
        pairs = [["2_joy", "1"], ["3_surprise", "1"], ["3_surprise", "3"]]
    return {"conversation_ID": cid, "conversation": conv, "emotion-cause_pairs": pairs, **extra}


def dump(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_semeval_subtask2_gold(tmp_path):
    path = dump(
        tmp_path / "Subtask_2_test.json", [conversation(1375, video=True), conversation(1376, pairs=[])]
    )
    records = read_semeval_json(path, subtask=2)
    assert records[0] == {
        "conversation_id": "1375",
        "utterances": ["I got the job .", "That is great , Rach !", "Wait , what job ?"],
        "speakers": [0, 1, 2],
        "speaker_names": ["Rachel", "Monica", "Ross"],
        "emotions": [0, 4, 6],
        "pairs": [[1, 0], [2, 0], [2, 2]],
    }
    assert records[1]["pairs"] == []


def test_semeval_subtask2_prediction_without_emotions(tmp_path):
    pairs = [["U2_joy", "U1"], ["2_joy", "1"], ["3_neutral", 3]]  # U prefix, duplicate, neutral, int cause
    path = dump(tmp_path / "Subtask_2_pred.json", [conversation(4, pairs, emotions=None)])
    (record,) = read_semeval_json(path, subtask=2, prediction=True)
    assert record["pairs"] == [[1, 0], [2, 2]]  # the duplicate is dropped, as the scorer does
    assert record["emotions"] == [0, 4, 0]  # from the pairs; neutral elsewhere


def test_semeval_subtask1_gold_and_prediction(tmp_path):
    gold_pairs = [["2_joy", "1_I got the job ."], ["2_joy", "1_the job"], ["3_surprise", "3_what job ?"]]
    gold = read_semeval_json(dump(tmp_path / "Subtask_1_train.json", [conversation(1, gold_pairs)]), 1)[0]
    assert gold["pairs"] == [[1, 0], [2, 2]]
    assert gold["cause_spans"] == [[1, 0, 0, 5], [1, 0, 2, 4], [2, 2, 2, 5]]
    pred_pairs = [["2_joy", "1_0_5"], ["3_surprise", "3_2_5"], ["3_surprise", "3_2_5"]]
    path = dump(tmp_path / "Subtask_1_pred.json", [conversation(1, pred_pairs, emotions=None)])
    pred = read_semeval_json(path, subtask=1, prediction=True)[0]
    assert pred["pairs"] == [[1, 0], [2, 2]]
    assert pred["cause_spans"] == [[1, 0, 0, 5], [2, 2, 2, 5]]


def test_semeval_gold_span_found_after_stripping_edge_punctuation(tmp_path):
    pairs = [["2_joy", "1_got the job ...,"]]
    (record,) = read_semeval_json(dump(tmp_path / "s1.json", [conversation(1, pairs)]), subtask=1)
    assert record["cause_spans"] == [[1, 0, 1, 4]]


def test_semeval_rejects_bad_subtask(tmp_path):
    with pytest.raises(ValueError, match="subtask"):
        read_semeval_json(tmp_path / "x.json", subtask=3)


def _utt(conv, k, **changes):
    conv["conversation"][k].update(changes)
    return conv


SEMEVAL_BAD = [
    # (id, data, subtask, prediction, dialogue, field, message)
    ("duplicate conversation", [conversation(1), conversation(1)], 2, False, "1", "conversation_ID", "appears twice"),
    ("utterance numbering", [_utt(conversation(2), 2, utterance_ID=2)], 2, False, "2", "utterance_ID",
     "utterance 3 is numbered 2, which repeats"),
    ("unknown pair emotion", [conversation(3, [["2_happy", "1"]])], 2, False, "3", "emotion-cause_pairs",
     "unknown emotion 'happy'"),
    ("pair emotion differs from label", [conversation(4, [["2_anger", "1"]])], 2, False, "4",
     "emotion-cause_pairs", "emotion 'anger' differs from the label 'joy' of utterance 2"),
    ("pair outside conversation", [conversation(5, [["2_joy", "7"]])], 2, False, "5", "emotion-cause_pairs",
     "cause utterance 7 is outside the conversation"),
    ("emotion outside conversation", [conversation(5, [["9_joy", "1"]])], 2, False, "5", "emotion-cause_pairs",
     "emotion utterance 9 is outside the conversation"),
    ("emotion utterance 0", [conversation(5, [["0_joy", "1"]])], 2, False, "5", "emotion-cause_pairs",
     "emotion utterance 0 is outside the conversation"),
    ("malformed pair", [conversation(6, [["2_joy"]])], 2, False, "6", "emotion-cause_pairs", "expected"),
    ("malformed emotion side", [conversation(7, [["joy_2", "1"]])], 2, False, "7", "emotion-cause_pairs",
     "must read '<utterance number>_<emotion>'"),
    ("gold without emotion", [conversation(8, emotions=None)], 2,
     False, "8", "emotion", "has no 'emotion' key"),
    ("unknown utterance emotion", [conversation(9, emotions=("neutral", "joy", "excited"))], 2, False, "9",
     "emotion", "unknown emotion 'excited' at utterance 3"),
    ("neutral gold pair", [conversation(10, [["1_neutral", "1"]])], 2, False, "10", "emotion-cause_pairs",
     "emotion utterance 1 is labelled neutral"),
    ("prediction without pairs", [{k: v for k, v in conversation(11).items() if k != "emotion-cause_pairs"}], 2,
     True, "11", "emotion-cause_pairs", "no 'emotion-cause_pairs' key"),
    ("subtask 1 file read as subtask 2", [conversation(13, [["2_joy", "1_the job"]])], 2, False, "13",
     "emotion-cause_pairs", "is this a Subtask 1 file"),
    ("gold span not in utterance", [conversation(14, [["2_joy", "1_the car"]])], 1, False, "14",
     "emotion-cause_pairs", "span 'the car' does not occur in utterance 1"),
    ("predicted span outside utterance", [conversation(15, [["2_joy", "1_3_9"]], emotions=None)], 1, True, "15",
     "emotion-cause_pairs", r"token span \[3, 9\) is outside utterance 1"),
    ("predicted span as text", [conversation(16, [["2_joy", "1_the job"]], emotions=None)], 1, True, "16",
     "emotion-cause_pairs", "token indices"),
    ("empty speaker", [_utt(conversation(17), 1, speaker=" ")], 2, False, "17", "speaker", "non-empty string"),
    ("empty conversation", [conversation(18) | {"conversation": []}], 2, False, "18", "conversation",
     "no utterances"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "subtask", "prediction", "dialogue", "field", "message"),
    [case[1:] for case in SEMEVAL_BAD],
    ids=[case[0] for case in SEMEVAL_BAD],
)
def test_semeval_bad_input(tmp_path, data, subtask, prediction, dialogue, field, message):
    path = dump(tmp_path / "bad.json", data)
    with pytest.raises(DataFormatError, match=where(path, dialogue, field) + ".*" + message):
        read_semeval_json(path, subtask=subtask, prediction=prediction)


def test_semeval_duplicate_key_and_truncated_file(tmp_path):
    text = json.dumps([conversation(1)])
    duplicated = tmp_path / "dup.json"
    duplicated.write_text(text.replace('"text": "Hey', '"text": "x", "text": "Hey', 1).replace(
        '"text": "That', '"text": "x", "text": "That', 1), encoding="utf-8")  # fmt: skip
    with pytest.raises(
        DataFormatError, match=where(duplicated, "1", "text") + "utterance 2 has the key 'text' twice"
    ):
        read_semeval_json(duplicated)
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(DataFormatError, match=where(truncated) + "truncated or invalid JSON at line 1"):
        read_semeval_json(truncated)
    with pytest.raises(DataFormatError, match="expected a JSON list"):
        read_semeval_json(dump(tmp_path / "obj.json", {"1": conversation(1)}))


# ------------------------------------------------------------------ bad ECF 1.0 text

GOOD_BLOCK = "16 3\n(2,1)\n1 | Alan | neutral | Wow . | x\n2 | Monica | joy | Yes . | x\n3 | Alan | neutral | Ok . | x\n"

TXT_BAD = [
    # (id, text, dialogue, field, message)
    ("malformed pair line", GOOD_BLOCK.replace("(2,1)", "(2,1"), "16", "pairs", r"line 2: malformed pair line"),
    ("pair separator", GOOD_BLOCK.replace("(2,1)", "(2;1)"), "16", "pairs", "malformed pair line"),
    ("pair with 3 numbers", GOOD_BLOCK.replace("(2,1)", "(2,1,1)"), "16", "pairs", "must hold 2 numbers"),
    ("pair outside conversation", GOOD_BLOCK.replace("(2,1)", "(2,4)"), "16", "pairs",
     r"cause utterance 4 is outside the conversation \(utterances 1\.\.3\) \(line 2\)"),
    ("pair on neutral utterance", GOOD_BLOCK.replace("(2,1)", "(1,1)"), "16", "pairs",
     "emotion utterance 1 is labelled neutral"),
    ("duplicate pair", GOOD_BLOCK.replace("(2,1)", "(2,1),(2,1)"), "16", "pairs", r"pair \(2, 1\) is listed twice"),
    ("unknown emotion", GOOD_BLOCK.replace("joy", "happy"), "16", "emotion",
     r"unknown emotion 'happy' at utterance 2.*\(line 4\)"),
    ("duplicate conversation id", GOOD_BLOCK + GOOD_BLOCK, "16", "conversation_id",
     "line 6: conversation id already used at line 1"),
    ("repeated utterance number", GOOD_BLOCK.replace("3 | Alan", "2 | Alan"), "16", "utterance_id",
     r"utterance 3 is numbered 2, which repeats an earlier utterance id.*\(line 5\)"),
    ("utterance out of order", GOOD_BLOCK.replace("2 | Monica", "3 | Monica").replace("3 | Alan", "2 | Alan"),
     "16", "utterance_id", "utterance 2 is numbered 3, which is out of order"),
    ("non-numeric utterance number", GOOD_BLOCK.replace("2 | Monica", "b | Monica"), "16", "utterance_id",
     "line 4: utterance number 'b' is not an integer"),
    ("truncated file", GOOD_BLOCK.rsplit("3 | Alan", 1)[0], "16", "utterances",
     "file ends after 2 of the 3 utterances declared at line 1"),
    ("fewer utterances than declared", GOOD_BLOCK.replace("16 3", "16 4") + GOOD_BLOCK.replace("16 ", "17 "),
     "16", "utterances", "line 6: expected utterance 4 of 4"),
    ("too few columns", GOOD_BLOCK.replace("Yes . | x", "Yes ."), "16", "utterances", "line 4: expected utterance 2"),
    ("empty speaker", GOOD_BLOCK.replace("Monica", " "), "16", "speaker", "line 4: empty speaker name"),
    ("more utterances than declared", GOOD_BLOCK.replace("16 3", "16 2"), "16", "header",
     "line 5: utterance line after the last of the 2 utterances declared at line 1"),
    ("header only", GOOD_BLOCK + "20 2\n", "20", "utterances", "file ends after 0 of the 2 utterances"),
    ("zero utterances", "16 0\n\n", "16", "header", "declares 0 utterances"),
    ("pair line is an utterance", GOOD_BLOCK.replace("(2,1)\n", ""), "16", "pairs", "malformed pair line"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "dialogue", "field", "message"), [c[1:] for c in TXT_BAD], ids=[c[0] for c in TXT_BAD]
)
def test_ecf_txt_bad_input(tmp_path, text, dialogue, field, message):
    path = write(tmp_path / "dev.txt", text)
    with pytest.raises(DataFormatError, match=where(path, dialogue, field) + ".*" + message):
        read_ecf_txt(path)


def test_ecf_txt_bad_file(tmp_path):
    path = write(tmp_path / "garbage.txt", GOOD_BLOCK + "this is not a header\n")
    with pytest.raises(
        DataFormatError, match=where(path, None, "header") + "line 6: expected a conversation header"
    ):
        read_ecf_txt(path)
    with pytest.raises(DataFormatError, match="holds no conversations"):
        read_ecf_txt(write(tmp_path / "empty.txt", "\n\n"))
    with pytest.raises(DataFormatError, match="file not found"):
        read_ecf_txt(tmp_path / "missing.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(GOOD_BLOCK.replace("Wow", "Caf\xe9").encode("latin-1"))
    with pytest.raises(DataFormatError, match="not UTF-8"):
        read_ecf_txt(latin)


# ------------------------------------------------------------------ audio / visual feature tables


def save_mapping(path: Path, mapping) -> Path:
    np.save(path, np.array(mapping, dtype=object), allow_pickle=True)  # writing a fixture; reading is safe
    return path


@pytest.fixture
def feature_files(tmp_path):
    """Tables with a padding row 0 and one row per utterance of TXT, like NUSTM's (13620, D) tables."""
    ids = ["dia7utt1", "dia7utt2", "dia7utt3", "dia9utt1", "dia9utt2", "dia99utt1"]
    rng = np.random.default_rng(0)
    audio = np.vstack([np.zeros(4), rng.normal(size=(len(ids), 4))]).astype(np.float64)
    video = np.vstack([np.zeros(3), rng.normal(size=(len(ids), 3))]).astype(np.float32)
    np.save(tmp_path / "audio_embedding_6373.npy", audio)
    np.save(tmp_path / "video_embedding_4096.npy", video)
    save_mapping(tmp_path / "video_id_mapping.npy", {key: row for row, key in enumerate(ids, start=1)})
    return tmp_path, audio, video


def test_attach_ecf_features(tmp_path, feature_files):
    folder, audio, video = feature_files
    records = read_ecf_txt(write(tmp_path / "test.txt", TXT))
    out = attach_ecf_features(
        records,
        folder / "audio_embedding_6373.npy",
        folder / "video_embedding_4096.npy",
        folder / "video_id_mapping.npy",
    )
    assert "audio" not in records[0]  # inputs are not modified
    assert out[0]["audio"].dtype == np.float32 and out[0]["audio"].shape == (3, 4)
    np.testing.assert_allclose(out[0]["audio"], audio[1:4], rtol=1e-6)
    np.testing.assert_allclose(out[1]["visual"], video[4:6])
    only_video = attach_ecf_features(
        records, None, folder / "video_embedding_4096.npy", folder / "video_id_mapping.npy"
    )
    assert "audio" not in only_video[0] and only_video[0]["visual"].shape == (3, 3)


def test_attach_ecf_features_minmax(tmp_path, feature_files):
    folder, audio, _ = feature_files
    records = read_ecf_txt(write(tmp_path / "test.txt", TXT))
    out = attach_ecf_features(records, folder / "audio_embedding_6373.npy", None, folder / "video_id_mapping.npy",
                              normalize=True)  # fmt: skip
    used = audio[1:]  # the padding row 0 is not referenced by the mapping, so it does not set the range
    expected = (used - used.min(0)) / (used.max(0) - used.min(0) + 1e-8)
    np.testing.assert_allclose(out[0]["audio"], expected[0:3], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1]["audio"], expected[3:5], rtol=1e-5, atol=1e-6)


def test_read_ecf_attaches_features_found_next_to_the_text(feature_files):
    folder, audio, _ = feature_files
    write(folder / "test.txt", TXT)
    write(folder / "train.txt", "99 1\n\n1 | Joey | joy | Hey ! | x\n")
    corpus = read_ecf(folder)
    assert [len(corpus.splits[s]) for s in ("train", "test")] == [1, 2]
    np.testing.assert_allclose(corpus.splits["train"][0]["audio"], audio[6:7], rtol=1e-6)
    np.testing.assert_allclose(corpus.splits["test"][1]["audio"], audio[4:6], rtol=1e-6)
    assert corpus.modalities == ("audio", "visual")
    assert corpus.feature_dims() == {"audio": 4, "visual": 3}
    assert str(folder / "video_id_mapping.npy") in corpus.sources


def test_read_ecf_features_dir_must_hold_the_files(tmp_path):
    write(tmp_path / "test.txt", TXT)
    (tmp_path / "feats").mkdir()
    with pytest.raises(DataFormatError, match="video_id_mapping.npy"):
        read_ecf(tmp_path, features_dir=tmp_path / "feats")


def test_attach_ecf_features_bad_input(tmp_path, feature_files):
    folder, audio, _ = feature_files
    mapping = folder / "video_id_mapping.npy"
    table = folder / "audio_embedding_6373.npy"
    records = read_ecf_txt(write(tmp_path / "test.txt", TXT + "12 1\n\n1 | Joey | joy | Hey ! | x\n"))
    with pytest.raises(
        DataFormatError, match=where(mapping, "12", "utterance_id") + "no row for utterance 'dia12utt1'"
    ):
        attach_ecf_features(records, table, None, mapping)

    short = save_mapping(tmp_path / "short.npy", {"dia7utt1": 1, "dia7utt2": 2, "dia7utt3": 50})
    with pytest.raises(
        DataFormatError, match=where(short, None, "video_id_mapping") + "utterance 'dia7utt3' maps to row 50"
    ):
        attach_ecf_features(records[:1], table, None, short)

    bad = audio.copy()
    bad[5, 2] = np.nan  # dia9utt2
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DataFormatError, match=where(tmp_path / "nan.npy", "9", "audio") + "NaN"):
        attach_ecf_features(records[:2], tmp_path / "nan.npy", None, mapping)

    np.save(tmp_path / "not_dict.npy", np.arange(3))
    with pytest.raises(DataFormatError, match="expected a 0-d object array holding a dict"):
        attach_ecf_features(records, table, None, tmp_path / "not_dict.npy")

    wrong_values = save_mapping(tmp_path / "wrong_values.npy", {"dia7utt1": "one"})
    with pytest.raises(DataFormatError, match="must map an utterance id string to a non-negative row"):
        attach_ecf_features(records, table, None, wrong_values)

    unsafe = save_mapping(tmp_path / "unsafe.npy", Counter({"dia7utt1": 1}))
    with pytest.raises(DataFormatError, match=where(unsafe) + "unsafe"):
        attach_ecf_features(records, table, None, unsafe)

    np.save(tmp_path / "flat.npy", np.zeros(7))
    with pytest.raises(DataFormatError, match="expected a numeric \\(rows, dim\\) table"):
        attach_ecf_features(records[:1], tmp_path / "flat.npy", None, mapping)

    with pytest.raises(ValueError, match="at least one"):
        attach_ecf_features(records, None, None, mapping)
