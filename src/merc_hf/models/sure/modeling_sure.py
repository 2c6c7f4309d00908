"""SURE: uncertainty-aware mixture of experts, iterative reasoning and a transformer gate on the SDT backbone.

SURE (ICASSP 2026 per ``swaggy66/SURE: README``) extends SDT (Ma et al., "A Transformer-Based Model With
Self-Distillation for Multimodal Emotion Recognition in Conversations", IEEE TMM 2024; ``butterfliesss/SDT:
model.py (L208–346)``). The public SURE code cannot run as published (undefined ``ExpertVAE`` and
``masked_probs``, mismatched signatures and imports, a classifier applied to the wrong width) and the paper is
not available here, so this is an independent re-implementation of the structure that the code shows
(per-modality ``DialogueMoE`` with 4 VAE experts, a top-3 router and a load-balancing loss; ``IterModule``:
a Set2Set-style LSTM query over 2 iterations plus a BiGRU "LightweightContext"; SDT's transformers and gates;
a classifier), with the uncertainty-aware parts chosen as listed under "Choices".

Architecture (per utterance ``i`` of a dialogue; ``M`` configured modalities ``m``, H = ``hidden_size``,
E experts, k = ``num_selected_experts``, L = ``expert_latent_size``, ``S_i = {j : context_mask[i, j]}``):

1. Projection (SDT's Conv1d, kernel 1, no bias): ``x_{m,i} = W_m a_{m,i}`` (H).
2. Uncertainty-aware mixture of experts, one per modality (:class:`SUREMixtureOfExperts`). Expert ``e``::

       h_e = GELU(W^h_e x + b^h_e),  μ_e = W^μ_e h_e + b^μ_e,  log σ²_e = W^σ_e h_e + b^σ_e       (L)
       z_e = μ_e + σ_e ⊙ ε,  ε ~ N(0, I)   in training;   z_e = μ_e   in eval (deterministic)
       o_e = W^o_e z_e + b^o_e                                                                  (H)

   Router: ``s_e = (W_r x + b_r)_e − β · ū_e`` with ``ū_e = mean_d σ²_{e,d}`` (the expert's predicted
   variance, detached) and β = ``uncertainty_penalty``; ``p = softmax(s)``; ``K`` = the k experts of largest
   ``s`` (equivalently of largest ``p``); ``w_e = p_e 1[e ∈ K] / Σ_{e' ∈ K} p_{e'}``.
   Output ``u_{m,i} = x_{m,i} + Σ_e w_e o_e``.
3. Iterative reasoning, one block per modality (:class:`SUREIterativeReasoning`): ``n_iterations`` = N steps
   of an LSTM query per target utterance, attending over its context only::

       q*_0 = [u_i ‖ 0],  (q_0, c_0) = (0, 0)
       (q_n, c_n) = LSTMCell(q*_{n−1}, (q_{n−1}, c_{n−1}))
       α_ij = softmax_{j ∈ S_i}(q_n · u_j / √H),   r_n = Σ_{j ∈ S_i} α_ij u_j,   q*_n = [q_n ‖ r_n]

   a "lightweight context" ``g_i`` = bidirectional GRU (H/2 per direction) over ``S_i``
   (:class:`~merc_hf.models.layers.ContextMaskedRNN`), and ``v_i = u_i + W_it [q*_N ‖ g_i] + b_it``.
4. Speaker embedding and sinusoidal position: ``h⁰_{m,i} = dropout(v_{m,i} + E_spk[s_i] + PE(i))``.
5. Transformer gate (SDT): one single-layer encoder per ordered pair (target ``m``, source ``n``): ``M``
   intra-modal (``n = m``, self-attention) and ``M(M−1)`` inter-modal (query ``m``, key/value ``n``)::

       y = h⁰_m + dropout(MHA(h⁰_m, h⁰_n; mask = context_mask))                   (8 heads, with biases)
       T_{m←n} = y + dropout(W_2 dropout(GELU(W_1 LN(y) + b_1)) + b_2)           (pre-LN feed-forward)

   then a unimodal gate ``G_{m←n} = σ(W_{m,n} T_{m←n}) ⊙ T_{m←n}`` (``W`` = I for
   ``learn_unimodal_gates=False``, SDT's MELD setting) and, per target modality, ``f_m = W^c_m [G_{m←n}]_n +
   b^c_m`` (``M·H → H``, SDT's concat → Linear).
6. Gated multimodal fusion (SDT): ``γ_m = softmax_m(W_f f_m)`` per dimension (``W_f`` shared, no bias),
   ``utterance_repr = [γ_m ⊙ f_m]_{m}`` (the concatenation, ``M·H``; SDT's fused vector is the sum of the
   blocks). Classifier on the concatenation: ``logits = W_o dropout(ReLU(utterance_repr)) + b_o``.
7. Unimodal heads (SDT): ``ℓ_m = W^u_m dropout(ReLU(f_m)) + b^u_m``, used by the auxiliary loss only.

Auxiliary loss (returned by ``_encode`` in **training mode only**; the shared ``forward`` adds it to the
emotion loss when labels are given; in eval mode ``loss`` is the emotion loss alone, so evaluation NLL and
calibration are comparable across backbones). ``N`` = real utterances of the batch; sums over modalities::

    L_aux = λ_kl Σ_m KL_m + λ_bal Σ_m B_m + λ_dist Σ_m D_m
    KL_m  = 1/(kN) Σ_i Σ_{e ∈ K_i} 1/L Σ_d ½ (μ²_{e,d} + σ²_{e,d} − log σ²_{e,d} − 1)  (:func:`expert_kl_loss`)
    B_m   = 1/E Σ_e ρ_e a_e,  ρ_e = 1/N Σ_i p_{i,e},  a_e = 1/N Σ_i 1[e ∈ K_i]          (:func:`load_balancing_loss`)
    D_m   = 1/N Σ_i KL(softmax(logits_i / τ) ‖ softmax(ℓ_{m,i} / τ))                  (:func:`distillation_loss`)

Context masks (see :mod:`merc_hf.models.base`): every context-propagating operation honours ``context_mask``
at every layer: the iterative-reasoning attention and every transformer attention only read keys in ``S_i``
(padding rows attend to themselves, :func:`~merc_hf.models.layers.attention_mask_with_self`), the BiGRU runs
over each target's context subsequence, and experts, gates, fusion and heads are per utterance. Removal is
exact for full context and view "O" (and exact within each layer for any mask; across the attention layers,
edge-level for view "X"); at eval the model is deterministic.

Choices (where the notes and the issue leave the paper's details open):

* **Experts**: a GELU hidden layer of size L, linear μ / log σ² heads and a linear decoder back to H; the
  mixture output is added residually to the projection. Routing prefers low uncertainty through the penalty
  ``−β ū_e`` (β = 1), with ``ū_e`` the mean predicted variance, detached so that the router cannot lower
  its penalty by shrinking the variances (they are shaped by the KL and the sampled task path). Routing is
  deterministic in training too (it depends on σ², not on the sample).
* **Expert KL** of the selected experts only, averaged over latent dimensions (so its scale does not grow
  with L), over the k selected experts and over the real utterances; λ_kl = 1.
* **Load balancing**: SURE's mean(routing density × assignment density) over experts, densities over the
  real utterances of the batch; λ_bal = 1. SURE's capacity-scaled weights are not used (capacity depends on
  the batch, which would make an utterance's output depend on the other dialogues of the batch).
* **Iterative reasoning per target**: a Set2Set readout pools a whole set (SURE's query attends over the
  utterances with a scatter-softmax); here each target runs its own query over its own context ``S_i``
  (exact context removal), and the first LSTM input is the utterance itself so that targets with the same
  context still get their own readout. Scaled dot-product scores (1/√H). One block per modality, applied
  after the experts and before the transformers (the order in which the notes list SURE's parts: experts,
  iterative reasoning, transformer gate, classifier).
* **Self-distillation**: teacher = fused head, students = unimodal heads, KL(teacher ‖ student) at
  temperature τ, not multiplied by τ² (the notes record plain KL terms with all weights γ = 1,
  ``butterfliesss/SDT: train.py (L71–104)``); the teacher is not detached (the notes record no
  stop-gradient), so the term also keeps the fused head consistent with the unimodal heads. λ_dist = 1.
* **Unimodal CE terms omitted**: SDT's loss also has Σ_m NLL(ℓ_m); labels do not reach ``_encode``, so the
  unimodal heads are trained by the label-free distillation term only.
* **Classifier on the concatenation** of the fusion-gated modality blocks (the issue's "concatenation
  classifier"; SURE's ``all_output_layer`` is applied to a concatenation, of width 3·C in the public code):
  it generalises SDT's head on their sum (a head on the sum is the special case ``W_o = [W, W, W]``).
* **Encoders**: feed-forward size = H (``ffn_size``), LayerNorm ε = 1e-6, no LayerNorm before the
  single-layer attention (the notes record a pre-LN feed-forward block only).
* **Dropout** (``dropout``) on the transformer inputs, the attention weights, both residual branches and the
  feed-forward hidden layer of each encoder, and before every head; none in the experts and the reasoning
  blocks.

Deviations from the reference code:

* **Context masking** of all attention and recurrences (the references attend over the whole dialogue).
* **Speaker embedding** without a padding index (SDT uses ``n_speakers + 1`` rows): it is added only at real
  utterances, and padding never reaches a real utterance.
* **Text input** is one vector per utterance (the data layer's mean of the 4 COSMIC RoBERTa layers, or any
  other text feature); SDT/SURE read the merged 12/13-tuple pkls.
* **Any subset of modalities** (``M`` intra and ``M(M−1)`` inter encoders); no fixed length-110 padding.
* **Outputs** are logits; the loss is the shared one of :class:`~merc_hf.models.base.MercPreTrainedModel`
  plus the auxiliary loss above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..base import MercInputs, MercPreTrainedModel
from ..dialoguegcn.modeling_dialoguegcn import masked_softmax
from ..layers import (
    ContextMaskedRNN,
    MaskedMultiheadAttention,
    attention_mask_with_self,
    sinusoidal_positions,
)
from .configuration_sure import SUREConfig

# ------------------------------------------------------------------------------------------ losses


def _mean_over_utterances(values: torch.Tensor, utterance_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` ``(B, T, ...)`` summed over trailing dims, over the real utterances (0 if none)."""
    per_utterance = values.reshape(*values.shape[:2], -1).sum(-1)
    mask = utterance_mask.to(per_utterance.dtype)
    return (per_utterance * mask).sum() / mask.sum().clamp_min(1.0)


def gaussian_kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) ‖ N(0, I))`` averaged over the last (latent) dim: ``mean_d ½ (μ² + σ² − log σ² − 1)``."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - log_variance - 1.0).mean(-1)


def expert_kl_loss(kl: torch.Tensor, selected: torch.Tensor, utterance_mask: torch.Tensor) -> torch.Tensor:
    """KL of the selected experts: ``Σ_{i real} Σ_{e ∈ K_i} kl_{i,e} / Σ_{i real} |K_i|`` for per-utterance,
    per-expert ``kl`` ``(B, T, E)`` and the routing mask ``selected`` ``(B, T, E)``."""
    chosen = selected.to(kl.dtype) * utterance_mask.to(kl.dtype)[..., None]
    return (kl * chosen).sum() / chosen.sum().clamp_min(1.0)


def load_balancing_loss(
    probabilities: torch.Tensor, selected: torch.Tensor, utterance_mask: torch.Tensor
) -> torch.Tensor:
    """``mean_e(ρ_e · a_e)``: routing density ``ρ_e`` (mean router probability of expert ``e``) times
    assignment density ``a_e`` (fraction of utterances routed to ``e``), over the real utterances."""
    mask = utterance_mask.to(probabilities.dtype)[..., None]
    count = mask.sum().clamp_min(1.0)
    routing_density = (probabilities * mask).sum((0, 1)) / count
    assignment_density = (selected.to(probabilities.dtype) * mask).sum((0, 1)) / count
    return (routing_density * assignment_density).mean()


def distillation_loss(
    teacher_logits: torch.Tensor,
    student_logits: torch.Tensor,
    temperature: float,
    utterance_mask: torch.Tensor,
) -> torch.Tensor:
    """``mean_i KL(softmax(teacher_i / τ) ‖ softmax(student_i / τ))`` over the real utterances."""
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return _mean_over_utterances(teacher.exp() * (teacher - student), utterance_mask)


def uncertainty_aware_routing(
    router_logits: torch.Tensor, uncertainty: torch.Tensor, penalty: float, top_k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k routing that prefers experts of low predicted uncertainty.

    ``s = router_logits − penalty · uncertainty`` (both ``(..., E)``), ``p = softmax(s)``, ``K`` = the
    ``top_k`` experts of largest ``s``, ``w_e = p_e 1[e ∈ K] / Σ_{e' ∈ K} p_{e'}``. Returns ``(p, selected,
    w)`` with ``selected`` the bool mask of ``K``.
    """
    scores = router_logits - penalty * uncertainty
    probabilities = torch.softmax(scores, dim=-1)
    top = scores.topk(top_k, dim=-1).indices
    selected = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, top, True)
    weights = probabilities * selected
    return probabilities, selected, weights / weights.sum(-1, keepdim=True)


# ------------------------------------------------------------------------------------------ experts


@dataclass
class MixtureOutput:
    """What :class:`SUREMixtureOfExperts` returns, all ``(B, T, ...)``.

    Attributes:
        output: ``(B, T, H)`` the weighted sum of the experts' decoded outputs (without the residual).
        probabilities: ``(B, T, E)`` router probabilities ``p``.
        selected: ``(B, T, E)`` bool, the top-k experts ``K``.
        weights: ``(B, T, E)`` renormalised weights ``w`` (0 outside ``K``).
        kl: ``(B, T, E)`` per-expert KL to N(0, I), averaged over latent dims.
    """

    output: torch.Tensor
    probabilities: torch.Tensor
    selected: torch.Tensor
    weights: torch.Tensor
    kl: torch.Tensor


class SUREExpert(nn.Module):
    """A Gaussian-latent ("VAE") expert: ``x -> (decoded z, μ, log σ²)``, with ``z`` sampled by
    reparameterisation in training and ``z = μ`` in eval (module docstring, step 2)."""

    def __init__(self, hidden_size: int, latent_size: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(hidden_size, latent_size)
        self.mean = nn.Linear(latent_size, latent_size)
        self.log_variance = nn.Linear(latent_size, latent_size)
        self.decoder = nn.Linear(latent_size, hidden_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = F.gelu(self.encoder(x))
        mean, log_variance = self.mean(hidden), self.log_variance(hidden)
        latent = mean
        if self.training:
            latent = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
        return self.decoder(latent), mean, log_variance


class SUREMixtureOfExperts(nn.Module):
    """Uncertainty-aware mixture of ``num_experts`` Gaussian experts with top-k routing
    (:func:`uncertainty_aware_routing`); per utterance, no context."""

    def __init__(self, config: SUREConfig) -> None:
        super().__init__()
        self.top_k = config.num_selected_experts
        self.penalty = config.uncertainty_penalty
        self.experts = nn.ModuleList(
            [SUREExpert(config.hidden_size, config.expert_latent_size) for _ in range(config.num_experts)]
        )
        self.router = nn.Linear(config.hidden_size, config.num_experts)

    def forward(self, x: torch.Tensor) -> MixtureOutput:
        decoded, means, log_variances = zip(*(expert(x) for expert in self.experts))
        log_variance = torch.stack(log_variances, dim=-2)  # (B, T, E, L)
        mean = torch.stack(means, dim=-2)
        uncertainty = log_variance.detach().exp().mean(-1)
        probabilities, selected, weights = uncertainty_aware_routing(
            self.router(x), uncertainty, self.penalty, self.top_k
        )
        output = (weights[..., None] * torch.stack(decoded, dim=-2)).sum(-2)
        return MixtureOutput(output, probabilities, selected, weights, gaussian_kl(mean, log_variance))


# ------------------------------------------------------------------------------------------ reasoning


class SUREIterativeReasoning(nn.Module):
    """Iterative reasoning (module docstring, step 3): an LSTM query per target utterance attending over its
    context for ``n_iterations`` steps, plus a context-masked bidirectional GRU; residual output."""

    def __init__(self, hidden_size: int, n_iterations: int) -> None:
        super().__init__()
        self.n_iterations = n_iterations
        self.query_cell = nn.LSTMCell(2 * hidden_size, hidden_size)
        self.context_rnn = ContextMaskedRNN(hidden_size, hidden_size // 2, bidirectional=True)
        self.output = nn.Linear(3 * hidden_size, hidden_size)

    def _merc_init_weights(self) -> None:
        """PyTorch's ``LSTMCell`` default, U(±1/√hidden)."""
        bound = 1.0 / math.sqrt(self.query_cell.hidden_size)
        for param in self.query_cell.parameters():
            init.uniform_(param, -bound, bound)

    def readout(self, u: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        """``q*_N`` ``(B, T, 2H)`` of every target for utterance vectors ``u`` ``(B, T, H)`` and its context
        ``context_mask`` ``(B, T, T)`` (rows without an allowed key read 0)."""
        batch_size, length, hidden_size = u.shape
        query = u.new_zeros(batch_size * length, hidden_size)
        cell = torch.zeros_like(query)
        readout = torch.cat([u.reshape(-1, hidden_size), torch.zeros_like(query)], dim=-1)
        for _ in range(self.n_iterations):
            query, cell = self.query_cell(readout, (query, cell))
            scores = query.view(batch_size, length, hidden_size) @ u.transpose(1, 2) / math.sqrt(hidden_size)
            attended = masked_softmax(scores, context_mask) @ u
            readout = torch.cat([query, attended.reshape(-1, hidden_size)], dim=-1)
        return readout.view(batch_size, length, 2 * hidden_size)

    def forward(self, u: torch.Tensor, inputs: MercInputs) -> torch.Tensor:
        context = self.context_rnn(
            u, inputs.utterance_mask, None if inputs.full_context else inputs.context_mask
        )
        return u + self.output(torch.cat([self.readout(u, inputs.context_mask), context], dim=-1))


# ------------------------------------------------------------------------------------------ transformer gate


class SURETransformerLayer(nn.Module):
    """SDT's single-layer transformer encoder (module docstring, step 5): masked multi-head attention of
    ``query`` over ``key_value`` with a residual, then a pre-LN GELU feed-forward block with a residual."""

    def __init__(self, hidden_size: int, num_heads: int, ffn_size: int, dropout: float) -> None:
        super().__init__()
        self.attention = MaskedMultiheadAttention(hidden_size, num_heads, dropout)
        self.norm = nn.LayerNorm(hidden_size, eps=1e-6)
        self.ffn_in = nn.Linear(hidden_size, ffn_size)
        self.ffn_out = nn.Linear(ffn_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = query + self.dropout(self.attention(query, key_value, mask))
        return x + self.dropout(self.ffn_out(self.dropout(F.gelu(self.ffn_in(self.norm(x))))))


class SUREUnimodalGate(nn.Module):
    """``σ(W x) ⊙ x`` (no bias); with ``learned=False`` ``W`` is the identity: ``σ(x) ⊙ x``."""

    def __init__(self, hidden_size: int, learned: bool = True) -> None:
        super().__init__()
        self.weight = nn.Linear(hidden_size, hidden_size, bias=False) if learned else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x if self.weight is None else self.weight(x)) * x


# ------------------------------------------------------------------------------------------ model


class SUREModel(MercPreTrainedModel):
    """SURE for utterance-level emotion classification (module docstring for the equations, the auxiliary
    loss, the context masking, the choices and the deviations). ``forward`` is
    :meth:`MercPreTrainedModel.forward`; ``utterance_repr`` is the concatenation of the fusion-gated modality
    blocks (``M·H``) and ``logits`` are those of the fused head. :meth:`_unimodal_stages` (steps 1–4, per
    modality) and :meth:`_contextual_stages` (steps 5–6) are the stages that removal views share
    (:func:`merc_hf.calibration.views.removal_view_logits`)."""

    config_class = SUREConfig
    base_model_prefix = "sure"
    _no_split_modules: ClassVar[list[str]] = ["SURETransformerLayer", "SUREIterativeReasoning"]

    def __init__(self, config: SUREConfig) -> None:
        super().__init__(config)
        self.modalities = config.modalities
        hidden, modalities = config.hidden_size, config.modalities
        pairs = [f"{target}_{source}" for target in modalities for source in modalities]
        self.projections = nn.ModuleDict(
            {m: nn.Linear(getattr(config, f"{m}_dim"), hidden, bias=False) for m in modalities}
        )
        self.experts = nn.ModuleDict({m: SUREMixtureOfExperts(config) for m in modalities})
        self.reasoning = nn.ModuleDict(
            {m: SUREIterativeReasoning(hidden, config.n_iterations) for m in modalities}
        )
        self.speaker_embedding = nn.Embedding(config.n_speakers, hidden)
        self.input_dropout = nn.Dropout(config.dropout)
        self.encoders = nn.ModuleDict(
            {
                pair: SURETransformerLayer(hidden, config.num_heads, config.ffn_size, config.dropout)
                for pair in pairs
            }
        )
        self.gates = nn.ModuleDict(
            {pair: SUREUnimodalGate(hidden, config.learn_unimodal_gates) for pair in pairs}
        )
        self.modality_fusion = nn.ModuleDict(
            {m: nn.Linear(len(modalities) * hidden, hidden) for m in modalities}
        )
        self.fusion_gate = nn.Linear(hidden, hidden, bias=False)
        self.head_dropout = nn.Dropout(config.dropout)
        self.unimodal_heads = nn.ModuleDict({m: nn.Linear(hidden, config.num_labels) for m in modalities})
        self.classifier = nn.Linear(len(modalities) * hidden, config.num_labels)
        self.post_init()

    def _needs_speakers(self) -> bool:
        return True

    def _head(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """SDT's output layer: ReLU -> dropout -> Linear."""
        return layer(self.head_dropout(F.relu(x)))

    def _unimodal_states(
        self, inputs: MercInputs, names: Sequence[str] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, MixtureOutput]]:
        """Steps 1–4 for each modality of ``names`` (all when ``None``): the transformer inputs ``h⁰_m``
        ``(B, T, H)`` and the mixtures the auxiliary loss needs. Reads only those modalities' features."""
        names = self.modalities if names is None else names
        if not names:
            return {}, {}
        utterance_mask = inputs.utterance_mask
        reference = inputs.features[names[0]]
        position = sinusoidal_positions(
            utterance_mask.shape[1], self.config.hidden_size, reference.device, reference.dtype
        )
        speaker = self.speaker_embedding(inputs.speakers) * utterance_mask[..., None].to(reference.dtype)
        states, mixtures = {}, {}
        for m in names:
            x = self.projections[m](inputs.features[m])
            mixtures[m] = self.experts[m](x)
            v = self.reasoning[m](x + mixtures[m].output, inputs)
            states[m] = self.input_dropout(v + speaker + position)
        return states, mixtures

    def _unimodal_stages(
        self, inputs: MercInputs, names: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """``h⁰_m`` ``(B, T, H)`` of each modality in ``names`` (all when ``None``): projection, experts,
        iterative reasoning, speaker and position, input dropout (module docstring, steps 1–4)."""
        return self._unimodal_states(inputs, names)[0]

    def _unimodal_reads_context(self, name: str, inputs: MercInputs) -> bool:
        """Whether modality ``name``'s stage honours ``inputs``' context mask: the iterative reasoning does
        whenever a mask was given."""
        return not inputs.full_context

    def _fuse(
        self, states: dict[str, torch.Tensor], inputs: MercInputs
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Steps 5–6: ``(utterance_repr, logits, f)`` with ``f`` the per-modality fusion outputs ``f_m``
        that the unimodal heads of the auxiliary loss read."""
        attention_mask = attention_mask_with_self(inputs.context_mask)
        fused = {}
        for target in self.modalities:
            gated = []
            for source in self.modalities:
                pair = f"{target}_{source}"
                encoded = self.encoders[pair](states[target], states[source], attention_mask)
                gated.append(self.gates[pair](encoded))
            fused[target] = self.modality_fusion[target](torch.cat(gated, dim=-1))
        stacked = torch.stack([fused[m] for m in self.modalities], dim=-2)  # (B, T, M, H)
        blocks = torch.softmax(self.fusion_gate(stacked), dim=-2) * stacked
        utterance_repr = blocks.flatten(-2)
        return utterance_repr, self._head(self.classifier, utterance_repr), fused

    def _contextual_stages(
        self, unimodal: dict[str, torch.Tensor], inputs: MercInputs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything after the unimodal stages: transformers, gates, fusion and the fused head."""
        utterance_repr, logits, _ = self._fuse(unimodal, inputs)
        return utterance_repr, logits

    def _encode(self, inputs: MercInputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        # the stages of _unimodal_stages / _contextual_stages, keeping the mixtures and f_m for the
        # auxiliary loss (training mode only)
        states, mixtures = self._unimodal_states(inputs)
        utterance_repr, logits, fused = self._fuse(states, inputs)
        auxiliary = None
        if self.training:
            unimodal = {m: self._head(self.unimodal_heads[m], fused[m]) for m in self.modalities}
            auxiliary = self.auxiliary_loss(logits, unimodal, mixtures, inputs.utterance_mask)
        return utterance_repr, logits, auxiliary

    def auxiliary_loss(
        self,
        logits: torch.Tensor,
        unimodal_logits: dict[str, torch.Tensor],
        mixtures: dict[str, MixtureOutput],
        utterance_mask: torch.Tensor,
    ) -> torch.Tensor:
        """``λ_kl Σ_m KL_m + λ_bal Σ_m B_m + λ_dist Σ_m D_m`` (module docstring)."""
        config = self.config
        kl = sum(expert_kl_loss(mix.kl, mix.selected, utterance_mask) for mix in mixtures.values())
        balance = sum(
            load_balancing_loss(mix.probabilities, mix.selected, utterance_mask) for mix in mixtures.values()
        )
        distillation = sum(
            distillation_loss(logits, student, config.distillation_temperature, utterance_mask)
            for student in unimodal_logits.values()
        )
        return (
            config.kl_weight * kl
            + config.balance_weight * balance
            + config.distillation_weight * distillation
        )
