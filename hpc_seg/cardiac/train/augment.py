"""Published training augmentations as batched torch ops (run on the GPU next to the model).

"normal" (the published transforms): random crop, symmetric warp +-0.2, rotation +-20 deg, zoom 1-1.2
(``min_zoom`` below 1 also shrinks: hearts smaller than the training set's), brightness
0.3-0.7, contrast x0.6-1.667, each with p = 0.75. "extreme": the same plus a left-right flip with
p = 0.5 and rotation +-90 deg. The semantics follow fastai, which the published models used:

- the random crop is the zoom's centre, drawn uniformly (fastai's ``row_pct``/``col_pct``), so a
  zoomed image shows a random window of the original;
- the symmetric warp moves the four corners by 4 magnitudes drawn in [-0.2, 0.2]
  (``_symmetric_warp``), i.e. a perspective transform solved per image;
- brightness and contrast act on logits: ``sigmoid(logit(x) * contrast + logit(brightness))``, so
  brightness 0.5 and contrast 1 change nothing.

``"nnunet"``: nnU-Net's 2D pipeline from MONAI transforms (:mod:`.augment_nnunet`).

Image and mask go through one sampling grid per image (bilinear for the image, nearest for the
mask; outside the image is zero = background). Parameters are drawn on the CPU from an explicit
``torch.Generator`` so that a run, and a resumed run, sees the same augmentations on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

P_AFFINE = 0.75
P_LIGHTING = 0.75


@dataclass(frozen=True)
class AugmentSpec:
    max_rotate: float
    flip: bool
    max_warp: float = 0.2
    zoom: tuple[float, float] = (1.0, 1.2)
    brightness: tuple[float, float] = (0.3, 0.7)
    contrast: tuple[float, float] = (0.6, 1.0 / 0.6)


SPECS = {"normal": AugmentSpec(max_rotate=20.0, flip=False),
         "extreme": AugmentSpec(max_rotate=90.0, flip=True)}


@dataclass
class AugmentParams:
    """Per-image parameters (tensors of length B; warp is [B, 4]). Identity values mean "off"."""

    angle_deg: torch.Tensor
    zoom: torch.Tensor
    crop_pct: torch.Tensor      # [B, 2]: (col_pct, row_pct) in [0, 1]; 0.5 = centred
    flip: torch.Tensor          # bool
    warp: torch.Tensor          # [B, 4] corner magnitudes
    brightness: torch.Tensor    # 0.5 = unchanged
    contrast: torch.Tensor      # 1.0 = unchanged

    @classmethod
    def identity(cls, n: int) -> "AugmentParams":
        return cls(torch.zeros(n), torch.ones(n), torch.full((n, 2), 0.5), torch.zeros(n, dtype=torch.bool),
                   torch.zeros(n, 4), torch.full((n,), 0.5), torch.ones(n))


def sample_params(mode: str, n: int, generator: torch.Generator,
                  min_zoom: float = 1.0) -> AugmentParams:
    """Draw the published random parameters for ``n`` images; ``min_zoom`` below 1 lets the zoom
    also shrink the image (zoom ~ U(min_zoom, 1.2))."""
    spec = SPECS[mode]
    if min_zoom != spec.zoom[0]:
        spec = replace(spec, zoom=(min_zoom, spec.zoom[1]))
    g = generator

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*(shape or (n,)), generator=g, dtype=torch.float64)

    def on(p: float) -> torch.Tensor:
        return torch.rand(n, generator=g, dtype=torch.float64) < p

    p = AugmentParams.identity(n)
    angle = u(-spec.max_rotate, spec.max_rotate)
    zoom, crop = u(*spec.zoom), u(0.0, 1.0, n, 2)
    warp = u(-spec.max_warp, spec.max_warp, n, 4)
    logc = u(math.log(spec.contrast[0]), math.log(spec.contrast[1]))
    bright = u(*spec.brightness)
    rot_on, zoom_on, warp_on = on(P_AFFINE), on(P_AFFINE), on(P_AFFINE)
    bright_on, contrast_on = on(P_LIGHTING), on(P_LIGHTING)
    flip_on = on(0.5) if spec.flip else torch.zeros(n, dtype=torch.bool)
    p.angle_deg = torch.where(rot_on, angle, 0.0).float()
    p.zoom = torch.where(zoom_on, zoom, 1.0).float()
    p.crop_pct = torch.where(zoom_on[:, None], crop, 0.5).float()
    p.warp = torch.where(warp_on[:, None], warp, 0.0).float()
    p.flip = flip_on
    p.brightness = torch.where(bright_on, bright, 0.5).float()
    p.contrast = torch.where(contrast_on, logc.exp(), 1.0).float()
    return p


def affine_matrices(p: AugmentParams) -> torch.Tensor:
    """[B, 3, 3] maps from output to input normalised coordinates (x = column, y = row)."""
    n = p.angle_deg.shape[0]
    theta = torch.deg2rad(p.angle_deg.double())
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.zeros(n, 3, 3, dtype=torch.float64)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1
    inv = 1.0 / p.zoom.double()
    zoom = torch.zeros(n, 3, 3, dtype=torch.float64)
    zoom[:, 0, 0], zoom[:, 1, 1], zoom[:, 2, 2] = inv, inv, 1
    zoom[:, :2, 2] = (1 - inv)[:, None] * (2 * p.crop_pct.double() - 1)
    flip = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    flip[:, 0, 0] = torch.where(p.flip, -1.0, 1.0).double()
    return rot @ zoom @ flip


def warp_homographies(warp: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] perspective maps taking the corners to fastai's symmetric-warp targets."""
    m = warp.double()
    n = m.shape[0]
    src = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    dst = torch.stack([
        torch.stack([-1 - m[:, 3], -1 - m[:, 1]], -1), torch.stack([-1 - m[:, 2], 1 + m[:, 1]], -1),
        torch.stack([1 + m[:, 3], -1 - m[:, 0]], -1), torch.stack([1 + m[:, 2], 1 + m[:, 0]], -1)], 1)
    a = torch.zeros(n, 8, 8, dtype=torch.float64)
    b = torch.zeros(n, 8, dtype=torch.float64)
    for i in range(4):
        x, y = src[i]
        u, v = dst[:, i, 0], dst[:, i, 1]
        a[:, 2 * i, 0], a[:, 2 * i, 1], a[:, 2 * i, 2] = x, y, 1
        a[:, 2 * i, 6], a[:, 2 * i, 7] = -x * u, -y * u
        a[:, 2 * i + 1, 3], a[:, 2 * i + 1, 4], a[:, 2 * i + 1, 5] = x, y, 1
        a[:, 2 * i + 1, 6], a[:, 2 * i + 1, 7] = -x * v, -y * v
        b[:, 2 * i], b[:, 2 * i + 1] = u, v
    h = torch.linalg.solve(a, b)
    return torch.cat([h, torch.ones(n, 1, dtype=torch.float64)], 1).view(n, 3, 3)


def sampling_grid(p: AugmentParams, height: int, width: int, device: torch.device) -> torch.Tensor:
    """[B, H, W, 2] grid for ``grid_sample``: affine first, then the perspective warp."""
    mats = (warp_homographies(p.warp) @ affine_matrices(p)).float().to(device)
    ys = (torch.arange(height, device=device, dtype=torch.float32) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) * 2 + 1) / width - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([xx, yy, torch.ones_like(xx)], -1).view(1, -1, 3)
    pts = base @ mats.transpose(1, 2)
    grid = pts[..., :2] / pts[..., 2:3]
    return grid.view(-1, height, width, 2)


def apply_params(images: torch.Tensor, masks: torch.Tensor,
                 p: AugmentParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Transform float images ``[B,1,H,W]`` in [0,1] and integer masks ``[B,H,W]`` together."""
    b, _, h, w = images.shape
    grid = sampling_grid(p, h, w, images.device)
    out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_mask = F.grid_sample(masks[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                             align_corners=False)[:, 0].to(masks.dtype)
    out = _lighting(out, p.brightness.to(images.device), p.contrast.to(images.device))
    return out.to(images.dtype), out_mask


def _lighting(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    active = ((brightness != 0.5) | (contrast != 1.0)).view(-1, 1, 1, 1)
    if not bool(active.any()):
        return x
    logit = torch.logit(x.clamp(1e-6, 1 - 1e-6))
    shifted = logit * contrast.view(-1, 1, 1, 1) + torch.logit(brightness).view(-1, 1, 1, 1)
    return torch.where(active, torch.sigmoid(shifted), x)


def augment_batch(images: torch.Tensor, masks: torch.Tensor, mode: str,
                  generator: torch.Generator, min_zoom: float = 1.0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch with the published "normal"/"extreme" transforms (their zoom from
    ``min_zoom``), or nnU-Net's ("nnunet"); "none" returns it."""
    if mode == "none":
        return images, masks
    if mode == "nnunet":
        from hpc_seg.cardiac.train.augment_nnunet import augment_nnunet
        return augment_nnunet(images, masks, generator)
    return apply_params(images, masks, sample_params(mode, images.shape[0], generator, min_zoom))
