"""The dataset cache: what keys it, how a corrupt cache file is found and rebuilt, unwritable folders."""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import merc_hf
from merc_hf.data import load_dataset
from merc_hf.data.cache import fingerprint
from merc_hf.data.readers import mecad

from .factories import iemocap_fields, write_iemocap_features
from .test_ecf import TXT, save_mapping, write
from .test_mecad import dump, small_corpus


def arrow_files(cache: Path, name: str) -> dict[str, Path]:
    """The split files of the one cached build of ``name`` under ``cache``."""
    (folder,) = [p for p in cache.glob(f"{name}-*") if p.is_dir()]
    return {p.stem: p for p in folder.glob("*.arrow")}


def rows(dsd) -> dict[str, list]:
    return {split: [dict(r) for r in ds] for split, ds in dsd.items()}


def test_fingerprint_keys_each_file_by_its_role(tmp_path):
    a = write(tmp_path / "a.json", "[1]")
    b = write(tmp_path / "b.json", "[2]")
    copy = tmp_path / "elsewhere" / "a.json"
    copy.parent.mkdir()
    shutil.copy(a, copy)
    key = fingerprint(files={"data_dir/valid_data_pair.json": a, "data_dir/test_data_pair.json": b})
    # the same contents under the same roles: same key, wherever the files are
    assert (
        fingerprint(files={"data_dir/test_data_pair.json": b, "data_dir/valid_data_pair.json": copy}) == key
    )
    # the same two contents with the roles swapped, or one content under another role: another key
    assert fingerprint(files={"data_dir/valid_data_pair.json": b, "data_dir/test_data_pair.json": a}) != key
    assert fingerprint(files={"data_dir/valid_data_pair.json": a}) != fingerprint(
        files={"data_dir/test_data_pair.json": a}
    )
    assert fingerprint(files={"x": a}, seed=1) != fingerprint(files={"x": a}, seed=2)


def test_the_same_file_under_two_split_names_gives_two_splits(tmp_path):
    source = dump(tmp_path / "conversations.json", small_corpus("show"))
    as_valid, as_test = tmp_path / "as_valid", tmp_path / "as_test"
    as_valid.mkdir()
    as_test.mkdir()
    shutil.copy(source, as_valid / "valid_data_pair.json")
    shutil.copy(source, as_test / "test_data_pair.json")
    first = load_dataset("mecad", as_valid, cache_dir=tmp_path / "cache")
    second = load_dataset("mecad", as_test, cache_dir=tmp_path / "cache")  # one cache for both
    assert list(first) == ["validation"] and list(second) == ["test"]
    assert second["test"]["conversation_id"] == first["validation"]["conversation_id"] == ["show_1", "show_2"]


def test_a_changed_feature_file_in_features_dir_is_reread(tmp_path):
    data_dir, features_dir = tmp_path / "text", tmp_path / "features"
    data_dir.mkdir()
    features_dir.mkdir()
    write(data_dir / "test.txt", TXT)
    ids = ["dia7utt1", "dia7utt2", "dia7utt3", "dia9utt1", "dia9utt2"]
    save_mapping(features_dir / "video_id_mapping.npy", {key: row for row, key in enumerate(ids)})
    audio = np.arange(len(ids) * 2, dtype=np.float32).reshape(len(ids), 2)
    np.save(features_dir / "audio_embedding_6373.npy", audio)
    cache = tmp_path / "cache"
    first = load_dataset("ecf", data_dir, features_dir=features_dir, cache_dir=cache)["test"]
    np.testing.assert_array_equal(first[0]["audio"], audio[:3])
    audio[1] = [-5.0, 7.5]  # same shape and file size, other values
    np.save(features_dir / "audio_embedding_6373.npy", audio)
    second = load_dataset("ecf", data_dir, features_dir=features_dir, cache_dir=cache)["test"]
    np.testing.assert_array_equal(second[0]["audio"], audio[:3])
    assert second[0]["audio"][1] == [-5.0, 7.5]


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "delete"])
def test_a_damaged_cache_file_is_rebuilt_with_a_warning(tmp_path, damage):
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    cache = tmp_path / "cache"
    expected = rows(load_dataset("iemocap", tmp_path, cache_dir=cache))
    path = arrow_files(cache, "iemocap")["train"]
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
        message = "bytes, the manifest says"
    elif damage == "flip a byte":
        data[len(data) // 2] ^= 0x10
        path.write_bytes(data)
        message = "does not match its sha256"
    else:
        path.unlink()
        message = "is missing"
    with pytest.warns(
        UserWarning, match=f"dataset cache of 'iemocap': .*train.arrow.* {message}.*rebuilding"
    ):
        again = load_dataset("iemocap", tmp_path, cache_dir=cache)
    assert rows(again) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt cache passes its checks
        assert rows(load_dataset("iemocap", tmp_path, cache_dir=cache)) == expected


def test_an_unreadable_manifest_is_rebuilt_with_a_warning(tmp_path):
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    cache = tmp_path / "cache"
    expected = rows(load_dataset("iemocap", tmp_path, cache_dir=cache))
    (manifest,) = cache.glob("iemocap-*.json")
    manifest.write_text(manifest.read_text()[:40])
    with pytest.warns(UserWarning, match="manifest .* is unreadable"):
        assert rows(load_dataset("iemocap", tmp_path, cache_dir=cache)) == expected


def test_an_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    """A build that fails half way (here: the disk fills up) leaves neither a manifest nor a split file."""
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    cache = tmp_path / "cache"
    from merc_hf.data import builders

    real = builders._write_split

    def write_then_fail(records, features, path):
        real(records, features, path)
        if path.stem == "test":
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builders, "_write_split", write_then_fail)
    with pytest.raises(OSError, match="No space left"):
        load_dataset("iemocap", tmp_path, cache_dir=cache)
    assert not list(cache.glob("*.json"))
    monkeypatch.setattr(builders, "_write_split", real)
    assert load_dataset("iemocap", tmp_path, cache_dir=cache)["test"].num_rows == 3


def test_an_unwritable_cache_names_the_folder_and_what_to_set(tmp_path, monkeypatch):
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    cache = tmp_path / "cache"
    real_mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):
        if cache in (self, *self.parents):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(PermissionError) as info:
        load_dataset("iemocap", tmp_path, cache_dir=cache)
    message = str(info.value)
    assert repr(os.fspath(cache)) in message
    assert "MERC_HF_CACHE" in message and "HF_HOME" in message and "cache_dir=" in message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_a_read_only_cache_folder(tmp_path):
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o500)
    try:
        with pytest.raises(PermissionError, match="set MERC_HF_CACHE"):
            load_dataset("iemocap", tmp_path, cache_dir=cache)
    finally:
        cache.chmod(0o700)


def test_a_reader_that_reads_an_unkeyed_file_is_a_bug(tmp_path, monkeypatch):
    dump(tmp_path / "valid_data_pair.json", small_corpus())
    outside = dump(tmp_path.parent / f"{tmp_path.name}-outside.json", {})
    real = mecad.read_mecad

    def reads_more(data_dir):
        corpus = real(data_dir)
        corpus.sources.append(os.fspath(outside))
        return corpus

    monkeypatch.setattr(mecad, "read_mecad", reads_more)
    with pytest.raises(RuntimeError, match="cache key does not cover"):
        merc_hf.load_dataset("mecad", tmp_path, cache_dir=tmp_path / "cache")


def test_write_batches_and_empty_splits(tmp_path, monkeypatch):
    """Flushing after every record (a tiny byte budget) writes the same rows; an empty split has the schema."""
    from merc_hf.data import builders
    from merc_hf.data.records import Corpus

    rng = np.random.default_rng(0)
    records = [
        {
            "dialogue_id": f"d{i}",
            "labels": [i % 2] * (i + 1),
            "audio": rng.normal(size=(i + 1, 3)).astype(np.float32),
        }
        for i in range(7)
    ]
    corpus = Corpus("toy", {"train": records, "test": []}, {"labels": ["a", "b"]})
    default = builders.build_dataset_dict("toy", "one", lambda: corpus, cache_dir=tmp_path)
    monkeypatch.setattr(builders, "WRITE_BATCH_BYTES", 1)
    tiny = builders.build_dataset_dict("toy", "two", lambda: corpus, cache_dir=tmp_path)
    assert rows(tiny) == rows(default)
    assert [np.asarray(r["audio"], np.float32).tolist() for r in tiny["train"]] == [
        r["audio"].tolist() for r in records
    ]
    assert tiny["test"].num_rows == 0 and tiny["test"].features == tiny["train"].features
