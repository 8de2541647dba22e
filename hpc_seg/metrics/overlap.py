"""Overlap metrics of binary masks: Dice, smoothed Dice, sensitivity, specificity.

Masks are batched: ``[B, *spatial]`` (bool or 0/1; numpy or torch, any device); every function
returns a float64 tensor ``[B]`` on the masks' device.

Conventions (hpc-seg and BraTS, which MONAI leaves to the caller):

- :func:`dice` is MONAI's ``DiceMetric`` with ``ignore_empty=False``: an empty prediction of an
  empty mask scores 1, a non-empty prediction of an empty mask 0.
- :func:`smoothed_dice` is the HAD-Net paper's validation Dice ``(2TP + s) / (2TP + FP + FN + s)``
  (s = 1), from MONAI's confusion matrix; MONAI has no smoothed Dice.
- :func:`sensitivity` ``TP / (TP + FN)`` and :func:`specificity` ``TN / (TN + FP)`` are MONAI's
  confusion-matrix metrics; they are NaN where undefined (no positive, resp. no negative voxel),
  which the tables count as missing rather than guess a value.
"""

from __future__ import annotations

import numpy as np
import torch


def as_onehot(mask: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``[B, *spatial]`` mask -> MONAI's one-channel one-hot layout ``[B, 1, *spatial]`` (float)."""
    t = torch.as_tensor(mask) if not isinstance(mask, torch.Tensor) else mask
    return (t != 0).unsqueeze(1).float()


def _pair(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = as_onehot(pred), as_onehot(target)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {tuple(p.shape[2:])} != target shape {tuple(g.shape[2:])}")
    if p.ndim < 3:
        raise ValueError(f"masks must be batched [B, *spatial], but got shape {tuple(p.shape)}")
    return p, g.to(p.device)


def confusion_counts(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor
                     ) -> torch.Tensor:
    """``[B, 4]`` voxel counts (TP, FP, TN, FN) from MONAI's ``get_confusion_matrix``."""
    from monai.metrics import get_confusion_matrix

    p, g = _pair(pred, target)
    return get_confusion_matrix(p, g, include_background=True)[:, 0].double()


def dice(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Plain Dice per item, both-empty = 1 (MONAI ``DiceMetric(ignore_empty=False)``)."""
    from monai.metrics import DiceMetric

    p, g = _pair(pred, target)
    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    return metric(p, g)[:, 0].double()


def dice_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor,
                     smooth: float = 0.0) -> torch.Tensor:
    """``(2TP + smooth) / (2TP + FP + FN + smooth)``, 1 where that is 0 / 0 (both masks empty).

    For callers that already hold confusion counts (the cardiac loops count all classes of a
    batch in one ``scatter_add``); ``smooth = 0`` is :func:`dice` exactly (tested against MONAI).
    """
    tp, fp, fn = tp.double(), fp.double(), fn.double()
    num, den = 2 * tp + smooth, 2 * tp + fp + fn + smooth
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.ones_like(den))


def smoothed_dice(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor,
                  smooth: float = 1.0) -> torch.Tensor:
    """``(2TP + smooth) / (2TP + FP + FN + smooth)`` per item (the paper's model selection).

    ``smooth = 0`` falls back to :func:`dice`'s both-empty = 1 where the denominator is 0.
    """
    c = confusion_counts(pred, target)
    return dice_from_counts(c[:, 0], c[:, 1], c[:, 3], smooth)


def _confusion_metric(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor,
                      name: str) -> torch.Tensor:
    from monai.metrics import compute_confusion_matrix_metric

    c = confusion_counts(pred, target)
    # MONAI returns NaN for 0/0 (and warns nothing); keep it: undefined is not 0 or 1.
    return compute_confusion_matrix_metric(name, c[:, None, :]).reshape(-1).double()


def sensitivity(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``TP / (TP + FN)`` per item; NaN when the target is empty."""
    return _confusion_metric(pred, target, "sensitivity")


def specificity(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``TN / (TN + FP)`` per item; NaN when the target fills the whole volume."""
    return _confusion_metric(pred, target, "specificity")
