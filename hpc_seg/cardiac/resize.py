"""How a cine image of any matrix becomes a square network input, and a prediction goes back.

Training (the ``slices`` dataset) and inference (``predict``) must scale images identically, so
both use these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class FitPad:
    """How a ``rows x cols`` image maps into ``size x size``: scale, then pad top/left."""

    rows: int
    cols: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.rows, self.cols)

    @property
    def inner(self) -> tuple[int, int]:
        return (max(1, round(self.rows * self.scale)), max(1, round(self.cols * self.scale)))

    @property
    def pad(self) -> tuple[int, int]:
        h, w = self.inner
        return ((self.size - h) // 2, (self.size - w) // 2)


def fit_pad(images: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize ``[N, rows, cols]`` to ``[N, size, size]``: fit the longer side, zero-pad (centred).

    ``mode`` is ``"bilinear"`` for images (antialiased when shrinking) or ``"nearest"`` for masks.
    """
    geo = FitPad(images.shape[-2], images.shape[-1], size)
    x = images[:, None].float()
    if geo.inner != tuple(images.shape[-2:]):
        kw = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
        x = F.interpolate(x, size=geo.inner, mode=mode, **kw)
    top, left = geo.pad
    h, w = geo.inner
    out = torch.zeros(images.shape[0], 1, size, size, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out[:, 0]


def unfit_pad(labels: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Inverse of :func:`fit_pad` for label maps ``[N, size, size]`` (crop, nearest resize)."""
    geo = FitPad(rows, cols, labels.shape[-1])
    top, left = geo.pad
    h, w = geo.inner
    x = labels[:, None, top:top + h, left:left + w].float()
    return F.interpolate(x, size=(rows, cols), mode="nearest")[:, 0].to(labels.dtype)


#: how ``to_uint8`` scales intensities; stored in every model file so that prediction can
#: refuse a model trained on differently scaled images instead of silently mis-scaling
NORMALISATION = {"method": "stack_percentile_to_uint8", "percentile": 99.5, "scale": 255.0}


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale a stack to uint8: 0 .. its 99.5th percentile (robust to a few bright pixels)."""
    hi = float(np.percentile(pixels, NORMALISATION["percentile"])) if pixels.size else 0.0
    if hi <= 0:
        return np.zeros(pixels.shape, np.uint8)
    return np.clip(pixels.astype(np.float32) * (255.0 / hi) + 0.5, 0, 255).astype(np.uint8)
