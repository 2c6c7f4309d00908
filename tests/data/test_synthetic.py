"""Tests of the embedded synthetic corpora (merc_hf.data.readers.synthetic).

Besides shape and determinism checks, these tests show with scikit-learn logistic regression that the
data has what calibration needs: own features beat chance, context features add information, and
removing a misleading modality raises the gold-class probability (CMERC's "uncertain samples").
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

from merc_hf.data.readers.synthetic import PRESETS, generate_synthetic
from merc_hf.data.records import MODALITIES, SPLITS, Corpus

IEMOCAP_NAMES = ["hap", "sad", "neu", "ang", "exc", "fru"]
MELD_NAMES = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]


@pytest.fixture(scope="module")
def corpora() -> dict[str, Corpus]:
    return {preset: generate_synthetic(preset, seed=0) for preset in PRESETS}


def _records(corpus: Corpus) -> list[dict[str, Any]]:
    return [record for split in SPLITS for record in corpus.splits[split]]


def _assert_same(a: Corpus, b: Corpus) -> None:
    assert a.description == b.description
    assert {s: len(r) for s, r in a.splits.items()} == {s: len(r) for s, r in b.splits.items()}
    for ra, rb in zip(_records(a), _records(b)):
        assert ra.keys() == rb.keys()
        for key in ra:
            if isinstance(ra[key], np.ndarray):
                np.testing.assert_array_equal(ra[key], rb[key])
            else:
                assert ra[key] == rb[key]


# --- determinism -----------------------------------------------------------------------------------


def test_same_seed_same_corpus() -> None:
    _assert_same(
        generate_synthetic("meld-like", seed=3, n_dialogues=40),
        generate_synthetic("meld-like", seed=3, n_dialogues=40),
    )


def test_different_seeds_differ() -> None:
    a = generate_synthetic("iemocap-like", seed=0, n_dialogues=6)
    b = generate_synthetic("iemocap-like", seed=1, n_dialogues=6)
    first_a, first_b = _records(a)[0], _records(b)[0]
    assert first_a["labels"] != first_b["labels"] or first_a["speakers"] != first_b["speakers"]
    assert not np.array_equal(first_a["text"][:1], first_b["text"][:1])


def test_smaller_corpus_is_a_prefix_of_the_same_dialogues() -> None:
    small = _records(generate_synthetic("meld-like", seed=5, n_dialogues=10))
    large = _records(generate_synthetic("meld-like", seed=5, n_dialogues=30))
    for rs, rl in zip(small, large):
        assert rs["dialogue_id"] == rl["dialogue_id"]
        assert rs["labels"] == rl["labels"]
        np.testing.assert_array_equal(rs["audio"], rl["audio"])


# --- shapes and statistics of the presets ----------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "names", "sizes"),
    [
        ("iemocap-like", IEMOCAP_NAMES, {"train": 108, "validation": 12, "test": 31}),
        ("meld-like", MELD_NAMES, {"train": 1038, "validation": 114, "test": 280}),
    ],
)
def test_preset_splits_and_classes(corpora: dict[str, Corpus], preset: str, names: list[str], sizes) -> None:
    corpus = corpora[preset]
    assert corpus.name == f"synthetic-{preset}"
    assert corpus.class_names == {"labels": names}
    assert {split: len(records) for split, records in corpus.splits.items()} == sizes
    assert corpus.modalities == MODALITIES
    assert corpus.feature_dims() == {"text": 100, "audio": 64, "visual": 64}
    assert preset in corpus.description and "mislead" in corpus.description
    ids = [r["dialogue_id"] for r in _records(corpus)]
    assert len(set(ids)) == len(ids)
    assert ids[7] == f"{preset}-0007"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_records_are_well_formed(corpora: dict[str, Corpus], preset: str) -> None:
    n_classes = len(corpora[preset].class_names["labels"])
    for record in _records(corpora[preset]):
        length = len(record["labels"])
        for modality in MODALITIES:
            matrix = record[modality]
            assert matrix.dtype == np.float32 and matrix.shape[0] == length
            assert np.isfinite(matrix).all()
        assert set(record) == {
            "dialogue_id",
            "speakers",
            "labels",
            *MODALITIES,
            "utterances",
            "misleading_modality",
        }
        for key in ("speakers", "utterances", "misleading_modality"):
            assert len(record[key]) == length
        assert all(0 <= y < n_classes for y in record["labels"])
        # Speakers are indexed by first appearance.
        seen = -1
        for s in record["speakers"]:
            assert s <= seen + 1
            seen = max(seen, s)
        # Placeholder transcripts reveal nothing about the emotion.
        names = corpora[preset].class_names["labels"]
        assert not any(name in u for u in record["utterances"] for name in names)


def test_ground_truth_annotations_are_consistent(corpora: dict[str, Corpus]) -> None:
    annotated = generate_synthetic("iemocap-like", seed=0, full_annotations=True)
    counts = Counter()
    for plain, record in zip(_records(corpora["iemocap-like"]), _records(annotated)):
        assert plain["misleading_modality"] == record["misleading_modality"]
        np.testing.assert_array_equal(plain["visual"], record["visual"])  # annotations change no data
        labels, speakers = record["labels"], record["speakers"]
        for t, (label, modality, wrong, source) in enumerate(
            zip(labels, record["misleading_modality"], record["misleading_class"], record["label_source"])
        ):
            assert modality in (-1, 0, 1, 2) and source in (0, 1, 2)
            assert (modality == -1) == (wrong == -1)
            assert wrong != label
            counts["misleading"] += modality != -1
            counts["all"] += 1
            if source == 1:
                own = [labels[j] for j in range(t) if speakers[j] == speakers[t]]
                assert own and own[-1] == label
            elif source == 2:
                other = [labels[j] for j in range(t) if speakers[j] != speakers[t]]
                assert other and other[-1] == label
    assert counts["misleading"] / counts["all"] == pytest.approx(0.15, abs=0.025)


def test_iemocap_like_dialogues(corpora: dict[str, Corpus]) -> None:
    records = _records(corpora["iemocap-like"])
    lengths = np.array([len(r["labels"]) for r in records])
    assert lengths.min() >= 8 and lengths.max() <= 110
    assert lengths.mean() == pytest.approx(49.2, abs=5)
    assert lengths.std() > 12  # a spread of lengths, not one size
    assert all(len(set(r["speakers"])) == 2 for r in records)


def test_meld_like_dialogues(corpora: dict[str, Corpus]) -> None:
    records = _records(corpora["meld-like"])
    lengths = np.array([len(r["labels"]) for r in records])
    assert lengths.min() >= 1 and lengths.max() <= 33
    assert lengths.mean() == pytest.approx(9.57, abs=0.8)
    assert (lengths == 1).any()
    n_speakers = Counter(len(set(r["speakers"])) for r in records)
    assert set(n_speakers) <= set(range(1, 10))
    assert sum(n_speakers[k] for k in (2, 3, 4)) / len(records) > 0.7
    assert n_speakers[2] == max(n_speakers.values())
    assert sum(n_speakers[k] for k in range(5, 10)) > 0
    assert n_speakers[1] > 0


@pytest.mark.parametrize(("preset", "tolerance"), [("iemocap-like", 0.08), ("meld-like", 0.04)])
def test_class_frequencies_follow_the_prior(
    corpora: dict[str, Corpus], preset: str, tolerance: float
) -> None:
    labels = np.concatenate([r["labels"] for r in _records(corpora[preset])])
    n_classes = len(PRESETS[preset].class_names)
    observed = np.bincount(labels, minlength=n_classes) / labels.size
    prior = np.asarray(PRESETS[preset].class_prior)
    # Sticky emotions make classes arrive in runs, hence a loose total-variation tolerance.
    assert 0.5 * np.abs(observed - prior).sum() < tolerance
    assert observed.argmax() == prior.argmax()


# --- options and validation ------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "expected"), [(3, (1, 1, 1)), (20, (14, 2, 4)), (151, (108, 12, 31))])
def test_n_dialogues_keeps_proportions(n: int, expected: tuple[int, int, int]) -> None:
    corpus = generate_synthetic("iemocap-like", n_dialogues=n)
    assert tuple(len(corpus.splits[s]) for s in SPLITS) == expected


def test_overrides() -> None:
    corpus = generate_synthetic(
        "meld-like",
        n_dialogues=30,
        dims={"text": 16},
        mislead_rate=0.0,
        intra_rate=0.0,
        inter_rate=0.0,
        full_annotations=True,
    )
    assert corpus.feature_dims() == {"text": 16, "audio": 64, "visual": 64}
    for record in _records(corpus):
        assert set(record["misleading_modality"]) == {-1}
        assert set(record["label_source"]) == {0}
    assert "share 0 of utterances" in corpus.description


def test_load_dataset_builds_the_synthetic_corpus(tmp_path) -> None:
    from merc_hf.data import load_dataset

    dsd = load_dataset("synthetic", preset="meld-like", seed=2, n_dialogues=8, cache_dir=tmp_path)
    corpus = generate_synthetic("meld-like", seed=2, n_dialogues=8)
    assert {split: len(dsd[split]) for split in SPLITS} == {s: len(corpus.splits[s]) for s in SPLITS}
    assert dsd["train"].features["labels"].feature.names == MELD_NAMES
    first = dsd["train"][0]
    assert first["misleading_modality"] == corpus.splits["train"][0]["misleading_modality"]
    np.testing.assert_allclose(np.asarray(first["text"]), corpus.splits["train"][0]["text"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "cmu-mosei"}, r"valid presets: \['iemocap-like', 'meld-like'\]"),
        ({"n_dialogues": 2}, "n_dialogues"),
        ({"mislead_rate": 1.5}, r"mislead_rate must be a number in \[0, 1\]"),
        ({"intra_rate": -0.1}, "intra_rate"),
        ({"intra_rate": 0.7, "inter_rate": 0.5}, "at most 1"),
        ({"dims": {"text": 0}}, r"dims\['text'\]"),
        ({"dims": {"video": 8}}, "unknown modality"),
        ({"dims": 64}, "dims must be a dict"),
        ({"separation": {"audio": -1.0}}, "separation"),
        ({"noise": 0}, "noise"),
        ({"mislead": 0.2}, "unknown synthetic parameter"),
        ({"seed": -1}, "seed"),
        ({"length_mean": 200}, "length_mean"),
        ({"length_range": (1, 20), "length_mean": 5}, "speaker_count_weights"),
        ({"dims": {"audio": 8.5}}, r"dims\['audio'\]"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_synthetic(**kwargs)


# --- what calibration needs, shown with logistic regression ------------------------------------------


def _own_features(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Utterance-level ``[text | audio | visual]`` features, labels and misleading modality."""
    x = np.concatenate([np.concatenate([r[m] for m in MODALITIES], axis=1) for r in records])
    y = np.concatenate([r["labels"] for r in records])
    misleading = np.concatenate([r["misleading_modality"] for r in records])
    return x, y, misleading


def _with_context(records: list[dict[str, Any]], x: np.ndarray) -> np.ndarray:
    """Append the features of the nearest earlier and later utterance by the same speaker and by another
    speaker (zeros where there is none): the neighbours a dialogue-level MERC model sees."""
    neighbours: list[list[int]] = [[], [], [], []]
    offset = 0
    for record in records:
        speakers = record["speakers"]
        for t, speaker in enumerate(speakers):
            before, after = range(t - 1, -1, -1), range(t + 1, len(speakers))
            for k, (window, same) in enumerate(
                ((before, True), (before, False), (after, True), (after, False))
            ):
                hit = next((j for j in window if (speakers[j] == speaker) == same), None)
                neighbours[k].append(-1 if hit is None else offset + hit)
        offset += len(speakers)

    def gather(index: list[int]) -> np.ndarray:
        idx = np.asarray(index)
        return np.where(idx[:, None] >= 0, x[np.maximum(idx, 0)], 0.0)

    return np.hstack([x, *(gather(index) for index in neighbours)])


def _fit(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    # Strong L2: the context model has five times as many inputs as the data comfortably supports.
    return LogisticRegression(C=0.003, max_iter=500).fit(x, y)


@pytest.fixture(scope="module")
def probes(corpora: dict[str, Corpus]) -> dict[str, dict[str, Any]]:
    """Per preset: own-feature and context classifiers and their test results."""
    out = {}
    # One BLAS thread: multi-threaded BLAS is much slower on the small shared CI machines.
    with threadpool_limits(1):
        for preset, corpus in corpora.items():
            train, test = corpus.splits["train"], corpus.splits["test"]
            x_train, y_train, _ = _own_features(train)
            x_test, y_test, misleading = _own_features(test)
            own = _fit(x_train, y_train)
            context = _fit(_with_context(train, x_train), y_train)
            own_pred = own.predict(x_test)
            ctx_pred = context.predict(_with_context(test, x_test))
            out[preset] = {
                "own_model": own,
                "train_mean": x_train.mean(axis=0),
                "x_test": x_test,
                "y_test": y_test,
                "misleading": misleading,
                "majority": np.bincount(y_train).max() / y_train.size,
                "own_acc": float((own_pred == y_test).mean()),
                "own_f1": float(f1_score(y_test, own_pred, average="weighted")),
                "ctx_acc": float((ctx_pred == y_test).mean()),
                "ctx_f1": float(f1_score(y_test, ctx_pred, average="weighted")),
                "dims": corpus.feature_dims(),
            }
    return out


@pytest.mark.parametrize(("preset", "margin"), [("iemocap-like", 0.2), ("meld-like", 0.1)])
def test_own_features_beat_chance(probes: dict[str, dict[str, Any]], preset: str, margin: float) -> None:
    probe = probes[preset]
    assert probe["own_acc"] > probe["majority"] + margin
    assert probe["own_f1"] < 0.9  # ambiguous enough that calibration matters


@pytest.mark.parametrize(("preset", "margin"), [("iemocap-like", 0.06), ("meld-like", 0.02)])
def test_context_features_help(probes: dict[str, dict[str, Any]], preset: str, margin: float) -> None:
    probe = probes[preset]
    assert probe["ctx_acc"] > probe["own_acc"] + margin
    assert probe["ctx_f1"] > probe["own_f1"] + margin


def _gold_prob_rises(probe: dict[str, Any], modality: int) -> np.ndarray:
    """Does removing ``modality`` (its features set to the training mean) raise the gold probability?"""
    bounds = np.cumsum([0, *(probe["dims"][m] for m in MODALITIES)])
    columns = slice(bounds[modality], bounds[modality + 1])
    x, y, model = probe["x_test"], probe["y_test"], probe["own_model"]
    removed = x.copy()
    removed[:, columns] = probe["train_mean"][columns]
    rows = np.arange(y.size)
    with threadpool_limits(1):
        return model.predict_proba(removed)[rows, y] > model.predict_proba(x)[rows, y]


@pytest.mark.parametrize("preset", list(PRESETS))
def test_removing_a_misleading_modality_raises_gold_confidence(
    probes: dict[str, dict[str, Any]], preset: str
) -> None:
    probe = probes[preset]
    misleading = probe["misleading"]
    rises_misleading, rises_clean = [], []
    for modality in range(len(MODALITIES)):
        rises = _gold_prob_rises(probe, modality)
        rises_misleading.append(rises[misleading == modality])
        rises_clean.append(rises[misleading == -1])
        # Even the weakest modality shows the effect, in the right direction.
        assert rises[misleading == modality].mean() > rises[misleading == -1].mean() + 0.1
    share_misleading = np.concatenate(rises_misleading).mean()
    share_clean = np.concatenate(rises_clean).mean()
    assert share_misleading > 0.55
    assert share_clean < 0.4
