"""DatasetDict building: content-keyed cache, schema, collator."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import merc_hf
from merc_hf.data import DialogueCollator, load_dataset, same_speaker_matrix
from merc_hf.data.readers import iemocap

from .factories import iemocap_fields, write_iemocap_features


def test_a_changed_file_is_never_served_stale(tmp_path):
    fields = iemocap_fields()
    path = write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    first = load_dataset("iemocap", tmp_path)["test"][0]
    vid = first["dialogue_id"]
    fields["videoLabels"][vid] = [(y + 1) % 6 for y in fields["videoLabels"][vid]]
    write_iemocap_features(path, fields)  # same path, new contents
    second = load_dataset("iemocap", tmp_path)["test"][0]
    assert second["labels"] == fields["videoLabels"][vid] != first["labels"]


def test_cache_hit_does_not_read_the_files(tmp_path, monkeypatch):
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    first = load_dataset("iemocap", tmp_path, validation_seed=7)

    @functools.wraps(iemocap.read_iemocap)
    def fail(*args, **kwargs):
        raise AssertionError("reader called on a cache hit")

    monkeypatch.setattr(iemocap, "read_iemocap", fail)
    again = load_dataset("iemocap", tmp_path, validation_seed=7)
    assert again["train"]["dialogue_id"] == first["train"]["dialogue_id"]
    assert again["train"].features == first["train"].features
    with pytest.raises(AssertionError, match="reader called"):  # other options → another cache entry
        load_dataset("iemocap", tmp_path, validation_seed=8)


def test_schema_and_torch_format(tmp_path):
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    dsd = load_dataset("iemocap", tmp_path)
    features = dsd["train"].features
    assert list(features) == ["dialogue_id", "speakers", "labels", "text", "audio", "visual", "utterances"]
    assert features["text"].dtype == "float32"
    row = dsd["train"].with_format("torch")[0]
    assert row["audio"].dtype == torch.float32 and row["audio"].shape == (len(row["labels"]), 1582)
    assert "Modalities present: text (100-d), audio (1582-d), visual (342-d)" in dsd["train"].info.description


def test_unknown_dataset_and_options():
    with pytest.raises(ValueError, match="unknown dataset 'iemocapp'; available: .*iemocap"):
        load_dataset("iemocapp")
    with pytest.raises(TypeError, match=r"unknown options \['features'\]"):
        load_dataset("iemocap", features="x")


def test_collator_pads_and_masks():
    rows = [
        {
            "speakers": [0, 1, 0],
            "labels": [2, 3, 4],
            "text": np.ones((3, 4), np.float32),
            "audio": np.ones((3, 2)),
        },
        {"speakers": [0], "labels": [5], "text": 2 * np.ones((1, 4), np.float32), "audio": np.ones((1, 2))},
    ]
    batch = DialogueCollator()(rows)
    assert set(batch) == {"text", "audio", "speakers", "utterance_mask", "labels", "same_speaker"}
    assert batch["text"].shape == (2, 3, 4) and batch["audio"].dtype == torch.float32
    assert batch["labels"].tolist() == [[2, 3, 4], [5, -100, -100]]
    assert batch["utterance_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert torch.all(batch["text"][1, 1:] == 0)
    expected = [[True, False, True], [False, True, False], [True, False, True]]
    assert batch["same_speaker"][0].tolist() == expected
    assert batch["same_speaker"][1].tolist() == [[True, False, False], [False] * 3, [False] * 3]
    assert list(DialogueCollator(modalities=["text"])(rows)) == [
        "text",
        "speakers",
        "utterance_mask",
        "labels",
        "same_speaker",
    ]
    with pytest.raises(ValueError, match="empty"):
        DialogueCollator()([])


def test_same_speaker_matrix_ignores_padding():
    speakers = torch.tensor([[0, 1, 0, 0]])
    mask = torch.tensor([[True, True, True, False]])
    out = same_speaker_matrix(speakers, mask)
    assert out[0, 3].sum() == 0 and out[0, :, 3].sum() == 0 and out[0, 0, 2]


def test_collator_on_a_loaded_dataset(tmp_path):
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    ds = merc_hf.load_dataset("iemocap", tmp_path)["train"]
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=DialogueCollator())
    batch = next(iter(loader))
    lengths = [len(r["labels"]) for r in ds.select(range(4))]
    assert batch["utterance_mask"].sum(1).tolist() == lengths
    assert batch["visual"].shape == (4, max(lengths), 342)


def test_emotion_cause_datasets_through_load_dataset(shared_data):
    ecf = load_dataset("ecf", shared_data / "ecf")
    assert {s: ecf[s].num_rows for s in ecf} == {"train": 1001, "validation": 112, "test": 261}
    assert sum(len(p) for p in ecf["test"]["pairs"]) == 1873
    assert ecf["test"].features["emotions"].feature.names[0] == "neutral"
    mecad = load_dataset("mecad", shared_data / "mecad")
    assert sum(len(p) for p in mecad["validation"]["pairs"]) == 977


def test_utterance_level_record_features():
    from datasets import Array2D, ClassLabel, Value

    from merc_hf.data.builders import corpus_features
    from merc_hf.data.records import Corpus

    names = ["negative", "neutral", "positive"]
    record = {
        "sample_id": "video_0001$_$0001",
        "transcript": "还不错",
        "text": np.zeros((5, 8), np.float32),
        "audio": np.zeros((9, 3), np.float32),
        "regression_label": -0.4,
        "label": 0,
        "regression_label_text": 0.2,
        "label_text": 2,
        "inconsistent_modality": 0,
    }
    features = corpus_features(Corpus("u", {"train": [record]}, {"label": names, "label_text": names}))
    assert features["sample_id"] == Value("string") and features["transcript"] == Value("string")
    assert features["text"] == Array2D(shape=(None, 8), dtype="float32")
    assert features["label"] == ClassLabel(names=names) and features["label_text"] == ClassLabel(names=names)
    assert features["regression_label"] == Value("float32")
    assert features["regression_label_text"] == Value("float32")
    assert features["inconsistent_modality"] == Value("int32")
    # Dialogue records keep a list of class labels under the same rule.
    dialogue = corpus_features(
        Corpus("d", {"train": [{"dialogue_id": "0", "labels": [1, 2]}]}, {"labels": names})
    )
    assert dialogue["labels"].feature == ClassLabel(names=names)
    with pytest.raises(ValueError, match="no feature type known for record key 'mystery'"):
        corpus_features(
            Corpus("u", {"train": [{**record, "mystery": 1.0}]}, {"label": names, "label_text": names})
        )
