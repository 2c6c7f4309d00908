"""Reliability diagrams. matplotlib is an optional extra: ``pip install merc_hf[plots]``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import calibration_errors, reliability_bins


def _figure_classes():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "reliability diagrams need matplotlib, an optional dependency: pip install 'merc_hf[plots]'"
        ) from err
    return Figure, FigureCanvasAgg


def _draw_reliability(axis, bins: Any, title: str) -> None:
    """Accuracy bars per confidence bin, the gap to the mean confidence shaded, and the diagonal."""
    edges, count = np.asarray(bins["edges"], float), np.asarray(bins["count"], float)
    filled = count > 0
    left, width = edges[:-1][filled], np.diff(edges)[filled]
    accuracy = np.asarray(bins["accuracy"], float)[filled]
    confidence = np.asarray(bins["confidence"], float)[filled]
    axis.bar(left, accuracy, width=width, align="edge", color="#4c72b0", edgecolor="black", label="Accuracy")
    over = confidence > accuracy
    for mask, color, label in (
        (over, "#d62728", "Gap (over-confident)"),
        (~over, "#ff7f0e", "Gap (under-confident)"),
    ):
        if mask.any():
            axis.bar(
                left[mask],
                (confidence - accuracy)[mask],
                bottom=accuracy[mask],
                width=width[mask],
                align="edge",
                color=color,
                alpha=0.45,
                edgecolor=color,
                hatch="//",
                label=label,
            )
    axis.plot([0, 1], [0, 1], linestyle="--", color="gray", label="Perfect calibration")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_ylabel("Accuracy")
    axis.legend(loc="upper left", fontsize="small")
    axis.set_title(title)


def plot_reliability_diagram(
    probs: Any,
    references: Any,
    path: str | os.PathLike,
    n_bins: int = 15,
    title: str | None = None,
    *,
    from_logits: bool = False,
) -> Path:
    """Write a PNG reliability diagram of the top-label confidence (Guo et al. 2017, Fig. 1 style).

    Top panel: per-bin accuracy as bars against the diagonal of perfect calibration, with the gap
    between accuracy and mean confidence shaded (red: over-confident bins, where confidence > accuracy;
    orange: under-confident ones). Bottom panel: the share of samples per confidence bin, with dashed
    lines at the overall accuracy and mean confidence. The title shows the ECE of
    :func:`~merc_hf.metrics.calibration_errors` (same ``(lo, hi]`` equal-width bins).

    Rendering uses matplotlib's Agg canvas directly, so no GUI backend is needed and the global
    ``pyplot`` state is left untouched. Returns the path written.
    """
    Figure, FigureCanvasAgg = _figure_classes()
    bins = reliability_bins(probs, references, n_bins, from_logits=from_logits)
    errors = calibration_errors(probs, references, n_bins, from_logits=from_logits)
    edges, count = bins["edges"], bins["count"]
    share = count / count.sum()

    figure = Figure(figsize=(5.0, 6.0), dpi=120)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    heading = title if title is not None else "Reliability diagram"
    _draw_reliability(
        top, bins, f"{heading}\nECE = {errors['ece']:.4f} ({100 * errors['ece']:.2f} %), {n_bins} bins"
    )

    bottom.bar(edges[:-1], share, width=np.diff(edges), align="edge", color="#8c8c8c", edgecolor="black")
    overall_accuracy = float(np.nansum(bins["accuracy"] * count) / count.sum())
    overall_confidence = float(np.nansum(bins["confidence"] * count) / count.sum())
    bottom.axvline(
        overall_accuracy, color="#4c72b0", linestyle="--", label=f"Accuracy {overall_accuracy:.3f}"
    )
    bottom.axvline(
        overall_confidence, color="#d62728", linestyle="--", label=f"Avg. confidence {overall_confidence:.3f}"
    )
    bottom.set_xlabel("Confidence (max softmax probability)")
    bottom.set_ylabel("Share of samples")
    bottom.legend(loc="best", fontsize="small")

    figure.tight_layout()
    out = Path(path)
    figure.savefig(out, format="png")
    return out


def plot_reliability_grid(
    panels: dict[str, Any], path: str | os.PathLike, title: str | None = None, columns: int = 4
) -> Path:
    """Write one PNG with a reliability diagram per entry of ``panels`` (side by side, ``columns`` per
    row), e.g. one per calibration method.

    ``panels[name]`` is the ``calibration`` section of a :func:`~merc_hf.metrics.reliability_report`
    (its ``bins`` and ``ece`` are used), so diagrams can be drawn from saved ``metrics.json`` files.
    """
    if not panels:
        raise ValueError("panels is empty: nothing to plot")
    Figure, FigureCanvasAgg = _figure_classes()
    n_rows = -(-len(panels) // columns)
    n_cols = min(columns, len(panels))
    figure = Figure(figsize=(4.0 * n_cols, 4.0 * n_rows), dpi=110)
    FigureCanvasAgg(figure)
    axes = np.atleast_1d(figure.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for axis, (name, calibration) in zip(axes, panels.items()):
        _draw_reliability(axis, calibration["bins"], f"{name}: ECE {100 * calibration['ece']:.2f} %")
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    out = Path(path)
    figure.savefig(out, format="png")
    return out
