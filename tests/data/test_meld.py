"""MELD: the raw1 10-tuple, COSMIC pickles and the official CSVs (real copies in ../shared/data/meld)."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

import merc_hf
from merc_hf.data.builders import build_dataset_dict
from merc_hf.data.readers.common import assemble_records
from merc_hf.data.readers.meld import CSV_NAMES, EMOTION_NAMES, SENTIMENT_NAMES, read_meld, read_meld_csv
from merc_hf.data.records import RecordStream

from .factories import dump, meld_fields, write_meld_features


def test_raw1_splits_dev_back_out_of_trainvid(tmp_path):
    fields = meld_fields(n_train=6, n_dev=2, n_test=3)
    write_meld_features(tmp_path / "MELD_features_raw1.pkl", fields)
    corpus = read_meld(tmp_path)
    assert [r["dialogue_id"] for r in corpus.splits["validation"]] == ["1039", "1040"]
    assert len(corpus.splits["train"]) == 6 and len(corpus.splits["test"]) == 3
    assert corpus.feature_dims() == {"text": 600, "audio": 300, "visual": 342}
    record = corpus.splits["train"][1]
    speakers_onehot = fields["videoSpeakers"][1]
    first_seen = {}
    expected = [first_seen.setdefault(int(np.argmax(v)), len(first_seen)) for v in speakers_onehot]
    assert record["speakers"] == expected


def test_sentiment_needs_a_source_that_has_it(tmp_path):
    write_meld_features(tmp_path / "MELD_features_raw1.pkl", meld_fields())
    with pytest.raises(merc_hf.DataFormatError, match="sentiment"):
        read_meld(tmp_path, labels="sentiment")


def test_real_csvs(shared_data):
    corpus = read_meld(shared_data / "meld", text="none")
    sizes = {s: (len(r), sum(len(d["labels"]) for d in r)) for s, r in corpus.splits.items()}
    assert sizes == {"train": (1038, 9989), "validation": (114, 1109), "test": (280, 2610)}
    test_counts = collections.Counter(EMOTION_NAMES[y] for d in corpus.splits["test"] for y in d["labels"])
    assert test_counts == {
        "neutral": 1256,
        "surprise": 281,
        "fear": 50,
        "sadness": 208,
        "joy": 402,
        "disgust": 68,
        "anger": 345,
    }
    assert max(len(d["labels"]) for d in corpus.splits["test"]) == 33
    train_ids = {int(d["dialogue_id"]) for d in corpus.splits["train"]}
    assert 60 not in train_ids and max(train_ids) == 1038
    assert max(max(d["speakers"]) for s in corpus.splits.values() for d in s) < 9


CSV_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID"


def _write_csv_splits(folder, train_lines, header=CSV_HEADER):
    """The three MELD CSVs in ``folder``: ``train_lines`` (str or bytes) as train, one dialogue each for dev/test."""
    body = train_lines if isinstance(train_lines, bytes) else train_lines.encode("utf-8")
    (folder / "train_sent_emo.csv").write_bytes(f"{header}\n".encode() + body)
    for name in ("dev_sent_emo.csv", "test_sent_emo.csv"):
        (folder / name).write_text(f"{header}\n1,hi,Joey,neutral,neutral,0,0\n", encoding="utf-8")


def test_csv_rows_of_a_dialogue_need_not_be_together_or_in_order(tmp_path):
    # dialogue 3 is interleaved with dialogue 1 and its utterances come as 2, 0, 1; a blank line is skipped
    _write_csv_splits(
        tmp_path,
        "1,c,Ross,anger,negative,3,2\n"
        "2,x,Joey,joy,positive,1,0\n"
        "\n"
        "3,a,Rachel,neutral,neutral,3,0\n"
        "4,y,Monica,fear,negative,1,1\n"
        "5,b,Ross,sadness,negative,3,1\n",
    )
    train = read_meld(tmp_path, labels="sentiment").splits["train"]
    assert [r["dialogue_id"] for r in train] == ["3", "1"]  # order of first appearance
    assert train[0]["utterances"] == ["a", "b", "c"]
    assert train[0]["speakers"] == [0, 1, 1]  # Rachel, Ross, Ross
    assert train[0]["labels"] == [SENTIMENT_NAMES.index(s) for s in ("neutral", "negative", "negative")]
    assert train[1]["utterances"] == ["x", "y"] and train[1]["speakers"] == [0, 1]


def test_csv_errors_keep_their_precedence(tmp_path):
    # a bad id before undecodable bytes: the file as a whole is unreadable, which is reported; the bytes
    # lie far enough on that the text decoder has not reached them when the bad id is read
    filler = "".join(f"{n},hi,Joey,neutral,neutral,1,{n}\n" for n in range(3000)).encode()
    _write_csv_splits(
        tmp_path, b"1,hi,Joey,neutral,neutral,x,0\n" + filler + b"2,\xff,Joey,neutral,neutral,0,1\n"
    )
    with pytest.raises(merc_hf.DataFormatError, match="cannot read CSV"):
        read_meld(tmp_path)
    # of two bad ids the first is reported; lines count the header, not blank lines
    _write_csv_splits(
        tmp_path, "1,hi,Joey,neutral,neutral,0,0\n\n2,hi,Joey,neutral,neutral,0,1.5\n3,,,,,y,0\n"
    )
    with pytest.raises(merc_hf.DataFormatError, match=r"line 3: .* got '0'/'1.5'"):
        read_meld(tmp_path)
    # a bad id comes before a duplicated Utterance_ID elsewhere in the file
    _write_csv_splits(tmp_path, "1,hi,Joey,neutral,neutral,0,0\n2,hi,Joey,neutral,neutral,0,0\n3,,,,,y,0\n")
    with pytest.raises(merc_hf.DataFormatError, match="line 4: Dialogue_ID/Utterance_ID must be integers"):
        read_meld(tmp_path)
    # a short row reads its missing columns as absent
    _write_csv_splits(tmp_path, "1,hi,Joey,neutral,neutral,0,0\n2,hi,Joey\n")
    with pytest.raises(merc_hf.DataFormatError, match="line 3: .* got None/None"):
        read_meld(tmp_path)


def in_memory(folder, labels="emotion"):
    """The records of the CSVs in ``folder`` built the way the reader built them before streamed splits:
    each CSV grouped by dialogue in memory, then every record assembled."""
    names = EMOTION_NAMES if labels == "emotion" else SENTIMENT_NAMES
    records = {}
    for split, name in CSV_NAMES.items():
        source = read_meld_csv(folder / name, split)
        records.update(
            assemble_records(
                [source], splits=source.splits, label_role=labels, label_names=names, text_source=None
            )
        )
    return records


def typed(records):
    """Every record as (key, type, element types, value) tuples: equal only when keys, order, values and
    types all are."""
    return [
        [(k, type(v), [type(x) for x in v] if isinstance(v, list) else None, v) for k, v in r.items()]
        for r in records
    ]


@pytest.mark.parametrize("labels", ["emotion", "sentiment"])
def test_real_csv_splits_stream_the_records_of_the_in_memory_read(shared_data, labels):
    corpus = read_meld(shared_data / "meld", labels=labels, text="none")
    expected = in_memory(shared_data / "meld", labels)
    assert list(corpus.splits) == list(expected) == ["train", "validation", "test"]
    for split, stream in corpus.splits.items():
        assert isinstance(stream, RecordStream)
        assert len(stream) == len(expected[split])
        assert list(stream.ids) == [r["dialogue_id"] for r in expected[split]]
        assert typed(stream) == typed(expected[split])


# dialogue 3, then dialogue 1: each one run of rows, dialogue 3's Utterance_IDs out of order (2, 0, 1);
# two transcripts hold Windows-1252 punctuation decoded as C1 controls
GROUPED = (
    "1,c,Ross,anger,negative,3,2\n"
    "2,a,Rachel,neutral,neutral,3,0\n"
    "\n"
    "3,b\x92s,Ross,sadness,negative,3,1\n"
    "4,x,Joey,joy,positive,1,0\n"
    "5,\x93y\x94,Monica,fear,negative,1,1\n"
)


@pytest.mark.parametrize("labels", ["emotion", "sentiment"])
def test_written_csvs_stream_the_records_of_the_in_memory_read(tmp_path, labels):
    _write_csv_splits(tmp_path, GROUPED)
    with pytest.warns(UserWarning, match="2 transcripts held Windows-1252") as caught:
        corpus = read_meld(tmp_path, labels=labels)
    assert [str(w.message).split(":")[0] for w in caught] == [str(tmp_path / "train_sent_emo.csv")]
    with pytest.warns(UserWarning, match="2 transcripts held Windows-1252"):
        expected = in_memory(tmp_path, labels)
    train = corpus.splits["train"]
    assert isinstance(train, RecordStream) and train.ids == ("3", "1") and len(train) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the repairs were reported by read_meld, once
        first, second = list(train), list(train)
    assert typed(first) == typed(second) == typed(expected["train"])
    assert first[0] is not second[0]
    assert first[0]["utterances"] == ["a", "b\u2019s", "c"] and first[0]["speakers"] == [0, 1, 1]
    assert first[1]["utterances"] == ["x", "\u201cy\u201d"]
    for split in ("validation", "test"):
        assert typed(corpus.splits[split]) == typed(expected[split])


def test_interleaved_dialogues_are_read_in_memory_as_before(tmp_path):
    # dialogue 3's rows are split by dialogue 1's: that file is grouped in memory, the others streamed
    _write_csv_splits(
        tmp_path,
        "1,c,Ross,anger,negative,3,2\n2,x,Joey,joy,positive,1,0\n3,a,Rachel,neutral,neutral,3,0\n"
        "4,y,Monica,fear,negative,1,1\n5,b,Ross,sadness,negative,3,1\n",
    )
    corpus = read_meld(tmp_path)
    expected = in_memory(tmp_path)
    assert isinstance(corpus.splits["train"], list)
    assert isinstance(corpus.splits["test"], RecordStream)
    assert {s: typed(r) for s, r in corpus.splits.items()} == {s: typed(r) for s, r in expected.items()}
    assert [r["utterances"] for r in corpus.splits["train"]] == [["a", "b", "c"], ["x", "y"]]


def test_csv_errors_of_every_file_come_before_errors_of_the_records(tmp_path):
    header = CSV_HEADER + "\n"
    unknown = "1,hi,Joey,happy,neutral,0,0\n"
    duplicated = "1,hi,Joey,neutral,neutral,0,0\n2,hi,Joey,neutral,neutral,0,0\n"
    interleaved_unknown = (
        "1,a,Joey,neutral,neutral,5,0\n2,b,Joey,neutral,neutral,6,0\n3,c,Joey,angry,neutral,5,1\n"
    )
    cases = [
        # an unknown emotion in train, a duplicated Utterance_ID in test: the duplicate is reported
        ((unknown, "1,hi,Joey,neutral,neutral,0,0\n", duplicated), "duplicated Utterance_ID", "1153"),
        # an unknown emotion in train, a dev id that collides with test's after the offsets: the leak
        (
            (unknown, "1,hi,Joey,neutral,neutral,114,0\n", "1,hi,Joey,neutral,neutral,0,0\n"),
            "in both",
            "1153",
        ),
        # an unknown emotion in dev (streamed) and in test (interleaved, read in memory): dev's first
        (("1,hi,Joey,neutral,neutral,0,0\n", unknown, interleaved_unknown), "unknown class 'happy'", "1039"),
        # ... and test's when dev is fine
        (("1,hi,Joey,neutral,neutral,0,0\n",) * 2 + (interleaved_unknown,), "unknown class 'angry'", "1158"),
    ]
    for rows, message, dialogue in cases:
        for name, body in zip(("train", "dev", "test"), rows):
            (tmp_path / f"{name}_sent_emo.csv").write_text(header + body, encoding="utf-8")
        with pytest.raises(merc_hf.DataFormatError, match=message) as info:
            read_meld(tmp_path)
        assert info.value.dialogue == dialogue, message


def test_a_csv_changed_after_it_was_checked_fails_the_build_and_caches_nothing(tmp_path):
    _write_csv_splits(tmp_path, "1,x,Joey,joy,positive,1,0\n2,y,Ross,joy,positive,1,1\n")
    corpus = read_meld(tmp_path)
    with open(tmp_path / "train_sent_emo.csv", "a", encoding="utf-8") as fh:
        fh.write("3,z,Joey,joy,positive,2,0\n")  # a dialogue more than the check found
    with pytest.raises(merc_hf.DataFormatError, match="changed after it was checked") as info:
        list(corpus.splits["train"])
    assert info.value.file.endswith("train_sent_emo.csv")
    cache = tmp_path / "cache"
    with pytest.raises(merc_hf.DataFormatError, match="changed after it was checked"):
        build_dataset_dict("meld", "key", lambda: corpus, cache_dir=cache)
    assert not list(cache.glob("*.json")) and not list(cache.rglob("*.tmp"))
    dsd = merc_hf.load_dataset("meld", tmp_path, cache_dir=cache)
    assert dsd["train"]["dialogue_id"] == ["1", "2"] and dsd["train"]["utterances"] == [["x", "y"], ["z"]]


# A hand-made pickle in the COSMIC meld.pkl layout (speakers as 9-d one-hot, emotion and sentiment ids,
# sentences, train/test/valid ids) for seven dialogues, typed in from the label maps of the reference notes.
def _onehot(indices):
    return [[1.0 if j == i else 0.0 for j in range(9)] for i in indices]


HAND_MADE = {
    0: ([0, 1] * 7, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1, 0], [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1, 0]),
    1: ([0, 1, 0, 1, 0, 0, 1], [1, 3, 1, 2, 0, 0, 0], [2, 2, 2, 2, 0, 0, 0]),
    3: ([0, 1, 0, 0, 0, 0, 0, 0, 2], [1, 1, 1, 0, 0, 0, 1, 3, 0], [2, 2, 2, 0, 0, 0, 2, 2, 0]),
    1039: ([0, 1], [3, 1], [2, 2]),
    1040: (
        [0, 1, 2, 1, 3, 4, 3, 5, 3, 0, 3, 3, 6, 2, 1, 2],
        [0, 4, 3, 0, 0, 4, 0, 1, 0, 0, 1, 6, 0, 4, 0, 0],
        [0, 1, 2, 0, 0, 1, 0, 2, 0, 0, 2, 2, 0, 1, 0, 0],
    ),
    1153: ([0, 1, 1], [1, 6, 0], [1, 2, 0]),
    1155: (
        [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 3, 1, 6, 6, 6, 4, 4, 0, 0],
        [0, 0, 2, 2, 2, 2, 2, 1, 1, 0, 0],
    ),
}


@pytest.mark.parametrize("labels", ["emotion", "sentiment"])
def test_csv_and_cosmic_pickle_agree(shared_data, tmp_path, labels):
    pkl = [
        {k: _onehot(v[0]) for k, v in HAND_MADE.items()},
        {k: v[1] for k, v in HAND_MADE.items()},
        {k: v[2] for k, v in HAND_MADE.items()},
        {k: ["..."] * len(v[1]) for k, v in HAND_MADE.items()},
        [0, 1, 3], [1153, 1155], [1039, 1040],
    ]  # fmt: skip
    dump(tmp_path / "meld.pkl", pkl)
    from_pkl = read_meld(tmp_path, labels=labels)
    from_csv = read_meld(shared_data / "meld", labels=labels, text="none")
    assert (
        from_pkl.class_names
        == from_csv.class_names
        == {"labels": EMOTION_NAMES if labels == "emotion" else SENTIMENT_NAMES}
    )
    csv_records = {r["dialogue_id"]: r for split in from_csv.splits.values() for r in split}
    for split, records in from_pkl.splits.items():
        for record in records:
            other = csv_records[record["dialogue_id"]]
            assert record["labels"] == other["labels"], (split, record["dialogue_id"])
            assert record["speakers"] == other["speakers"], (split, record["dialogue_id"])
            assert record["dialogue_id"] in {r["dialogue_id"] for r in from_csv.splits[split]}


def test_raw1_plus_roberta(tmp_path):
    fields = meld_fields()
    rng = np.random.default_rng(3)
    layers = [
        {
            v: [rng.normal(size=1024).astype(np.float32) for _ in fields["videoLabels"][v]]
            for v in fields["videoLabels"]
        }
        for _ in range(4)
    ]
    sentiment = {v: [0] * len(fields["videoLabels"][v]) for v in fields["videoLabels"]}
    train = [v for v in fields["trainVid"] if v < 1039]
    dev = [v for v in fields["trainVid"] if v >= 1039]
    roberta = [
        fields["videoSpeakers"],
        fields["videoLabels"],
        sentiment,
        *layers,
        fields["videoSentence"],
        train,
        fields["testVid"],
        dev,
    ]
    write_meld_features(tmp_path / "MELD_features_raw1.pkl", fields)
    dump(tmp_path / "meld_features_roberta.pkl", roberta)
    corpus = read_meld(tmp_path)
    assert corpus.feature_dims() == {"text": 1024, "audio": 300, "visual": 342}
    assert read_meld(tmp_path, labels="sentiment").class_names["labels"] == SENTIMENT_NAMES
