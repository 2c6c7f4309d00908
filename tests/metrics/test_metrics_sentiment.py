"""CH-SIMS / MOSI / MOSEI sentiment metrics: sklearn / scipy / explicit-loop cross-checks and
hand-worked interval ends, the two Has0 conventions, the MMSA/CMC Non0 bug, subsets and the report."""

from __future__ import annotations

import json
import math

import evaluate
import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score

import merc_hf
from merc_hf.metrics import (
    SENTIMENT_CLASS_NAMES,
    calibration_errors,
    consistency_mask,
    expected_sentiment,
    mosi_regression_scores,
    sentiment_classes,
    sentiment_classification_scores,
    sentiment_report,
    sentiment_report_table,
    sims_regression_scores,
)

SEEDS = range(4)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sims_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """Half continuous (some outside [-1, 1], to exercise the clipping), half on the 0.1 grid, so that
    the interval ends -0.7, -0.1, 0, 0.1, 0.7 occur often."""
    continuous = rng.uniform(-1.3, 1.3, n // 2)
    grid = np.round(rng.integers(-10, 11, n - n // 2) / 10, 1)
    return rng.permutation(np.concatenate([continuous, grid]))


def _mmsa_sims_class(value: float, ends: list[float]) -> int:
    """Explicit right-closed intervals as MMSA writes them: (-1.01, e_1], (e_1, e_2], ..., (e_k, 1.01]."""
    bounds = [-1.01, *ends, 1.01]
    for c in range(len(bounds) - 1):
        if bounds[c] < value <= bounds[c + 1]:
            return c
    raise AssertionError(value)


def _random_classifier(seed: int, n: int = 80):
    """Probabilities, regression references and their 3-class labels (with exact zeros)."""
    rng = np.random.default_rng(seed)
    regression = np.round(rng.uniform(-1, 1, n), 1)  # ~5 % exact zeros
    regression[rng.random(n) < 0.15] = 0.0
    labels = sentiment_classes(regression)
    logits = rng.normal(size=(n, 3)) * 1.5
    logits[np.arange(n), labels] += rng.uniform(0, 2, n)  # informative but imperfect
    return _softmax(logits), labels, regression


# ----------------------------------------------------------------------------------------------------
# sentiment_classes


def test_sentiment_classes_by_sign():
    values = [-0.8, -1e-9, -0.0, 0.0, 1e-9, 0.2, -3.0, 3.0]
    np.testing.assert_array_equal(sentiment_classes(values), [0, 0, 1, 1, 2, 2, 0, 2])
    assert sentiment_classes(np.float32([0.1])).dtype == np.int64
    assert SENTIMENT_CLASS_NAMES == ("negative", "neutral", "positive")
    with pytest.raises(ValueError, match=r"values contains NaN or infinite values \(first at sample 1"):
        sentiment_classes([0.1, float("nan")])
    with pytest.raises(ValueError, match="values must be a 1-D array"):
        sentiment_classes([[0.1, 0.2]])


# ----------------------------------------------------------------------------------------------------
# SIMS regression (MMSA conventions)


@pytest.mark.parametrize("seed", SEEDS)
def test_sims_regression_matches_sklearn_scipy_and_explicit_intervals(seed):
    rng = np.random.default_rng(seed)
    n = 120
    predictions, references = _sims_values(rng, n), _sims_values(rng, n)
    scores = sims_regression_scores(predictions, references)

    p, y = np.clip(predictions, -1, 1), np.clip(references, -1, 1)
    p2 = [_mmsa_sims_class(v, [0.0]) for v in p]
    y2 = [_mmsa_sims_class(v, [0.0]) for v in y]
    assert scores["acc_2"] == pytest.approx(accuracy_score(y2, p2), abs=1e-12)
    assert scores["f1_2"] == pytest.approx(f1_score(y2, p2, average="weighted"), abs=1e-12)
    for key, ends in (("acc_3", [-0.1, 0.1]), ("acc_5", [-0.7, -0.1, 0.1, 0.7])):
        expected = accuracy_score(
            [_mmsa_sims_class(v, ends) for v in y], [_mmsa_sims_class(v, ends) for v in p]
        )
        assert scores[key] == pytest.approx(expected, abs=1e-12), key
    assert scores["mae"] == pytest.approx(np.mean(np.abs(p - y)), abs=1e-12)
    assert scores["corr"] == pytest.approx(pearsonr(p, y).statistic, abs=1e-10)
    assert scores["n"] == n and "corr_nan_reason" not in scores


@pytest.mark.parametrize(
    ("prediction", "reference", "key", "same_class"),
    [
        # acc_2: [-1, 0] vs (0, 1]; 0 is non-positive
        (0.0, -0.5, "acc_2", True),
        (0.0, 0.01, "acc_2", False),
        # acc_3: [-1, -0.1], (-0.1, 0.1], (0.1, 1]
        (-0.1, -0.5, "acc_3", True),
        (-0.1, -0.05, "acc_3", False),
        (0.1, 0.0, "acc_3", True),
        (0.1, 0.15, "acc_3", False),
        (0.0, -0.1 + 1e-3, "acc_3", True),
        # acc_5: [-1, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1]
        (-0.7, -1.0, "acc_5", True),
        (-0.7, -0.5, "acc_5", False),
        (-0.1, -0.5, "acc_5", True),
        (-0.1, 0.0, "acc_5", False),
        (0.0, 0.1, "acc_5", True),
        (0.7, 0.5, "acc_5", True),
        (0.7, 0.8, "acc_5", False),
        (1.4, 0.8, "acc_5", True),  # clipped to 1
    ],
)
def test_sims_interval_ends(prediction, reference, key, same_class):
    scores = sims_regression_scores([prediction], [reference])
    assert scores[key] == (1.0 if same_class else 0.0)
    # float32 inputs land on the same side (float32(0.1) > 0.1 and float32(-0.7) > -0.7 in float64)
    scores32 = sims_regression_scores(np.float32([prediction]), np.float32([reference]))
    assert scores32[key] == scores[key]


def test_sims_hand_worked_example():
    # p: -0.7 -0.1 0.1 0.7 0.0 ; y: -0.8 -0.2 0.0 0.6 0.3
    # acc_2 classes p 0 0 1 1 0, y 0 0 0 1 1 → 3/5 ; acc_3 p 0 0 1 2 1, y 0 0 1 2 2 → 4/5
    # acc_5 p 0 1 2 3 2, y 0 1 2 3 3 → 4/5 ; mae (.1 + .1 + .1 + .1 + .3) / 5 = 0.14
    scores = sims_regression_scores([-0.7, -0.1, 0.1, 0.7, 0.0], [-0.8, -0.2, 0.0, 0.6, 0.3])
    assert scores["acc_2"] == pytest.approx(3 / 5)
    assert scores["acc_3"] == pytest.approx(4 / 5)
    assert scores["acc_5"] == pytest.approx(4 / 5)
    assert scores["mae"] == pytest.approx(0.14)
    # weighted F1 of the 2-class: class 0 (support 3): tp 2, pred 3 → 2/3; class 1 (support 2): tp 1, pred 2 → 1/2
    assert scores["f1_2"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 2) / 5)


def test_corr_nan_with_reason_instead_of_crash():
    scores = sims_regression_scores([0.2, 0.2, 0.2], [0.1, -0.3, 0.5])
    assert math.isnan(scores["corr"]) and "predictions are constant" in scores["corr_nan_reason"]
    scores = mosi_regression_scores([0.2, -1.0, 0.4], [1.0, 1.0, 1.0])
    assert math.isnan(scores["corr"]) and "references are constant" in scores["corr_nan_reason"]
    scores = sims_regression_scores([0.5], [0.5])
    assert math.isnan(scores["corr"]) and "at least 2 samples" in scores["corr_nan_reason"]
    # clipping can make a side constant: both predictions become 1.0
    scores = sims_regression_scores([1.5, 2.0], [0.1, 0.2])
    assert math.isnan(scores["corr"]) and "predictions" in scores["corr_nan_reason"]


# ----------------------------------------------------------------------------------------------------
# MOSI / MOSEI regression


@pytest.mark.parametrize("seed", SEEDS)
def test_mosi_regression_matches_sklearn_scipy_and_loops(seed):
    rng = np.random.default_rng(seed)
    n = 150
    # continuous values plus multiples of 0.5 (rounding ties) and exact zeros in the references
    predictions = np.concatenate([rng.uniform(-3.6, 3.6, n - 30), rng.integers(-7, 8, 30) / 2])
    references = np.round(rng.uniform(-3, 3, n) * 3) / 3
    references[rng.random(n) < 0.1] = 0.0
    references[:10] = rng.integers(-6, 7, 10) / 2
    scores = mosi_regression_scores(predictions, references)

    assert scores["has0_acc_2"] == pytest.approx(accuracy_score(references >= 0, predictions >= 0), abs=1e-12)
    assert scores["has0_f1"] == pytest.approx(
        f1_score(references >= 0, predictions >= 0, average="weighted"), abs=1e-12
    )
    keep = references != 0
    assert scores["non0_n"] == keep.sum()
    assert scores["non0_acc_2"] == pytest.approx(
        accuracy_score(references[keep] > 0, predictions[keep] > 0), abs=1e-12
    )
    assert scores["non0_f1"] == pytest.approx(
        f1_score(references[keep] > 0, predictions[keep] > 0, average="weighted"), abs=1e-12
    )
    for key, bound in (("acc_5", 2.0), ("acc_7", 3.0)):
        hits = 0
        for p, y in zip(predictions, references):
            # Python's round() rounds half to even, as np.round in MMSA
            hits += round(max(-bound, min(bound, p))) == round(max(-bound, min(bound, y)))
        assert scores[key] == pytest.approx(hits / n, abs=1e-12), key
    assert scores["mae"] == pytest.approx(np.mean(np.abs(predictions - references)), abs=1e-12)
    assert scores["corr"] == pytest.approx(pearsonr(predictions, references).statistic, abs=1e-10)


def test_mosi_hand_worked_example():
    # p: 0.5 1.5 -2.6 0.0 2.5 ; y: 0.0 2.0 -3.0 -0.4 2.4
    # has0 (>= 0): p T T F T T, y T T F F T → 4/5 (the prediction 0.0 counts as non-negative);
    # non0 drops y = 0 and uses > 0: p T F F T vs y T F F T → 4/4 (0.0 now counts as negative)
    # acc_5 (clip 2, round half-even): p 0 2 -2 0 2, y 0 2 -2 0 2 → 5/5
    # acc_7 (clip 3): p 0 2 -3 0 2, y 0 2 -3 0 2 → 5/5
    scores = mosi_regression_scores([0.5, 1.5, -2.6, 0.0, 2.5], [0.0, 2.0, -3.0, -0.4, 2.4])
    assert scores["has0_acc_2"] == pytest.approx(4 / 5)
    assert scores["non0_acc_2"] == 1.0 and scores["non0_n"] == 4
    assert scores["acc_5"] == 1.0 and scores["acc_7"] == 1.0
    assert scores["mae"] == pytest.approx((0.5 + 0.5 + 0.4 + 0.4 + 0.1) / 5)
    scores = mosi_regression_scores([0.5, -0.5, 2.5], [0.0, 0.0, 3.0])  # 2.5 rounds to 2, 3 → 3
    assert scores["acc_7"] == pytest.approx(2 / 3)


def test_mosi_all_zero_references_give_nan_non0_with_reason():
    scores = mosi_regression_scores([0.3, -0.2], [0.0, 0.0])
    assert math.isnan(scores["non0_acc_2"]) and math.isnan(scores["non0_f1"])
    assert scores["non0_n"] == 0 and "every reference is 0" in scores["non0_nan_reason"]


# ----------------------------------------------------------------------------------------------------
# Has0: SIMS vs MOSI


def test_has0_conventions_differ_exactly_on_neutral():
    # A neutral reference, predicted with p_positive > p_negative (argmax is neutral).
    probs = [[0.2, 0.5, 0.3]]
    sims = sentiment_classification_scores(probs, [1], "sims")
    mosi = sentiment_classification_scores(probs, [1], "mosi")
    assert sims["has0_acc_2"] == 0.0  # SIMS: neutral is non-positive, prediction "positive"
    assert mosi["has0_acc_2"] == 1.0  # MOSI: neutral is non-negative, prediction "non-negative"
    assert sims["acc_3"] == mosi["acc_3"] == 1.0
    # On polar references the two conventions agree.
    polar_probs = [[0.6, 0.1, 0.3], [0.1, 0.2, 0.7], [0.3, 0.2, 0.5]]
    a = sentiment_classification_scores(polar_probs, [0, 2, 0], "sims")
    b = sentiment_classification_scores(polar_probs, [0, 2, 0], "mosi")
    assert a == b
    # Regression: a reference of exactly 0 with a positive prediction.
    assert sims_regression_scores([0.3], [0.0])["acc_2"] == 0.0  # [-1, 0] vs (0, 1]
    assert mosi_regression_scores([0.3], [0.0])["has0_acc_2"] == 1.0  # >= 0 vs < 0


def test_binary_prediction_ignores_neutral_and_ties_go_negative():
    # argmax over [p_neg, p_pos] even when p_neutral dominates; a tie counts as (non-)negative.
    probs = [[0.30, 0.40, 0.30], [0.05, 0.9, 0.05], [0.4, 0.2, 0.4]]
    scores = sentiment_classification_scores(probs, [0, 0, 0], "sims")
    assert scores["has0_acc_2"] == 1.0 and scores["non0_acc_2"] == 1.0
    assert scores["acc_3"] == pytest.approx(1 / 3)  # only the last row's argmax (first max) is negative


# ----------------------------------------------------------------------------------------------------
# Non0: the MMSA / CMC bug is not reproduced


def test_non0_bug_is_not_reproduced():
    # A perfect classifier: each reference class gets probability 0.8.
    references = np.array([0, 2, 2, 1, 0, 2])
    probs = np.full((6, 3), 0.1)
    probs[np.arange(6), references] = 0.8

    # The MMSA/CMC computation, written out: drop neutral references, binarise the prediction over
    # [p_negative, p_positive] to {0, 1}, but compare it with the 3-class truth in {0, 2}.
    keep = references != 1
    buggy_prediction = np.argmax(probs[keep][:, [0, 2]], axis=1)  # {0, 1}
    buggy_truth = references[keep]  # {0, 2}
    buggy_acc = accuracy_score(buggy_truth, buggy_prediction)
    assert buggy_acc < 1.0
    assert buggy_acc == pytest.approx(2 / 5)  # only the 2 negatives count; positives never do

    ours = sentiment_classification_scores(probs, references)
    assert ours["non0_acc_2"] == 1.0 and ours["non0_f1"] == 1.0 and ours["non0_n"] == 5
    assert ours["acc_3"] == 1.0 and ours["has0_acc_2"] == 1.0


def test_non0_all_neutral_is_nan_with_reason():
    scores = sentiment_classification_scores([[0.2, 0.6, 0.2], [0.1, 0.8, 0.1]], [1, 1])
    assert math.isnan(scores["non0_acc_2"]) and scores["non0_n"] == 0
    assert "every reference is neutral" in scores["non0_nan_reason"]


# ----------------------------------------------------------------------------------------------------
# Classification scores against sklearn


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("convention", ["sims", "mosi"])
def test_classification_scores_match_sklearn(seed, convention):
    probs, labels, regression = _random_classifier(seed)
    if convention == "mosi":
        regression = regression * 3  # MOSI/MOSEI labels lie in [-3, 3]
    scores = sentiment_classification_scores(probs, labels, convention, regression_references=regression)

    argmax = probs.argmax(axis=1)
    assert scores["acc_3"] == pytest.approx(accuracy_score(labels, argmax), abs=1e-12)
    assert scores["f1_3"] == pytest.approx(f1_score(labels, argmax, average="weighted"), abs=1e-12)

    binary_prediction = [int(row[2] > row[0]) for row in probs]
    if convention == "sims":
        binary_truth = [int(c == 2) for c in labels]  # non-positive vs positive
    else:
        binary_truth = [int(c >= 1) for c in labels]  # negative vs non-negative
    assert scores["has0_acc_2"] == pytest.approx(accuracy_score(binary_truth, binary_prediction), abs=1e-12)
    assert scores["has0_f1"] == pytest.approx(
        f1_score(binary_truth, binary_prediction, average="weighted"), abs=1e-12
    )
    polar_truth = [int(c == 2) for c in labels if c != 1]
    polar_prediction = [b for b, c in zip(binary_prediction, labels) if c != 1]
    assert scores["non0_n"] == len(polar_truth)
    assert scores["non0_acc_2"] == pytest.approx(accuracy_score(polar_truth, polar_prediction), abs=1e-12)
    assert scores["non0_f1"] == pytest.approx(
        f1_score(polar_truth, polar_prediction, average="weighted"), abs=1e-12
    )

    # Regression block from the expected sentiment p_pos - p_neg (x3 for MOSI).
    scale = 1.0 if convention == "sims" else 3.0
    estimate = scale * (probs[:, 2] - probs[:, 0])
    np.testing.assert_allclose(expected_sentiment(probs, scale=scale), estimate)
    clipped = np.clip(estimate, -1, 1) if convention == "sims" else estimate  # MOSI MAE: unclipped
    assert scores["mae"] == pytest.approx(np.mean(np.abs(clipped - regression)), abs=1e-12)
    assert scores["corr"] == pytest.approx(pearsonr(estimate, regression).statistic, abs=1e-10)
    regression_scores = (sims_regression_scores if convention == "sims" else mosi_regression_scores)(
        estimate, regression
    )
    assert scores["acc_5"] == regression_scores["acc_5"]
    assert ("acc_7" in scores) == (convention == "mosi")
    if convention == "sims":
        expected_acc5 = np.mean(
            [
                _mmsa_sims_class(e, [-0.7, -0.1, 0.1, 0.7]) == _mmsa_sims_class(r, [-0.7, -0.1, 0.1, 0.7])
                for e, r in zip(estimate, regression)
            ]
        )
        assert scores["acc_5"] == pytest.approx(expected_acc5, abs=1e-12)


def test_without_regression_references_no_regression_keys():
    probs, labels, _ = _random_classifier(0, n=20)
    scores = sentiment_classification_scores(probs, labels)
    assert not {"mae", "corr", "acc_5", "acc_7"} & set(scores)
    assert scores["n"] == 20


def test_logits_and_aliases():
    probs, labels, regression = _random_classifier(1, n=30)
    logits = np.log(probs) + 3.0
    from_probs = sentiment_classification_scores(probs, labels, "mosi", regression)
    from_logits = sentiment_classification_scores(logits, labels, "MOSEI", regression, from_logits=True)
    assert from_logits == pytest.approx(from_probs, abs=1e-12)
    assert sentiment_classification_scores(probs, labels, "sims-v2") == sentiment_classification_scores(
        probs, labels, "sims"
    )


# ----------------------------------------------------------------------------------------------------
# Input checks


def test_input_errors_are_clear():
    good = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
    with pytest.raises(ValueError, match=r"probs must have 3 columns \(negative, neutral, positive\)"):
        sentiment_classification_scores([[0.5, 0.5]], [0])
    with pytest.raises(ValueError, match="rows must sum to 1"):
        sentiment_classification_scores([[0.2, 0.3, 0.6]], [0])
    with pytest.raises(ValueError, match="probs contains NaN"):
        sentiment_classification_scores([[float("nan"), 0.5, 0.5]], [0])
    with pytest.raises(ValueError, match=r"references contains label 3, outside the valid range \[0, 2\]"):
        sentiment_classification_scores(good, [0, 3])
    with pytest.raises(ValueError, match="references has 1 entries but 2 were expected"):
        sentiment_classification_scores(good, [0])
    with pytest.raises(ValueError, match="convention must be 'sims'"):
        sentiment_classification_scores(good, [2, 0], "iemocap")
    with pytest.raises(ValueError, match=r"regression_references contains NaN .*sample 1"):
        sentiment_classification_scores(good, [2, 0], regression_references=[0.5, float("nan")])
    with pytest.raises(ValueError, match=r"disagree at sample 1: regression label 0.4 has sign class 2"):
        sentiment_classification_scores(good, [2, 0], regression_references=[0.5, 0.4])
    with pytest.raises(ValueError, match="predictions must hold real sentiment values"):
        sims_regression_scores([True, False], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"references has 3 entries but 2 were expected"):
        mosi_regression_scores([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="predictions is empty"):
        sims_regression_scores([], [])
    with pytest.raises(ValueError, match="scale must be a positive number"):
        expected_sentiment(good, scale=0.0)


# ----------------------------------------------------------------------------------------------------
# Consistency subsets


def test_consistency_mask_rule():
    labels = [2, 0, 1, 2, 0]
    unimodal = [
        [2, 2, 2],  # all agree → consistent
        [0, 1, 0],  # audio disagrees → inconsistent
        [-100, 1, -100],  # only audio available, agrees → consistent
        [-100, -100, 0],  # only visual available, disagrees → inconsistent
        [0, -100, 0],
    ]
    np.testing.assert_array_equal(consistency_mask(labels, unimodal), [True, False, True, False, True])
    np.testing.assert_array_equal(consistency_mask(labels, np.asarray(unimodal, dtype=np.float32)).sum(), 3)


def test_consistency_mask_errors():
    with pytest.raises(ValueError, match=r"2 sample\(s\) have no unimodal label at all .*samples 1, 2"):
        consistency_mask([0, 1, 2], [[0, 0, 0], [-100, -100, -100], [-100, -100, -100]])
    with pytest.raises(
        ValueError, match=r"unimodal_labels\[1, 2\] = 3: unimodal labels must be 0, 1, 2 or -100"
    ):
        consistency_mask([0, 1], [[0, 0, 0], [1, 1, 3]])
    with pytest.raises(ValueError, match=r"unimodal_labels must have shape \(N, M\) = \(2, 3\)"):
        consistency_mask([0, 1], [[0, 0, 0]])
    with pytest.raises(ValueError, match="labels contains label -1"):
        consistency_mask([0, -1], [[0, 0, 0], [1, 1, 1]])


# ----------------------------------------------------------------------------------------------------
# Report


def test_sentiment_report_blocks_and_subsets():
    probs, labels, regression = _random_classifier(2, n=60)
    rng = np.random.default_rng(5)
    unimodal = np.where(rng.random((60, 3)) < 0.7, labels[:, None], rng.integers(0, 3, (60, 3)))
    unimodal[rng.random((60, 3)) < 0.2] = -100
    unimodal[:, 0] = np.where((unimodal == -100).all(axis=1), labels, unimodal[:, 0])

    report = sentiment_report(
        probs, labels, regression_references=regression, unimodal_labels=unimodal, n_bins=10
    )
    json.dumps(report, allow_nan=False)
    assert report["convention"] == "sims" and report["n_samples"] == 60 and report["n_bins"] == 10
    assert report["classification"] == pytest.approx(
        sentiment_classification_scores(probs, labels, "sims", regression)
    )
    assert report["calibration"] == pytest.approx(calibration_errors(probs, labels, n_bins=10))

    mask = consistency_mask(labels, unimodal)
    assert 0 < mask.sum() < 60
    for name, selected in (("consistent", mask), ("inconsistent", ~mask)):
        subset = report["subsets"][name]
        y, argmax = labels[selected], probs[selected].argmax(axis=1)
        assert subset["n"] == selected.sum()
        assert subset["acc_3"] == pytest.approx(accuracy_score(y, argmax), abs=1e-12)
        assert subset["f1_3"] == pytest.approx(f1_score(y, argmax, average="weighted"), abs=1e-12)
        has0_truth = y == 2
        has0_prediction = probs[selected, 2] > probs[selected, 0]
        assert subset["has0_acc_2"] == pytest.approx(accuracy_score(has0_truth, has0_prediction), abs=1e-12)
    assert "merc_hf's rule" in report["subset_rule"]

    table = sentiment_report_table(report)
    assert table.startswith("| metric | value |\n|---|---|")
    assert f"| Acc-3 | {report['classification']['acc_3'] * 100:.2f}% |" in table
    assert "Has0-Acc-2 (non-positive vs positive)" in table and "MAE (expected sentiment)" in table
    assert f"consistent subset (n = {int(mask.sum())})" in table


def test_report_empty_subset_and_nan_become_none():
    probs = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
    report = sentiment_report(
        probs,
        [0, 1],
        regression_references=[-0.4, 0.0],
        unimodal_labels=[[0, 0, -100], [1, 1, 1]],
        convention="mosi",
    )
    json.dumps(report, allow_nan=False)
    assert report["subsets"]["inconsistent"]["n"] == 0
    assert report["subsets"]["inconsistent"]["acc_3"] is None
    assert report["subsets"]["consistent"]["acc_3"] == 1.0
    assert report["subsets"]["consistent"]["n"] == 2
    table = sentiment_report_table(report)
    assert "Has0-Acc-2 (negative vs non-negative)" in table and "Acc-7 (expected sentiment)" in table
    assert "| Acc-3, inconsistent subset (n = 0) | n/a |" in table
    # a report without unimodal labels has no subsets; MOSI (no unimodal labels) must not pass them
    assert "subsets" not in sentiment_report(probs, [0, 1])
    with pytest.raises(ValueError, match="no unimodal label at all"):
        sentiment_report(probs, [0, 1], unimodal_labels=np.full((2, 3), -100))


def test_report_corr_nan_is_none_with_reason():
    probs = [[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]
    report = sentiment_report(probs, [0, 2], regression_references=[-0.5, -0.5 + 1.0])
    assert report["classification"]["corr"] == pytest.approx(1.0)
    report = sentiment_report([[0.2, 0.6, 0.2], [0.2, 0.6, 0.2]], [0, 2], regression_references=[-0.5, 0.5])
    assert report["classification"]["corr"] is None
    assert "predictions are constant" in report["classification"]["corr_nan_reason"]


# ----------------------------------------------------------------------------------------------------
# evaluate module


@pytest.fixture(scope="module")
def sentiment_module():
    return evaluate.load(merc_hf.metric_path("sentiment"), keep_in_memory=True)


def test_evaluate_module_equals_pure_function(sentiment_module):
    probs, labels, regression = _random_classifier(3, n=50)
    assert sentiment_module.description and "@" in sentiment_module.citation
    result = sentiment_module.compute(predictions=probs, references=labels)
    assert result == pytest.approx(sentiment_classification_scores(probs, labels), abs=1e-12)
    for start in range(0, 50, 20):
        sentiment_module.add_batch(
            predictions=probs[start : start + 20], references=labels[start : start + 20]
        )
    result = sentiment_module.compute(convention="mosi", regression_references=regression)
    expected = sentiment_classification_scores(probs, labels, "mosi", regression)
    assert result == pytest.approx(expected, abs=1e-12) and "acc_7" in result
    logits = np.log(probs).tolist()
    result = sentiment_module.compute(predictions=logits, references=labels.tolist(), from_logits=True)
    assert result == pytest.approx(sentiment_classification_scores(probs, labels), abs=1e-12)
