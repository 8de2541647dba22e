"""The published pre-training augmentation, in plain torch (runs on the training device).

Random left-right flip (p = 0.5); random affine (p = 0.8) with rotation +-4 degrees about each
axis, shear +-0.04 and scale 1 +- 0.04; trilinear for images, nearest for labels and brain mask;
images multiplied by the (transformed) brain mask afterwards.

The affine is built in voxel units about the volume centre and then converted to
``affine_grid``'s normalised coordinates, so a rotation stays a rotation on non-cubic volumes.
All randomness comes from the ``torch.Generator`` passed in, which the training loop seeds from
(seed, epoch, sample index): the same sample gets the same augmentation on any number of ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


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


def _normalised_theta(linear: torch.Tensor, spatial: tuple[int, int, int]) -> torch.Tensor:
    """Convert a voxel-unit linear map about the centre to ``affine_grid``'s [1, 3, 4] theta."""
    d, h, w = spatial
    half = torch.diag(torch.tensor([w / 2, h / 2, d / 2], dtype=torch.float64))
    m = torch.linalg.inv(half) @ linear @ half
    theta = torch.zeros(1, 3, 4, dtype=torch.float64)
    theta[0, :, :3] = m
    return theta


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
        spatial = tuple(image.shape[1:])
        theta = _normalised_theta(linear, spatial).to(device=image.device, dtype=torch.float32)
        grid = F.affine_grid(theta, [1, 1, *spatial], align_corners=False)
        image = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)[0]
        both = torch.stack([label.float(), mask.float()])[None]
        both = F.grid_sample(both, grid, mode="nearest", padding_mode="zeros",
                             align_corners=False)[0]
        label, mask = both[0].round().long(), both[1] > 0.5
    image = image * mask[None].to(image.dtype)
    return image, label, mask
