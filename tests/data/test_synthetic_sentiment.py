"""The synthetic utterance-level preset ``chsims-like`` and the :class:`UtteranceCollator`.

Besides sizes and determinism, these tests check the generative story sample by sample (consistent clips
have every unimodal label equal to M, inconsistent ones exactly one modality of another class), and show
with scikit-learn logistic regression on mean-pooled features that the data has what CMC needs: text is
the most separable modality and follows its *own* label, so a text-dominant model is good on consistent
and bad on text-inconsistent clips.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from datasets import Array2D, ClassLabel, Value
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import merc_hf
from merc_hf.data import UtteranceCollator
from merc_hf.data.readers.synthetic import generate_synthetic
from merc_hf.data.readers.synthetic_sentiment import (
    LABEL_GRID,
    SENTIMENT_PRESETS,
)
from merc_hf.data.records import MODALITIES, SPLITS, Corpus

NAMES = ["negative", "neutral", "positive"]
UNIMODAL = [f"label_{m}" for m in MODALITIES]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate_synthetic("chsims-like", seed=0)


def _records(corpus: Corpus) -> list[dict[str, Any]]:
    return [record for split in SPLITS for record in corpus.splits[split]]


def _sign_class(value: float) -> int:
    return 0 if value < 0 else 1 if value == 0 else 2


# --- sizes, determinism ------------------------------------------------------------------------------


def test_splits_names_and_dims(corpus: Corpus) -> None:
    assert corpus.name == "synthetic-chsims-like"
    assert {s: len(r) for s, r in corpus.splits.items()} == {"train": 1368, "validation": 456, "test": 457}
    assert corpus.class_names == {key: NAMES for key in ("label", *UNIMODAL)}
    assert corpus.feature_dims() == {"text": 64, "audio": 32, "visual": 48}
    ids = [r["sample_id"] for r in _records(corpus)]
    assert len(set(ids)) == len(ids) and ids[7] == "chsims-like-0007"
    assert "inconsistent" in corpus.description and "seed 0" in corpus.description


def test_same_seed_same_corpus_and_prefix() -> None:
    a = _records(generate_synthetic("chsims-like", seed=3, n_samples=20))
    b = _records(generate_synthetic("chsims-like", seed=3, n_samples=20))
    c = _records(generate_synthetic("chsims-like", seed=3, n_samples=40))
    d = _records(generate_synthetic("chsims-like", seed=4, n_samples=20))
    for ra, rb, rc in zip(a, b, c):
        assert ra.keys() == rb.keys() == rc.keys()
        for key, value in ra.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, rb[key])
                np.testing.assert_array_equal(value, rc[key])
            else:
                assert value == rb[key] == rc[key]
    assert not np.array_equal(a[0]["text"][:1], d[0]["text"][:1])


def test_rate_changes_only_which_clips_are_inconsistent() -> None:
    low = _records(generate_synthetic("chsims-like", seed=1, n_samples=60, inconsistent_rate=0.0))
    high = _records(generate_synthetic("chsims-like", seed=1, n_samples=60, inconsistent_rate=1.0))
    assert {r["inconsistent_modality"] for r in low} == {-1}
    assert -1 not in {r["inconsistent_modality"] for r in high}
    for a, b in zip(low, high):
        assert a["regression_label"] == b["regression_label"] and a["label"] == b["label"]
        assert all(a[m].shape == b[m].shape for m in MODALITIES)
        m = MODALITIES[b["inconsistent_modality"]]
        for other in MODALITIES:
            if other != m:  # same noise, same class: the same frames
                np.testing.assert_array_equal(a[other], b[other])


@pytest.mark.parametrize(("n", "expected"), [(3, (1, 1, 1)), (10, (6, 2, 2)), (2281, (1368, 456, 457))])
def test_n_samples_keeps_proportions(n: int, expected: tuple[int, int, int]) -> None:
    small = generate_synthetic("chsims-like", n_samples=n, length_ranges={m: (1, 2) for m in MODALITIES})
    assert tuple(len(small.splits[s]) for s in SPLITS) == expected


# --- the generative story, sample by sample ------------------------------------------------------------


def test_records_are_well_formed(corpus: Corpus) -> None:
    ranges = SENTIMENT_PRESETS["chsims-like"].length_ranges
    for record in _records(corpus):
        assert list(record) == [
            "sample_id", "transcript", "text", "audio", "visual", "regression_label", "label",
            "regression_label_text", "regression_label_audio", "regression_label_visual",
            *UNIMODAL, "inconsistent_modality",
        ]  # fmt: skip
        for m in MODALITIES:
            assert record[m].dtype == np.float32 and np.isfinite(record[m]).all()
            assert ranges[m][0] <= record[m].shape[0] <= ranges[m][1]
        for key in ("regression_label", *(f"regression_label_{m}" for m in MODALITIES)):
            assert record[key] in LABEL_GRID
        assert record["label"] == _sign_class(record["regression_label"])
        for m in MODALITIES:
            assert record[f"label_{m}"] == _sign_class(record[f"regression_label_{m}"])
        assert not any(name in record["transcript"] for name in NAMES)
    lengths = np.array([r["audio"].shape[0] for r in _records(corpus)])
    assert lengths.min() == 16 and lengths.max() == 48  # the whole documented range is used
    assert LABEL_GRID == (-1.0, -0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def test_consistent_and_inconsistent_clips(corpus: Corpus) -> None:
    counts = np.zeros(4, dtype=int)  # consistent, text, audio, visual
    for record in _records(corpus):
        odd = record["inconsistent_modality"]
        counts[odd + 1] += 1
        disagreeing = [i for i, key in enumerate(UNIMODAL) if record[key] != record["label"]]
        if odd == -1:
            assert disagreeing == []
            assert all(record[f"regression_label_{m}"] == record["regression_label"] for m in MODALITIES)
        else:
            assert disagreeing == [odd]  # exactly one modality, and of another class
            for i, m in enumerate(MODALITIES):
                same = record[f"regression_label_{m}"] == record["regression_label"]
                assert same == (i != odd)
    n = counts.sum()
    # rate 0.3 on 2281 clips: standard error 0.0096, so 0.03 is three of them
    assert counts[1:].sum() / n == pytest.approx(0.3, abs=0.03)
    # weights 0.5/0.25/0.25 among ~684 inconsistent clips: standard error <= 0.019
    assert counts[1:] / counts[1:].sum() == pytest.approx([0.5, 0.25, 0.25], abs=0.06)


def test_class_prior(corpus: Corpus) -> None:
    labels = np.array([r["label"] for r in _records(corpus)])
    observed = np.bincount(labels, minlength=3) / labels.size
    assert observed == pytest.approx([0.4, 0.2, 0.4], abs=0.035)  # standard errors <= 0.0103
    values = np.array([r["regression_label"] for r in _records(corpus)])
    assert set(np.round(values[values > 0], 1)) == {0.2, 0.4, 0.6, 0.8, 1.0}


# --- what CMC needs, shown with logistic regression on mean-pooled features ---------------------------------


def _pooled(records: list[dict[str, Any]], modality: str) -> np.ndarray:
    return np.stack([r[modality].mean(axis=0) for r in records])


def _column(records: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([r[key] for r in records])


@pytest.fixture(scope="module")
def probes(corpus: Corpus) -> dict[str, Any]:
    train, test = corpus.splits["train"], corpus.splits["test"]
    out: dict[str, Any] = {"odd": _column(test, "inconsistent_modality"), "y": _column(test, "label")}
    with threadpool_limits(1):
        for m in MODALITIES:
            own = LogisticRegression(max_iter=1000).fit(_pooled(train, m), _column(train, f"label_{m}"))
            out[f"own_{m}"] = own.predict(_pooled(test, m))
            out[f"gold_{m}"] = _column(test, f"label_{m}")
        text_on_m = LogisticRegression(max_iter=1000).fit(_pooled(train, "text"), _column(train, "label"))
        out["text_on_m"] = text_on_m.predict(_pooled(test, "text"))
    return out


def test_text_is_the_most_separable_and_all_are_informative(probes: dict[str, Any]) -> None:
    accuracy = {m: float((probes[f"own_{m}"] == probes[f"gold_{m}"]).mean()) for m in MODALITIES}
    assert accuracy["text"] > 0.95
    assert accuracy["text"] > accuracy["audio"] + 0.05 and accuracy["text"] > accuracy["visual"] + 0.05
    assert min(accuracy["audio"], accuracy["visual"]) > 0.6  # far above the 0.4 majority class


def test_text_follows_its_own_label_on_inconsistent_clips(probes: dict[str, Any]) -> None:
    odd_text = probes["odd"] == 0
    assert odd_text.sum() > 30
    prediction = probes["own_text"][odd_text]
    on_text_label = (prediction == probes["gold_text"][odd_text]).mean()
    on_m = (prediction == probes["y"][odd_text]).mean()
    assert on_text_label > 0.9 and on_m < 0.1


def test_a_text_dominant_model_fails_on_text_inconsistent_clips(probes: dict[str, Any]) -> None:
    correct = probes["text_on_m"] == probes["y"]
    assert correct[probes["odd"] == -1].mean() > 0.85
    assert correct[probes["odd"] == 0].mean() < 0.2
    assert correct[probes["odd"] >= 1].mean() > 0.85  # audio/visual disagreeing does not hurt it


# --- options and validation --------------------------------------------------------------------------


def test_overrides() -> None:
    corpus = generate_synthetic(
        "chsims-like",
        n_samples=30,
        dims={"text": 8},
        length_ranges={"visual": (3, 3)},
        inconsistent_rate=1.0,
        inconsistent_modality_weights={"audio": 1.0},
        class_prior=(0, 1, 0),
    )
    assert corpus.feature_dims() == {"text": 8, "audio": 32, "visual": 48}
    for record in _records(corpus):
        assert record["visual"].shape[0] == 3
        assert record["inconsistent_modality"] == 1 and record["label"] == 1 and record["label_audio"] != 1
    weights = generate_synthetic(
        "chsims-like", n_samples=30, inconsistent_rate=1, inconsistent_modality_weights=[0, 0, 2]
    )
    assert {r["inconsistent_modality"] for r in _records(weights)} == {2}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "chsims"}, r"utterance-level presets: \['chsims-like'\]"),
        ({"preset": "chsims-like", "n_samples": 2}, "n_samples must be an int >= 3"),
        ({"preset": "chsims-like", "n_dialogues": 10}, "n_samples= instead of n_dialogues="),
        ({"preset": "chsims-like", "full_annotations": True}, "full_annotations"),
        (
            {"preset": "chsims-like", "inconsistent_rate": 1.5},
            r"inconsistent_rate must be a number in \[0, 1\]",
        ),
        ({"preset": "chsims-like", "inconsistent_modality_weights": {"text": -1}}, "non-negative"),
        ({"preset": "chsims-like", "inconsistent_modality_weights": [1, 2]}, "3 weights"),
        ({"preset": "chsims-like", "inconsistent_modality_weights": {"video": 1}}, "unknown modality"),
        ({"preset": "chsims-like", "length_ranges": {"text": (0, 4)}}, r"length_ranges\['text'\]"),
        ({"preset": "chsims-like", "dims": {"audio": 2.5}}, r"dims\['audio'\]"),
        ({"preset": "chsims-like", "separation": {"visual": -1}}, r"separation\['visual'\]"),
        ({"preset": "chsims-like", "noise": 0}, "noise"),
        ({"preset": "chsims-like", "class_prior": (1, 1)}, "class_prior"),
        ({"preset": "chsims-like", "split_samples": (10, 0, 5)}, "split_samples"),
        ({"preset": "chsims-like", "mislead_rate": 0.2}, "unknown synthetic parameter"),
        ({"preset": "chsims-like", "seed": -1}, "seed"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_synthetic(**kwargs)


def test_load_dataset_builds_the_chsims_like_corpus(tmp_path) -> None:
    dsd = merc_hf.load_dataset(
        "synthetic", preset="chsims-like", seed=2, n_samples=12, inconsistent_rate=0.5, cache_dir=tmp_path
    )
    corpus = generate_synthetic("chsims-like", seed=2, n_samples=12, inconsistent_rate=0.5)
    features = dsd["train"].features
    assert features["label"] == ClassLabel(names=NAMES) and features["label_text"] == ClassLabel(names=NAMES)
    assert features["regression_label_visual"] == Value("float32")
    assert features["inconsistent_modality"] == Value("int32")
    assert features["audio"] == Array2D(shape=(None, 32), dtype="float32")
    assert {s: dsd[s].num_rows for s in SPLITS} == {s: len(corpus.splits[s]) for s in SPLITS}
    for row, record in zip(dsd["test"], corpus.splits["test"]):
        assert row["inconsistent_modality"] == record["inconsistent_modality"]
        assert [row[k] for k in UNIMODAL] == [record[k] for k in UNIMODAL]
        np.testing.assert_allclose(np.asarray(row["text"]), record["text"])
    loader = torch.utils.data.DataLoader(
        dsd["train"].with_format("torch"), batch_size=5, collate_fn=UtteranceCollator()
    )
    batch = next(iter(loader))
    rows = corpus.splits["train"][:5]
    assert batch["text_mask"].sum(1).tolist() == [r["text"].shape[0] for r in rows]
    assert batch["unimodal_labels"].tolist() == [[r[k] for k in UNIMODAL] for r in rows]


# --- the collator ------------------------------------------------------------------------------------


def _row(n_text: int, n_audio: int, label: int, value: float, unimodal: tuple[int, int, int] | None, **extra):
    row: dict[str, Any] = {
        "sample_id": f"clip-{n_text}-{n_audio}",
        "text": np.full((n_text, 4), float(label + 1), np.float32),
        "audio": np.arange(n_audio * 2, dtype=np.float64).reshape(n_audio, 2),  # float64 rows are cast
        "regression_label": value,
        "label": label,
        **extra,
    }
    if unimodal is not None:
        row.update(dict(zip(UNIMODAL, unimodal)))
    return row


def test_collator_shapes_masks_and_labels() -> None:
    rows = [_row(3, 1, 2, 0.6, (2, 0, 2)), _row(1, 4, 0, -0.8, (0, 0, 1)), _row(2, 2, 1, 0.0, (1, 1, 1))]
    batch = UtteranceCollator()(rows)
    assert list(batch) == [
        "text",
        "text_mask",
        "audio",
        "audio_mask",
        "labels",
        "regression_labels",
        "unimodal_labels",
    ]
    assert batch["text"].shape == (3, 3, 4) and batch["text"].dtype == torch.float32
    assert batch["audio"].shape == (3, 4, 2) and batch["audio"].dtype == torch.float32
    assert batch["text_mask"].tolist() == [[True] * 3, [True, False, False], [True, True, False]]
    assert batch["audio_mask"].tolist() == [
        [True, False, False, False],
        [True] * 4,
        [True, True, False, False],
    ]
    assert torch.all(batch["text"][1, 1:] == 0) and torch.all(batch["audio"][0, 1:] == 0)
    assert batch["audio"][1, 3].tolist() == [6.0, 7.0]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [2, 0, 1]
    assert batch["regression_labels"].dtype == torch.float32
    torch.testing.assert_close(batch["regression_labels"], torch.tensor([0.6, -0.8, 0.0]))
    assert batch["unimodal_labels"].dtype == torch.long
    assert batch["unimodal_labels"].tolist() == [[2, 0, 2], [0, 0, 1], [1, 1, 1]]


def test_collator_mosi_style_rows_and_options() -> None:
    mosi = [_row(2, 3, 2, 2.4, None), _row(1, 1, 0, -1.2, None)]
    batch = UtteranceCollator()(mosi)
    assert batch["unimodal_labels"].tolist() == [[-100, -100, -100]] * 2
    mixed = UtteranceCollator()([_row(1, 1, 1, 0.0, (1, 2, 0)), mosi[0]])
    assert mixed["unimodal_labels"].tolist() == [[1, 2, 0], [-100, -100, -100]]
    gold = [_row(1, 1, 1, 0.0, (1, 2, 0))]
    plain = UtteranceCollator(modalities=["audio"], unimodal_label_keys=None, regression_key=None)(gold)
    assert list(plain) == ["audio", "audio_mask", "labels", "unimodal_labels"]
    assert plain["unimodal_labels"].tolist() == [[-100, -100, -100]]  # the gold labels are not used
    indexed = UtteranceCollator()(
        [_row(1, 1, 1, 0.0, None, sample_index=7), _row(1, 1, 1, 0.0, None, sample_index=2)]
    )
    assert indexed["sample_index"].tolist() == [7, 2]
    torch_rows = [
        {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in r.items()} for r in mosi
    ]
    torch.testing.assert_close(UtteranceCollator()(torch_rows)["audio"], batch["audio"])


def test_collator_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        UtteranceCollator()([])
    with pytest.raises(ValueError, match="'clip-0-1': 'text' must be a non-empty"):
        UtteranceCollator()([_row(0, 1, 1, 0.0, None)])
    with pytest.raises(ValueError, match="has no 'visual' column"):
        UtteranceCollator(modalities=["visual"])([_row(1, 1, 1, 0.0, None)])
    with pytest.raises(ValueError, match="has no 'regression_label' column"):
        UtteranceCollator()([{k: v for k, v in _row(1, 1, 1, 0.0, None).items() if k != "regression_label"}])
    with pytest.raises(ValueError, match="must name 3 columns"):
        UtteranceCollator(unimodal_label_keys=("label_text",))([_row(1, 1, 1, 0.0, None)])
    odd = _row(1, 1, 1, 0.0, None)
    odd["text"] = np.zeros((1, 5), np.float32)
    with pytest.raises(ValueError, match=r"dimensions differ within the batch: \[4, 5\]"):
        UtteranceCollator()([_row(1, 1, 1, 0.0, None), odd])
