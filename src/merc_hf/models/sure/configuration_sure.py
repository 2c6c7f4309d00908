"""Configuration of SURE (uncertainty-aware mixture of experts, iterative reasoning and transformer gate on the
SDT backbone; ICASSP 2026)."""

from __future__ import annotations

import math

from ..base import MercConfig, validate_temperature


class SUREConfig(MercConfig):
    """Configuration of :class:`~merc_hf.models.sure.SUREModel`.

    Defaults are SURE's IEMOCAP setting (``swaggy66/SURE: run.sh`` and ``train.py`` defaults: hidden 1024,
    8 heads, dropout 0.5, distillation temperature 1; the SDT IEMOCAP setting ``butterfliesss/SDT:
    exec_iemocap.sh`` is the same): RoBERTa text 1024-d, IS10 audio 1582-d, DenseNet visual 342-d,
    2 speakers, 6 classes, trained with class-weighted CE (weights 1 / train class frequency,
    :func:`~merc_hf.models.base.inverse_frequency_class_weights`). SDT's MELD setting (``exec_meld.sh``):
    ``audio_dim=300, n_speakers=9``, the MELD label map, ``distillation_temperature=8``,
    ``learn_unimodal_gates=False`` (SDT freezes the unimodal gate weights to the identity for MELD), no class
    weights. The mixture-of-experts and iteration defaults (4 experts, top-3 routing, 2 iterations) are those of the
    public SURE code; everything the paper alone specifies is a documented choice (module docstring of
    :mod:`~merc_hf.models.sure.modeling_sure`).

    Memory: with the defaults (three modalities) the model has about 149 M parameters (≈ 0.60 GB in
    float32; training with Adam holds about four times that for weights, gradients and moments, plus
    activations). Most of it is the three iterative-reasoning blocks (≈ 61 M: LSTM query cell, BiGRU and
    output layer at H = 1024) and the 9 transformer encoders (≈ 57 M); the experts take ≈ 8 M.

    Args:
        hidden_size: H, size of every modality's utterance vectors (projections, experts' outputs, attention).
        num_heads: attention heads of each transformer encoder (``hidden_size`` must be divisible by it).
        ffn_size: inner size of each encoder's feed-forward block; ``None`` gives ``hidden_size``.
        num_experts: E, experts in each modality's uncertainty-aware mixture of experts.
        num_selected_experts: k, experts each utterance is routed to (``1 ≤ k ≤ E``).
        expert_latent_size: size of each expert's Gaussian latent.
        uncertainty_penalty: β ≥ 0, how strongly the router penalises an expert's predicted variance
            (``s_e = router_e(x) − β · mean_d σ²_e``); 0 gives a plain softmax router.
        n_iterations: iterations of the LSTM query of the iterative-reasoning block (≥ 1).
        learn_unimodal_gates: learned unimodal gates ``σ(W x) ⊙ x``; ``False`` fixes ``W`` to the identity
            (``σ(x) ⊙ x``), SDT's MELD setting.
        distillation_temperature: temperature of the self-distillation KL (SDT: 1 for IEMOCAP, 8 for MELD).
        kl_weight, balance_weight, distillation_weight: λ's of the auxiliary training losses (experts' KL to
            N(0, I), load balancing, self-distillation), all ≥ 0; 0 switches a term off.
        **kwargs: the shared fields of :class:`~merc_hf.models.base.MercConfig` (modality dims,
            ``n_speakers``, ``dropout``, ``class_weights``, ``loss_type``, ``focal_gamma``,
            ``modality_removal``) and of ``PretrainedConfig`` (``id2label``, ``label2id``, ...).
    """

    model_type = "merc_sure"

    def __init__(
        self,
        hidden_size: int = 1024,
        num_heads: int = 8,
        ffn_size: int | None = None,
        num_experts: int = 4,
        num_selected_experts: int = 3,
        expert_latent_size: int = 256,
        uncertainty_penalty: float = 1.0,
        n_iterations: int = 2,
        learn_unimodal_gates: bool = True,
        distillation_temperature: float = 1.0,
        kl_weight: float = 1.0,
        balance_weight: float = 1.0,
        distillation_weight: float = 1.0,
        **kwargs,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.ffn_size = hidden_size if ffn_size is None else ffn_size
        self.num_experts = num_experts
        self.num_selected_experts = num_selected_experts
        self.expert_latent_size = expert_latent_size
        self.uncertainty_penalty = uncertainty_penalty
        self.n_iterations = n_iterations
        self.learn_unimodal_gates = learn_unimodal_gates
        self.distillation_temperature = distillation_temperature
        self.kl_weight = kl_weight
        self.balance_weight = balance_weight
        self.distillation_weight = distillation_weight
        super().__init__(**kwargs)
        self._validate_sure()

    def _validate_sure(self) -> None:
        for name in (
            "hidden_size",
            "num_heads",
            "ffn_size",
            "num_experts",
            "expert_latent_size",
            "n_iterations",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.hidden_size % 2:
            raise ValueError(
                f"hidden_size must be even (bidirectional GRU halves, sinusoidal positions), got {self.hidden_size}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        if (
            not isinstance(self.num_selected_experts, int)
            or isinstance(self.num_selected_experts, bool)
            or not 1 <= self.num_selected_experts <= self.num_experts
        ):
            raise ValueError(
                f"num_selected_experts must be an int in [1, num_experts={self.num_experts}], got {self.num_selected_experts!r}"
            )
        if not isinstance(self.learn_unimodal_gates, bool):
            raise ValueError(f"learn_unimodal_gates must be a bool, got {self.learn_unimodal_gates!r}")
        self.distillation_temperature = validate_temperature(
            self.distillation_temperature, "distillation_temperature"
        )
        for name in ("uncertainty_penalty", "kl_weight", "balance_weight", "distillation_weight"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            setattr(self, name, float(value))
