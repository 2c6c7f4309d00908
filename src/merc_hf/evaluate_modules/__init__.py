"""Local ``evaluate`` metric modules: thin wrappers over :mod:`merc_hf.metrics`.

Each module lives in ``<name>/<name>.py`` next to this file and loads offline, from a checkout or an
installed wheel::

    import evaluate, merc_hf
    ece = evaluate.load(merc_hf.metric_path("ece"), keep_in_memory=True)
    ece.compute(predictions=probs, references=labels)

The math stays in :mod:`merc_hf.metrics` (unit-tested directly); evaluate 0.4.6 is in maintenance mode,
so only these wrappers depend on it.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def available_metrics() -> list[str]:
    """Names of the bundled metric modules (directories ``<name>/`` holding ``<name>.py``)."""
    return sorted(d.name for d in _HERE.iterdir() if d.is_dir() and (d / f"{d.name}.py").is_file())


def metric_path(name: str) -> str:
    """Path of a bundled metric module, for ``evaluate.load(metric_path(name))``.

    Raises ``ValueError`` listing the available names when ``name`` is unknown.
    """
    available = available_metrics()
    if name not in available:
        raise ValueError(f"unknown merc_hf metric {name!r}; available metrics: {', '.join(available)}")
    return str(_HERE / name)


def probability_metric_info(
    description: str, citation: str, inputs_description: str, reference_urls: list[str]
):
    """``evaluate.MetricInfo`` of a metric over per-utterance class probabilities: ``predictions`` are
    ``(N, K)`` probability rows and ``references`` the ``(N,)`` gold class ids."""
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        description=description,
        citation=citation,
        inputs_description=inputs_description,
        features=datasets.Features(
            {"predictions": datasets.List(datasets.Value("float64")), "references": datasets.Value("int64")}
        ),
        reference_urls=reference_urls,
    )


__all__ = ["available_metrics", "metric_path", "probability_metric_info"]
