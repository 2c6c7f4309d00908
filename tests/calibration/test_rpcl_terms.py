"""Each RPCL term (CDMR, CCPS, corruption mask, pair loss) against values computed by hand on tiny
batches, and the :class:`RPCL` method's wiring (validation, forward calls, weighting of the parts)."""

from __future__ import annotations

import math

import pytest
import torch

from merc_hf.calibration import RPCL, ccps_loss, cdmr_loss, corruption_mask, protected_utterances
from merc_hf.models.pair_scorer.configuration_pair_scorer import PairScorerConfig
from merc_hf.models.pair_scorer.modeling_pair_scorer import PairScorerModel, candidate_mask, pair_loss

# ---------------------------------------------------------------------------------------------------
# CDMR


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def cdmr_batch():
    """Two conversations of T = 4 (the second has 3 real utterances), lower-triangular candidates.

    Conversation 0:
      row 0: candidate {0}, no gold                          -> nothing
      row 1: candidates {0, 1}, both gold                     -> no negative, nothing
      row 2: candidates {0, 1, 2}, gold (2, 3) outside mask   -> ignored, nothing
      row 3: candidates {0..3}, gold (3, 1), negatives 0 (0.40), 2 (0.45), 3 (0.30)
             -> k = 2 keeps j- = 2 and j- = 0; j- = 3 is truncated (it would add a positive hinge)
    Conversation 1 (utterance 3 is padding, gold (3, 0) at padding is ignored):
      row 0: no gold; row 1: no gold
      row 2: candidates {0, 1, 2}, gold (2, 0) and (2, 2), one negative 1 (0.70) -> 2 triplets
    Non-candidate entries hold large probabilities (0.95 / 0.99) that must never be picked.
    """
    probs = torch.tensor(
        [
            [
                [0.30, 0.95, 0.95, 0.95],
                [0.60, 0.50, 0.95, 0.95],
                [0.20, 0.40, 0.10, 0.95],
                [0.40, 0.50, 0.45, 0.30],
            ],
            [
                [0.50, 0.99, 0.99, 0.99],
                [0.30, 0.60, 0.99, 0.99],
                [0.20, 0.70, 0.40, 0.99],
                [0.99, 0.99, 0.99, 0.99],
            ],
        ]
    )
    utterance_mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    candidates = candidate_mask(utterance_mask)
    gold = torch.zeros(2, 4, 4, dtype=torch.bool)
    for b, i, j in [(0, 1, 0), (0, 1, 1), (0, 2, 3), (0, 3, 1), (1, 2, 0), (1, 2, 2), (1, 3, 0)]:
        gold[b, i, j] = True
    cause_probs = torch.tensor([[0.2, 0.7, 0.4, 0.9], [0.6, 0.3, 0.5, 0.0]])
    return probs, candidates, gold, cause_probs


def test_candidate_mask_is_lower_triangular_over_real_utterances():
    """The fixture's candidate space: ``j <= i`` and both utterances real."""
    _, candidates, _, _ = cdmr_batch()
    assert candidates[0].tolist() == [[j <= i for j in range(4)] for i in range(4)]
    assert candidates[1].tolist() == [[j <= i and i < 3 for j in range(4)] for i in range(4)]


def test_cdmr_hand_worked_with_top_k_truncation():
    """Mean hinge ``max(0, m0·exp(q[j-] - q[j+]) - (p[i,j+] - p[i,j-]))`` over the 4 triplets, k = 2."""
    probs, candidates, gold, cause_probs = cdmr_batch()
    m0 = 0.2
    # conversation 0, row 3, j+ = 1 (p 0.50, q 0.7):
    t1 = max(0.0, m0 * math.exp(0.4 - 0.7) - (0.50 - 0.45))  # j- = 2: 0.14816 - 0.05 = 0.09816
    t2 = max(0.0, m0 * math.exp(0.2 - 0.7) - (0.50 - 0.40))  # j- = 0: 0.12131 - 0.10 = 0.02131
    # conversation 1, row 2, j- = 1 (p 0.70, q 0.3):
    t3 = max(0.0, m0 * math.exp(0.3 - 0.6) - (0.20 - 0.70))  # j+ = 0: 0.14816 + 0.50 = 0.64816
    t4 = max(0.0, m0 * math.exp(0.3 - 0.5) - (0.40 - 0.70))  # j+ = 2: 0.16375 + 0.30 = 0.46375
    loss, n = cdmr_loss(probs, candidates, gold, cause_probs, k=2, margin=m0)
    assert n == 4
    assert loss.item() == pytest.approx((t1 + t2 + t3 + t4) / 4, rel=1e-5)

    # with k = 3 the third negative of conversation 0, row 3 (j- = 3, p 0.30, q 0.9) joins
    t5 = max(0.0, m0 * math.exp(0.9 - 0.7) - (0.50 - 0.30))  # 0.24428 - 0.20 = 0.04428
    loss3, n3 = cdmr_loss(probs, candidates, gold, cause_probs, k=3, margin=m0)
    assert n3 == 5
    assert loss3.item() == pytest.approx((t1 + t2 + t3 + t4 + t5) / 5, rel=1e-5)
    # k larger than T is clipped to T
    loss9, n9 = cdmr_loss(probs, candidates, gold, cause_probs, k=9, margin=m0)
    assert n9 == 5 and loss9.item() == pytest.approx(loss3.item(), rel=1e-6)


def test_cdmr_rows_without_gold_or_without_negative_add_nothing():
    """Only conversation 0 row 3 and conversation 1 row 2 have triplets: dropping every other row's
    gold and overwriting every other row's probabilities does not change the loss."""
    probs, candidates, gold, cause_probs = cdmr_batch()
    reference, n = cdmr_loss(probs, candidates, gold, cause_probs, k=2, margin=0.2)
    keep = torch.zeros_like(gold)
    keep[0, 3] = True
    keep[1, 2] = True
    other_probs = torch.where(keep, probs, torch.full_like(probs, 0.77))
    loss, n_kept = cdmr_loss(other_probs, candidates, gold & keep, cause_probs, k=2, margin=0.2)
    assert n_kept == n == 4
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)


def test_cdmr_without_triplet_is_a_differentiable_zero():
    """No gold among candidates (row 0 only has (0, 2), outside the mask; row 1 is all gold):
    ``(0, 0)``, connected to the graph."""
    probs = torch.tensor([[[0.3, 0.9, 0.9], [0.4, 0.6, 0.9], [0.1, 0.2, 0.3]]], requires_grad=True)
    candidates = candidate_mask(torch.ones(1, 3, dtype=torch.bool))
    gold = torch.zeros(1, 3, 3, dtype=torch.bool)
    gold[0, 0, 2] = True  # outside the mask (cause after emotion)
    gold[0, 1, 0] = gold[0, 1, 1] = True  # row 1 has no non-gold candidate
    loss, n = cdmr_loss(probs, candidates, gold, torch.rand(1, 3), k=2)
    assert n == 0 and loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert probs.grad is not None and probs.grad.abs().sum() == 0
    # an empty gold matrix too
    loss, n = cdmr_loss(probs, candidates, torch.zeros_like(gold), torch.rand(1, 3))
    assert n == 0 and loss.item() == 0.0 and loss.requires_grad


def test_cdmr_gold_outside_candidates_is_ignored():
    """Adding gold pairs outside the candidate mask (upper triangle, padding) changes nothing."""
    probs, candidates, gold, cause_probs = cdmr_batch()
    inside = gold & candidates
    assert (gold & ~candidates).sum() == 2  # (0, 2, 3) and (1, 3, 0)
    with_outside = cdmr_loss(probs, candidates, gold, cause_probs, k=2, margin=0.2)
    without = cdmr_loss(probs, candidates, inside, cause_probs, k=2, margin=0.2)
    assert with_outside[1] == without[1] == 4
    assert with_outside[0].item() == pytest.approx(without[0].item(), rel=1e-7)
    # a row whose only gold is outside the mask yields no triplet
    only_outside = torch.zeros_like(gold)
    only_outside[0, 2, 3] = True
    assert cdmr_loss(probs, candidates, only_outside, cause_probs, k=2)[1] == 0


def test_cdmr_margin_is_stop_gradient_and_gradient_hits_gold_and_hard_negatives():
    """d loss / d p = -(#triplets of the gold) / 4 at gold, +(#triplets of the negative) / 4 at the
    selected hard negatives (all 4 hinges are active), 0 elsewhere; no gradient to ``cause_probs``."""
    probs, candidates, gold, cause_probs = cdmr_batch()
    probs.requires_grad_(True)
    cause_probs.requires_grad_(True)
    loss, _ = cdmr_loss(probs, candidates, gold, cause_probs, k=2, margin=0.2)
    loss.backward()
    assert cause_probs.grad is None or cause_probs.grad.abs().sum() == 0
    expected = torch.zeros(2, 4, 4)
    expected[0, 3, 1] = -2 / 4  # gold in 2 triplets
    expected[0, 3, 2] = expected[0, 3, 0] = 1 / 4  # hard negatives, one triplet each
    # (0, 3, 3) is a negative truncated by k = 2: no gradient
    expected[1, 2, 0] = expected[1, 2, 2] = -1 / 4
    expected[1, 2, 1] = 2 / 4  # the single negative, shared by both golds
    torch.testing.assert_close(probs.grad, expected)
    nonzero = {tuple(index) for index in probs.grad.nonzero().tolist()}
    assert nonzero == {(0, 3, 1), (0, 3, 2), (0, 3, 0), (1, 2, 0), (1, 2, 2), (1, 2, 1)}


# ---------------------------------------------------------------------------------------------------
# CCPS and the pair loss


def test_ccps_hand_worked_and_clean_probs_detached():
    """``λ_cor · BCE(corrupted) + λ_ali · mean ‖(p̃, 1 − p̃) − (p, 1 − p)‖²`` (Eq. 15) over the 3
    lower-triangular candidates of a 1×2×2 batch; the non-candidate (0, 1) is ignored."""
    corrupted = torch.tensor([[[0.5, 4.0], [-1.0, 2.0]]], requires_grad=True)
    clean = torch.tensor([[[0.6, 0.0], [0.3, 0.8]]], requires_grad=True)
    labels = torch.tensor([[[0, 1], [1, 0]]])  # gold (1, 0); (0, 1) is outside the mask
    candidates = candidate_mask(torch.ones(1, 2, dtype=torch.bool))
    # candidates (0,0) y=0, (1,0) y=1, (1,1) y=0
    bce = (-math.log(1 - sigmoid(0.5)) - math.log(sigmoid(-1.0)) - math.log(1 - sigmoid(2.0))) / 3

    def distance(p_corrupted: float, p_clean: float) -> float:  # both classes of the 2-way distribution
        return (p_corrupted - p_clean) ** 2 + ((1 - p_corrupted) - (1 - p_clean)) ** 2

    align = (distance(sigmoid(0.5), 0.6) + distance(sigmoid(-1.0), 0.3) + distance(sigmoid(2.0), 0.8)) / 3
    total, parts = ccps_loss(corrupted, clean, labels, candidates, lambda_cor=0.75, lambda_ali=0.2)
    assert parts["ccps_ce"].item() == pytest.approx(bce, rel=1e-5)
    assert parts["ccps_align"].item() == pytest.approx(align, rel=1e-5)
    assert total.item() == pytest.approx(0.75 * bce + 0.2 * align, rel=1e-5)
    total.backward()
    assert clean.grad is None
    assert corrupted.grad is not None and corrupted.grad[0, 0, 1] == 0 and corrupted.grad[0, 1, 0] != 0

    # other weights and a positive weight of 2 on the gold pair
    bce2 = (-math.log(1 - sigmoid(0.5)) - 2 * math.log(sigmoid(-1.0)) - math.log(1 - sigmoid(2.0))) / 3
    total2, _ = ccps_loss(
        corrupted, clean, labels, candidates, lambda_cor=1.5, lambda_ali=3.0, positive_weight=2.0
    )
    assert total2.item() == pytest.approx(1.5 * bce2 + 3.0 * align, rel=1e-5)


def test_ccps_without_candidate_is_a_differentiable_zero():
    corrupted = torch.randn(1, 2, 2, requires_grad=True)
    candidates = torch.zeros(1, 2, 2, dtype=torch.bool)
    total, parts = ccps_loss(corrupted, torch.rand(1, 2, 2), torch.zeros(1, 2, 2), candidates)
    assert total.item() == 0.0 and parts["ccps_ce"].item() == 0.0 and parts["ccps_align"].item() == 0.0
    assert total.requires_grad
    total.backward()
    assert corrupted.grad.abs().sum() == 0


def test_pair_loss_hand_worked_with_positive_weight():
    """``-[w·y log σ(s) + (1 - y) log(1 - σ(s))]`` averaged over the 3 candidates, w = 2; the
    non-candidate (0, 1) (label 1, logit 3) is ignored."""
    logits = torch.tensor([[[0.5, 3.0], [-1.0, 2.0]]])
    labels = torch.tensor([[[0, 1], [1, 1]]])
    candidates = candidate_mask(torch.ones(1, 2, dtype=torch.bool))
    # (0,0) y=0: -log(1 - σ(0.5)); (1,0) y=1: -2 log σ(-1); (1,1) y=1: -2 log σ(2)
    expected = (-math.log(1 - sigmoid(0.5)) - 2 * math.log(sigmoid(-1.0)) - 2 * math.log(sigmoid(2.0))) / 3
    assert pair_loss(logits, labels, candidates, positive_weight=2.0).item() == pytest.approx(
        expected, rel=1e-5
    )
    plain = (-math.log(1 - sigmoid(0.5)) - math.log(sigmoid(-1.0)) - math.log(sigmoid(2.0))) / 3
    assert pair_loss(logits, labels, candidates).item() == pytest.approx(plain, rel=1e-5)


def test_pair_loss_without_candidate_is_a_differentiable_zero():
    logits = torch.randn(1, 2, 2, requires_grad=True)
    loss = pair_loss(logits, torch.ones(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.bool), 2.0)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert logits.grad.abs().sum() == 0


# ---------------------------------------------------------------------------------------------------
# Corruption mask


def corruption_batch():
    """Two conversations of T = 5; the second has 4 real utterances.
    Conversation 0: gold (3, 1) -> protected {1, 3}; conversation 1: gold (2, 2) and (3, 0) ->
    protected {0, 2, 3}; plus a stray label at padding (4, 4)."""
    pair_labels = torch.zeros(2, 5, 5, dtype=torch.long)
    pair_labels[0, 3, 1] = 1
    pair_labels[1, 2, 2] = 1
    pair_labels[1, 3, 0] = 1
    utterance_mask = torch.tensor([[True] * 5, [True, True, True, True, False]])
    return pair_labels, utterance_mask


def test_protected_utterances_are_both_sides_of_gold_pairs():
    pair_labels, _ = corruption_batch()
    assert protected_utterances(pair_labels).tolist() == [
        [False, True, False, True, False],
        [True, False, True, True, False],
    ]


def test_corruption_mask_rho_0_and_1():
    pair_labels, utterance_mask = corruption_batch()
    generator = torch.Generator().manual_seed(0)
    assert not corruption_mask(pair_labels, utterance_mask, 0.0, generator=generator).any()
    # rho = 1: every real, unprotected utterance (padding utterance 4 of conversation 1 excluded)
    assert corruption_mask(pair_labels, utterance_mask, 1.0, generator=generator).tolist() == [
        [True, False, True, False, True],
        [False, True, False, False, False],
    ]


def test_corruption_mask_random_draws_respect_protection_and_padding():
    """Over many seeded draws at rho = 0.5: protected and padding utterances are never corrupted,
    the others sometimes are and sometimes are not; the same seed gives the same mask."""
    pair_labels, utterance_mask = corruption_batch()
    allowed = utterance_mask & ~protected_utterances(pair_labels)
    generator = torch.Generator().manual_seed(1234)
    draws = torch.stack(
        [corruption_mask(pair_labels, utterance_mask, 0.5, generator=generator) for _ in range(200)]
    )
    assert not (draws & ~allowed).any()
    assert draws[:, allowed].any(dim=0).all() and (~draws[:, allowed]).any(dim=0).all()
    rate = draws[:, allowed].float().mean().item()
    assert 0.4 < rate < 0.6
    first = corruption_mask(pair_labels, utterance_mask, 0.5, generator=torch.Generator().manual_seed(7))
    again = corruption_mask(pair_labels, utterance_mask, 0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, again)


# ---------------------------------------------------------------------------------------------------
# The RPCL method


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": -0.1}, "margin"),
        ({"lambda_row": -1.0}, "lambda_row"),
        ({"lambda_cor": -0.5}, "lambda_cor"),
        ({"lambda_ali": -0.2}, "lambda_ali"),
        ({"k": 0}, "k must be"),
        ({"k": 2.5}, "k must be"),
        ({"rho": -0.1}, "rho"),
        ({"rho": 1.5}, "rho"),
    ],
)
def test_rpcl_validates_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RPCL(**kwargs)


def test_rpcl_defaults_and_to_dict_round_trip():
    """Paper defaults; ``to_dict`` adds the name and rebuilds an equal object; edge values accepted."""
    rpcl = RPCL()
    assert rpcl.to_dict() == {
        "name": "rpcl",
        "margin": 0.05,
        "k": 8,
        "rho": 0.30,
        "lambda_row": 0.3,
        "lambda_cor": 0.75,
        "lambda_ali": 0.2,
    }
    custom = RPCL(margin=0.1, k=3, rho=1.0, lambda_row=0.0, lambda_cor=2.0, lambda_ali=0.0)
    data = custom.to_dict()
    assert data.pop("name") == "rpcl"
    assert RPCL(**data) == custom
    RPCL(rho=0.0, k=1, lambda_row=0, lambda_cor=0, lambda_ali=0)  # boundaries are valid


def tiny_pair_scorer() -> tuple[PairScorerModel, list[dict]]:
    """A small deterministic pair scorer (dropout 0) whose forward calls (kwargs) are recorded."""
    torch.manual_seed(0)
    config = PairScorerConfig(
        text_dim=6, audio_dim=None, visual_dim=None, hidden_size=8, n_speakers=3, dropout=0.0
    )
    model = PairScorerModel(config)
    calls: list[dict] = []
    model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True)
    return model, calls


def pair_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    utterance_mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    pair_labels = torch.zeros(2, 4, 4, dtype=torch.long)
    pair_labels[0, 3, 1] = pair_labels[0, 2, 2] = pair_labels[1, 2, 0] = 1
    cause_labels = pair_labels.amax(dim=1).masked_fill(~utterance_mask, -100)
    return {
        "text": torch.randn(2, 4, 6, generator=generator),
        "speakers": torch.tensor([[0, 1, 2, 0], [1, 0, 1, 0]]),
        "utterance_mask": utterance_mask,
        "labels": torch.tensor([[0, 3, 4, 1], [2, 0, 5, -100]]),
        "cause_labels": cause_labels,
        "pair_labels": pair_labels,
    }


def test_rpcl_cdmr_only_skips_the_corrupted_pass():
    """``lambda_cor = lambda_ali = 0``: no second forward, only the CDMR part, total = λ_row · CDMR."""
    model, calls = tiny_pair_scorer()
    inputs = pair_batch()
    outputs = model(**inputs)
    assert len(calls) == 1
    total, parts = RPCL(lambda_cor=0, lambda_ali=0).training_loss(model, inputs, outputs)
    assert len(calls) == 1
    assert set(parts) == {"cdmr"}
    expected, n = cdmr_loss(
        torch.sigmoid(outputs.pair_logits),
        outputs.candidate_mask,
        inputs["pair_labels"].bool(),
        torch.sigmoid(outputs.cause_logits),
        k=8,
        margin=0.05,
    )
    assert n > 0
    assert parts["cdmr"] == pytest.approx(expected.item(), rel=1e-6)
    assert total.item() == pytest.approx(0.3 * parts["cdmr"], rel=1e-6)


def test_rpcl_defaults_run_one_corrupted_pass_without_labels():
    """Defaults: one more forward with ``corruption_mask`` and none of the label keys; parts cdmr,
    ccps_ce, ccps_align; total = 0.3·cdmr + 0.75·ccps_ce + 0.2·ccps_align, each part reproduced by
    calling the term functions directly on the recorded corruption mask; gradients reach the model."""
    model, calls = tiny_pair_scorer()
    inputs = pair_batch()
    outputs = model(**inputs)
    total, parts = RPCL().training_loss(model, inputs, outputs)
    assert len(calls) == 2
    second = calls[1]
    assert "corruption_mask" in second
    assert not {"labels", "cause_labels", "pair_labels"} & set(second)
    assert {"text", "speakers", "utterance_mask"} <= set(second)
    mask = second["corruption_mask"]
    allowed = inputs["utterance_mask"] & ~protected_utterances(inputs["pair_labels"])
    assert not (mask & ~allowed).any()

    assert set(parts) == {"cdmr", "ccps_ce", "ccps_align"}
    assert all(isinstance(value, float) for value in parts.values())
    expected_total = 0.3 * parts["cdmr"] + 0.75 * parts["ccps_ce"] + 0.2 * parts["ccps_align"]
    assert total.item() == pytest.approx(expected_total, rel=1e-5)

    # the parts themselves (dropout is 0, so replaying the recorded corrupted view is exact)
    with torch.no_grad():
        corrupted = model(**{k: v for k, v in second.items()})
    clean_probs = torch.sigmoid(outputs.pair_logits)
    _, ccps_parts = ccps_loss(
        corrupted.pair_logits, clean_probs, inputs["pair_labels"], outputs.candidate_mask
    )
    assert parts["ccps_ce"] == pytest.approx(ccps_parts["ccps_ce"].item(), rel=1e-5)
    assert parts["ccps_align"] == pytest.approx(ccps_parts["ccps_align"].item(), rel=1e-5, abs=1e-9)

    total.backward()
    assert model.pair_out.weight.grad is not None and model.pair_out.weight.grad.abs().sum() > 0


def test_rpcl_ccps_only_has_no_cdmr_part():
    model, calls = tiny_pair_scorer()
    inputs = pair_batch()
    outputs = model(**inputs)
    total, parts = RPCL(lambda_row=0.0).training_loss(model, inputs, outputs)
    assert len(calls) == 2
    assert set(parts) == {"ccps_ce", "ccps_align"}
    assert total.item() == pytest.approx(0.75 * parts["ccps_ce"] + 0.2 * parts["ccps_align"], rel=1e-5)
