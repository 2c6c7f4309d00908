"""Training: the ``MercTrainer`` (a ``transformers.Trainer`` subclass), its arguments and the curriculum
sampler."""

from .arguments import MercTrainingArguments
from .curriculum import CurriculumSampler, load_difficulties, training_difficulties
from .trainer import MercTrainer, dialogue_difficulties, emotion_metrics

__all__ = [
    "CurriculumSampler",
    "MercTrainer",
    "MercTrainingArguments",
    "dialogue_difficulties",
    "emotion_metrics",
    "load_difficulties",
    "training_difficulties",
]
