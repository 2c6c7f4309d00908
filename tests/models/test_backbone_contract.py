"""The contract every merc_hf emotion backbone must pass: output shapes and the tuple output, padding and
batch invariance, exact inter-speaker removal, context views, modality removal and missing modalities, edge
cases, the configured loss, save/load through the Auto classes, a few training steps and CPU/CUDA agreement.

Every test runs once per entry of :data:`BACKBONES`. A new backbone joins the contract by adding one factory
(a :class:`Backbone`) to ``BACKBONES``; what is specific to a model (reference loops, graph construction,
default configs, config validation) stays in the model's own test file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from transformers import AutoConfig, AutoModel

import merc_hf  # noqa: F401  (registers the Auto classes)
from merc_hf.models.base import (
    EmotionRecognitionOutput,
    MercConfig,
    MercInputs,
    MercPreTrainedModel,
    build_context_mask,
    emotion_loss,
)
from merc_hf.models.dialoguegcn import DialogueGCNModel
from merc_hf.models.dialoguernn import DialogueRNNModel
from merc_hf.models.m3net import M3NetModel
from merc_hf.models.mmdfn import MMDFNModel
from merc_hf.models.mmgcn import MMGCNModel
from merc_hf.models.sure import SUREModel

CLASS_WEIGHTS = [1.0, 2.0, 0.5, 1.5, 1.0, 3.0]


@dataclass(frozen=True)
class Backbone:
    """A tiny-model factory: ``backbone(**config_overrides)`` builds the model in eval mode from a fixed seed,
    with ``dims`` as feature sizes, three speakers, dropout 0 and ``tiny_config`` unless overridden. The model
    files use the same factory for their own tests. The fields after ``tiny_config`` are what the contract
    expects of this backbone where backbones legitimately differ; their defaults are the strict settings."""

    model_class: type[MercPreTrainedModel]
    dims: dict[str, int]  # feature size of each modality of the tiny config
    tiny_config: dict[str, Any]  # the other values of the tiny config
    model_type: str
    repr_width: Callable[[int], int]  # width of ``utterance_repr`` given the number of modalities
    encoder_weight: str  # a first-layer weight of the utterance encoder, which training on the X view reaches
    prepare: Callable[[MercPreTrainedModel], None] | None = None  # applied to every new tiny model
    round_trip_overrides: dict[str, Any] = field(default_factory=dict)
    round_trip_config: dict[str, Any] = field(default_factory=dict)  # config values expected after reloading
    adam_loss_ratio: float = 0.5  # 25 Adam steps bring the loss below this fraction of the first loss
    training_variants: tuple[dict[str, Any], ...] = ({},)  # config overrides the training test covers

    def config(self, **overrides: Any) -> MercConfig:
        features = {f"{modality}_dim": dim for modality, dim in self.dims.items()}
        values = {**features, "n_speakers": 3, "dropout": 0.0, **self.tiny_config, **overrides}
        return self.model_class.config_class(**values)

    def __call__(self, **config_overrides: Any) -> MercPreTrainedModel:
        torch.manual_seed(0)
        model = self.model_class(self.config(**config_overrides)).eval()
        if self.prepare is not None:
            with torch.no_grad():
                self.prepare(model)
        return model


def spread_hypergraph_weights(model: M3NetModel) -> None:
    """Moves M3Net's hypergraph weights away from their initial values (1 and 0) so that the tests see them."""
    modalities = len(model.modalities)
    model.hypergraph.modality_edge_weight.copy_(torch.tensor([0.7, 1.3, 2.0][:modalities]))
    model.hypergraph.utterance_edge_weight.fill_(0.5)
    model.hypergraph.node_weight.copy_(torch.tensor([1.5, 0.8, 1.1][:modalities]))
    model.hypergraph.bias.normal_(0.0, 0.1)


BACKBONES: dict[str, Backbone] = {
    "m3net": Backbone(
        model_class=M3NetModel,
        dims={"text": 12, "audio": 10, "visual": 8},
        tiny_config={"hidden_size": 16, "graph_hidden_size": 8},
        model_type="merc_m3net",
        repr_width=lambda modalities: 2 * 8 * modalities,  # [hypergraph ‖ frequency graph] per modality
        encoder_weight="text_rnn.forward_layers.0.weight_ih_l0",
        prepare=spread_hypergraph_weights,
        round_trip_overrides={"loss_type": "focal"},
        round_trip_config={"num_L": 3, "num_K": 4},
    ),
    "mmgcn": Backbone(
        model_class=MMGCNModel,
        dims={"text": 6, "audio": 5, "visual": 4},
        tiny_config={"D_e": 4, "graph_hidden_size": 8, "num_layers": 3},
        model_type="merc_mmgcn",
        repr_width=lambda modalities: (8 + 8) * modalities,  # [node ‖ GCNII output] per modality
        encoder_weight="text_rnn.forward_layers.0.weight_ih_l0",
        round_trip_overrides={"loss_type": "focal", "alpha": 0.2},
        round_trip_config={"D_e": 4, "num_layers": 3, "alpha": 0.2},
    ),
    "mmdfn": Backbone(
        model_class=MMDFNModel,
        dims={"text": 6, "audio": 5, "visual": 4},
        tiny_config={
            "D_e": 4,
            "graph_hidden_size": 8,
            "num_layers": 3,
            # every modality goes through the speaker GRU
            "speaker_weights": {"text": 1.0, "audio": 0.5, "visual": 1.5},
        },
        model_type="merc_mmdfn",
        repr_width=lambda modalities: (8 + 8) * modalities,  # [node ‖ dynamic-fusion output] per modality
        encoder_weight="text_rnn.forward_layers.0.weight_ih_l0",
        round_trip_overrides={"loss_type": "cross_entropy", "speaker_weights": "3-0-1", "alpha": 0.3},
        round_trip_config={
            "num_layers": 3,
            "alpha": 0.3,
            "speaker_weights": {"text": 1.0, "audio": 3.0, "visual": 0.0},
        },
        training_variants=({}, {"use_crn_speaker": False, "use_speaker_embeddings": True}),
    ),
    "dialoguegcn": Backbone(
        model_class=DialogueGCNModel,
        dims={"text": 6, "audio": 5, "visual": 4},
        tiny_config={"D_e": 4, "graph_hidden_size": 8, "window_past": 2, "window_future": 1, "num_bases": 3},
        model_type="merc_dialoguegcn",
        repr_width=lambda modalities: 8,  # the hidden layer before the classifier, whatever the modalities
        encoder_weight="rnn.forward_layers.0.weight_ih_l0",
        round_trip_overrides={"window_future": 3},
        round_trip_config={"window_past": 2, "window_future": 3, "modalities": ("text", "audio", "visual")},
        # the tiny model learns random labels slowly (the tanh-bounded nodal attention mixes each utterance
        # with its whole context), so the bar is a clear, steady decrease rather than memorisation
        adam_loss_ratio=0.85,
        training_variants=({"nodal_attention": True}, {"nodal_attention": False}),
    ),
    "dialoguernn": Backbone(
        model_class=DialogueRNNModel,
        dims={"text": 6, "audio": 5, "visual": 4},
        tiny_config={
            "D_g": 12,
            "D_p": 12,
            "D_e": 12,
            "D_h": 8,
            "D_a": 3,
            "rec_dropout": 0.0,
            "emotion_dropout": 0.0,
        },
        model_type="merc_dialoguernn",
        repr_width=lambda modalities: 2 * 8,  # the 2·D_h layer before the classifier, whatever the modalities
        encoder_weight="forward_rnn.global_cell.weight_ih",
        round_trip_overrides={"context_attention": "concat", "active_listener": True},
        round_trip_config={
            "D_g": 12,
            "context_attention": "concat",
            "active_listener": True,
            "emotion_dropout": 0.0,
        },
        # as for DialogueGCN, the emotion attention mixes each utterance with its whole dialogue, so the tiny
        # model learns random labels slowly: the bar is a clear, steady decrease rather than memorisation
        adam_loss_ratio=0.85,
        training_variants=({}, {"active_listener": True, "emotion_attention": False}),
    ),
    "sure": Backbone(
        model_class=SUREModel,
        dims={"text": 6, "audio": 5, "visual": 4},
        tiny_config={"hidden_size": 16, "num_heads": 2, "expert_latent_size": 4},
        model_type="merc_sure",
        repr_width=lambda modalities: 16 * modalities,  # the fusion-gated modality blocks, concatenated
        encoder_weight="projections.text.weight",
        round_trip_overrides={
            "learn_unimodal_gates": False,
            "num_selected_experts": 2,
            "distillation_temperature": 8.0,
        },
        round_trip_config={
            "learn_unimodal_gates": False,
            "num_selected_experts": 2,
            "distillation_temperature": 8.0,
        },
        # training mode samples the experts' latents and adds the auxiliary losses
        training_variants=({}, {"learn_unimodal_gates": False, "uncertainty_penalty": 0.0}),
    ),
}

TRAINING_CASES = [
    pytest.param(name, overrides, id="-".join([name, *(f"{k}={v}" for k, v in overrides.items())]))
    for name, backbone in BACKBONES.items()
    for overrides in backbone.training_variants
]


@pytest.fixture(params=list(BACKBONES))
def backbone(request) -> Backbone:
    return BACKBONES[request.param]


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


def view_mask(name: str, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    return build_context_mask(name, batch["same_speaker"], batch["utterance_mask"])


def prepared_inputs(
    model: MercPreTrainedModel, batch: dict[str, torch.Tensor], context_mask: torch.Tensor | None = None
) -> MercInputs:
    """``model.prepare_inputs`` of a ``make_batch`` batch without a modality mask: what the model files'
    loop definitions start from."""
    features = (batch["text"], batch["audio"], batch["visual"])
    return model.prepare_inputs(*features, batch["speakers"], batch["utterance_mask"], None, context_mask)


# ------------------------------------------------------------------------------------------ basics


def test_output_shapes_and_tuple_output(make_batch, backbone):
    model = backbone()
    batch = make_batch([5, 3, 1], backbone.dims, n_speakers=3)
    out = model(**batch)
    assert isinstance(out, EmotionRecognitionOutput)
    assert out.logits.shape == (3, 5, 6)
    assert out.utterance_repr.shape == (3, 5, backbone.repr_width(3))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.utterance_repr[1, 3:].abs().sum() == 0 and out.utterance_repr[2, 1:].abs().sum() == 0
    as_tuple = model(**batch, return_dict=False)
    assert len(as_tuple) == 3
    torch.testing.assert_close(as_tuple[1], out.logits)
    assert model(**model_inputs(batch)).loss is None


# ------------------------------------------------------------------------------------------ padding


def test_padding_never_influences_real_utterances(make_batch, backbone):
    model = backbone()
    batch = make_batch([6, 3, 4], backbone.dims, n_speakers=3, seed=1)
    longer = make_batch([6, 3, 4], backbone.dims, n_speakers=3, seed=1, max_len=9)
    for key in ("text", "audio", "visual", "speakers", "labels"):
        longer[key][:, :6] = batch[key]
    with torch.no_grad():
        reference = model(**batch)
        padded = model(**longer)
        noisy = {k: v.clone() for k, v in longer.items()}
        for key in backbone.dims:
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


def test_dialogue_output_does_not_depend_on_the_rest_of_the_batch(make_batch, backbone):
    model = backbone()
    batch = make_batch([4, 7, 2], backbone.dims, n_speakers=3, seed=2)
    alone = {k: v[1:2] for k, v in batch.items()}
    with torch.no_grad():
        together = model(**batch).logits[1]
        single = model(**alone).logits[0]
    torch.testing.assert_close(together, single, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ context


@pytest.mark.parametrize("remove_text", [False, True])
def test_inter_speaker_removal_is_exact(make_batch, backbone, remove_text):
    model = backbone()
    speakers = [[0, 1, 0, 0, 2, 1, 0], [1, 0, 0, 1]]
    batch = make_batch([7, 4], backbone.dims, n_speakers=3, speakers=speakers, seed=3)
    context = view_mask("O", batch)
    target_speaker = batch["speakers"] == 0
    others = batch["utterance_mask"] & ~target_speaker
    perturbed = {k: v.clone() for k, v in batch.items()}
    for key in backbone.dims:
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


def test_context_views_change_outputs_and_full_mask_equals_none(make_batch, backbone):
    model = backbone()
    speakers = [[0, 1, 0, 1, 1, 0], [0, 1, 2, 0, 1]]
    batch = make_batch([6, 5], backbone.dims, n_speakers=3, seed=4, speakers=speakers)
    with torch.no_grad():
        full = model(**batch).logits
        explicit = model(**batch, context_mask=torch.ones(2, 6, 6, dtype=torch.bool)).logits
        o_view = model(**batch, context_mask=view_mask("O", batch))
        x_view = model(**batch, context_mask=view_mask("X", batch))
    mask = batch["utterance_mask"]
    torch.testing.assert_close(explicit[mask], full[mask], atol=1e-6, rtol=1e-5)
    assert (o_view.logits[mask] - full[mask]).abs().max() > 1e-4
    assert (x_view.logits[mask] - full[mask]).abs().max() > 1e-4
    assert (x_view.logits[mask] - o_view.logits[mask]).abs().max() > 1e-4


def test_x_view_trains(make_batch, backbone):
    model = backbone().train()
    batch = make_batch([6, 5], backbone.dims, n_speakers=3, seed=5)
    model(**batch, context_mask=view_mask("X", batch)).loss.backward()
    assert model.get_parameter(backbone.encoder_weight).grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


# ------------------------------------------------------------------------------------------ modalities


def test_modality_removal(make_batch, backbone):
    batch = make_batch([5, 4], backbone.dims, n_speakers=3, seed=6)
    keep_all = torch.ones(2, 3)
    drop_audio = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    mask = batch["utterance_mask"]
    dropped_by = {}
    for removal in ("mean", "zero"):
        model = backbone(modality_removal=removal)
        with torch.no_grad():
            full = model(**batch).logits
            kept = model(**batch, modality_mask=keep_all).logits
            dropped = model(**batch, modality_mask=drop_audio).logits
        torch.testing.assert_close(kept, full)
        assert (dropped[0][mask[0]] - full[0][mask[0]]).abs().max() > 1e-4
        torch.testing.assert_close(dropped[1][mask[1]], full[1][mask[1]])
        dropped_by[removal] = dropped
    assert (dropped_by["mean"][0][mask[0]] - dropped_by["zero"][0][mask[0]]).abs().max() > 1e-4


@pytest.mark.parametrize("modalities", [("text",), ("audio", "visual"), ("text", "visual")], ids="+".join)
def test_missing_modality_configs(make_batch, backbone, modalities):
    model = backbone(**{f"{m}_dim": backbone.dims[m] if m in modalities else None for m in backbone.dims})
    assert model.modalities == modalities
    # the extra modalities of the batch are ignored
    batch = make_batch([4, 2], backbone.dims, n_speakers=3, seed=7)
    out = model(**batch)
    assert out.utterance_repr.shape == (2, 4, backbone.repr_width(len(modalities)))
    assert torch.isfinite(out.loss)
    only = {k: v for k, v in batch.items() if k not in backbone.dims or k in modalities}
    torch.testing.assert_close(model(**only).logits, out.logits)
    out.loss.backward()


# ------------------------------------------------------------------------------------------ edge cases


def test_length_one_and_single_speaker_dialogues(make_batch, backbone):
    model = backbone()
    one = make_batch([1], backbone.dims, n_speakers=3)
    out = model(**one)
    assert out.logits.shape == (1, 1, 6) and torch.isfinite(out.loss)
    single = make_batch([5, 1], backbone.dims, speakers=[[0] * 5, [0]])
    for name in ("full", "O", "X"):
        result = model(**single, context_mask=view_mask(name, single))
        assert torch.isfinite(result.logits).all() and torch.isfinite(result.loss)
    with torch.no_grad():
        o_view = model(**single, context_mask=view_mask("O", single))
        full = model(**single)
    torch.testing.assert_close(o_view.logits[single["utterance_mask"]], full.logits[single["utterance_mask"]])


def test_configured_loss_is_used(make_batch, backbone):
    batch = make_batch([5, 3], backbone.dims, n_speakers=3, seed=8)
    for loss_type in ("cross_entropy", "focal", "reference_focal"):
        model = backbone(loss_type=loss_type, class_weights=CLASS_WEIGHTS, focal_gamma=2.5)
        with torch.no_grad():
            out = model(**batch)
        expected = emotion_loss(out.logits, batch["labels"], loss_type, CLASS_WEIGHTS, 2.5)
        torch.testing.assert_close(out.loss, expected)


# ------------------------------------------------------------------------------------------ hub


def test_save_and_load_round_trip(make_batch, backbone, tmp_path):
    model = backbone(class_weights=CLASS_WEIGHTS, **backbone.round_trip_overrides)
    batch = make_batch([5, 3], backbone.dims, n_speakers=3, seed=9)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert isinstance(loaded, type(model))
    reloaded_state = loaded.state_dict()
    assert reloaded_state.keys() == model.state_dict().keys()
    assert all(torch.equal(reloaded_state[k], v) for k, v in model.state_dict().items())
    # same weights; tensors memory-mapped from safetensors may be differently aligned, which changes the
    # SIMD summation order of a few kernels in the last bit, hence atol 1e-6 rather than bitwise equality
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, atol=1e-6, rtol=0)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, type(model.config)) and config.model_type == backbone.model_type
    saved, original = config.to_dict(), model.config.to_dict()
    saved.pop("_name_or_path", None)
    original.pop("_name_or_path", None)
    assert saved == original
    assert config.id2label == model.config.id2label and config.label2id == model.config.label2id
    assert config.class_weights == model.config.class_weights
    assert {k: getattr(config, k) for k in backbone.round_trip_config} == backbone.round_trip_config


# ------------------------------------------------------------------------------------------ training


@pytest.mark.parametrize(("name", "overrides"), TRAINING_CASES)
def test_adam_steps_decrease_the_loss(make_batch, name, overrides):
    backbone = BACKBONES[name]
    model = backbone(**overrides).train()
    batch = make_batch([6, 4, 5], backbone.dims, n_speakers=3, seed=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < backbone.adam_loss_ratio * losses[0]
    assert all(later < earlier for earlier, later in zip(losses[::5], losses[5::5]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_agree(make_batch, backbone):
    model = backbone()
    batch = make_batch([6, 4], backbone.dims, n_speakers=3, seed=11)
    context = view_mask("X", batch)
    with torch.no_grad():
        on_cpu = model(**batch, context_mask=context)
        model.cuda()
        on_gpu = model(**{k: v.cuda() for k, v in batch.items()}, context_mask=context.cuda())
    torch.testing.assert_close(on_gpu.logits.cpu(), on_cpu.logits, atol=1e-4, rtol=1e-4)
