"""Training: the ``MercTrainer`` (a ``transformers.Trainer`` subclass) and the curriculum sampler."""

from .curriculum import CurriculumSampler
from .trainer import MercTrainer, emotion_metrics

__all__ = ["CurriculumSampler", "MercTrainer", "emotion_metrics"]
