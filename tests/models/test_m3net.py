"""Tests of M3Net: shapes, agreement with an edge-list definition, padding/batch invariance, exact context
removal, modality removal, missing modalities, losses, save/load and a few training steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

import merc_hf  # noqa: F401  (registers the Auto classes)
from merc_hf.models.base import EmotionRecognitionOutput, build_context_mask, emotion_loss
from merc_hf.models.m3net import M3NetConfig, M3NetModel

DIMS = {"text": 12, "audio": 10, "visual": 8}


def small_config(**overrides) -> M3NetConfig:
    values = dict(
        text_dim=DIMS["text"],
        audio_dim=DIMS["audio"],
        visual_dim=DIMS["visual"],
        hidden_size=16,
        graph_hidden_size=8,
        n_speakers=3,
        dropout=0.1,
    )
    values.update(overrides)
    return M3NetConfig(**values)


def small_model(seed: int = 0, **overrides) -> M3NetModel:
    torch.manual_seed(seed)
    model = M3NetModel(small_config(**overrides)).eval()
    with torch.no_grad():  # move the hypergraph weights away from 1 so that the tests see them
        model.hypergraph.modality_edge_weight.copy_(torch.tensor([0.7, 1.3, 2.0][: len(model.modalities)]))
        model.hypergraph.utterance_edge_weight.fill_(0.5)
        model.hypergraph.node_weight.copy_(torch.tensor([1.5, 0.8, 1.1][: len(model.modalities)]))
        model.hypergraph.bias.normal_(0.0, 0.1)
    return model


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


# ------------------------------------------------------------------------------------------ basics


def test_output_shapes_and_tuple_output(make_batch):
    model = small_model()
    batch = make_batch([5, 3, 1], DIMS, n_speakers=3)
    out = model(**batch)
    assert isinstance(out, EmotionRecognitionOutput)
    assert out.logits.shape == (3, 5, 6)
    assert out.utterance_repr.shape == (3, 5, 2 * 8 * 3)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.utterance_repr[1, 3:].abs().sum() == 0 and out.utterance_repr[2, 1:].abs().sum() == 0
    as_tuple = model(**batch, return_dict=False)
    assert len(as_tuple) == 3
    torch.testing.assert_close(as_tuple[1], out.logits)
    assert model(**model_inputs(batch)).loss is None


def _reference_repr(model: M3NetModel, x1: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """M3Net's graph part for one dialogue written with explicit hyperedge and edge lists (the reference's
    sparse formulation). ``x1`` is ``(M, n, H)`` after ``fc1``; ``context`` an equivalence-relation mask."""
    num_modalities, n, hidden = x1.shape
    hg = model.hypergraph

    def node(m: int, i: int) -> int:
        return m * n + i

    classes = sorted({tuple(row.nonzero().squeeze(-1).tolist()) for row in context})
    hyperedges = [
        ([node(m, i) for i in cls], hg.modality_edge_weight[m])
        for m in range(num_modalities)
        for cls in classes
    ]
    hyperedges += [
        ([node(m, i) for m in range(num_modalities)], hg.utterance_edge_weight[0]) for i in range(n)
    ]
    x = x1.reshape(num_modalities * n, hidden)
    for layer in range(hg.num_layers):
        out = torch.zeros_like(x)
        degree = torch.zeros(x.shape[0])
        for members, weight in hyperedges:
            feature = x[members].sum(0) / sum(hg.node_weight[v // n] for v in members)
            for v in members:
                out[v] += weight * feature
                degree[v] += weight
        x = F.leaky_relu(out / degree[:, None] + hg.bias[layer])
    hyper = x

    edges = [
        (node(m, j), node(m, i))
        for m in range(num_modalities)
        for i in range(n)
        for j in range(n)
        if i != j and context[i, j]
    ]
    edges += [
        (node(m2, i), node(m, i))
        for i in range(n)
        for m in range(num_modalities)
        for m2 in range(num_modalities)
        if m != m2
    ]
    in_degree = torch.zeros(num_modalities * n)
    for _, dst in edges:
        in_degree[dst] += 1
    g = x1.reshape(num_modalities * n, hidden)
    for conv in model.frequency_layers:
        out = torch.zeros_like(g)
        for src, dst in edges:
            gate = torch.tanh(conv.gate(torch.cat([g[dst], g[src]])))
            out[dst] += in_degree[dst] ** -0.5 * in_degree[src] ** -0.5 * gate * g[src]
        g = g + out
    per_node = torch.cat([hyper, g], dim=-1).reshape(num_modalities, n, 2 * hidden)
    return per_node.permute(1, 0, 2).reshape(n, -1)


@pytest.mark.parametrize("view", ["full", "O"])
def test_dense_model_matches_edge_list_definition(make_batch, view):
    model = small_model()
    batch = make_batch([5], DIMS, n_speakers=3, speakers=[[0, 1, 0, 2, 1]])
    context = build_context_mask(view, batch["same_speaker"], batch["utterance_mask"])
    with torch.no_grad():
        out = model(**batch, context_mask=context)
        inputs = model.prepare_inputs(
            batch["text"],
            batch["audio"],
            batch["visual"],
            batch["speakers"],
            batch["utterance_mask"],
            None,
            context,
        )
        x1 = model.node_projection(model._encode_modalities(inputs))[0]
        expected = _reference_repr(model, x1, inputs.context_mask[0])
    torch.testing.assert_close(out.utterance_repr[0], expected, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ padding


def test_padding_never_influences_real_utterances(make_batch):
    model = small_model()
    batch = make_batch([6, 3, 4], DIMS, n_speakers=3, seed=1)
    longer = make_batch([6, 3, 4], DIMS, n_speakers=3, seed=1, max_len=9)
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


def test_dialogue_output_does_not_depend_on_the_rest_of_the_batch(make_batch):
    model = small_model()
    batch = make_batch([4, 7, 2], DIMS, n_speakers=3, seed=2)
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
    batch = make_batch([7, 4], DIMS, n_speakers=3, speakers=speakers, seed=3)
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
    batch = make_batch([6, 5], DIMS, n_speakers=3, seed=4, speakers=[[0, 1, 0, 1, 1, 0], [0, 1, 2, 0, 1]])
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
    batch = make_batch([6, 5], DIMS, n_speakers=3, seed=5)
    context = build_context_mask("X", batch["same_speaker"], batch["utterance_mask"])
    model(**batch, context_mask=context).loss.backward()
    assert model.text_rnn.forward_layers[0].weight_ih_l0.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


# ------------------------------------------------------------------------------------------ modalities


def test_modality_removal(make_batch):
    batch = make_batch([5, 4], DIMS, n_speakers=3, seed=6)
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
    with torch.no_grad():
        as_mean = small_model(modality_removal="mean")(**batch, modality_mask=drop_audio).logits
        as_zero = small_model(modality_removal="zero")(**batch, modality_mask=drop_audio).logits
    assert (as_mean[0][mask[0]] - as_zero[0][mask[0]]).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        ({"text": 12}, ("text",)),
        ({"audio": 10, "visual": 8}, ("audio", "visual")),
        ({"text": 12, "visual": 8}, ("text", "visual")),
    ],
)
def test_missing_modality_configs(make_batch, dims, expected):
    overrides = {f"{m}_dim": dims.get(m) for m in DIMS}
    model = small_model(**overrides)
    assert model.modalities == expected
    batch = make_batch([4, 2], DIMS, n_speakers=3, seed=7)  # the extra modalities of the batch are ignored
    out = model(**batch)
    assert out.utterance_repr.shape == (2, 4, 2 * 8 * len(expected))
    assert torch.isfinite(out.loss)
    only = {k: v for k, v in batch.items() if k not in DIMS or k in dims}
    torch.testing.assert_close(model(**only).logits, out.logits)
    out.loss.backward()


def test_text_without_projection_and_missing_modality_error(make_batch):
    model = small_model(text_dim=16, text_projection=False)
    assert model.text_projection is None
    batch = make_batch([3], {"text": 16, "audio": 10, "visual": 8}, n_speakers=3)
    assert model(**batch).logits.shape == (1, 3, 6)
    with pytest.raises(ValueError, match="lacks"):
        model(text=batch["text"], audio=batch["audio"], utterance_mask=batch["utterance_mask"])
    with pytest.raises(ValueError):
        small_model(text_dim=12, text_projection=False)
    with pytest.raises(ValueError, match="speaker"):
        model(**{**batch, "speakers": torch.full_like(batch["speakers"], 5)})
    with pytest.raises(ValueError, match="speakers"):
        model(text=batch["text"], audio=batch["audio"], visual=batch["visual"])
    no_speaker_model = small_model(text_dim=16, text_projection=False, use_speaker_embeddings=False)
    assert no_speaker_model(
        text=batch["text"], audio=batch["audio"], visual=batch["visual"]
    ).logits.shape == (1, 3, 6)


# ------------------------------------------------------------------------------------------ edge cases


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
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=8)
    weights = [1.0, 2.0, 0.5, 1.5, 1.0, 3.0]
    for loss_type in ("cross_entropy", "focal", "reference_focal"):
        model = small_model(loss_type=loss_type, class_weights=weights, focal_gamma=2.5)
        with torch.no_grad():
            out = model(**batch)
        expected = emotion_loss(out.logits, batch["labels"], loss_type, weights, 2.5)
        torch.testing.assert_close(out.loss, expected)


# ------------------------------------------------------------------------------------------ hub


def test_save_and_load_round_trip(make_batch, tmp_path):
    model = small_model(class_weights=[1.0, 2.0, 0.5, 1.5, 1.0, 3.0], loss_type="focal")
    batch = make_batch([5, 3], DIMS, n_speakers=3, seed=9)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert isinstance(loaded, M3NetModel)
    reloaded_state = loaded.state_dict()
    assert reloaded_state.keys() == model.state_dict().keys()
    assert all(torch.equal(reloaded_state[k], v) for k, v in model.state_dict().items())
    # same weights; tensors memory-mapped from safetensors may be differently aligned, which changes the
    # SIMD summation order of a few kernels in the last bit, hence atol 1e-6 rather than bitwise equality
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, atol=1e-6, rtol=0)
    as_classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, dtype=torch.float32)
    assert isinstance(as_classifier, M3NetModel)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, M3NetConfig) and config.model_type == "merc_m3net"
    saved, original = config.to_dict(), model.config.to_dict()
    saved.pop("_name_or_path", None)
    original.pop("_name_or_path", None)
    assert saved == original
    assert config.id2label == model.config.id2label and config.label2id == model.config.label2id
    assert (config.num_L, config.num_K, config.class_weights) == (3, 4, model.config.class_weights)


def test_default_config_is_the_iemocap_setting():
    config = M3NetConfig()
    assert (config.text_dim, config.audio_dim, config.visual_dim) == (1024, 1582, 342)
    assert (config.hidden_size, config.graph_hidden_size, config.num_L, config.num_K) == (512, 512, 3, 4)
    assert config.num_labels == 6 and config.label2id["fru"] == 5
    fresh = M3NetModel(small_config())
    assert torch.equal(fresh.hypergraph.node_weight, torch.ones(3))
    assert torch.equal(fresh.hypergraph.bias, torch.zeros(3, 8))
    with pytest.raises(ValueError):
        M3NetConfig(hidden_size=15)
    with pytest.raises(ValueError):
        M3NetConfig(num_K=-1)


# ------------------------------------------------------------------------------------------ training


def test_adam_steps_decrease_the_loss(make_batch):
    model = small_model(dropout=0.0).train()
    batch = make_batch([6, 4, 5], DIMS, n_speakers=3, seed=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_agree(make_batch):
    model = small_model()
    batch = make_batch([6, 4], DIMS, n_speakers=3, seed=11)
    context = build_context_mask("X", batch["same_speaker"], batch["utterance_mask"])
    with torch.no_grad():
        on_cpu = model(**batch, context_mask=context)
        model.cuda()
        on_gpu = model(**{k: v.cuda() for k, v in batch.items()}, context_mask=context.cuda())
    torch.testing.assert_close(on_gpu.logits.cpu(), on_cpu.logits, atol=1e-4, rtol=1e-4)
