"""CMC: PFM and top-k routing against explicit loops, the consensus prediction, padding (BatchNorm included)
and batch invariance, exact modality removal, the loss against a hand-assembled sum with an explicit-loop
SupCon, stage-1 → stage-2 transfer, Hub round trip, training and config validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel

import merc_hf  # noqa: F401  (registers the Auto classes)
from merc_hf.models.cmc import (
    CMCConfig,
    CMCModel,
    cmc_supervised_contrastive_loss,
    consensus_fusion,
    sentiment_polarity,
    top_k_gates,
)

DIMS = {"text": 6, "audio": 5, "visual": 4}
MODALITIES = ("text", "audio", "visual")


def tiny_config(**overrides) -> CMCConfig:
    values = {
        "text_dim": DIMS["text"],
        "audio_dim": DIMS["audio"],
        "visual_dim": DIMS["visual"],
        "embed_dim": 8,
        "feedforward_dim": 16,
        "num_layers": 2,
        "num_heads": 2,
        "dropout": 0.0,
        "out_dropout": 0.0,
        **overrides,
    }
    return CMCConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> CMCModel:
    torch.manual_seed(seed)
    return CMCModel(tiny_config(**overrides)).eval()


def make_batch(lengths: dict[str, list[int]], seed: int = 0, pad_to: dict[str, int] | None = None) -> dict:
    """A batch with the utterance collator's keys; padded frames are random (not zero) to catch leaks."""
    generator = torch.Generator().manual_seed(seed)
    batch: dict[str, torch.Tensor] = {}
    for m in MODALITIES:
        rows = lengths[m]
        length = (pad_to or {}).get(m, max(rows))
        batch[m] = torch.randn(len(rows), length, DIMS[m], generator=generator)
        batch[f"{m}_mask"] = torch.arange(length)[None, :] < torch.tensor(rows)[:, None]
    n = len(lengths["text"])
    batch["labels"] = torch.randint(0, 3, (n,), generator=generator)
    return batch


def repad(batch: dict, pad_to: dict[str, int], seed: int = 1) -> dict:
    """The same samples with every modality padded to ``pad_to[m]`` frames (new random values at padding)."""
    generator = torch.Generator().manual_seed(seed)
    out = dict(batch)
    for m in MODALITIES:
        x, mask = batch[m], batch[f"{m}_mask"]
        n, _, dim = x.shape
        new = torch.randn(n, pad_to[m], dim, generator=generator)
        new_mask = torch.zeros(n, pad_to[m], dtype=torch.bool)
        for b in range(n):
            real = int(mask[b].sum())
            new[b, :real] = x[b, :real]
            new_mask[b, :real] = True
        out[m], out[f"{m}_mask"] = new, new_mask
    return out


LENGTHS = {"text": [4, 2, 3], "audio": [5, 7, 1], "visual": [3, 3, 2]}


def features_only(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k in MODALITIES or k.endswith("_mask")}


# ------------------------------------------------------------------------------------------ pieces


def test_pfm_matches_explicit_loop():
    torch.manual_seed(0)
    x = F.normalize(torch.randn(2, 3, 5), dim=-1)
    tau = 0.07
    out = consensus_fusion(x, tau)
    for b in range(2):
        for i in range(3):
            scores = [sum(x[b, i, d] * x[b, j, d] for d in range(5)) / tau for j in range(3)]
            top = max(scores)
            weights = [math.exp(s - top) for s in scores]
            total = sum(weights)
            expected = sum(weights[j] / total * x[b, j] for j in range(3))
            torch.testing.assert_close(out[b, i], expected, atol=1e-5, rtol=1e-5)


def test_top_k_gates_mask_the_lowest_and_sum_to_one():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    gates = top_k_gates(logits, 2)
    # k = 2 drops the lowest logit of each row; the kept two are a softmax over themselves
    assert gates[0, 1] == 0 and gates[1, 0] == 0
    e = [math.exp(2.0), math.exp(0.5)]
    assert gates[0, 0].item() == pytest.approx(e[0] / sum(e))
    assert gates[0, 2].item() == pytest.approx(e[1] / sum(e))
    torch.testing.assert_close(gates.sum(-1), torch.ones(2))
    torch.testing.assert_close(top_k_gates(logits, 3), torch.softmax(logits, -1))
    one = top_k_gates(logits, 1)
    assert one.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="k must be"):
        top_k_gates(logits, 0)


def explicit_supcon(features: torch.Tensor, labels: list[int], tau: float) -> float:
    """L = −(1/|A|) Σ_{i∈A} log(Σ_{j≠i, y_j=y_i} e^{f_i·f_j/τ} / Σ_{j≠i} e^{f_i·f_j/τ}),
    A = anchors with at least one positive."""
    f = features.double().tolist()
    n = len(f)
    terms = []
    for i in range(n):
        sims = {j: sum(a * b for a, b in zip(f[i], f[j])) / tau for j in range(n) if j != i}
        positives = [j for j in sims if labels[j] == labels[i]]
        if not positives:
            continue
        num = sum(math.exp(sims[j]) for j in positives)
        den = sum(math.exp(s) for s in sims.values())
        terms.append(-math.log(num / den))
    return sum(terms) / len(terms) if terms else 0.0


def test_supcon_matches_explicit_loop():
    torch.manual_seed(0)
    features = F.normalize(torch.randn(7, 4), dim=-1)
    labels = [0, 1, 0, 0, 1, 2, 1]  # label 2 has no positive: that anchor is skipped
    got = cmc_supervised_contrastive_loss(features, torch.tensor(labels), 0.07)
    assert got.item() == pytest.approx(explicit_supcon(features, labels, 0.07), rel=1e-5)
    # no anchor with a positive: a differentiable zero
    lone = features[:3].clone().requires_grad_()
    zero = cmc_supervised_contrastive_loss(lone, torch.tensor([0, 1, 2]), 0.07)
    assert zero.item() == 0.0 and zero.requires_grad
    with pytest.raises(ValueError, match="labels must have shape"):
        cmc_supervised_contrastive_loss(features, torch.tensor([0, 1]))


def test_polarity_rules():
    labels = torch.tensor([0, 1, 2])
    assert sentiment_polarity(labels, "sims").tolist() == [0, 0, 1]  # positive vs non-positive
    assert sentiment_polarity(labels, "mosi").tolist() == [0, 1, 1]  # non-negative vs negative


# ------------------------------------------------------------------------------------------ forward


@pytest.mark.parametrize(
    "overrides",
    [
        {"stage": "unimodal"},
        {"fusion": "consensus"},
        {"fusion": "concat"},
        {"fusion": "consensus", "router_top_k": 2},
    ],
)
def test_shapes_gates_and_tuple_output(overrides):
    model = tiny_model(**overrides)
    batch = make_batch(LENGTHS)
    out = model(**batch)
    assert out.logits.shape == (3, 3) and out.modality_logits.shape == (3, 3, 3)
    assert out.modality_repr.shape == (3, 3, 8) and out.gates.shape == (3, 3)
    torch.testing.assert_close(out.gates.sum(-1), torch.ones(3))
    torch.testing.assert_close(out.modality_repr.norm(dim=-1), torch.ones(3, 3))
    if overrides.get("router_top_k") == 2:
        assert ((out.gates == 0).sum(-1) == 1).all()
    if model.router is None:
        torch.testing.assert_close(out.gates, torch.full((3, 3), 1 / 3))
    assert torch.isfinite(out.loss) and out.loss.requires_grad
    as_tuple = model(**batch, return_dict=False)
    torch.testing.assert_close(as_tuple[1], out.logits)


def test_consensus_prediction_is_gate_weighted_sum_of_experts():
    model = tiny_model(router_top_k=2)
    batch = make_batch(LENGTHS)
    with torch.no_grad():
        out = model(**features_only(batch))
        h = out.modality_repr
        fused = consensus_fusion(h, model.config.fusion_temperature)
        router_logits = model.router(fused.sum(1))
        for b in range(3):
            order = router_logits[b].argsort(descending=True).tolist()
            kept = order[:2]
            total = sum(math.exp(router_logits[b, j].item()) for j in kept)
            expected = torch.zeros(3)
            for i, m in enumerate(MODALITIES):
                gate = math.exp(router_logits[b, i].item()) / total if i in kept else 0.0
                assert out.gates[b, i].item() == pytest.approx(gate, abs=1e-6)
                expert = model.heads[m](fused[b, i][None])[0]
                torch.testing.assert_close(out.modality_logits[b, i], expert)
                expected += gate * expert
            torch.testing.assert_close(out.logits[b], expected, atol=1e-5, rtol=1e-5)


def test_unimodal_stage_and_concat_fusion_heads():
    unimodal = tiny_model(stage="unimodal")
    assert unimodal.router is None and unimodal.concat_head is None
    batch = make_batch(LENGTHS)
    with torch.no_grad():
        out = unimodal(**features_only(batch))
        for i, m in enumerate(MODALITIES):
            torch.testing.assert_close(out.modality_logits[:, i], unimodal.heads[m](out.modality_repr[:, i]))
        torch.testing.assert_close(out.logits, out.modality_logits.mean(1))
        concat = tiny_model(fusion="concat")
        assert concat.router is None
        out = concat(**features_only(batch))
        head = concat.concat_head
        hidden = F.relu(head[0](out.modality_repr.flatten(1)))
        torch.testing.assert_close(out.logits, head[3](hidden))


def test_residual_head_formula():
    model = tiny_model()
    head = model.heads["audio"]
    h = torch.randn(4, 8)
    expected = head.classifier(h + head.proj2(F.relu(head.proj1(h))))
    torch.testing.assert_close(head(h), expected)


def test_padding_never_changes_the_output_eval():
    model = tiny_model()
    batch = make_batch(LENGTHS)
    with torch.no_grad():
        base = model(**batch)
        more = model(**repad(batch, {"text": 9, "audio": 11, "visual": 6}))
    for key in ("logits", "modality_logits", "modality_repr", "gates"):
        torch.testing.assert_close(base[key], more[key], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(base.loss, more.loss, atol=1e-5, rtol=1e-5)


def test_padding_never_changes_the_output_in_training_including_batchnorm():
    equal = {"text": [3, 3], "audio": [4, 4], "visual": [2, 2]}  # same lengths: no padding at all
    batch = make_batch(equal)
    padded = repad(batch, {"text": 6, "audio": 9, "visual": 5})
    assert not padded["audio_mask"].all()
    outputs, stats = [], []
    for inputs in (batch, padded):
        model = tiny_model().train()  # dropout 0; BatchNorm uses (and records) batch statistics
        outputs.append(model(**inputs))
        norm = model.encoders["audio"].norm
        stats.append((norm.running_mean.clone(), norm.running_var.clone()))
    for key in ("logits", "modality_logits", "modality_repr", "loss"):
        torch.testing.assert_close(outputs[0][key], outputs[1][key], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats[0], stats[1])
    # different lengths in one batch: the batch statistics are those of the real frames only
    ragged = make_batch(LENGTHS)
    model = tiny_model().train()
    model(**ragged)
    real = ragged["audio"][ragged["audio_mask"]]  # the 13 real audio frames
    momentum = model.encoders["audio"].norm.momentum
    torch.testing.assert_close(model.encoders["audio"].norm.running_mean, momentum * real.mean(0))
    other = tiny_model().train()
    first = model(**ragged)
    second = other(**repad(ragged, {"text": 8, "audio": 10, "visual": 7}))
    torch.testing.assert_close(first.logits, second.logits, atol=1e-5, rtol=1e-5)


def test_batch_independence_in_eval():
    model = tiny_model()
    batch = make_batch(LENGTHS)
    with torch.no_grad():
        together = model(**features_only(batch))
        for b in range(3):
            alone = {}
            for m in MODALITIES:
                real = int(batch[f"{m}_mask"][b].sum())
                alone[m] = batch[m][b : b + 1, :real]
                alone[f"{m}_mask"] = torch.ones(1, real, dtype=torch.bool)
            single = model(**alone)
            torch.testing.assert_close(single.logits[0], together.logits[b], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(
                single.modality_repr[0], together.modality_repr[b], atol=1e-5, rtol=1e-5
            )


@pytest.mark.parametrize("overrides", [{}, {"fusion": "concat"}, {"stage": "unimodal"}])
def test_modality_removal_is_exact(overrides):
    model = tiny_model(**overrides)
    batch = features_only(make_batch(LENGTHS))
    keep = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    perturbed = dict(batch)
    generator = torch.Generator().manual_seed(5)
    for b, m in ((0, "audio"), (1, "visual"), (2, "text")):
        x = perturbed[m].clone()
        x[b] = 10 * torch.randn(x[b].shape, generator=generator)
        perturbed[m] = x
    with torch.no_grad():
        out = model(**batch, modality_mask=keep)
        other = model(**perturbed, modality_mask=keep)
        full = model(**batch)
    torch.testing.assert_close(out.logits, other.logits)
    torch.testing.assert_close(out.modality_logits, other.modality_logits)
    assert (out.modality_repr[keep == 0] == 0).all()
    assert not torch.allclose(out.logits, full.logits)
    # an all-ones mask is the full model
    with torch.no_grad():
        torch.testing.assert_close(model(**batch, modality_mask=torch.ones(3, 3)).logits, full.logits)


# ------------------------------------------------------------------------------------------ loss


def hand_loss(
    out, labels, unimodal_labels, stage: str, polarity: str = "sims", contrastive: str = "unimodal"
):
    """CE(fused) [stage multimodal] + Σ_m CE(modality m, target_m) + SupCon over the 3B h_m (explicit)."""
    targets = []
    for i in range(3):
        column = unimodal_labels[:, i] if unimodal_labels is not None else torch.full_like(labels, -100)
        targets.append(torch.where(column != -100, column, labels))
    total = 0.0
    if stage == "multimodal":
        total += F.cross_entropy(out.logits, labels).item()
    for i in range(3):
        total += F.cross_entropy(out.modality_logits[:, i], targets[i]).item()
    feats = torch.cat([out.modality_repr[:, i] for i in range(3)])
    source = torch.cat(targets) if contrastive == "unimodal" else labels.repeat(3)
    rule = (lambda y: int(y > 1)) if polarity == "sims" else (lambda y: int(y >= 1))
    total += explicit_supcon(feats, [rule(int(y)) for y in source], 0.07)
    return total


@pytest.mark.parametrize(
    ("stage", "polarity", "contrastive"),
    [
        ("multimodal", "sims", "unimodal"),
        ("multimodal", "mosi", "multimodal"),
        ("unimodal", "sims", "unimodal"),
        ("unimodal", "mosi", "unimodal"),
    ],
)
def test_loss_equals_hand_assembled_sum(stage, polarity, contrastive):
    model = tiny_model(stage=stage, polarity=polarity, contrastive_labels=contrastive)
    batch = make_batch(LENGTHS)
    labels = torch.tensor([2, 0, 1])
    # text of sample 0 and everything of sample 2 fall back to the multimodal label
    unimodal = torch.tensor([[-100, 2, 0], [1, 0, 2], [-100, -100, -100]])
    out = model(**features_only(batch), labels=labels, unimodal_labels=unimodal)
    assert out.loss.item() == pytest.approx(
        hand_loss(out, labels, unimodal, stage, polarity, contrastive), rel=1e-5
    )
    assert ("fused_ce" in out.loss_parts) == (stage == "multimodal")
    assert set(out.loss_parts) >= {
        "unimodal_ce_text",
        "unimodal_ce_audio",
        "unimodal_ce_visual",
        "contrastive",
    }


def test_unimodal_stage_has_no_fused_term_and_weights_apply():
    batch = features_only(make_batch(LENGTHS))
    labels = torch.tensor([2, 0, 1])
    unimodal_stage = tiny_model(stage="unimodal")(**batch, labels=labels)
    parts = unimodal_stage.loss_parts
    expected = sum(parts[f"unimodal_ce_{m}"] for m in MODALITIES) + parts["contrastive"]
    assert unimodal_stage.loss.item() == pytest.approx(expected, rel=1e-5)
    weighted = tiny_model(unimodal_loss_weight=0.5, contrastive_weight=0.0)(**batch, labels=labels)
    parts = weighted.loss_parts
    assert "contrastive" not in parts
    expected = parts["fused_ce"] + 0.5 * sum(parts[f"unimodal_ce_{m}"] for m in MODALITIES)
    assert weighted.loss.item() == pytest.approx(expected, rel=1e-5)


def test_targets_fall_back_to_the_multimodal_label():
    model = tiny_model()
    batch = features_only(make_batch(LENGTHS))
    labels = torch.tensor([2, 0, 1])
    none = model(**batch, labels=labels)
    all_missing = model(**batch, labels=labels, unimodal_labels=torch.full((3, 3), -100))
    explicit = model(**batch, labels=labels, unimodal_labels=labels[:, None].expand(3, 3))
    assert none.loss.item() == pytest.approx(all_missing.loss.item())
    assert none.loss.item() == pytest.approx(explicit.loss.item())


def test_logit_temperature_scales_fused_logits_only():
    model = tiny_model()
    batch = features_only(make_batch(LENGTHS))
    with torch.no_grad():
        base = model(**batch)
        model.config.logit_temperature = 2.0
        scaled = model(**batch)
    torch.testing.assert_close(scaled.logits, base.logits / 2)
    torch.testing.assert_close(scaled.modality_logits, base.modality_logits)


# ------------------------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("overrides", [{}, {"stage": "unimodal"}, {"fusion": "concat", "router_top_k": 2}])
def test_save_pretrained_auto_round_trip(tmp_path, overrides):
    model = tiny_model(**overrides)
    batch = features_only(make_batch(LENGTHS))
    model.train()
    model(**batch)  # move the BatchNorm running statistics away from their initial values
    model.eval()
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.model_type == "merc_cmc" and config.stage == model.config.stage
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is CMCModel
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    # identical tensors; SIMD kernels may round the last bit differently on differently aligned memory
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, atol=1e-6, rtol=0)


def test_init_follows_pytorch_defaults():
    model = tiny_model()
    attention = model.encoders["text"].transformer.layers[0].self_attn
    assert (attention.in_proj_bias == 0).all() and (attention.out_proj.bias == 0).all()
    bound = math.sqrt(6 / (8 + 8))  # Xavier-uniform of each (E, E) slice is bounded by √(6 / (3E + E))
    assert attention.in_proj_weight.abs().max() <= bound
    norm = model.encoders["visual"].norm
    assert (norm.weight == 1).all() and (norm.running_var == 1).all() and (norm.running_mean == 0).all()
    conv = model.encoders["audio"].projection.weight
    assert conv.abs().max() <= 1 / math.sqrt(DIMS["audio"])  # Kaiming-uniform(a=√5) bound 1/√fan_in


def test_from_unimodal_copies_encoders_and_heads(tmp_path):
    stage1 = tiny_model(seed=1, stage="unimodal").train()
    stage1(**features_only(make_batch(LENGTHS)))  # non-trivial BatchNorm statistics
    stage2 = CMCModel.from_unimodal(stage1, router_top_k=2)
    assert (
        stage2.config.stage == "multimodal" and stage2.config.router_top_k == 2 and stage2.router is not None
    )
    assert stage2.training
    source = stage1.state_dict()
    for key, value in stage2.state_dict().items():
        if key.startswith(("encoders.", "heads.")):
            torch.testing.assert_close(value, source[key], atol=0, rtol=0)
        else:
            assert key.startswith("router.")
    stage1.save_pretrained(tmp_path)
    from_path = CMCModel.from_unimodal(tmp_path, fusion="concat")
    assert from_path.concat_head is not None
    torch.testing.assert_close(
        from_path.encoders["visual"].norm.running_mean, stage1.encoders["visual"].norm.running_mean
    )
    with pytest.raises(ValueError, match="must not change"):
        CMCModel.from_unimodal(stage1, feedforward_dim=32)
    with pytest.raises(ValueError, match="CMCModel or a checkpoint"):
        CMCModel.from_unimodal(42)


def test_trains_on_a_tiny_batch():
    torch.manual_seed(0)
    model = tiny_model().train()
    batch = make_batch(LENGTHS)
    batch["unimodal_labels"] = torch.tensor([[0, 1, -100], [2, 2, 2], [1, -100, 0]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"visual_dim": None}, "CMC uses text, audio and visual"),
        ({"embed_dim": 0}, "embed_dim must be a positive int"),
        ({"embed_dim": 9, "num_heads": 2}, "divisible by num_heads"),
        ({"num_layers": 1.5}, "num_layers must be a positive int"),
        ({"out_dropout": 1.0}, "out_dropout must be in"),
        ({"dropout": -0.1}, "dropout must be in"),
        ({"fusion_temperature": 0}, "fusion_temperature must be a finite number > 0"),
        ({"contrastive_temperature": float("inf")}, "contrastive_temperature"),
        ({"router_top_k": 4}, "router_top_k must be an int in"),
        ({"router_top_k": True}, "router_top_k must be an int in"),
        ({"fusion": "sum"}, "fusion must be one of"),
        ({"stage": "both"}, "stage must be one of"),
        ({"polarity": "mosei"}, "polarity must be one of"),
        ({"contrastive_labels": "gold"}, "contrastive_labels must be one of"),
        ({"contrastive_weight": -1}, "contrastive_weight must be"),
        ({"unimodal_loss_weight": float("nan")}, "unimodal_loss_weight must be"),
        ({"n_speakers": 2}, "n_speakers must be 1"),
        ({"modality_removal": "mean"}, "modality_removal must be 'zero'"),
        ({"num_labels": 2}, "CMC has 3 classes"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_defaults_are_cmc_on_sims():
    config = CMCConfig()
    assert (config.text_dim, config.audio_dim, config.visual_dim) == (768, 33, 709)
    assert (config.embed_dim, config.feedforward_dim, config.num_layers, config.num_heads) == (32, 128, 5, 4)
    assert (config.dropout, config.out_dropout, config.router_top_k) == (0.1, 0.4, 3)
    assert config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert CMCModel.merc_task == "sentiment"


def test_input_validation():
    model = tiny_model()
    batch = features_only(make_batch(LENGTHS))
    with pytest.raises(ValueError, match="lacks \\['audio'\\]"):
        model(**{**batch, "audio": None})
    with pytest.raises(ValueError, match="visual must have shape"):
        model(**{**batch, "visual": torch.randn(3, 2, 7)})
    with pytest.raises(ValueError, match="text must have shape"):
        model(**{**batch, "text": torch.randn(3, 6)})
    with pytest.raises(ValueError, match="audio must have shape \\(B=3"):
        model(**{**batch, "audio": torch.randn(2, 7, 5), "audio_mask": None})
    with pytest.raises(ValueError, match="audio_mask must have shape"):
        model(**{**batch, "audio_mask": torch.ones(3, 2, dtype=torch.bool)})
    empty = batch["visual_mask"].clone()
    empty[1] = False
    with pytest.raises(ValueError, match="sample\\(s\\) \\[1\\] of the batch have no real visual frame"):
        model(**{**batch, "visual_mask": empty})
    with pytest.raises(ValueError, match="modality_mask must have shape"):
        model(**batch, modality_mask=torch.ones(3, 2))
    with pytest.raises(ValueError, match="modality_mask values"):
        model(**batch, modality_mask=torch.full((3, 3), 2.0))
    with pytest.raises(ValueError, match="labels must have shape"):
        model(**batch, labels=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="unimodal_labels must have shape"):
        model(**batch, labels=torch.zeros(3, dtype=torch.long), unimodal_labels=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="labels must be in"):
        model(**batch, labels=torch.tensor([0, 3, 1]))
    # masks may be omitted (all frames real) and regression labels are accepted but unused
    out = model(
        text=batch["text"], audio=batch["audio"], visual=batch["visual"], regression_labels=torch.zeros(3)
    )
    assert out.loss is None and out.loss_parts is None
