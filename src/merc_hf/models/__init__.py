"""merc_hf architectures and their registration with the transformers Auto classes.

Each architecture lives in its own folder ``models/<name>/`` with ``configuration_<name>.py`` and
``modeling_<name>.py``. To add one, append ``(module path, config class, model class)`` to
:data:`ARCHITECTURES`; :func:`register_auto_classes` (run on ``import merc_hf``) does the rest.
"""

from __future__ import annotations

import importlib

# (package-relative module prefix, config class name, model class name)
ARCHITECTURES: list[tuple[str, str, str]] = [
    ("m3net", "M3NetConfig", "M3NetModel"),
    ("mmgcn", "MMGCNConfig", "MMGCNModel"),
    ("dialoguegcn", "DialogueGCNConfig", "DialogueGCNModel"),
    ("mmdfn", "MMDFNConfig", "MMDFNModel"),
    ("dialoguernn", "DialogueRNNConfig", "DialogueRNNModel"),
    ("pair_scorer", "PairScorerConfig", "PairScorerModel"),
    ("ensemble", "MercEnsembleConfig", "MercEnsembleModel"),
    ("sure", "SUREConfig", "SUREModel"),
    ("cmc", "CMCConfig", "CMCModel"),
]


def register_auto_classes() -> None:
    """Register every merc_hf config/model with ``AutoConfig`` and ``AutoModel``. Safe to call more than once.

    Only ``AutoModel``: the models output one row of logits per utterance of a conversation (or pair scores,
    or per-clip predictions with gates), which no task-specific Auto class describes — not
    ``AutoModelForSequenceClassification`` (one row per input sequence), nor token classification (tokens).
    """
    if not ARCHITECTURES:
        return
    from transformers import AutoConfig, AutoModel

    for name, config_name, model_name in ARCHITECTURES:
        config_cls = getattr(importlib.import_module(f"{__name__}.{name}.configuration_{name}"), config_name)
        model_cls = getattr(importlib.import_module(f"{__name__}.{name}.modeling_{name}"), model_name)
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        AutoModel.register(config_cls, model_cls, exist_ok=True)
