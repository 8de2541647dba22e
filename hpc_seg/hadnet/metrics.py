"""BraTS region Dice on class maps (0 background, 1 NCR/NET, 2 ED, 3 ET).

Regions: ET = {3}, TC = {1, 3}, WT = {1, 2, 3} (labels 4 -> class 3). Model selection uses the
published smoothed Dice (2|P&G| + 1) / (|P| + |G| + 1) per sample; the evaluation table uses the
plain Dice with "both empty = 1" (``smooth=0``), BraTS's convention.
"""

from __future__ import annotations

import numpy as np
import torch

REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}


def region_dice(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
                smooth: float = 1.0) -> dict[str, float]:
    """Dice of WT, TC, ET for one case (class maps of equal shape)."""
    pred_t = torch.as_tensor(np.asarray(pred) if isinstance(pred, np.ndarray) else pred)
    targ_t = torch.as_tensor(np.asarray(target) if isinstance(target, np.ndarray) else target)
    if pred_t.shape != targ_t.shape:
        raise ValueError(f"prediction shape {tuple(pred_t.shape)} != target shape {tuple(targ_t.shape)}")
    out = {}
    for name, classes in REGIONS.items():
        cls = torch.tensor(classes, device=pred_t.device)
        p = torch.isin(pred_t, cls)
        g = torch.isin(targ_t, cls.to(targ_t.device))
        inter = float((p & g).sum())
        denom = float(p.sum() + g.sum())
        if smooth == 0 and denom == 0:
            out[name] = 1.0
        else:
            out[name] = (2 * inter + smooth) / (denom + smooth)
    return out


def validation_metric(dice: dict[str, float]) -> float:
    """VM: mean of WT, TC and ET Dice."""
    return (dice["WT"] + dice["TC"] + dice["ET"]) / 3.0
