"""Tests of MMGCN: shapes, agreement of the adjacency and the GCNII stack with explicit loops,
padding/batch invariance, exact context removal, modality removal, missing modalities, save/load, a few
training steps, reference defaults and config validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

import merc_hf  # noqa: F401  (registers the Auto classes)
from merc_hf.models.base import EmotionRecognitionOutput, build_context_mask, emotion_loss
from merc_hf.models.mmgcn import MMGCNConfig, MMGCNModel, angular_similarity, multimodal_adjacency

DIMS = {"text": 6, "audio": 5, "visual": 4}


def small_config(**overrides) -> MMGCNConfig:
    values = dict(
        text_dim=DIMS["text"],
        audio_dim=DIMS["audio"],
        visual_dim=DIMS["visual"],
        D_e=4,
        graph_hidden_size=8,
        num_layers=3,
        n_speakers=3,
        dropout=0.0,
    )
    values.update(overrides)
    return MMGCNConfig(**values)


def small_model(seed: int = 0, **overrides) -> MMGCNModel:
    torch.manual_seed(seed)
    return MMGCNModel(small_config(**overrides)).eval()


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


# ------------------------------------------------------------------------------------------ basics


def test_output_shapes_and_tuple_output(make_batch):
    model = small_model()
    batch = make_batch([5, 3, 1], DIMS, n_speakers=3)
    out = model(**batch)
    assert isinstance(out, EmotionRecognitionOutput)
    assert out.logits.shape == (3, 5, 6)
    assert out.utterance_repr.shape == (3, 5, 3 * (8 + 8))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.utterance_repr[1, 3:].abs().sum() == 0 and out.utterance_repr[2, 1:].abs().sum() == 0
    as_tuple = model(**batch, return_dict=False)
    assert len(as_tuple) == 3
    torch.testing.assert_close(as_tuple[1], out.logits)
    assert model(**model_inputs(batch)).loss is None
    no_residue = small_model(use_residue=False)
    assert no_residue(**batch).utterance_repr.shape == (3, 5, 3 * 8)


# ------------------------------------------------------------------------------------------ loops


def _loop_adjacency(nodes: torch.Tensor, context: torch.Tensor, n: int) -> list[list[float]]:
    """The unnormalised adjacency of one dialogue, entry by entry with ``math`` (as the reference's
    ``create_big_adj`` describes it, restricted to ``context``). ``nodes`` ``(M, T, D)``; only the first
    ``n`` utterances are real."""
    num_modalities, length, _ = nodes.shape

    def weight(x: torch.Tensor, y: torch.Tensor) -> float:
        cos = float(x @ y) / (float(x.norm()) * float(y.norm()))
        return 1.0 - math.acos(max(-0.99999, min(0.99999, cos * 0.99999))) / math.pi

    size = num_modalities * length
    adjacency = [[0.0] * size for _ in range(size)]
    for m in range(num_modalities):
        for i in range(n):
            for m2 in range(num_modalities):
                for j in range(n):
                    row, col = m * length + i, m2 * length + j
                    if m == m2 and i == j:
                        adjacency[row][col] = 1.0
                    elif m == m2 and context[i, j]:
                        adjacency[row][col] = weight(nodes[m, i], nodes[m, j])
                    elif m != m2 and i == j:
                        adjacency[row][col] = weight(nodes[m, i], nodes[m2, i])
    return adjacency


@pytest.mark.parametrize("view", ["full", "O", "X"])
def test_adjacency_matches_loop_definition(make_batch, view):
    batch = make_batch([5, 3], {"text": 4}, n_speakers=3, speakers=[[0, 1, 0, 2, 1], [1, 1, 0]], seed=1)
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    context = context if context is not None else batch["same_speaker"] | ~batch["same_speaker"]
    context = context & batch["utterance_mask"][:, :, None] & batch["utterance_mask"][:, None, :]
    generator = torch.Generator().manual_seed(0)
    nodes = torch.randn(2, 3, 5, 7, generator=generator, dtype=torch.float64)
    adjacency = multimodal_adjacency(nodes, context, batch["utterance_mask"])
    assert adjacency.shape == (2, 15, 15)
    for b, n in enumerate([5, 3]):
        expected = torch.tensor(_loop_adjacency(nodes[b], context[b], n), dtype=torch.float64)
        torch.testing.assert_close(adjacency[b], expected, atol=1e-12, rtol=0)
    if view == "full":  # the reference connects every pair of a modality, i.e. a symmetric matrix
        torch.testing.assert_close(adjacency, adjacency.transpose(1, 2))
    assert float(angular_similarity(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(
        1 - math.acos(0.99999) / math.pi
    )
    assert float(angular_similarity(torch.tensor(-1.0, dtype=torch.float64))) == pytest.approx(
        math.acos(0.99999) / math.pi
    )


def _loop_graph_output(model: MMGCNModel, x: torch.Tensor, adjacency: list[list[float]]) -> torch.Tensor:
    """GCNII over one dialogue with a Python loop over target nodes: symmetric normalisation and
    ``h_i <- ReLU(θ [Σ_j Â_ij h_j ‖ h0_i] W + (1 − θ)((1 − α) Σ_j Â_ij h_j + α h0_i))``."""
    size = len(adjacency)
    degree = [sum(row) for row in adjacency]
    norm = [
        [adjacency[i][j] / math.sqrt(degree[i] * degree[j]) if adjacency[i][j] else 0.0 for j in range(size)]
        for i in range(size)
    ]
    graph = model.graph
    h0 = F.relu(graph.input_projection(x))
    h = h0
    for depth, layer in enumerate(graph.layers, start=1):
        theta = math.log(graph.lamda / depth + 1)
        rows = []
        for i in range(size):
            propagated = sum(norm[i][j] * h[j] for j in range(size))
            support = torch.cat([propagated, h0[i]])
            mixed = (1 - graph.alpha) * propagated + graph.alpha * h0[i]
            rows.append(F.relu(theta * (support @ layer.weight) + (1 - theta) * mixed))
        h = torch.stack(rows)
    return h


@pytest.mark.parametrize("view", ["full", "O"])
def test_graph_stack_matches_loop_definition(make_batch, view):
    model = small_model(alpha=0.3, lamda=0.7)
    batch = make_batch([5], DIMS, n_speakers=3, speakers=[[0, 1, 0, 2, 1]], seed=2)
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    with torch.no_grad():
        out = model(**batch, context_mask=context)
        inputs = model.prepare_inputs(
            batch["text"], batch["audio"], batch["visual"], batch["speakers"], batch["utterance_mask"],
            None, context,
        )  # fmt: skip
        nodes = model._encode_modalities(inputs)[0]  # (M, T, W)
        adjacency = _loop_adjacency(nodes, inputs.context_mask[0], 5)
        flat = nodes.reshape(3 * 5, -1)
        h = _loop_graph_output(model, flat, adjacency)
        per_node = torch.cat([flat, h], dim=-1).reshape(3, 5, -1)
        expected = per_node.permute(1, 0, 2).reshape(5, -1)
    torch.testing.assert_close(out.utterance_repr[0], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits[0], model.classifier(F.relu(expected)), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ padding


def test_padding_never_influences_real_utterances(make_batch):
    model = small_model()
    batch = make_batch([6, 3, 4], DIMS, n_speakers=3, seed=3)
    longer = make_batch([6, 3, 4], DIMS, n_speakers=3, seed=3, max_len=9)
    for key in ("text", "audio", "visual", "speakers", "labels"):
        longer[key][:, :6] = batch[key]
    with torch.no_grad():
        reference = model(**batch)
        padded = model(**longer)
        noisy = {k: v.clone() for k, v in longer.items()}
        for key in DIMS:
            noisy[key][~noisy["utterance_mask"]] = 1e3 * torch.randn_like(
                noisy[key][~noisy["utterance_mask"]]
            )
        changed = model(**noisy)
    mask = batch["utterance_mask"]
    torch.testing.assert_close(padded.logits[:, :6][mask], reference.logits[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        changed.logits[longer["utterance_mask"]], padded.logits[longer["utterance_mask"]]
    )
    torch.testing.assert_close(padded.loss, reference.loss, atol=1e-6, rtol=1e-5)
    assert torch.isfinite(changed.logits).all()


def test_dialogue_output_does_not_depend_on_the_rest_of_the_batch(make_batch):
    model = small_model()
    batch = make_batch([4, 7, 2], DIMS, n_speakers=3, seed=4)
    alone = {k: v[1:2] for k, v in batch.items()}
    with torch.no_grad():
        together = model(**batch).logits[1]
        single = model(**alone).logits[0]
    torch.testing.assert_close(together, single, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ context


@pytest.mark.parametrize("remove_text", [False, True])
def test_inter_speaker_removal_is_exact(make_batch, remove_text):
    model = small_model()
    speakers = [[0, 1, 0, 0, 2, 1, 0], [1, 0, 0, 1]]
    batch = make_batch([7, 4], DIMS, n_speakers=3, speakers=speakers, seed=5)
    context = build_context_mask("O", batch["same_speaker"], batch["utterance_mask"])
    target_speaker = batch["speakers"] == 0
    others = batch["utterance_mask"] & ~target_speaker
    perturbed = {k: v.clone() for k, v in batch.items()}
    for key in DIMS:
        perturbed[key][others] = 10 * torch.randn_like(perturbed[key][others])
    modality_mask = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]]) if remove_text else None
    with torch.no_grad():
        before = model(**batch, context_mask=context, modality_mask=modality_mask)
        after = model(**perturbed, context_mask=context, modality_mask=modality_mask)
        full_before = model(**batch)
        full_after = model(**perturbed)
    targets = batch["utterance_mask"] & target_speaker
    torch.testing.assert_close(after.logits[targets], before.logits[targets], atol=1e-6, rtol=0)
    torch.testing.assert_close(
        after.utterance_repr[targets], before.utterance_repr[targets], atol=1e-6, rtol=0
    )
    # with full context the same perturbation does reach the targets
    assert (full_after.logits[targets] - full_before.logits[targets]).abs().max() > 1e-4


def test_context_views_change_outputs_and_full_mask_equals_none(make_batch):
    model = small_model()
    batch = make_batch([6, 5], DIMS, n_speakers=3, seed=6, speakers=[[0, 1, 0, 1, 1, 0], [0, 1, 2, 0, 1]])
    with torch.no_grad():
        full = model(**batch).logits
        explicit = model(**batch, context_mask=torch.ones(2, 6, 6, dtype=torch.bool)).logits
        o_view = model(
            **batch, context_mask=build_context_mask("O", batch["same_speaker"], batch["utterance_mask"])
        )
        x_view = model(
            **batch, context_mask=build_context_mask("X", batch["same_speaker"], batch["utterance_mask"])
        )
    mask = batch["utterance_mask"]
    torch.testing.assert_close(explicit[mask], full[mask], atol=1e-6, rtol=1e-5)
    assert (o_view.logits[mask] - full[mask]).abs().max() > 1e-4
    assert (x_view.logits[mask] - full[mask]).abs().max() > 1e-4
    assert (x_view.logits[mask] - o_view.logits[mask]).abs().max() > 1e-4


def test_x_view_trains(make_batch):
    model = small_model().train()
    batch = make_batch([6, 5], DIMS, n_speakers=3, seed=7)
    context = build_context_mask("X", batch["same_speaker"], batch["utterance_mask"])
    model(**batch, context_mask=context).loss.backward()
    assert model.text_rnn.forward_layers[0].weight_ih_l0.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


# ------------------------------------------------------------------------------------------ modalities


def test_modality_removal(make_batch):
    batch = make_batch([5, 4], DIMS, n_speakers=3, seed=8)
    keep_all = torch.ones(2, 3)
    drop_audio = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    mask = batch["utterance_mask"]
    for removal in ("mean", "zero"):
        model = small_model(modality_removal=removal)
        with torch.no_grad():
            full = model(**batch).logits
            kept = model(**batch, modality_mask=keep_all).logits
            dropped = model(**batch, modality_mask=drop_audio).logits
        torch.testing.assert_close(kept, full)
        assert (dropped[0][mask[0]] - full[0][mask[0]]).abs().max() > 1e-4
        torch.testing.assert_close(dropped[1][mask[1]], full[1][mask[1]])


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        ({"text": 6}, ("text",)),
        ({"audio": 5, "visual": 4}, ("audio", "visual")),
        ({"text": 6, "visual": 4}, ("text", "visual")),
    ],
)
def test_missing_modality_configs(make_batch, dims, expected):
    overrides = {f"{m}_dim": dims.get(m) for m in DIMS}
    model = small_model(**overrides)
    assert model.modalities == expected
    batch = make_batch([4, 2], DIMS, n_speakers=3, seed=9)  # the extra modalities of the batch are ignored
    out = model(**batch)
    assert out.utterance_repr.shape == (2, 4, 16 * len(expected))
    assert torch.isfinite(out.loss)
    only = {k: v for k, v in batch.items() if k not in DIMS or k in dims}
    torch.testing.assert_close(model(**only).logits, out.logits)
    out.loss.backward()


def test_speakers_are_required_only_with_speaker_embeddings(make_batch):
    batch = make_batch([3], DIMS, n_speakers=3)
    features = {k: batch[k] for k in DIMS}
    model = small_model()
    with pytest.raises(ValueError, match="speakers"):
        model(**features)
    with pytest.raises(ValueError, match="speaker"):
        model(**{**batch, "speakers": torch.full_like(batch["speakers"], 5)})
    with pytest.raises(ValueError, match="lacks"):
        model(text=batch["text"], audio=batch["audio"], speakers=batch["speakers"])
    assert small_model(use_speaker_embeddings=False)(**features).logits.shape == (1, 3, 6)
    no_text = small_model(text_dim=None)
    assert no_text.speaker_embeddings is None
    assert no_text(**features).logits.shape == (1, 3, 6)


def test_length_one_and_single_speaker_dialogues(make_batch):
    model = small_model()
    one = make_batch([1], DIMS, n_speakers=3)
    out = model(**one)
    assert out.logits.shape == (1, 1, 6) and torch.isfinite(out.loss)
    single = make_batch([5, 1], DIMS, speakers=[[0] * 5, [0]])
    for view in ("full", "O", "X"):
        context = build_context_mask(view, single["same_speaker"], single["utterance_mask"])
        result = model(**single, context_mask=context)
        assert torch.isfinite(result.logits).all() and torch.isfinite(result.loss)
    with torch.no_grad():
        o_view = model(
            **single, context_mask=build_context_mask("O", single["same_speaker"], single["utterance_mask"])
        )
        full = model(**single)
    torch.testing.assert_close(o_view.logits[single["utterance_mask"]], full.logits[single["utterance_mask"]])


def test_configured_loss_is_used(make_batch):
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=10)
    weights = [1.0, 2.0, 0.5, 1.5, 1.0, 3.0]
    for loss_type in ("cross_entropy", "focal", "reference_focal"):
        model = small_model(loss_type=loss_type, class_weights=weights, focal_gamma=2.5)
        with torch.no_grad():
            out = model(**batch)
        expected = emotion_loss(out.logits, batch["labels"], loss_type, weights, 2.5)
        torch.testing.assert_close(out.loss, expected)


# ------------------------------------------------------------------------------------------ hub


def test_save_and_load_round_trip(make_batch, tmp_path):
    model = small_model(class_weights=[1.0, 2.0, 0.5, 1.5, 1.0, 3.0], loss_type="focal", alpha=0.2)
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=11)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert isinstance(loaded, MMGCNModel)
    reloaded_state = loaded.state_dict()
    assert reloaded_state.keys() == model.state_dict().keys()
    assert all(torch.equal(reloaded_state[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, atol=1e-6, rtol=0)
    as_classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, dtype=torch.float32)
    assert isinstance(as_classifier, MMGCNModel)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, MMGCNConfig) and config.model_type == "merc_mmgcn"
    saved, original = config.to_dict(), model.config.to_dict()
    saved.pop("_name_or_path", None)
    original.pop("_name_or_path", None)
    assert saved == original
    assert (config.D_e, config.num_layers, config.alpha) == (4, 3, 0.2)


def test_default_config_is_the_reference_iemocap_setting():
    config = MMGCNConfig()
    assert (config.text_dim, config.audio_dim, config.visual_dim) == (100, 1582, 342)
    assert (config.D_e, config.graph_hidden_size, config.num_layers) == (100, 100, 64)
    assert (config.alpha, config.lamda, config.dropout) == (0.1, 0.5, 0.4)
    assert config.use_speaker_embeddings and config.use_residue
    assert config.n_speakers == 2 and config.num_labels == 6 and config.label2id["fru"] == 5
    model = MMGCNModel(config)
    assert model.classifier.in_features == 900  # 3 × (200 + 100), the reference's Linear(300·M, C)
    assert model.text_rnn.output_size == 200 and len(model.graph.layers) == 64
    assert model.graph.layers[0].weight.shape == (200, 100)
    assert model.graph.layers[0].weight.abs().max() <= 0.1  # U(±1/√100)


@pytest.mark.parametrize(
    "overrides",
    [
        {"D_e": 0},
        {"graph_hidden_size": 2.5},
        {"num_layers": 0},
        {"num_layers": True},
        {"alpha": 1.5},
        {"alpha": float("nan")},
        {"lamda": 0.0},
        {"use_residue": "yes"},
        {"text_dim": None, "audio_dim": None, "visual_dim": None},
        {"dropout": 1.0},
    ],
)
def test_config_validation(overrides):
    with pytest.raises(ValueError):
        MMGCNConfig(**overrides)


# ------------------------------------------------------------------------------------------ training


def test_adam_steps_decrease_the_loss(make_batch):
    model = small_model().train()
    batch = make_batch([6, 4, 5], DIMS, n_speakers=3, seed=12)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_dropout_is_active_in_training_only(make_batch):
    model = small_model(dropout=0.5)
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=13)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, model(**batch).logits)
        model.train()
        torch.manual_seed(0)
        first = model(**batch).logits
        torch.manual_seed(1)
        second = model(**batch).logits
    assert (first - second).abs().max() > 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_agree(make_batch):
    model = small_model()
    batch = make_batch([6, 4], DIMS, n_speakers=3, seed=14)
    context = build_context_mask("X", batch["same_speaker"], batch["utterance_mask"])
    with torch.no_grad():
        on_cpu = model(**batch, context_mask=context)
        model.cuda()
        on_gpu = model(**{k: v.cuda() for k, v in batch.items()}, context_mask=context.cuda())
    torch.testing.assert_close(on_gpu.logits.cpu(), on_cpu.logits, atol=1e-4, rtol=1e-4)
