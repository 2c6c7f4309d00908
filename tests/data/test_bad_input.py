"""Bad input gets a clear error naming the file, the dialogue and the field — never a deep traceback."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

import merc_hf
from merc_hf.data import DataFormatError
from merc_hf.data.cache import cache_root
from merc_hf.data.readers.iemocap import FEATURE_FIELDS, read_iemocap
from merc_hf.data.readers.meld import read_meld

from .factories import (
    dump,
    iemocap_fields,
    iemocap_roberta,
    meld_fields,
    write_iemocap_features,
    write_meld_features,
)

VID = "Ses01F_impro00"  # the first training dialogue of iemocap_fields()


def _break(mutate):
    def write(tmp_path):
        fields = iemocap_fields()
        mutate(fields)
        return write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)

    return write


def _drop_last(key):
    return lambda f: f[key].__setitem__(VID, f[key][VID][:-1])


def _set_row(key, row, value):
    def mutate(f):
        rows = list(f[key][VID])
        rows[row] = value
        f[key][VID] = rows

    return mutate


def _truncated(tmp_path):
    path = write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    path.write_bytes(path.read_bytes()[:5000])
    return path


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _exploit(tmp_path):
    return dump(tmp_path / "IEMOCAP_features.pkl", _Exploit(tmp_path / "pwned"), protocol=4)


def _wrong_length(tmp_path):
    fields = iemocap_fields()
    return dump(tmp_path / "IEMOCAP_features.pkl", tuple(fields[n] for n in FEATURE_FIELDS[:7]))


def _empty(f):
    for key in FEATURE_FIELDS[:7]:
        f[key][VID] = []


# (case id, how to write the broken file, expected message fragment, dialogue named, field named)
CASES = [
    ("truncated pickle", _truncated, "truncated or corrupt pickle", None, None),
    ("code-executing pickle", _exploit, "refusing to load global 'posix.system'", None, None),
    ("tuple of the wrong length", _wrong_length, "9 items", None, None),
    (
        "dialogue missing in one modality",
        _break(lambda f: f["videoAudio"].pop(VID)),
        "missing",
        VID,
        "videoAudio",
    ),
    (
        "fewer visual rows than labels",
        _break(_drop_last("videoVisual")),
        "has 2 utterances",
        VID,
        "videoVisual",
    ),
    ("fewer speakers than labels", _break(_drop_last("videoSpeakers")), "entries", VID, "videoSpeakers"),
    (
        "wrong feature dim in one dialogue",
        _break(_set_row("videoAudio", 1, np.zeros(7, np.float32))),
        "numeric matrix",
        VID,
        "videoAudio",
    ),
    (
        "NaN feature",
        _break(_set_row("videoText", 2, np.full(100, np.nan, np.float32))),
        "NaN or infinite value at utterance 2",
        VID,
        "videoText",
    ),
    (
        "inf feature",
        _break(_set_row("videoVisual", 0, np.full(342, np.inf, np.float32))),
        "NaN or infinite",
        VID,
        "videoVisual",
    ),
    ("label out of range", _break(_set_row("videoLabels", 1, 6)), "out of range 0..5", VID, "videoLabels"),
    ("negative label", _break(_set_row("videoLabels", 0, -1)), "out of range", VID, "videoLabels"),
    ("empty dialogue", _break(_empty), "no utterances", VID, "videoLabels"),
    (
        "bad speaker",
        _break(_set_row("videoSpeakers", 0, [0.5, 0.5])),
        "neither a name nor a one-hot",
        VID,
        "videoSpeakers",
    ),
    (
        "duplicated id in a split",
        _break(lambda f: f["trainVid"].append(VID)),
        "listed twice",
        VID,
        "trainVid",
    ),
]


@pytest.mark.parametrize(("case", "write", "message", "dialogue", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_iemocap_pickle(tmp_path, case, write, message, dialogue, field):
    path = write(tmp_path)
    with pytest.raises(DataFormatError) as info:
        merc_hf.load_dataset("iemocap", tmp_path)
    text = str(info.value)
    assert message in text
    assert str(path) in text and info.value.file == str(path)
    if dialogue is not None:
        assert f"dialogue {dialogue!r}" in text and info.value.dialogue == dialogue
    if field is not None:
        assert f"field {field!r}" in text and info.value.field == field
    assert not (tmp_path / "pwned").exists()


def test_a_failed_load_leaves_nothing_behind(tmp_path):
    """Nothing half-written: after an error the cache has no manifest, and the fixed file loads."""
    fields = iemocap_fields()
    good_labels = list(fields["videoLabels"][VID])
    fields["videoLabels"][VID][0] = 9
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    with pytest.raises(DataFormatError):
        merc_hf.load_dataset("iemocap", tmp_path)
    fields["videoLabels"][VID] = good_labels
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    dsd = merc_hf.load_dataset("iemocap", tmp_path)
    row = next(r for s in dsd.values() for r in s if r["dialogue_id"] == VID)
    assert row["labels"] == good_labels
    manifests_before = set((cache_root() / "datasets").glob("iemocap-*.json"))
    fields["videoLabels"][VID][0] = 9
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    with pytest.raises(DataFormatError):
        merc_hf.load_dataset("iemocap", tmp_path)
    assert set((cache_root() / "datasets").glob("iemocap-*.json")) == manifests_before


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="file not found") as info:
        read_iemocap(features_file=tmp_path / "nope.pkl")
    assert info.value.file == str(tmp_path / "nope.pkl")
    with pytest.raises(DataFormatError, match="no IEMOCAP file found"):
        read_iemocap(tmp_path)
    with pytest.raises(DataFormatError, match="data_dir does not exist"):
        merc_hf.load_dataset("meld", tmp_path / "missing")


def test_files_that_disagree(tmp_path):
    fields = iemocap_fields()
    roberta = iemocap_roberta(fields)
    roberta[1] = {k: list(v) for k, v in roberta[1].items()}
    roberta[1][VID][0] = (roberta[1][VID][0] + 1) % 6
    write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    rpath = dump(tmp_path / "iemocap_features_roberta.pkl", roberta)
    with pytest.raises(DataFormatError, match="disagrees with") as info:
        read_iemocap(tmp_path)
    assert info.value.file == str(rpath) and info.value.dialogue == VID and info.value.field == "labels"


def _write_csvs(tmp_path, header, rows):
    for name in ("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv"):
        (tmp_path / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID"


def test_csv_missing_columns(tmp_path):
    _write_csvs(tmp_path, "Sr No.,Utterance,Speaker,Dialogue_ID,Utterance_ID", ["1,hi,Joey,0,0"])
    with pytest.raises(DataFormatError, match=r"missing columns \['Emotion', 'Sentiment'\]") as info:
        read_meld(tmp_path)
    assert info.value.file.endswith("_sent_emo.csv")


def test_csv_unknown_emotion(tmp_path):
    _write_csvs(tmp_path, HEADER, ["1,hi,Joey,neutral,neutral,0,0", "2,yo,Ross,happy,positive,0,1"])
    with pytest.raises(DataFormatError, match="unknown class 'happy' at utterance 1") as info:
        read_meld(tmp_path)
    assert info.value.dialogue == "0" and info.value.field == "Emotion"


def test_csv_bad_ids_and_duplicates(tmp_path):
    _write_csvs(tmp_path, HEADER, ["1,hi,Joey,neutral,neutral,zero,0"])
    with pytest.raises(DataFormatError, match="line 2: Dialogue_ID/Utterance_ID must be integers"):
        read_meld(tmp_path)
    _write_csvs(tmp_path, HEADER, ["1,hi,Joey,neutral,neutral,4,0", "2,hi,Joey,neutral,neutral,4,0"])
    with pytest.raises(DataFormatError, match="duplicated Utterance_ID") as info:
        read_meld(tmp_path)
    assert info.value.dialogue == "4"


def test_not_a_tuple(tmp_path):
    dump(tmp_path / "IEMOCAP_features.pkl", {"videoIDs": {}})
    with pytest.raises(DataFormatError, match="expected the IEMOCAP_features.pkl 9-tuple"):
        read_iemocap(tmp_path)


def test_restricted_unpickler_allows_plain_data_only(tmp_path):
    from merc_hf.data.safe_pickle import load_pickle

    ok = {"a": [np.arange(3, dtype=np.float32), np.float64(2.5)], "b": ("x", 1, None, True, {1, 2})}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        loaded = load_pickle(dump(tmp_path / f"ok{protocol}.pkl", ok, protocol=protocol))
        np.testing.assert_array_equal(loaded["a"][0], ok["a"][0])
        assert loaded["b"] == ok["b"]
    with pytest.raises(DataFormatError, match="refusing to load global 'collections.Counter'"):
        import collections

        load_pickle(dump(tmp_path / "counter.pkl", collections.Counter("ab")))


# --- issue 16: every failure names the file; leaks, collisions, booleans and complex values are errors ---


def test_a_dialogue_in_two_splits_is_a_leak(tmp_path):
    fields = iemocap_fields()
    fields["testVid"].append(VID)
    path = write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", fields)
    with pytest.raises(DataFormatError, match="in both split 'train' and split 'test'") as info:
        read_iemocap(tmp_path, validation_fraction=0.0)
    assert info.value.file == str(path) and info.value.dialogue == VID


def test_a_meld_csv_id_colliding_with_another_split_is_a_leak(tmp_path):
    # dev Dialogue_ID 114 becomes 1039 + 114 = 1153, the id of test dialogue 0
    rows = {"train": "1,hi,Joey,neutral,neutral,0,0", "dev": "1,hi,Joey,neutral,neutral,114,0"}
    for split in ("train", "dev", "test"):
        line = rows.get(split, "1,hi,Joey,neutral,neutral,0,0")
        (tmp_path / f"{split}_sent_emo.csv").write_text(f"{HEADER}\n{line}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="in both split 'validation'") as info:
        read_meld(tmp_path)
    assert info.value.dialogue == "1153" and info.value.file.endswith("test_sent_emo.csv")
    assert "dev_sent_emo.csv" in str(info.value)


def test_an_mmsa_sample_in_two_splits_is_a_leak(tmp_path):
    from merc_hf.data.readers.mmsa import read_mmsa

    from .factories import mmsa_data, write_mmsa_pickle

    data = mmsa_data()
    data["test"]["id"][0] = data["train"]["id"][2]
    write_mmsa_pickle(tmp_path / "unaligned_39.pkl", data=data)
    with pytest.raises(DataFormatError, match="in both split 'train' and split 'test'") as info:
        read_mmsa(tmp_path)
    assert info.value.dialogue == data["train"]["id"][2]


def test_keys_that_collide_as_strings_are_refused(tmp_path):
    fields = meld_fields()
    fields["videoLabels"]["0"] = fields["videoLabels"][0]  # int 0 and str "0": one would overwrite the other
    path = write_meld_features(tmp_path / "MELD_features_raw1.pkl", fields)
    with pytest.raises(DataFormatError, match="keys 0 and '0' both name dialogue '0'") as info:
        read_meld(tmp_path)
    assert info.value.file == str(path) and info.value.field == "videoLabels"


def test_boolean_labels_and_complex_features_are_refused(tmp_path):
    cases = [
        (_set_row("videoLabels", 1, True), "is a boolean", "videoLabels"),
        (_set_row("videoAudio", 0, np.full(1582, 1 + 2j)), "complex-valued", "videoAudio"),
    ]
    for mutate, message, field in cases:
        path = _break(mutate)(tmp_path)
        with pytest.raises(DataFormatError, match=message) as info:
            read_iemocap(tmp_path)
        assert info.value.file == str(path) and info.value.dialogue == VID and info.value.field == field


def test_mmsa_boolean_labels_and_complex_features_are_refused(tmp_path):
    from merc_hf.data.readers.mmsa import read_mmsa

    from .factories import mmsa_data, write_mmsa_pickle

    for field, value, message in (
        ("regression_labels", lambda a: a > 0, "booleans"),
        ("audio", lambda a: a.astype(np.complex64), "complex-valued"),
    ):
        data = mmsa_data()
        data["train"][field] = value(data["train"][field])
        write_mmsa_pickle(tmp_path / "unaligned_39.pkl", data=data)
        with pytest.raises(DataFormatError, match=message) as info:
            read_mmsa(tmp_path)
        assert info.value.field == field and info.value.file.endswith("unaligned_39.pkl")


def test_c1_controls_are_mapped_through_windows_1252():
    from merc_hf.data.records import repair_c1_controls

    assert repair_c1_controls("don\x92t \x93hi\x94 \x85") == ("don\u2019t \u201chi\u201d \u2026", True)
    assert repair_c1_controls("undefined in cp1252: \x81\x8d\x8f\x90\x9d") == (
        "undefined in cp1252: \x81\x8d\x8f\x90\x9d",
        False,
    )
    assert repair_c1_controls("caf\xe9 \u2019") == ("caf\xe9 \u2019", False)


def test_meld_pkl_transcripts_match_the_csvs(shared_data, tmp_path):
    """A COSMIC-layout meld.pkl whose text went through cp1252 -> latin-1 reads exactly like the CSVs."""
    emotion = read_meld(shared_data / "meld", text="none")
    sentiment = read_meld(shared_data / "meld", labels="sentiment", text="none")
    records = {r["dialogue_id"]: r for s in emotion.splits.values() for r in s}
    sentiments = {r["dialogue_id"]: r["labels"] for s in sentiment.splits.values() for r in s}
    keys = {vid: int(vid) for vid in records}
    mojibake = {
        keys[v]: [u.encode("cp1252").decode("latin-1") for u in r["utterances"]] for v, r in records.items()
    }
    pkl = [
        {keys[v]: [[float(j == s) for j in range(9)] for s in r["speakers"]] for v, r in records.items()},
        {keys[v]: r["labels"] for v, r in records.items()},
        {keys[v]: sentiments[v] for v in records},
        mojibake,
        *([keys[r["dialogue_id"]] for r in emotion.splits[s]] for s in ("train", "test", "validation")),
    ]
    dump(tmp_path / "meld.pkl", pkl)
    # counted independently: utterances with a character cp1252 encodes in 0x80-0x9F
    expected = sum(
        any(0x80 <= ch.encode("cp1252")[0] <= 0x9F for ch in u if ord(ch) > 0x7F)
        for r in records.values()
        for u in r["utterances"]
    )
    assert expected == 3801  # of 13,708 utterances in the three CSVs
    with pytest.warns(UserWarning, match=f"{expected} transcripts held Windows-1252 punctuation"):
        from_pkl = read_meld(tmp_path)
    for split, recs in from_pkl.splits.items():
        for record in recs:
            assert record["utterances"] == records[record["dialogue_id"]]["utterances"], split


def test_huge_integers_and_deep_json_name_the_file(tmp_path):
    from merc_hf.data.readers.ecf import read_ecf_txt, read_semeval_json
    from merc_hf.data.readers.mecad import read_m3hg_json

    digits = "9" * 5000
    txt = tmp_path / "train.txt"
    txt.write_text(f"1 {digits}\n\n1 | Joey | neutral | hi | x\n", encoding="utf-8")
    as_number = tmp_path / "number.json"
    as_number.write_text(f'[{{"conversation_ID": {digits}, "conversation": []}}]', encoding="utf-8")
    as_string = tmp_path / "string.json"
    utterance = {"turn": digits, "speaker": "A", "utterance": "hi", "emotion": "Neutral"}
    as_string.write_text(json.dumps({"1": [[utterance]]}), encoding="utf-8")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    for read, path, message in (
        (read_ecf_txt, txt, "unreadable value"),
        (read_semeval_json, as_number, "unreadable JSON value"),
        (read_m3hg_json, as_string, "5000 digits"),
        (read_semeval_json, deep, "nested too deeply"),
    ):
        with pytest.raises(DataFormatError, match=message) as info:
            read(path)
        assert info.value.file == str(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions to apply")
def test_unreadable_files_name_the_file(tmp_path):
    from merc_hf.data.readers.ecf import read_ecf_txt
    from merc_hf.data.safe_pickle import load_pickle

    pkl = write_iemocap_features(tmp_path / "IEMOCAP_features.pkl", iemocap_fields())
    txt = tmp_path / "train.txt"
    txt.write_text("1 1\n\n1 | Joey | neutral | hi | x\n", encoding="utf-8")
    for path, read in ((pkl, load_pickle), (txt, read_ecf_txt)):
        path.chmod(0)
        try:
            with pytest.raises(DataFormatError, match="(cannot open|cannot read).*ermission") as info:
                read(path)
            assert info.value.file == str(path)
        finally:
            path.chmod(0o644)
