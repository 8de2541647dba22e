"""The 95th-percentile Hausdorff distance (HD95) in mm, with BraTS's conventions for empty masks.

The distances are MONAI's (``HausdorffDistanceMetric`` / ``compute_hausdorff_distance`` with
``percentile=95`` and the voxel spacing): the 95th percentile of the distances from each mask's
surface voxels to the other's surface, the larger of the two directions.

MONAI returns NaN or inf when a mask is empty; BraTS's scorer does not, so neither do we:

- both masks empty: 0 mm (nothing to miss);
- exactly one empty: the diagonal of the volume in mm (``empty_distance``). For a BraTS volume,
  240 x 240 x 155 at 1 mm, that is BraTS's 373.13 mm; for other grids it is the same rule (the
  worst distance the volume allows), so that a missed region is never better than any real miss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hpc_seg.metrics.overlap import as_onehot


def volume_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length of the volume's diagonal in mm (BraTS: 240x240x155 at 1 mm -> 373.13)."""
    return float(np.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))


def _per_item_spacing(spacing: Sequence[float] | Sequence[Sequence[float]] | None, batch: int,
                      ndim: int) -> list[list[float]]:
    if spacing is None:
        return [[1.0] * ndim] * batch
    items = list(spacing)
    if items and isinstance(items[0], (int, float, np.floating, np.integer)):
        items = [items] * batch
    out = [[float(s) for s in item] for item in items]
    if len(out) != batch or any(len(s) != ndim for s in out):
        raise ValueError(f"spacing {spacing} does not give {ndim} values (for {batch} item(s))")
    return out


def hd95(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor,
         spacing: Sequence[float] | Sequence[Sequence[float]] | None = None, *,
         empty_distance: float | None = None) -> torch.Tensor:
    """HD95 in mm per item of batched masks ``[B, *spatial]`` (float64 tensor ``[B]``).

    ``spacing`` is the voxel size in mm per spatial axis (default 1), or one such list per item;
    ``empty_distance`` the value when exactly one of the two masks is empty (default: the volume's
    diagonal, see the module doc).
    """
    import warnings

    from monai.metrics import compute_hausdorff_distance

    p, g = as_onehot(pred), as_onehot(target)
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {tuple(p.shape[2:])} != target shape {tuple(g.shape[2:])}")
    spatial = tuple(p.shape[2:])
    spacings = _per_item_spacing(spacing, p.shape[0], len(spatial))
    g = g.to(p.device)
    p_any = p.flatten(1).any(1).cpu()
    g_any = g.flatten(1).any(1).cpu()
    out = torch.zeros(p.shape[0], dtype=torch.float64)
    for i in (p_any ^ g_any).nonzero().flatten().tolist():
        out[i] = (volume_diagonal_mm(spatial, spacings[i]) if empty_distance is None
                  else float(empty_distance))
    both = (p_any & g_any).nonzero().flatten()
    if len(both):
        with warnings.catch_warnings():
            # Empty masks never reach MONAI (handled above); nothing else it warns about matters.
            warnings.simplefilter("ignore")
            d = compute_hausdorff_distance(p[both.to(p.device)], g[both.to(p.device)],
                                           include_background=True, percentile=95,
                                           spacing=[spacings[i] for i in both.tolist()])
        out[both] = d[:, 0].double().cpu()
    return out
