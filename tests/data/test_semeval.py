"""SemEval-2024 Task 3 files: ``load_dataset("ecf")`` on the distributed gold files, and prediction files
scored as the official scorer scores them (one utterance may carry several emotions)."""

from __future__ import annotations

import pytest

import merc_hf
from merc_hf.data.errors import DataFormatError
from merc_hf.data.readers.ecf import ECF_EMOTIONS, read_ecf, read_semeval_json, semeval_pairs
from merc_hf.metrics import pair_f1, semeval_pair_f1

from .test_ecf import conversation, dump, where

JOY, ANGER, SADNESS, SURPRISE = (ECF_EMOTIONS.index(e) for e in ("joy", "anger", "sadness", "surprise"))


def subtask2_files(folder, train_ids=range(1, 11), test_ids=range(1375, 1378)):
    """``Subtask_2_{train,test}.json`` in the layout of ``NUSTM/SemEval-2024_ECAC: data/``."""
    folder.mkdir(parents=True, exist_ok=True)
    if train_ids is not None:
        dump(folder / "Subtask_2_train.json", [conversation(i, video=True) for i in train_ids])
    if test_ids is not None:
        dump(folder / "Subtask_2_test.json", [conversation(i, video=True) for i in test_ids])
    return folder


# ------------------------------------------------------------------ gold files through read_ecf / load_dataset


def test_read_ecf_semeval_subtask2_carves_a_seeded_validation_share(tmp_path):
    corpus = read_ecf(subtask2_files(tmp_path))
    ids = {split: [r["conversation_id"] for r in records] for split, records in corpus.splits.items()}
    assert list(ids) == ["train", "validation", "test"]
    assert len(ids["validation"]) == 1 and len(ids["train"]) == 9  # 10 % of 10 training conversations
    assert sorted(ids["train"] + ids["validation"], key=int) == [str(i) for i in range(1, 11)]
    assert ids["test"] == ["1375", "1376", "1377"]
    assert corpus.splits["test"][0]["pairs"] == [[1, 0], [2, 0], [2, 2]]
    assert corpus.sources == [str(tmp_path / "Subtask_2_train.json"), str(tmp_path / "Subtask_2_test.json")]
    assert "Subtask 2" in corpus.description and "seed 42" in corpus.description
    assert read_ecf(tmp_path).splits == corpus.splits  # deterministic
    validation_by_seed = {
        read_ecf(tmp_path, validation_seed=seed).splits["validation"][0]["conversation_id"]
        for seed in range(8)
    }
    assert len(validation_by_seed) > 1  # the seed chooses the share
    assert list(read_ecf(tmp_path, validation_fraction=0.0).splits) == ["train", "test"]


def test_read_ecf_semeval_reads_whichever_splits_are_present(tmp_path):
    only_test = subtask2_files(tmp_path / "test_only", train_ids=None)
    assert list(read_ecf(only_test).splits) == ["test"]
    only_train = subtask2_files(tmp_path / "train_only", test_ids=None)
    assert list(read_ecf(only_train).splits) == ["train", "validation"]


def subtask1_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    spans = [["2_joy", "1_the job"], ["3_surprise", "3_what job ?"]]
    dump(folder / "Subtask_1_train.json", [conversation(i, spans) for i in range(1, 4)])
    dump(folder / "Subtask_1_test.json", [conversation(1375, spans)])
    return folder


def test_read_ecf_semeval_subtask1_and_the_choice_of_subtask(tmp_path):
    corpus = read_ecf(subtask1_files(tmp_path), validation_fraction=0.0)
    assert corpus.splits["test"][0]["cause_spans"] == [[1, 0, 2, 4], [2, 2, 2, 5]]
    subtask2_files(tmp_path)
    with pytest.raises(
        DataFormatError,
        match=where(tmp_path) + "holds SemEval-2024 files of both Subtask 1 and Subtask 2.*subtask=1",
    ):
        read_ecf(tmp_path)
    assert "cause_spans" not in read_ecf(tmp_path, subtask=2).splits["test"][0]
    assert "cause_spans" in read_ecf(tmp_path, subtask=1).splits["test"][0]
    (tmp_path / "test.txt").write_text("9 1\n\n1 | Joey | joy | Hey ! | x\n", encoding="utf-8")
    assert list(read_ecf(tmp_path).splits) == ["test"]  # the ECF 1.0 text comes first ...
    assert len(read_ecf(tmp_path, subtask=2).splits["test"]) == 3  # ... unless a subtask is asked for


def test_load_dataset_ecf_reads_semeval_files(tmp_path):
    subtask1_files(tmp_path / "s1")
    dsd = merc_hf.load_dataset("ecf", tmp_path / "s1", validation_fraction=0.0, cache_dir=tmp_path / "cache")
    assert list(dsd) == ["train", "test"] and dsd["train"].num_rows == 3
    assert dsd["test"][0]["cause_spans"] == [[1, 0, 2, 4], [2, 2, 2, 5]]
    dsd = merc_hf.load_dataset("ecf", subtask2_files(tmp_path / "s2"), cache_dir=tmp_path / "cache")
    assert {split: ds.num_rows for split, ds in dsd.items()} == {"train": 9, "validation": 1, "test": 3}
    assert dsd["test"].features["emotions"].feature.names == ECF_EMOTIONS
    assert dsd["test"][0]["pairs"] == [[1, 0], [2, 0], [2, 2]]


SPLITS_BAD = [
    # (id, train, test, subtask, file, dialogue, field, message)
    ("conversation in train and test", [conversation(7)], [conversation(7)], None, "Subtask_2_test.json", "7",
     "conversation_id", "also appears in"),
    ("unknown emotion in train", [conversation(8, emotions=("neutral", "happy", "surprise"))], None, None,
     "Subtask_2_train.json", "8", "emotion", "unknown emotion 'happy' at utterance 2"),
    ("pair outside the conversation in test", None, [conversation(9, [["2_joy", "4"]])], None,
     "Subtask_2_test.json", "9", "emotion-cause_pairs", "cause utterance 4 is outside the conversation"),
    ("utterance without text", [conversation(10) | {"conversation": [{"utterance_ID": 1, "speaker": "Ross"}]}],
     None, None, "Subtask_2_train.json", "10", "text", "utterance 1 has no 'text' key"),
    ("subtask without its files", [conversation(11)], None, 1, None, None, None,
     "no SemEval-2024 Subtask 1 file found"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("train", "test", "subtask", "file", "dialogue", "field", "message"),
    [case[1:] for case in SPLITS_BAD],
    ids=[case[0] for case in SPLITS_BAD],
)
def test_read_ecf_semeval_bad_input(tmp_path, train, test, subtask, file, dialogue, field, message):
    if train is not None:
        dump(tmp_path / "Subtask_2_train.json", train)
    if test is not None:
        dump(tmp_path / "Subtask_2_test.json", test)
    location = where(tmp_path / file if file else tmp_path, dialogue, field)
    with pytest.raises(DataFormatError, match=location + ".*" + message):
        read_ecf(tmp_path, subtask=subtask)


def test_read_ecf_semeval_bad_subtask(tmp_path):
    subtask2_files(tmp_path)
    with pytest.raises(ValueError, match="subtask must be 1 or 2"):
        read_ecf(tmp_path, subtask=3)


# ------------------------------------------------------------------ predictions, scored like the official scorer


def test_prediction_may_give_one_utterance_several_emotions(tmp_path):
    pairs = [["2_joy", "1"], ["2_anger", "1"], ["2_anger", "2"], ["2_joy", 1], ["3_neutral", "1"]]
    conv = conversation(4, pairs, emotions=("neutral", "sadness", "neutral"))  # per-utterance labels: ignored
    (record,) = read_semeval_json(dump(tmp_path / "Subtask_2_pred.json", [conv]), prediction=True)
    assert record["pairs"] == [[1, 0], [1, 1], [2, 0]]  # utterance pairs, unique
    # the scorer's unit, unique in first-seen order: the repeated (2, 1, joy) is dropped
    assert record["emotion_cause_pairs"] == [[1, 0, JOY], [1, 0, ANGER], [1, 1, ANGER], [2, 0, 0]]
    assert record["emotions"] == [0, SADNESS, 0]  # the per-utterance labels the file gives
    (record,) = read_semeval_json(
        dump(tmp_path / "no_labels.json", [conversation(4, pairs, emotions=None)]), prediction=True
    )
    assert record["emotions"] == [0, JOY, 0]  # else the first pair's emotion, neutral elsewhere
    assert semeval_pairs([record]) == {"4": [(1, 0, JOY), (1, 0, ANGER), (1, 1, ANGER), (2, 0, 0)]}


def test_semeval_scores_a_prediction_with_two_emotions_per_utterance_as_the_official_scorer(tmp_path):
    gold = [
        conversation(1),  # (2 joy, 1), (3 surprise, 1), (3 surprise, 3)
        conversation(2, [["2_anger", "2"]], emotions=("neutral", "anger", "neutral")),
    ]
    predicted = [
        conversation(1, [["2_joy", "1"], ["2_anger", "1"], ["2_anger", "2"], ["3_surprise", "3"], ["2_joy", "1"],
                         ["3_neutral", "1"]], emotions=None),
        conversation(2, [["2_anger", "2"], ["2_sadness", "2"]], emotions=None),
    ]  # fmt: skip
    gold_records = read_semeval_json(dump(tmp_path / "Subtask_2_gold.json", gold))
    pred_records = read_semeval_json(dump(tmp_path / "Subtask_2_pred.json", predicted), prediction=True)
    scores = semeval_pair_f1(semeval_pairs(pred_records), semeval_pairs(gold_records))
    # Confusion matrix by hand (rows gold, columns predicted; the duplicate (2, 1, joy) counts once):
    #   joy      (2,1) correct                          -> M[joy, joy] = 1
    #   anger    (2,2) in conv 2 correct; (2,1) and (2,2) in conv 1 wrong -> M[anger, anger] = 1,
    #            M[neutral, anger] = 2
    #   surprise (3,3) correct, gold (3,1) missed       -> M[surprise, surprise] = 1, M[surprise, neutral] = 1
    #   sadness  (2,2) in conv 2 wrong                  -> M[neutral, sadness] = 1
    #   neutral  (3,1) predicted neutral                -> column 0: ignored
    # P/R/F1: joy 1/1/1, anger 1/3, 1, 1/2; surprise 1, 1/2, 2/3; sadness 0/0/0 (no gold); 4 gold pairs.
    expected = {
        "weighted_precision": (1 * 1 + 1 / 3 * 1 + 1 * 2) / 4,
        "weighted_recall": (1 * 1 + 1 * 1 + 1 / 2 * 2) / 4,
        "weighted_f1": (1 * 1 + 1 / 2 * 1 + 2 / 3 * 2) / 4,
        "micro_precision": 3 / 6,
        "micro_recall": 3 / 4,
        "micro_f1": 2 * 0.5 * 0.75 / 1.25,
    }
    assert {k: scores[k] for k in expected} == pytest.approx(expected, abs=1e-12)
    assert scores["per_emotion"]["anger"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1, "f1": 0.5, "support": 1}
    )
    assert scores["per_emotion"]["sadness"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # the emotion-independent Pair-F1 reads the utterance pairs: conv 1 predicts (2,1), (2,2), (3,3), (3,1)
    by_conv = {r["conversation_id"]: r["pairs"] for r in pred_records}
    gold_by_conv = {r["conversation_id"]: r["pairs"] for r in gold_records}
    assert pair_f1(by_conv, gold_by_conv) == pytest.approx(
        {"precision": 4 / 5, "recall": 1.0, "f1": 8 / 9, "n_predicted": 5, "n_gold": 4, "n_correct": 4}
    )
