"""merc_hf: reliable multimodal emotion recognition in conversations, the Hugging Face way.

``import merc_hf`` registers every merc_hf architecture with ``AutoConfig`` / ``AutoModel`` (so
``AutoModel.from_pretrained("org/m3net-cmerc-iemocap")`` works) and the ``"conversational-emotion"``
pipeline with ``transformers``' pipeline registry (:func:`merc_hf.pipeline`), and does nothing else; the data
layer, metrics and training code are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .models import register_auto_classes
from .pipelines import pipeline, register_pipeline
from .version import __version__

register_auto_classes()
register_pipeline()

_LAZY = {
    "load_dataset": "merc_hf.data",
    "DialogueCollator": "merc_hf.data",
    "PairCollator": "merc_hf.data",
    "UtteranceCollator": "merc_hf.data",
    "DataFormatError": "merc_hf.data.errors",
    "metric_path": "merc_hf.evaluate_modules",
    "MercProcessor": "merc_hf.processing",
}

__all__ = ["__version__", "pipeline", "register_auto_classes", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'merc_hf' has no attribute {name!r}")
