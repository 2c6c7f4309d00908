"""MELD: the raw1 10-tuple, COSMIC pickles and the official CSVs (real copies in ../shared/data/meld)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import merc_hf
from merc_hf.data.readers.meld import EMOTION_NAMES, SENTIMENT_NAMES, read_meld

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
