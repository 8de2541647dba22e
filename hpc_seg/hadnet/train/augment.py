"""The published pre-training augmentation (runs on the training device).

Random left-right flip (p = 0.5); random affine (p = 0.8) with rotation +-4 degrees about each
axis, shear +-0.04 and scale 1 +- 0.04; trilinear for images, nearest for labels and brain mask;
images multiplied by the (transformed) brain mask afterwards.

The affine is built in voxel units about the volume centre, so a rotation stays a rotation on
non-cubic volumes, and applied with MONAI's ``Affine`` (which replaced a hand-written
``affine_grid``/``grid_sample`` pair; same labels voxel for voxel, images within 1e-5, tested).
The *parameters* stay drawn here, not by MONAI's ``RandAffine``: all randomness comes from the
``torch.Generator`` passed in, which the training loop seeds from (seed, epoch, sample index), so
the same sample gets the same augmentation on any number of ranks and after a resume; MONAI's
random transforms draw from their own numpy ``RandomState``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AugmentParams:
    """The published ranges."""

    flip_p: float = 0.5
    affine_p: float = 0.8
    rotation_deg: float = 4.0
    shear: float = 0.04
    scale: float = 0.04
    flip_axis: int = 0
    """spatial axis of [D, H, W] that is left-right (NIfTI's first axis, x)"""


def _uniform(gen: torch.Generator, n: int, bound: float) -> torch.Tensor:
    return (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * bound


def random_affine_matrix(gen: torch.Generator, p: AugmentParams) -> torch.Tensor:
    """A 3x3 linear map (rotation x shear x scale) in voxel units, (x, y, z) = (W, H, D) order."""
    ax, ay, az = (_uniform(gen, 3, math.radians(p.rotation_deg))).tolist()
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    sh = torch.eye(3, dtype=torch.float64)
    off = _uniform(gen, 6, p.shear)
    sh[0, 1], sh[0, 2], sh[1, 0], sh[1, 2], sh[2, 0], sh[2, 1] = off.tolist()
    scale = torch.diag(1.0 + _uniform(gen, 3, p.scale))
    return rz @ ry @ rx @ sh @ scale


def _array_axes_affine(linear: torch.Tensor) -> torch.Tensor:
    """The (x, y, z) = (W, H, D) linear map as MONAI's 4x4 affine over the array axes (D, H, W)."""
    swap = torch.flip(torch.eye(3, dtype=torch.float64), dims=[0])
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3] = swap @ linear @ swap
    return out


def _warp(volume: torch.Tensor, linear: torch.Tensor, mode: str) -> torch.Tensor:
    """``volume`` [C, D, H, W] resampled through ``linear`` about the centre, zeros outside."""
    from monai.transforms import Affine

    out = Affine(affine=_array_axes_affine(linear), mode=mode, padding_mode="zeros",
                 image_only=True)(volume)
    return out.as_tensor() if hasattr(out, "as_tensor") else out


def augment_case(image: torch.Tensor, label: torch.Tensor, mask: torch.Tensor,
                 gen: torch.Generator, params: AugmentParams = AugmentParams()
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment one case: ``image`` [C, D, H, W] float, ``label`` [D, H, W] int64, ``mask`` bool.

    Returns new tensors on the same device; the input tensors are not modified.
    """
    flip = bool(torch.rand(1, generator=gen) < params.flip_p)
    do_affine = bool(torch.rand(1, generator=gen) < params.affine_p)
    linear = random_affine_matrix(gen, params)  # always drawn: the stream does not depend on p
    if flip:
        axis = 1 + params.flip_axis
        image, label, mask = image.flip(axis), label.flip(axis - 1), mask.flip(axis - 1)
    if do_affine:
        image = _warp(image.float(), linear, "bilinear")
        both = _warp(torch.stack([label.float(), mask.float()]), linear, "nearest")
        label, mask = both[0].round().long(), both[1] > 0.5
    image = image * mask[None].to(image.dtype)
    return image, label, mask
