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


__all__ = ["available_metrics", "metric_path"]
