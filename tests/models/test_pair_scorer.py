"""The emotion–cause pair scorer: candidate spaces, losses, context exactness, corruption, Hub round trip,
and the recall ceiling of the cause-before-emotion space on the real ECF test split."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoConfig, AutoModel

import merc_hf
from merc_hf.data import PairCollator
from merc_hf.models.base import build_context_mask
from merc_hf.models.pair_scorer import PairScorerConfig, PairScorerModel, candidate_mask, pair_loss

DIMS = {"text": 6, "audio": 5, "visual": None}


def small_model(**overrides) -> PairScorerModel:
    torch.manual_seed(0)
    config = PairScorerConfig(
        text_dim=6, audio_dim=5, visual_dim=None, hidden_size=8, n_speakers=3, dropout=0.0, **overrides
    )
    return PairScorerModel(config).eval()


def pair_batch(make_batch, lengths, pairs, **kwargs) -> dict[str, torch.Tensor]:
    """A random batch plus the pair-batch keys for the given 0-based gold pairs per dialogue."""
    batch = make_batch(lengths, DIMS, n_speakers=3, num_labels=7, **kwargs)
    _, length = batch["utterance_mask"].shape
    pair_labels = torch.zeros(len(lengths), length, length, dtype=torch.long)
    for b, dialogue_pairs in enumerate(pairs):
        for i, j in dialogue_pairs:
            pair_labels[b, i, j] = 1
    batch["pair_labels"] = pair_labels
    batch["cause_labels"] = pair_labels.amax(1).masked_fill(~batch["utterance_mask"], -100)
    return batch


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ("cause_before_emotion", [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]),
        ("window", [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]]),
        ("all", [[1] * 4] * 4),
    ],
)
def test_candidate_spaces(space, expected):
    mask = candidate_mask(torch.tensor([[True] * 4, [True, True, False, False]]), space, window=1)
    assert mask[0].int().tolist() == expected
    # padding is never a candidate, on either side
    assert not mask[1, 2:].any() and not mask[1, :, 2:].any()
    assert mask[1, :2, :2].int().tolist() == [row[:2] for row in expected[:2]]


def test_pair_loss_hand_value():
    logits = torch.tensor([[[0.0, 9.0], [2.0, -1.0]]])
    labels = torch.tensor([[[1, 0], [0, 1]]])
    candidates = torch.tensor([[[True, False], [True, True]]])  # (0, 1) is not a candidate
    # candidates: (0,0) y=1 s=0, (1,0) y=0 s=2, (1,1) y=1 s=-1; weight 2 on positives
    sig = lambda s: 1 / (1 + math.exp(-s))  # noqa: E731
    expected = (-2 * math.log(sig(0.0)) - math.log(1 - sig(2.0)) - 2 * math.log(sig(-1.0))) / 3
    assert pair_loss(logits, labels, candidates, positive_weight=2.0).item() == pytest.approx(expected)
    empty = pair_loss(logits.requires_grad_(), labels, torch.zeros_like(candidates))
    assert empty.item() == 0.0 and empty.requires_grad


def test_forward_shapes_loss_and_tuple_output(make_batch):
    model = small_model()
    batch = pair_batch(make_batch, [5, 3], [[(3, 1), (4, 4)], [(2, 0)]])
    out = model(**batch)
    assert out.logits.shape == (2, 5, 7)
    assert out.cause_logits.shape == (2, 5) and out.pair_logits.shape == (2, 5, 5)
    assert out.candidate_mask.dtype == torch.bool and out.utterance_repr.shape == (2, 5, 8)
    assert torch.isfinite(out.loss) and out.loss.requires_grad
    assert (out.utterance_repr[1, 3:] == 0).all()
    # the loss is the sum of its three parts
    real = batch["utterance_mask"]
    emotion = torch.nn.functional.cross_entropy(out.logits[real], batch["labels"][real])
    cause = torch.nn.functional.binary_cross_entropy_with_logits(
        out.cause_logits[real], batch["cause_labels"][real].float()
    )
    pairs = pair_loss(out.pair_logits, batch["pair_labels"], out.candidate_mask)
    torch.testing.assert_close(out.loss, emotion + cause + pairs)
    as_tuple = model(**batch, return_dict=False)
    torch.testing.assert_close(as_tuple[0], out.loss)
    assert model(**{k: v for k, v in batch.items() if "label" not in k}).loss is None


def test_inter_speaker_removal_is_exact(make_batch):
    model = small_model()
    speakers = [[0, 1, 0, 0, 2, 1, 0], [1, 0, 0, 1]]
    batch = pair_batch(make_batch, [7, 4], [[], []], speakers=speakers, seed=3)
    context = build_context_mask("O", batch["same_speaker"], batch["utterance_mask"])
    targets = batch["utterance_mask"] & (batch["speakers"] == 0)
    others = batch["utterance_mask"] & ~(batch["speakers"] == 0)
    perturbed = {k: v.clone() for k, v in batch.items()}
    for key in ("text", "audio"):
        perturbed[key][others] = 10 * torch.randn_like(perturbed[key][others])
    with torch.no_grad():
        before = model(**batch, context_mask=context)
        after = model(**perturbed, context_mask=context)
        full_before, full_after = model(**batch), model(**perturbed)
    torch.testing.assert_close(
        after.utterance_repr[targets], before.utterance_repr[targets], atol=1e-6, rtol=0
    )
    assert (full_after.utterance_repr[targets] - full_before.utterance_repr[targets]).abs().max() > 1e-4


def test_corruption_zeroes_utterances_before_the_context_encoder(make_batch):
    model = small_model()
    batch = pair_batch(make_batch, [5], [[(3, 1)]], seed=4)
    corrupt = torch.tensor([[False, False, True, False, False]])
    zeroed = {k: v.clone() for k, v in batch.items()}
    with torch.no_grad():
        clean = model(**batch)
        corrupted = model(**batch, corruption_mask=corrupt)
        # corrupting utterance 2 changes the context of every other utterance (bi-GRU)...
        assert (corrupted.utterance_repr[0, 3] - clean.utterance_repr[0, 3]).abs().max() > 1e-4
        # ...and equals feeding a fused representation of zero: the GRU input at t=2 is 0, so the
        # corrupted output does not depend on utterance 2's features at all
        for key in ("text", "audio"):
            zeroed[key][0, 2] = 100 * torch.randn_like(zeroed[key][0, 2])
        again = model(**zeroed, corruption_mask=corrupt)
    torch.testing.assert_close(again.pair_logits, corrupted.pair_logits, atol=1e-6, rtol=0)


def test_no_parameter_depends_on_dialogue_length(make_batch):
    model = small_model(max_relative_position=2, max_utterances=40)
    batch = pair_batch(make_batch, [40, 3], [[(39, 0)], [(1, 1)]], seed=5)
    out = model(**batch)
    out.loss.backward()
    with pytest.raises(ValueError, match="max_utterances"):
        small_model(max_utterances=4)(**batch)


def test_config_validation():
    with pytest.raises(ValueError, match="candidate_space"):
        PairScorerConfig(candidate_space="future")
    with pytest.raises(ValueError, match="pair_threshold"):
        PairScorerConfig(pair_threshold=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        PairScorerConfig(hidden_size=7)
    config = PairScorerConfig()
    assert config.id2label[0] == "neutral" and config.num_labels == 7
    assert (config.hidden_size, config.max_utterances, config.candidate_space) == (
        400,
        35,
        "cause_before_emotion",
    )


def test_save_and_load_round_trip(make_batch, tmp_path):
    model = small_model(candidate_space="window", candidate_window=2, pair_threshold=0.3)
    batch = pair_batch(make_batch, [5, 3], [[(3, 1)], [(2, 0)]], seed=6)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert isinstance(loaded, PairScorerModel)
    config = AutoConfig.from_pretrained(tmp_path)
    assert (config.model_type, config.candidate_space, config.pair_threshold) == (
        "merc_pair_scorer",
        "window",
        0.3,
    )
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).pair_logits, model(**batch).pair_logits, atol=1e-6, rtol=0)


def test_recall_ceiling_of_cause_before_emotion_on_real_ecf(shared_data):
    """ECF 1.0 test: 80 of 1873 gold pairs have the cause after the emotion and are no candidates."""
    test = merc_hf.load_dataset("ecf", shared_data / "ecf")["test"]
    batch = PairCollator()(list(test))
    for space, expected_missed in (("cause_before_emotion", 80), ("all", 0)):
        candidates = candidate_mask(batch["utterance_mask"], space)
        gold = batch["pair_labels"].bool()
        assert int(gold.sum()) == 1873
        assert int((gold & ~candidates).sum()) == expected_missed
