"""reliability_report (JSON-serialisable) and the reliability-diagram PNG."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from merc_hf.metrics import (
    calibration_errors,
    cel,
    classification_scores,
    failure_prediction,
    plot_reliability_diagram,
    reliability_report,
    uncertain_sample_rates,
)

NAMES = ["hap", "sad", "neu", "ang", "exc", "fru"]


def test_report_contains_every_metric(make_random_probs):
    probs, labels = make_random_probs(0, n=300, k=6)
    report = reliability_report(probs, labels, NAMES, n_bins=10)
    json.dumps(report, allow_nan=False)
    assert report["n_samples"] == 300 and report["n_classes"] == 6 and report["label_names"] == NAMES
    expected = classification_scores(probs.argmax(1), labels, NAMES)
    assert report["classification"]["per_class_f1"] == pytest.approx(expected.pop("per_class_f1"))
    assert {key: report["classification"][key] for key in expected} == pytest.approx(expected)
    calibration = report["calibration"]
    for key, value in calibration_errors(probs, labels, n_bins=10).items():
        assert calibration[key] == pytest.approx(value)
    assert calibration["n_bins"] == 10 and len(calibration["bins"]["edges"]) == 11
    assert sum(calibration["bins"]["count"]) == 300
    assert report["failure_prediction"] == pytest.approx(failure_prediction(probs, labels))
    assert "cmerc" not in report


def test_report_with_masked_probs(make_random_probs):
    probs, labels = make_random_probs(1, n=200, k=6)
    masked = {key: make_random_probs(seed, n=200, k=6)[0] for seed, key in enumerate("AVTXO", start=10)}
    report = reliability_report(probs, labels, NAMES, masked_probs=masked)
    json.dumps(report, allow_nan=False)
    section = report["cmerc"]
    assert section["cel"] == pytest.approx(cel(probs, masked, labels))
    assert section["cel"] == pytest.approx(sum(section["confidence_boost_sum"].values()))
    assert section["confidence_boost_mean"]["A"] == pytest.approx(section["confidence_boost_sum"]["A"] / 200)
    assert section["uncertain_sample_rates"] == pytest.approx(uncertain_sample_rates(probs, masked, labels))


def test_report_undefined_values_become_none(make_binary_probs):
    probs, labels = make_binary_probs([0.9, 0.8, 0.95], [1, 1, 1])  # all correct: AUROC undefined
    report = reliability_report(probs, labels, ["pos", "neg"], n_bins=4)
    text = json.dumps(report, allow_nan=False)
    assert report["failure_prediction"]["auroc"] is None
    assert report["classification"]["per_class_f1"]["neg"] is None  # class absent everywhere
    assert report["calibration"]["bins"]["accuracy"][0] is None  # empty bin
    assert json.loads(text) == report


def test_report_from_logits(make_random_probs):
    probs, labels = make_random_probs(2, n=100, k=6)
    logits = np.log(probs) + 2.0
    from_logits = reliability_report(logits, labels, NAMES, from_logits=True)
    assert from_logits["calibration"]["ece"] == pytest.approx(
        reliability_report(probs, labels, NAMES)["calibration"]["ece"]
    )


def test_reliability_diagram_png(tmp_path, make_random_probs):
    probs, labels = make_random_probs(3, n=400, k=6, temperature=3.0)
    path = plot_reliability_diagram(
        probs, labels, tmp_path / "reliability.png", n_bins=10, title="M3Net on IEMOCAP"
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_reliability_diagram_without_matplotlib(tmp_path, monkeypatch, make_random_probs):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    probs, labels = make_random_probs(4, n=20)
    with pytest.raises(
        ImportError, match=r"need matplotlib, an optional dependency: pip install 'merc_hf\[plots\]'"
    ):
        plot_reliability_diagram(probs, labels, tmp_path / "x.png")


def test_reliability_grid_from_saved_reports(tmp_path):
    """One PNG with a panel per method, drawn from the JSON-round-tripped calibration sections."""
    import json

    from merc_hf.metrics import plot_reliability_grid, reliability_report

    rng = np.random.default_rng(0)
    panels = {}
    for name in ("none", "cmerc", "ensemble"):
        probs = rng.dirichlet(np.ones(4), size=200)
        refs = rng.integers(0, 4, size=200)
        report = json.loads(json.dumps(reliability_report(probs, refs, list("abcd"))))
        panels[name] = report["calibration"]
    path = plot_reliability_grid(panels, tmp_path / "grid.png", title="test", columns=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="empty"):
        plot_reliability_grid({}, tmp_path / "none.png")
