"""Losses against hand-computed values, including empty classes (published edge cases)."""

from __future__ import annotations

import math

import pytest
import torch

from hpc_seg.cardiac.train.losses import (cross_entropy, dice_ce_loss, focal_loss,
                                          generalised_dice_loss)


def _logits(*pixels):
    """[1, C, 1, P] logits from per-pixel class-logit lists."""
    return torch.tensor(pixels, dtype=torch.float32).T[None, :, None, :]


def test_cross_entropy_uniform_logits_is_log_c():
    logits = _logits([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert cross_entropy(logits, torch.tensor([[[0, 2]]])).item() == pytest.approx(math.log(3))


def test_focal_gamma2_hand_value():
    # p_target = 3/4 -> -(1/4)^2 * ln(3/4)
    logits = _logits([math.log(3.0), 0.0])
    got = focal_loss(logits, torch.tensor([[[0]]])).item()
    assert got == pytest.approx(-(0.25 ** 2) * math.log(0.75), rel=1e-5)
    # a confident correct pixel costs (almost) nothing; focal <= ce always
    sure = _logits([20.0, 0.0])
    assert focal_loss(sure, torch.tensor([[[0]]])).item() < 1e-12
    assert focal_loss(logits, torch.tensor([[[1]]])) < cross_entropy(logits, torch.tensor([[[1]]]))


def test_generalised_dice_two_classes_half_probabilities():
    # p = 0.5 everywhere, truth [0, 1]: weights 1, intersection 0.5 + 0.5, denominator 2 + 2
    loss = generalised_dice_loss(_logits([0.0, 0.0], [0.0, 0.0]), torch.tensor([[[0, 1]]]))
    assert loss.item() == pytest.approx(1 - 2 * 1.0 / (4 + 1e-5), rel=1e-6)


def test_generalised_dice_absent_class_gets_largest_finite_weight():
    # 3 classes, p = 1/3, truth [0, 1]: class 2 absent -> weight max(1, 1) = 1
    loss = generalised_dice_loss(_logits([0.0] * 3, [0.0] * 3), torch.tensor([[[0, 1]]]))
    assert loss.item() == pytest.approx(1 - 2 * (2 / 3) / (4 + 1e-5), rel=1e-6)
    assert torch.isfinite(loss)


def test_generalised_dice_empty_foreground_mask():
    # all background (an empty LV/MY mask): weights 1/4 for all classes
    loss = generalised_dice_loss(_logits([0.0] * 3, [0.0] * 3), torch.tensor([[[0, 0]]]))
    assert loss.item() == pytest.approx(1 - 2 * (1 / 6) / (1 + 1e-5), rel=1e-6)


def test_generalised_dice_perfect_prediction_is_zero_and_gradients_flow():
    target = torch.tensor([[[0, 1, 2, 1]]])
    logits = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 30
    assert generalised_dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-5)
    x = torch.zeros(1, 3, 1, 4, requires_grad=True)
    generalised_dice_loss(x, target).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def _reference_focal(logits, target, gamma=2.0):
    logp = torch.log_softmax(logits.float(), dim=1)
    logp_t = logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
    return (-(1.0 - logp_t.exp()) ** gamma * logp_t).mean()


def _reference_generalised_dice(logits, target, eps=1e-5):
    probs = torch.softmax(logits.float(), dim=1)
    onehot = torch.nn.functional.one_hot(target.long(), probs.shape[1]).permute(0, 3, 1, 2).float()
    g_sum = onehot.sum((0, 2, 3))
    w = 1.0 / (g_sum * g_sum)
    finite = torch.isfinite(w)
    w = torch.where(finite, w, w[finite].max())
    inter = (w * (probs * onehot).sum((0, 2, 3))).sum()
    return 1.0 - 2.0 * inter / ((w * (probs + onehot).sum((0, 2, 3))).sum() + eps)


def _reference_dice_ce(logits, target, eps=1e-5):
    probs = torch.softmax(logits.float(), dim=1)
    onehot = torch.nn.functional.one_hot(target.long(), probs.shape[1]).permute(0, 3, 1, 2).float()
    inter = (probs * onehot).sum((0, 2, 3))[1:]
    denom = (probs + onehot).sum((0, 2, 3))[1:]
    dice = 1.0 - (2.0 * inter + eps) / (denom + eps)
    return torch.nn.functional.cross_entropy(logits.float(), target.long()) + dice.mean()


@pytest.mark.parametrize("drop_class", [False, True])
def test_monai_losses_equal_the_published_formulas_and_their_gradients(drop_class):
    """The MONAI-backed focal and generalised Dice are the hand-written losses they replaced; Dice +
    CE is cross-entropy plus the unweighted mean foreground Dice loss."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(4, 3, 16, 16, generator=g) * 3).requires_grad_()
    target = torch.randint(0, 3, (4, 16, 16), generator=g)
    if drop_class:
        target[target == 2] = 1  # a class absent from the batch
    for ours, ref in ((focal_loss, _reference_focal),
                      (generalised_dice_loss, _reference_generalised_dice),
                      (dice_ce_loss, _reference_dice_ce)):
        a = ours(logits, target)
        (ga,) = torch.autograd.grad(a, logits)
        b = ref(logits, target)
        (gb,) = torch.autograd.grad(b, logits)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)
        assert torch.allclose(ga, gb, atol=1e-7, rtol=1e-4)


def test_an_undecidable_pixel_goes_to_the_smaller_class_under_generalised_dice_not_dice_ce():
    """Why ``dicece`` exists: a border pixel the input cannot place, half the time class 1 (10
    pixels) and half the time class 2 (30 pixels), next to 100 background pixels. The generalised
    Dice's 1/size^2 weights give it to the small class; with the cross-entropy term, the optimum
    stays near even odds."""
    base = torch.zeros(2, 3, 1, 141)
    target = torch.zeros(2, 1, 141, dtype=torch.long)
    target[:, 0, :10] = 1
    target[:, 0, 10:40] = 2
    target[0, 0, 40], target[1, 0, 40] = 1, 2          # the undecidable pixel
    base[:, 1, 0, :10] = 8.0
    base[:, 2, 0, 10:40] = 8.0
    base[:, 0, 0, 41:] = 8.0

    def p_small(loss_fn):
        z = torch.zeros(3, requires_grad=True)          # one logit vector shared by both samples
        opt = torch.optim.Adam([z], lr=0.05)
        for _ in range(400):
            logits = base.clone()
            logits[:, :, 0, 40] = z
            opt.zero_grad()
            loss_fn(logits, target).backward()
            opt.step()
        p = torch.softmax(z.detach(), 0)
        return float(p[1] / (p[1] + p[2]))

    assert p_small(generalised_dice_loss) > 0.7
    assert 0.4 < p_small(dice_ce_loss) < 0.6
