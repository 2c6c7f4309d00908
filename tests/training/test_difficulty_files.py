"""Difficulty files: the JSON merc-measure-difficulty writes and the reference's published pickle."""

from __future__ import annotations

import json
import pickle

import pytest

from merc_hf.data.errors import DataFormatError
from merc_hf.training import load_difficulties, training_difficulties

SPLITS = {"train": ["0", "1", "2"], "validation": ["3"], "test": ["4"]}


def test_json_and_reference_pickle_give_the_same_table(tmp_path):
    """The reference's caldiff/*_diff.pkl is a dict dialogue id -> float (MELD ids are ints)."""
    table = {0: 0.25, 1: 0.5, 2: 0.125, 3: 0.75}
    (tmp_path / "d.json").write_text(json.dumps({str(k): v for k, v in table.items()}))
    (tmp_path / "MELD_diff.pkl").write_bytes(pickle.dumps(table, protocol=2))
    expected = {"0": 0.25, "1": 0.5, "2": 0.125, "3": 0.75}
    assert load_difficulties(tmp_path / "d.json") == expected
    assert load_difficulties(tmp_path / "MELD_diff.pkl") == expected
    # the validation dialogue "3" is dropped (the reference trains on train + dev); train ids are kept
    assert training_difficulties(expected, SPLITS, "d.json") == {"0": 0.25, "1": 0.5, "2": 0.125}


def test_pickled_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"0": Payload()}))
    with pytest.raises(DataFormatError, match="evil.pkl"):
        load_difficulties(tmp_path / "evil.pkl")


@pytest.mark.parametrize(
    "table, message",
    [
        ({"0": "hard"}, "finite number"),
        ({"0": float("nan")}, "finite number"),
        ({"0": True}, "finite number"),
        ({0: 0.1, "0": 0.2}, "same dialogue id"),
        ([0.1, 0.2], "mapping"),
        ({}, "mapping"),
    ],
)
def test_bad_tables_name_the_file(tmp_path, table, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(table, protocol=2))
    with pytest.raises(DataFormatError, match=message) as err:
        load_difficulties(path)
    assert "bad.pkl" in str(err.value)


def test_ids_of_no_dialogue_and_missing_training_dialogues_are_errors():
    with pytest.raises(DataFormatError, match="match no dialogue.*Ses01F"):
        training_difficulties({"0": 0.1, "1": 0.1, "2": 0.1, "Ses01F_impro01": 0.3}, SPLITS, "x.json")
    with pytest.raises(DataFormatError, match="no difficulty for 1 of 3 training dialogues"):
        training_difficulties({"0": 0.1, "1": 0.1}, SPLITS, "x.json")
