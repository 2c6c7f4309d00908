"""Reliability diagrams. matplotlib is an optional extra: ``pip install merc_hf[plots]``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import calibration_errors, reliability_bins


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
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "plot_reliability_diagram needs matplotlib, an optional dependency: pip install 'merc_hf[plots]'"
        ) from err

    bins = reliability_bins(probs, references, n_bins, from_logits=from_logits)
    errors = calibration_errors(probs, references, n_bins, from_logits=from_logits)
    edges, count = bins["edges"], bins["count"]
    filled = count > 0
    left, width = edges[:-1][filled], np.diff(edges)[filled]
    accuracy, confidence = bins["accuracy"][filled], bins["confidence"][filled]
    share = count / count.sum()

    figure = Figure(figsize=(5.0, 6.0), dpi=120)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})

    top.bar(left, accuracy, width=width, align="edge", color="#4c72b0", edgecolor="black", label="Accuracy")
    over = confidence > accuracy
    for mask, color, label in (
        (over, "#d62728", "Gap (over-confident)"),
        (~over, "#ff7f0e", "Gap (under-confident)"),
    ):
        if mask.any():
            top.bar(
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
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="Perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("Accuracy")
    top.legend(loc="upper left", fontsize="small")
    heading = title if title is not None else "Reliability diagram"
    top.set_title(f"{heading}\nECE = {errors['ece']:.4f} ({100 * errors['ece']:.2f} %), {n_bins} bins")

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
