"""BraTS region scores on class maps (0 background, 1 NCR/NET, 2 ED, 3 ET).

Regions: ET = {3}, TC = {1, 3}, WT = {1, 2, 3} (labels 4 -> class 3). The numbers come from the
shared MONAI wrappers in :mod:`hpc_seg.metrics`:

- model selection uses the published smoothed Dice (2|P&G| + 1) / (|P| + |G| + 1) per sample;
- the evaluation uses plain Dice with "both empty = 1" (``smooth=0``), HD95 in mm (0 when both are
  empty, the volume's diagonal when only one is), sensitivity and specificity, as BraTS does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hpc_seg.metrics.distance import hd95
from hpc_seg.metrics.overlap import dice, sensitivity, smoothed_dice, specificity

REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
SCORES = ("dice", "hd95", "sensitivity", "specificity")


def region_masks(classes: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``[3, *spatial]`` bool masks of WT, TC, ET (in :data:`REGIONS` order) of one class map."""
    t = torch.as_tensor(np.asarray(classes) if isinstance(classes, np.ndarray) else classes)
    return torch.stack([torch.isin(t, torch.tensor(c, device=t.device)) for c in REGIONS.values()])


def _checked(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray
             ) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = region_masks(pred), region_masks(target)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {tuple(p.shape[1:])} != target shape {tuple(g.shape[1:])}")
    return p, g.to(p.device)


def region_dice(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
                smooth: float = 1.0) -> dict[str, float]:
    """Dice of WT, TC, ET for one case (class maps of equal shape); ``smooth=0`` is plain Dice."""
    p, g = _checked(pred, target)
    d = dice(p, g) if smooth == 0 else smoothed_dice(p, g, smooth)
    return {name: float(v) for name, v in zip(REGIONS, d.tolist())}


def region_scores(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
                  spacing: Sequence[float]) -> dict[str, dict[str, float]]:
    """``{region: {dice, hd95, sensitivity, specificity}}`` of one case (HD95 in mm)."""
    p, g = _checked(pred, target)
    values = {"dice": dice(p, g), "hd95": hd95(p, g, spacing),
              "sensitivity": sensitivity(p, g), "specificity": specificity(p, g)}
    return {name: {k: float(v[i]) for k, v in values.items()} for i, name in enumerate(REGIONS)}


def validation_metric(dice_by_region: dict[str, float]) -> float:
    """VM: mean of WT, TC and ET Dice."""
    return (dice_by_region["WT"] + dice_by_region["TC"] + dice_by_region["ET"]) / 3.0
