"""Per-image metrics against hand counts; an empty prediction of an empty truth is Dice 1."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.cardiac.train.metrics import confusion, image_metrics


def test_hand_counted_image():
    truth = torch.tensor([[[0, 1, 1, 2],
                           [0, 1, 2, 2]]])
    pred = torch.tensor([[[0, 1, 0, 2],
                          [1, 1, 2, 0]]])
    conf = confusion(pred, truth)
    assert conf[0].tolist() == [[1, 1, 0], [1, 2, 0], [1, 0, 2]]
    m = image_metrics(pred, truth)
    assert m["accuracy"].item() == pytest.approx(5 / 8)
    assert m["dice_lv"].item() == pytest.approx(2 * 2 / (3 + 3))
    assert m["dice_my"].item() == pytest.approx(2 * 2 / (3 + 2))
    # foreground: truth 6 px, pred 5 px, both foreground in 4 px (LV/MY confusion still counts)
    assert m["dice_fg"].item() == pytest.approx(2 * 4 / (6 + 5))


def test_empty_truth_and_empty_prediction_count_as_one():
    empty = torch.zeros(2, 4, 4, dtype=torch.long)
    pred = empty.clone()
    pred[1, 0, 0] = 1  # second image: a false-positive LV pixel
    m = image_metrics(pred, empty)
    assert m["dice_lv"].tolist() == [1.0, 0.0]
    assert m["dice_my"].tolist() == [1.0, 1.0]
    assert m["dice_fg"].tolist() == [1.0, 0.0]
    assert m["accuracy"].tolist() == [1.0, 15 / 16]


def test_missed_structure_scores_zero():
    truth = torch.zeros(1, 3, 3, dtype=torch.long)
    truth[0, 1, 1] = 2
    m = image_metrics(torch.zeros_like(truth), truth)
    assert m["dice_my"].item() == 0.0 and m["dice_lv"].item() == 1.0
