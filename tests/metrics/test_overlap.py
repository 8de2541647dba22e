"""Overlap wrappers against MONAI and against hand-counted volumes."""

import math

import numpy as np
import pytest
import torch

from hpc_seg.metrics.overlap import (confusion_counts, dice, sensitivity, smoothed_dice,
                                     specificity)


def _boxes() -> tuple[np.ndarray, np.ndarray]:
    pred = np.zeros((2, 10, 10, 10), bool)
    gt = np.zeros_like(pred)
    pred[0, 2:6, 2:6, 2:6] = True      # 64 voxels
    gt[0, 4:8, 2:6, 2:6] = True        # 64 voxels, 32 shared
    pred[1, 0:2, 0:2, 0:2] = True      # 8 voxels, none shared
    gt[1, 5:9, 5:9, 5:9] = True
    return pred, gt


def test_counts_by_hand():
    pred, gt = _boxes()
    c = confusion_counts(pred, gt)
    assert c[0].tolist() == [32, 32, 1000 - 96, 32]
    assert c[1].tolist() == [0, 8, 1000 - 72, 64]


def test_dice_known_values_and_monai():
    from monai.metrics import compute_dice

    pred, gt = _boxes()
    d = dice(pred, gt)
    assert d.tolist() == pytest.approx([0.5, 0.0])
    ref = compute_dice(torch.as_tensor(pred)[:, None].float(), torch.as_tensor(gt)[:, None].float(),
                       ignore_empty=False)[:, 0]
    assert torch.allclose(d, ref.double())


def test_empty_empty_dice_is_one_and_empty_truth_with_prediction_is_zero():
    empty = np.zeros((1, 6, 6, 6), bool)
    some = empty.copy()
    some[0, 1, 1, 1] = True
    assert dice(empty, empty).item() == 1.0
    assert dice(some, empty).item() == 0.0
    assert smoothed_dice(empty, empty).item() == 1.0
    assert smoothed_dice(empty, empty, smooth=0.0).item() == 1.0


def test_smoothed_dice_is_the_papers_formula_and_matches_monai_without_smoothing():
    pred, gt = _boxes()
    s = smoothed_dice(pred, gt)
    assert s[0].item() == pytest.approx((2 * 32 + 1) / (64 + 64 + 1))
    assert s[1].item() == pytest.approx(1 / (8 + 64 + 1))
    assert torch.allclose(smoothed_dice(pred, gt, smooth=0.0), dice(pred, gt))


def test_sensitivity_specificity_and_nan_when_undefined():
    pred, gt = _boxes()
    assert sensitivity(pred, gt).tolist() == pytest.approx([0.5, 0.0])
    assert specificity(pred, gt).tolist() == pytest.approx([904 / 936, 928 / 936])
    empty = np.zeros((1, 4, 4, 4), bool)
    assert math.isnan(sensitivity(empty, empty).item())


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))
