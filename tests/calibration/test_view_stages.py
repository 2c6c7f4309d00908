"""Removal views equal full forward passes for every backbone, through the stage-sharing path of the backbones
that split their encoder into stages (M3Net, MMGCN, MM-DFN, SURE) and through full passes for the others."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from merc_hf.calibration import removal_view_logits
from merc_hf.models.base import MODALITIES, build_context_mask
from tests.models.conftest import random_batch
from tests.models.test_backbone_contract import BACKBONES

LENGTHS = [5, 3, 7]
SPEAKERS = [[0, 1, 0, 2, 1], [0, 1, 1], [0, 2, 1, 0, 0, 2, 1]]  # three speakers, own context non-trivial
TEMPERATURE = 1.3
STAGED = {"m3net", "mmgcn", "mmdfn", "sure"}


def _model_and_batch(name: str):
    backbone = BACKBONES[name]
    model = backbone()
    model.config.logit_temperature = TEMPERATURE
    batch = random_batch(LENGTHS, backbone.dims, n_speakers=3, speakers=SPEAKERS, seed=3)
    batch.pop("labels")
    return model, batch


def _full_pass_views(model, batch: dict[str, torch.Tensor], view_mode: str) -> dict[str, torch.Tensor]:
    """Each removal as its own full forward pass."""
    expected = {}
    with torch.no_grad():
        for removal, name in (("T", "text"), ("A", "audio"), ("V", "visual")):
            keep = torch.ones(len(LENGTHS), len(MODALITIES))
            keep[:, MODALITIES.index(name)] = 0.0
            expected[removal] = model(**batch, modality_mask=keep, view_mode=view_mode).logits
        for removal in ("X", "O"):
            mask = build_context_mask(removal, batch["same_speaker"], batch["utterance_mask"])
            expected[removal] = model(**batch, context_mask=mask, view_mode=view_mode).logits
    return expected


@pytest.mark.parametrize("views_per_pass", [1, 5])
@pytest.mark.parametrize("view_mode", ["exact", "reference"])
@pytest.mark.parametrize("name", list(BACKBONES))
def test_removal_views_equal_full_forward_passes(name, view_mode, views_per_pass):
    model, batch = _model_and_batch(name)
    expected = _full_pass_views(model, batch, view_mode)
    model.train()  # the views run in eval mode whatever the model's mode
    views = removal_view_logits(model, batch, views_per_pass=views_per_pass, view_mode=view_mode)
    assert model.training
    assert set(views) == set(expected)
    real = batch["utterance_mask"]
    for removal, logits in expected.items():
        torch.testing.assert_close(views[removal][real], logits[real], atol=1e-5, rtol=1e-5, msg=removal)
    # the comparison has teeth: the removals change the logits
    assert not torch.allclose(expected["T"][real], expected["X"][real], atol=1e-4)
    with torch.no_grad():
        plain = model.eval()(**batch).logits
    assert not torch.allclose(plain[real], expected["O"][real], atol=1e-4)


def _prepared(model, batch: dict[str, torch.Tensor], context_mask, view_mode: str):
    return model.prepare_inputs(
        batch["text"], batch["audio"], batch["visual"], batch["speakers"], batch["utterance_mask"], None,
        context_mask, view_mode,
    )  # fmt: skip


@pytest.mark.parametrize("view_mode", ["exact", "reference"])
@pytest.mark.parametrize("name", sorted(STAGED))
def test_encode_is_the_composition_of_the_stages(name, view_mode):
    model, batch = _model_and_batch(name)
    real = batch["utterance_mask"]
    with torch.no_grad():
        full = _prepared(model, batch, None, view_mode)
        full_stages = model._unimodal_stages(full)
        assert list(full_stages) == list(model.modalities)
        for view in ("full", "X", "O"):
            context_mask = None if view == "full" else build_context_mask(view, batch["same_speaker"], real)
            inputs = _prepared(model, batch, context_mask, view_mode)
            direct = model._encode(inputs)
            stages = model._unimodal_stages(inputs)
            composed = model._contextual_stages(stages, inputs)
            for got, want in zip(composed, direct[:2], strict=True):
                torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6, msg=view)
            for m in model.modalities:
                # one modality's stage reads only its own features, and is the same run alone
                alone = replace(inputs, features={m: inputs.features[m]})
                torch.testing.assert_close(
                    model._unimodal_stages(alone, [m])[m], stages[m], msg=f"{view} {m}"
                )
                # an encoder that does not claim to read the context mask gives the full-context encoding
                if not model._unimodal_reads_context(m, inputs):
                    torch.testing.assert_close(stages[m][real], full_stages[m][real], msg=f"{view} {m}")
            if view == "full":
                assert not any(model._unimodal_reads_context(m, inputs) for m in model.modalities)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_which_backbones_have_stages(name):
    model, _ = _model_and_batch(name)
    assert hasattr(model, "_contextual_stages") == (name in STAGED)
    assert hasattr(model, "_unimodal_stages") == (name in STAGED)
    assert hasattr(model, "_unimodal_reads_context") == (name in STAGED)


def test_mmdfn_speaker_recurrence_is_not_rerun_for_view_o():
    """MM-DFN's speaker GRU sees only the same-speaker part of a context, which view O leaves whole: only the
    text BiGRU re-runs for O, every encoder with a speaker weight for X."""
    model, batch = _model_and_batch("mmdfn")
    real = batch["utterance_mask"]
    views = {
        v: _prepared(model, batch, build_context_mask(v, batch["same_speaker"], real), "exact") for v in "OX"
    }
    weighted = [m for m in model.modalities if m != "text" and model.config.speaker_weights[m] != 0.0]
    assert weighted  # the tiny config exercises the speaker recurrence
    assert model._unimodal_reads_context("text", views["O"])
    assert not any(model._unimodal_reads_context(m, views["O"]) for m in weighted)
    assert all(model._unimodal_reads_context(m, views["X"]) for m in weighted)
