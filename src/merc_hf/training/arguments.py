"""Training arguments: ``transformers.TrainingArguments`` plus what the reference recipes need."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class MercTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with one addition, read by :class:`~merc_hf.training.MercTrainer`.

    Args:
        coupled_weight_decay: train with ``torch.optim.Adam`` whose ``weight_decay`` is an L2 term added to
            the gradient of every parameter, as the M3Net and CMERC reference code
            (``torch.optim.Adam(model.parameters(), lr, weight_decay=l2)``), instead of transformers' AdamW
            (decay decoupled from the gradient, none on biases and norms). Hub configs that reproduce a
            reference recipe set it together with ``lr_scheduler_type="constant"``.
    """

    coupled_weight_decay: bool = field(
        default=False,
        metadata={"help": "Adam with L2 on every parameter (the M3Net/CMERC reference) instead of AdamW"},
    )
