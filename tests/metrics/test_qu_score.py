"""The QU score on hand-made maps whose ranking is known, and its AUCs against a direct loop."""

import numpy as np
import pytest

from hpc_seg.metrics.qu_score import qu_score, thresholds


def _case(seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (24, 24, 16)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    brain = zz ** 2 + yy ** 2 + xx ** 2 < 0.9
    target = (zz ** 2 + yy ** 2 + xx ** 2 < 0.2) & brain
    pred = target.copy()
    flip = (rng.random(shape) < 0.08) & brain       # 8 % of the brain mislabelled
    pred[flip] = ~pred[flip]
    return pred, target, brain


def test_error_map_beats_constant_map_beats_correct_first_map():
    pred, target, brain = _case()
    errors = pred != target
    error_map = np.where(errors, 100.0, 0.0)
    constant = np.full(pred.shape, 50.0)
    correct_first = np.where(errors, 0.0, 100.0) * brain
    q_err = qu_score(pred, target, error_map, brain)
    q_const = qu_score(pred, target, constant, brain)
    q_bad = qu_score(pred, target, correct_first, brain)
    assert q_err.score > q_const.score > q_bad.score
    # The ideal map removes only errors: Dice 1 below tau = 100, nothing correct filtered.
    assert q_err.auc_ftp == 0.0 and q_err.auc_ftn == 0.0
    assert q_err.score > 0.99
    assert q_bad.score < 0.1


def _direct(pred, target, u, brain, n_steps):
    """Independent reference: one pass over the volume per threshold, np.trapz-free trapezoids."""
    taus = np.linspace(100, 0, n_steps + 1)
    dice, ftp, ftn = [], [], []
    tp0 = np.sum(pred & target)
    tn0 = np.sum(~pred & ~target & brain)
    for tau in taus:
        keep = u <= tau
        p, g = pred & keep, target & keep
        inter, tot = np.sum(p & g), np.sum(p) + np.sum(g)
        dice.append(1.0 if tot == 0 else 2 * inter / tot)
        ftp.append((tp0 - np.sum(p & g)) / tp0)
        ftn.append((tn0 - np.sum(~pred & ~target & brain & keep)) / tn0)

    def area(v):  # taus descend in equal steps
        v = np.asarray(v, float)
        step = 100.0 / n_steps
        return float(np.sum((v[:-1] + v[1:]) / 2 * step) / 100.0)

    return area(dice), area(ftp), area(ftn), np.array(dice)


def test_aucs_match_a_direct_trapezoid_over_the_thresholds():
    pred, target, brain = _case(1)
    rng = np.random.default_rng(3)
    u = np.round(rng.random(pred.shape) * 100, 1) * brain   # ties on threshold values included
    res = qu_score(pred, target, u, brain)
    assert len(res.thresholds) == 41 and res.thresholds[0] == 100 and res.thresholds[-1] == 0
    a_dice, a_ftp, a_ftn, curve = _direct(pred, target, u, brain, 40)
    assert res.auc_dice == pytest.approx(a_dice, abs=1e-12)
    assert res.auc_ftp == pytest.approx(a_ftp, abs=1e-12)
    assert res.auc_ftn == pytest.approx(a_ftn, abs=1e-12)
    np.testing.assert_allclose(res.dice, curve)
    assert res.score == pytest.approx((a_dice + (1 - a_ftp) + (1 - a_ftn)) / 3)


def test_threshold_steps_and_input_checks():
    assert np.allclose(thresholds(4), [100, 75, 50, 25, 0])
    pred, target, brain = _case()
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        qu_score(pred, target, np.full(pred.shape, 101.0), brain)
    with pytest.raises(ValueError, match="shapes differ"):
        qu_score(pred, target, np.zeros((2, 2, 2)), brain)
