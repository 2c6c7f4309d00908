"""Tests specific to SURE: the whole eval-mode model against an explicit per-utterance, per-target loop of the
equations (full context, views "O" and "X", an arbitrary mask), the masked multi-head attention against a
per-query loop, the uncertainty-aware top-k router and its preference for low uncertainty on hand-made
examples, reparameterised sampling in training only, the expert KL, load-balancing and distillation losses
against hand-computed values, the auxiliary loss (added in training, with labels, only), the fixed unimodal
gates, reference defaults and config validation. The backbone interface (shapes, padding/batch invariance,
exact context removal, modalities, losses, save/load, training) is tested in ``test_backbone_contract.py``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from merc_hf.models.base import build_context_mask, emotion_loss
from merc_hf.models.layers import MaskedMultiheadAttention
from merc_hf.models.sure import (
    MixtureOutput,
    SUREConfig,
    SUREMixtureOfExperts,
    distillation_loss,
    expert_kl_loss,
    gaussian_kl,
    load_balancing_loss,
    uncertainty_aware_routing,
)

from .test_backbone_contract import BACKBONES, prepared_inputs

small_model = BACKBONES["sure"]  # the tiny SURE of the backbone contract
DIMS = small_model.dims
SPEAKERS = [[0, 1, 0, 2, 1, 1, 0], [1, 1, 0, 1]]


# ------------------------------------------------------------------------------------------ loops


def _linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return layer.weight @ x + (0 if layer.bias is None else layer.bias)


def _loop_attention(attention: MaskedMultiheadAttention, query: torch.Tensor, keys: list[torch.Tensor]):
    """One query over its allowed keys, head by head: ``softmax(q_h · k_h / √d)`` weights of ``v_h``."""
    d = attention.head_size
    q, heads = _linear(attention.query, query), []
    ks = [_linear(attention.key, k) for k in keys]
    vs = [_linear(attention.value, k) for k in keys]
    for h in range(attention.num_heads):
        part = slice(h * d, (h + 1) * d)
        weights = torch.softmax(torch.stack([q[part] @ k[part] / math.sqrt(d) for k in ks]), dim=0)
        heads.append(sum(w * v[part] for w, v in zip(weights, vs)))
    return _linear(attention.output, torch.cat(heads))


def _loop_mixture(mixture: SUREMixtureOfExperts, x: torch.Tensor) -> torch.Tensor:
    """``x + Σ_e w_e o_e`` for one utterance in eval mode (``z = μ``)."""
    outputs, uncertainties = [], []
    for expert in mixture.experts:
        hidden = F.gelu(_linear(expert.encoder, x))
        outputs.append(_linear(expert.decoder, _linear(expert.mean, hidden)))
        uncertainties.append(_linear(expert.log_variance, hidden).exp().mean())
    scores = _linear(mixture.router, x) - mixture.penalty * torch.stack(uncertainties)
    probabilities = torch.softmax(scores, dim=0)
    chosen = sorted(range(len(outputs)), key=lambda e: -float(scores[e]))[: mixture.top_k]
    total = sum(probabilities[e] for e in chosen)
    return x + sum(probabilities[e] / total * outputs[e] for e in chosen)


def _gru_outputs(gru: torch.nn.GRU, sequence: list[torch.Tensor]) -> list[torch.Tensor]:
    out, _ = gru(torch.stack(sequence)[None])
    return list(out[0])


def _loop_reasoning(block, us: list[torch.Tensor], context: list[int], i: int) -> torch.Tensor:
    """``v_i`` of one target: LSTM query over ``u_j, j ∈ S_i`` for N iterations, BiGRU over ``S_i``."""
    hidden = us[i].shape[0]
    memory = [us[j] for j in context]
    query, cell = torch.zeros(1, hidden), torch.zeros(1, hidden)
    readout = torch.cat([us[i], torch.zeros(hidden)])
    for _ in range(block.n_iterations):
        query, cell = block.query_cell(readout[None], (query, cell))
        weights = torch.softmax(torch.stack([query[0] @ u / math.sqrt(hidden) for u in memory]), dim=0)
        readout = torch.cat([query[0], sum(w * u for w, u in zip(weights, memory))])
    rnn = block.context_rnn
    position = context.index(i)
    forward = _gru_outputs(rnn.forward_layers[0], memory)[position]
    backward = _gru_outputs(rnn.backward_layers[0], memory[::-1])[::-1][position]
    return us[i] + _linear(block.output, torch.cat([readout, forward, backward]))


def _position(t: int, dim: int) -> torch.Tensor:
    values = []
    for k in range(dim // 2):
        angle = t / 10000 ** (2 * k / dim)
        values += [math.sin(angle), math.cos(angle)]
    return torch.tensor(values)


def _loop_encoder(layer, query: torch.Tensor, keys: list[torch.Tensor]) -> torch.Tensor:
    y = query + _loop_attention(layer.attention, query, keys)
    normed = F.layer_norm(y, y.shape, layer.norm.weight, layer.norm.bias, layer.norm.eps)
    return y + _linear(layer.ffn_out, F.gelu(_linear(layer.ffn_in, normed)))


def _loop_dialogue(model, features: dict, speakers: list[int], contexts: list[list[int]]):
    """``(utterance_repr, logits)`` of every utterance of one dialogue, target by target and layer by layer,
    each reading only its context ``contexts[i]``."""
    n, hidden = len(speakers), model.config.hidden_size
    states = {}
    for m in model.modalities:
        xs = [model.projections[m].weight @ features[m][j] for j in range(n)]
        us = [_loop_mixture(model.experts[m], x) for x in xs]
        vs = [_loop_reasoning(model.reasoning[m], us, contexts[i], i) for i in range(n)]
        states[m] = [
            vs[i] + model.speaker_embedding.weight[speakers[i]] + _position(i, hidden) for i in range(n)
        ]
    reprs, logits = [], []
    for i in range(n):
        fused = []
        for target in model.modalities:
            gated = []
            for source in model.modalities:
                pair = f"{target}_{source}"
                keys = [states[source][j] for j in contexts[i]]
                encoded = _loop_encoder(model.encoders[pair], states[target][i], keys)
                gate = model.gates[pair].weight
                gated.append(torch.sigmoid(encoded if gate is None else gate.weight @ encoded) * encoded)
            fused.append(_linear(model.modality_fusion[target], torch.cat(gated)))
        stacked = torch.stack(fused)  # (M, H)
        gamma = torch.softmax(stacked @ model.fusion_gate.weight.T, dim=0)
        reprs.append((gamma * stacked).reshape(-1))
        logits.append(_linear(model.classifier, torch.relu(reprs[-1])))
    return reprs, logits


def _check_against_loop(model, batch: dict, context: torch.Tensor | None) -> None:
    with torch.no_grad():
        out = model(**batch, context_mask=context)
        inputs = prepared_inputs(model, batch, context)
        for b, n in enumerate(batch["utterance_mask"].sum(1).tolist()):
            contexts = [[j for j in range(n) if inputs.context_mask[b, i, j]] for i in range(n)]
            features = {m: inputs.features[m][b] for m in model.modalities}
            reprs, logits = _loop_dialogue(model, features, batch["speakers"][b, :n].tolist(), contexts)
            for i in range(n):
                torch.testing.assert_close(out.utterance_repr[b, i], reprs[i], atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(out.logits[b, i], logits[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("view", ["full", "O", "X", "random"])
def test_model_matches_loop_definition(make_batch, view):
    model = small_model()
    batch = make_batch([7, 4], DIMS, n_speakers=3, speakers=SPEAKERS, seed=1)
    if view == "random":  # any mask, neither symmetric nor transitive
        context = torch.rand(2, 7, 7, generator=torch.Generator().manual_seed(0)) < 0.5
    else:
        context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    _check_against_loop(model, batch, context)


def test_variants_match_loop_definition(make_batch):
    model = small_model(learn_unimodal_gates=False, num_selected_experts=1, n_iterations=3, text_dim=None)
    assert all(gate.weight is None for gate in model.gates.values()) and len(model.encoders) == 4
    batch = make_batch([6, 3], DIMS, n_speakers=3, seed=2)
    _check_against_loop(model, batch, None)
    _check_against_loop(model, batch, build_context_mask("X", batch["same_speaker"], batch["utterance_mask"]))


def test_masked_attention_matches_per_query_loop():
    torch.manual_seed(0)
    attention = MaskedMultiheadAttention(8, 2).eval()
    query, key_value = torch.randn(2, 5, 8), torch.randn(2, 4, 8)
    mask = torch.rand(2, 5, 4) < 0.5
    mask[..., 0] = True  # every row allows at least one key
    with torch.no_grad():
        out = attention(query, key_value, mask)
        for b in range(2):
            for i in range(5):
                keys = [key_value[b, j] for j in range(4) if mask[b, i, j]]
                torch.testing.assert_close(out[b, i], _loop_attention(attention, query[b, i], keys))


# ------------------------------------------------------------------------------------------ experts


def test_router_selects_top_k_and_renormalises():
    logits = torch.log(torch.tensor([0.1, 0.4, 0.2, 0.3]))
    probabilities, selected, weights = uncertainty_aware_routing(logits, torch.zeros(4), 1.0, 3)
    torch.testing.assert_close(probabilities, torch.tensor([0.1, 0.4, 0.2, 0.3]))
    assert selected.tolist() == [False, True, True, True]
    torch.testing.assert_close(weights, torch.tensor([0.0, 0.4, 0.2, 0.3]) / 0.9)


def test_router_prefers_low_uncertainty():
    """Equal router logits: the most uncertain expert is dropped; ``s = logits − β ū`` exactly."""
    uncertainty = torch.tensor([0.5, 2.0, 0.1, 0.3])
    probabilities, selected, weights = uncertainty_aware_routing(torch.zeros(4), uncertainty, 1.0, 3)
    expected = torch.softmax(-uncertainty, dim=0)
    torch.testing.assert_close(probabilities, expected)
    assert selected.tolist() == [True, False, True, True]
    torch.testing.assert_close(weights, expected * selected / (expected * selected).sum())
    # a router preference for expert 1 wins without the penalty and loses with a strong one
    logits = torch.tensor([0.0, 1.0, 0.0, 0.0])
    assert uncertainty_aware_routing(logits, uncertainty, 0.0, 1)[1].tolist() == [False, True, False, False]
    assert uncertainty_aware_routing(logits, uncertainty, 1.0, 1)[1].tolist() == [False, False, True, False]


def test_mixture_routes_away_from_an_uncertain_expert():
    mixture = SUREMixtureOfExperts(SUREConfig(hidden_size=8, expert_latent_size=4, num_heads=2)).eval()
    with torch.no_grad():
        mixture.router.weight.zero_()
        mixture.router.bias.zero_()
        mixture.experts[2].log_variance.weight.zero_()
        mixture.experts[2].log_variance.bias.fill_(5.0)  # σ² = e⁵ for every latent dim
        out = mixture(torch.randn(3, 4, 8))
    assert not out.selected[..., 2].any() and (out.selected.sum(-1) == 3).all()
    assert (out.weights[..., 2] == 0).all()
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(3, 4))


def test_reparameterised_sampling_in_training_only():
    mixture = SUREMixtureOfExperts(SUREConfig(hidden_size=8, expert_latent_size=4, num_heads=2))
    expert = mixture.experts[0]
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        hidden = F.gelu(expert.encoder(x))
        mean, log_variance = expert.mean(hidden), expert.log_variance(hidden)
        expert.eval()
        torch.testing.assert_close(expert(x)[0], expert.decoder(mean))
        assert torch.equal(expert(x)[0], expert(x)[0])
        expert.train()
        torch.manual_seed(3)
        sampled = expert(x)[0]
        torch.manual_seed(3)
        epsilon = torch.randn_like(mean)
        torch.testing.assert_close(sampled, expert.decoder(mean + (0.5 * log_variance).exp() * epsilon))
        assert not torch.equal(expert(x)[0], expert(x)[0])
        mixture.eval()
        assert torch.equal(mixture(x).output, mixture(x).output)


# ------------------------------------------------------------------------------------------ losses


def test_gaussian_and_expert_kl_against_hand_values():
    mean = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    log_variance = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # per dim ½(μ² + σ² − log σ² − 1): (½, ½(1 − log 2)); then (0, 0)
    torch.testing.assert_close(
        gaussian_kl(mean, log_variance), torch.tensor([(1.0 - 0.5 * math.log(2)) / 2, 0.0])
    )
    kl = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])  # (B=1, T=3, E=3)
    selected = torch.tensor([[[True, True, False], [False, True, True], [True, True, False]]])
    utterance_mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(
        expert_kl_loss(kl, selected, utterance_mask), torch.tensor((1 + 2 + 5 + 6) / 4)
    )


def test_load_balancing_loss_against_hand_values():
    probabilities = torch.tensor([[[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]])
    selected = torch.tensor([[[True, False], [False, True], [True, False]]])
    utterance_mask = torch.tensor([[True, True, False]])
    # ρ = (0.45, 0.55), a = (0.5, 0.5): mean(0.225, 0.275) = 0.25 (the padding row is ignored)
    torch.testing.assert_close(
        load_balancing_loss(probabilities, selected, utterance_mask), torch.tensor(0.25)
    )


def test_distillation_loss_against_hand_values():
    teacher = torch.tensor([[[0.0, math.log(3.0)], [5.0, -5.0]]])
    student = torch.zeros(1, 2, 2)
    mask = torch.tensor([[True, False]])
    # p = (¼, ¾), q = (½, ½): ¼ log(½) + ¾ log(3/2)
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    torch.testing.assert_close(distillation_loss(teacher, student, 1.0, mask), torch.tensor(expected))
    # τ = 2 divides the logits: p ∝ (1, √3)
    p = torch.tensor([1.0, math.sqrt(3.0)]) / (1 + math.sqrt(3.0))
    expected = float((p * (p / 0.5).log()).sum())
    torch.testing.assert_close(distillation_loss(teacher, student, 2.0, mask), torch.tensor(expected))


def test_auxiliary_loss_combines_the_weighted_terms():
    model = small_model(
        kl_weight=0.5, balance_weight=2.0, distillation_weight=0.25, distillation_temperature=2.0
    )
    generator = torch.Generator().manual_seed(4)
    mask = torch.tensor([[True, True, False]])

    def mixture() -> MixtureOutput:
        probabilities = torch.softmax(torch.randn(1, 3, 4, generator=generator), -1)
        selected = torch.rand(1, 3, 4, generator=generator) < 0.6
        return MixtureOutput(
            torch.zeros(1, 3, 16), probabilities, selected, probabilities, torch.rand(1, 3, 4)
        )

    mixtures = {m: mixture() for m in model.modalities}
    logits = torch.randn(1, 3, 6, generator=generator)
    unimodal = {m: torch.randn(1, 3, 6, generator=generator) for m in model.modalities}
    expected = sum(
        0.5 * expert_kl_loss(mixtures[m].kl, mixtures[m].selected, mask)
        + 2.0 * load_balancing_loss(mixtures[m].probabilities, mixtures[m].selected, mask)
        + 0.25 * distillation_loss(logits, unimodal[m], 2.0, mask)
        for m in model.modalities
    )
    torch.testing.assert_close(model.auxiliary_loss(logits, unimodal, mixtures, mask), expected)


def test_auxiliary_loss_is_added_in_training_with_labels_only(make_batch):
    model = small_model()
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=5)
    inputs = prepared_inputs(model, batch)
    with torch.no_grad():
        evaluated = model(**batch)
        assert model._encode(inputs)[2] is None
    torch.testing.assert_close(evaluated.loss, emotion_loss(evaluated.logits, batch["labels"]))
    model.train()
    torch.manual_seed(6)
    trained = model(**batch)
    torch.manual_seed(6)
    _, logits, auxiliary = model._encode(inputs)
    assert auxiliary.ndim == 0 and auxiliary > 0
    torch.testing.assert_close(trained.logits, logits)
    torch.testing.assert_close(trained.loss, emotion_loss(logits, batch["labels"]) + auxiliary)
    assert model(**{k: v for k, v in batch.items() if k != "labels"}).loss is None
    # the unimodal heads are trained by the distillation term alone
    trained.loss.backward()
    assert model.unimodal_heads["audio"].weight.grad.abs().sum() > 0
    without = small_model(distillation_weight=0.0).train()
    without(**batch).loss.backward()
    assert without.unimodal_heads["audio"].weight.grad.abs().sum() == 0


def test_speakers_are_required(make_batch):
    model = small_model()
    batch = make_batch([4], DIMS, n_speakers=3, seed=7)
    with pytest.raises(ValueError, match="uses speaker information"):
        model(**{k: batch[k] for k in DIMS})


# ------------------------------------------------------------------------------------------ config


def test_default_config_is_the_reference_iemocap_setting():
    config = SUREConfig()
    assert config.model_type == "merc_sure"
    assert (config.text_dim, config.audio_dim, config.visual_dim, config.n_speakers) == (1024, 1582, 342, 2)
    assert (config.hidden_size, config.num_heads, config.ffn_size, config.dropout) == (1024, 8, 1024, 0.5)
    assert (config.num_experts, config.num_selected_experts, config.n_iterations) == (4, 3, 2)
    assert (config.expert_latent_size, config.uncertainty_penalty) == (256, 1.0)
    assert config.learn_unimodal_gates and config.distillation_temperature == 1.0
    assert (config.kl_weight, config.balance_weight, config.distillation_weight) == (1.0, 1.0, 1.0)
    assert config.num_labels == 6 and config.id2label[0] == "hap"
    assert SUREConfig(hidden_size=64, num_heads=4).ffn_size == 64


def test_tiny_model_structure():
    model = small_model()
    assert set(model.encoders) == {f"{t}_{s}" for t in DIMS for s in DIMS}  # 3 intra + 6 inter
    assert model.classifier.in_features == 3 * 16 and model.modality_fusion["text"].in_features == 3 * 16
    assert len(model.experts["audio"].experts) == 4 and model.experts["audio"].top_k == 3
    assert model.projections["visual"].bias is None and model.fusion_gate.bias is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"hidden_size": 0},
        {"hidden_size": 15, "num_heads": 1},
        {"hidden_size": 16, "num_heads": 3},
        {"num_heads": 0},
        {"ffn_size": 0},
        {"num_experts": 0},
        {"num_selected_experts": 0},
        {"num_selected_experts": 5},
        {"num_selected_experts": True},
        {"expert_latent_size": -1},
        {"n_iterations": 0},
        {"n_iterations": 1.5},
        {"learn_unimodal_gates": "yes"},
        {"distillation_temperature": 0.0},
        {"distillation_temperature": float("inf")},
        {"uncertainty_penalty": -1.0},
        {"kl_weight": float("nan")},
        {"balance_weight": -0.1},
        {"distillation_weight": True},
    ],
    ids=str,
)
def test_config_validation(overrides):
    with pytest.raises(ValueError):
        SUREConfig(**overrides)
