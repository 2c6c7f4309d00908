"""Record streams: splits read again from their files on every iteration instead of held as lists."""

from __future__ import annotations

import numpy as np
import pytest

from merc_hf.data import DataFormatError, builders, text_encoding
from merc_hf.data.records import Corpus, RecordStream


def counting_stream(records: list[dict], opened: list[int]) -> RecordStream:
    """A stream over copies of ``records`` that appends to ``opened`` how many it yielded on each pass."""

    def open_records():
        opened.append(0)
        for record in records:
            opened[-1] += 1
            yield {k: (v.copy() if isinstance(v, (list, np.ndarray)) else v) for k, v in record.items()}

    return RecordStream([r["dialogue_id"] for r in records], open_records)


def never_opened(*args):
    raise AssertionError("the stream was iterated")


def dialogues(n: int, start: int = 0) -> list[dict]:
    rng = np.random.default_rng(start)
    return [
        {
            "dialogue_id": f"d{i}",
            "labels": [i % 2] * (i % 3 + 1),
            "audio": rng.normal(size=(i % 3 + 1, 4)).astype(np.float32),
        }
        for i in range(start, start + n)
    ]


def test_a_stream_has_its_ids_up_front_and_is_read_again_on_each_iteration():
    records, opened = dialogues(5), []
    stream = counting_stream(records, opened)
    assert len(stream) == 5 and stream.ids == ("d0", "d1", "d2", "d3", "d4") and opened == []
    first, second = list(stream), list(stream)
    assert opened == [5, 5]
    assert [r["dialogue_id"] for r in first] == [r["dialogue_id"] for r in second] == list(stream.ids)
    for a, b in zip(first, second):
        assert a is not b and a["labels"] == b["labels"]
        np.testing.assert_array_equal(a["audio"], b["audio"])
    first[0]["labels"].append(1)  # changing what one pass yielded does not change the next pass
    assert next(iter(stream))["labels"] == records[0]["labels"]
    assert RecordStream([1, 2], never_opened).ids == ("1", "2")  # ids are strings, like record ids


def test_the_leak_check_uses_stream_ids_without_reading_the_stream():
    splits = {"train": RecordStream(["a", "b"], never_opened), "test": RecordStream(["c"], never_opened)}
    corpus = Corpus("toy", splits, {"labels": ["x", "y"]})
    assert len(corpus.splits["train"]) == 2
    for test in (RecordStream(["c", "b"], never_opened), [{"dialogue_id": "b", "labels": [0]}]):
        with pytest.raises(DataFormatError, match="in both split 'train' and split 'test'") as info:
            Corpus("toy", {"train": RecordStream(["a", "b"], never_opened), "test": test}, {"labels": ["x"]})
        assert info.value.dialogue == "b"


def test_modalities_and_features_read_only_the_first_record():
    opened: list[int] = []
    corpus = Corpus("toy", {"train": counting_stream(dialogues(4), opened)}, {"labels": ["a", "b"]})
    assert corpus.modalities == ("audio",) and corpus.feature_dims() == {"audio": 4}
    assert builders.corpus_features(corpus)["audio"].shape == (None, 4)
    assert opened and set(opened) == {1}


def test_a_streamed_split_builds_the_rows_of_the_same_list(tmp_path):
    train, test = dialogues(6), dialogues(2, start=6)
    as_lists = Corpus("toy", {"train": train, "test": test}, {"labels": ["a", "b"]})
    opened: list[int] = []
    streamed = Corpus(
        "toy",
        {"train": counting_stream(train, opened), "test": counting_stream(test, opened)},
        {"labels": ["a", "b"]},
    )
    expected = builders.build_dataset_dict("toy", "lists", lambda: as_lists, cache_dir=tmp_path)
    built = builders.build_dataset_dict("toy", "streams", lambda: streamed, cache_dir=tmp_path)
    assert {s: [dict(r) for r in d] for s, d in built.items()} == {
        s: [dict(r) for r in d] for s, d in expected.items()
    }
    assert built["train"].features == expected["train"].features
    assert opened[-2:] == [6, 2]  # each split written in one full pass, after the first record was peeked


def test_a_stream_failing_half_way_leaves_no_cache(tmp_path):
    """An error while a split is streamed into Arrow (a file changed after it was checked) serves nothing."""
    records = dialogues(5)

    def fail_at_the_second():
        yield records[2]
        raise DataFormatError("the file changed after it was checked", file="x.csv")

    broken = Corpus(
        "toy",
        {"train": records[:2], "test": RecordStream(["d2", "d3", "d4"], fail_at_the_second)},
        {"labels": ["a", "b"]},
    )
    with pytest.raises(DataFormatError, match="changed after it was checked"):
        builders.build_dataset_dict("toy", "key", lambda: broken, cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.rglob("*.tmp"))
    assert not (tmp_path / "toy-key" / "test.arrow").exists()
    fixed = Corpus("toy", {"train": records[:2], "test": records[2:]}, {"labels": ["a", "b"]})
    assert builders.build_dataset_dict("toy", "key", lambda: fixed, cache_dir=tmp_path)["test"].num_rows == 3


def test_text_encoding_turns_streams_into_lists(monkeypatch):
    from merc_hf.data import _encode_corpus_text

    def fake_encode(texts, encoder, pooling):
        return np.arange(len(texts) * 2, dtype=np.float32).reshape(len(texts), 2)

    monkeypatch.setattr(text_encoding, "encode_texts", fake_encode)
    records = [{"dialogue_id": "d0", "utterances": ["a", "b"]}, {"dialogue_id": "d1", "utterances": ["c"]}]
    opened: list[int] = []
    corpus = Corpus("toy", {"train": counting_stream(records, opened)}, {})
    _encode_corpus_text(corpus, "unused", "mean")
    train = corpus.splits["train"]
    assert isinstance(train, list) and opened == [2]
    assert [r["text"].tolist() for r in train] == [[[0, 1], [2, 3]], [[4, 5]]]
