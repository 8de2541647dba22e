"""Per-image segmentation metrics from confusion matrices (the published definitions).

Everything is derived from one per-image confusion matrix ``conf[b, true, pred]`` over the classes
background 0, LV 1, myocardium 2: pixel accuracy, Dice LV, Dice MY and the Dice of the combined
foreground (LV or MY). ``Dice_c = 2 c_cc / (row_c + col_c)``; when a class is absent from both the
truth and the prediction the Dice is 1 (an empty prediction of an empty truth is correct).
"""

from __future__ import annotations

import torch

from hpc_seg.metrics.overlap import dice_from_counts

METRIC_NAMES = ("accuracy", "dice_lv", "dice_my", "dice_fg")


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 3) -> torch.Tensor:
    """``[B, C, C]`` int64 counts (rows truth, columns prediction) for label maps ``[B, H, W]``."""
    b = pred.shape[0]
    idx = target.reshape(b, -1).long() * num_classes + pred.reshape(b, -1).long()
    out = torch.zeros(b, num_classes * num_classes, dtype=torch.int64, device=pred.device)
    out.scatter_add_(1, idx, torch.ones_like(idx))
    return out.view(b, num_classes, num_classes)


def _dice(tp: torch.Tensor, n_true: torch.Tensor, n_pred: torch.Tensor) -> torch.Tensor:
    # The shared Dice (both empty = 1), fed with this module's one-pass confusion counts.
    return dice_from_counts(tp, n_pred - tp, n_true - tp)


def metrics_from_confusion(conf: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image metric vectors ``[B]`` (float64) from ``[B, C, C]`` confusion counts."""
    conf = conf.long()
    total = conf.sum((1, 2)).double()
    diag = torch.diagonal(conf, dim1=1, dim2=2)
    rows, cols = conf.sum(2), conf.sum(1)
    out = {"accuracy": diag.sum(1).double() / total.clamp(min=1)}
    out["dice_lv"] = _dice(diag[:, 1], rows[:, 1], cols[:, 1])
    out["dice_my"] = _dice(diag[:, 2], rows[:, 2], cols[:, 2])
    fg_tp = conf[:, 1:, 1:].sum((1, 2))
    out["dice_fg"] = _dice(fg_tp, rows[:, 1:].sum(1), cols[:, 1:].sum(1))
    return out


def image_metrics(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 3) -> dict[str, torch.Tensor]:
    """Per-image metrics for predicted and true label maps ``[B, H, W]``."""
    return metrics_from_confusion(confusion(pred, target, num_classes))
