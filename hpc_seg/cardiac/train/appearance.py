"""Random appearance from label maps (domain randomisation, as SynthSeg), rendered per sample.

A network that only ever sees one generator's grey values can learn the generator instead of the
heart. Here every training image is rendered on the fly from its multi-structure label map (the
``structures`` column of a slices dataset, :mod:`hpc_seg.cardiac.slices.label_maps`), so the
network never sees the same appearance twice and only shape tells the structures apart:

1. **deformation**: a random affine (rotation, per-axis scale, shear, translation) composed with a
   smooth random displacement field (Gaussian displacements on a coarse grid, bicubic upsampled),
   applied with one sampling grid to the structures and the mask (nearest neighbour);
2. **intensities**: a Gaussian mixture drawn anew for every sample: each structure id gets a mean
   ~ U(0, 1) and a standard deviation ~ U(0, ``max_std``). With ``groups`` (``appearance =
   "tissue"``), structures of one tissue share their mean, up to a small jitter: SynthSeg's
   *generation classes*. Why: with a mean per structure the network learns that a differently
   coloured atrium or papillary muscle marks "not LV cavity" or "LV cavity" by its grey value, a
   cue no scanner gives (all blood pools look alike, papillary muscles look like myocardium). In
   ``bench generalise`` the two tied (README), so this is a prior, not a measured gain;
3. **partial volume and resolution**: a Gaussian blur of random width, then, with probability
   ``p_lowres``, an acquisition at a random coarser resolution per axis (down and up again);
4. **bias field**: ``exp`` of a smooth random field (a coarse Gaussian grid, bicubic upsampled);
5. **noise**: Rician (the magnitude of the image plus complex Gaussian noise);
6. **gamma** on the [0, 1]-scaled image, then the stored images' normalisation: 0 .. the 99.5th
   percentile -> [0, 1], clipped; outside the field of view (id :data:`PAD`) stays 0.

All parameters come from the ``torch.Generator`` passed in (drawn on the CPU, so a run and its
resumed continuation see the same renderings on any device).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

PAD = 255      # structure id of the padding outside the field of view (slices.label_maps.PAD)
N_IDS = 256

#: Structures (by their ``structures.json`` name) that are one tissue: they share a random mean
#: under ``appearance = "tissue"``. Every other name is a tissue of its own.
TISSUES: dict[str, tuple[str, ...]] = {
    "blood": ("lv_blood", "rv_blood", "atria_aortic_root", "descending_aorta"),
    "muscle": ("lv_myocardium", "lv_papillary_trabeculae", "rv_wall", "body_wall_muscle"),
    "fat": ("pericardial_fat", "body_fat"),
}


def tissue_groups(names: dict[int, str]) -> torch.Tensor:
    """``[N_IDS]`` long: the tissue group of each structure id (ids of one tissue in
    :data:`TISSUES` share a group; any other id, named or not, is a group of its own)."""
    tissue_of = {n: t for t, members in TISSUES.items() for n in members}
    groups = torch.arange(N_IDS)
    first: dict[str, int] = {}
    for i in sorted(names):
        tissue = tissue_of.get(names[i])
        if tissue is not None:
            groups[int(i)] = first.setdefault(tissue, int(i))
    return groups


@dataclass(frozen=True)
class AppearanceSpec:
    """Ranges of the random rendering (per sample, uniform unless said)."""

    max_rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    max_shear: float = 0.05
    max_translate: float = 0.05
    """fraction of the image size"""
    elastic_grid: int = 5
    max_elastic: float = 0.03
    """std of the displacements on the coarse grid, as a fraction of the image size"""
    max_std: float = 0.1
    """upper bound of each structure's intensity standard deviation (means are in [0, 1])"""
    max_group_jitter: float = 0.05
    """with tissue groups: each structure's mean is its tissue's plus N(0, s), s ~ U(0, this)"""
    max_blur_px: float = 1.0
    p_lowres: float = 0.5
    lowres: tuple[float, float] = (1.0, 3.0)
    """coarser acquisition: pixel size factor per axis"""
    bias_grid: int = 4
    max_bias: float = 0.4
    """std of the log bias field on its coarse grid"""
    max_noise: float = 0.06
    gamma_std: float = 0.25
    """std of log(gamma)"""

    def without_appearance_noise(self) -> "AppearanceSpec":
        """The deformation and the per-structure means only: each structure one grey value."""
        return replace(self, max_std=0.0, max_group_jitter=0.0, max_blur_px=0.0, p_lowres=0.0,
                       max_bias=0.0, max_noise=0.0, gamma_std=0.0)


def _u(g: torch.Generator, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)


def _smooth_field(g: torch.Generator, n: int, channels: int, grid: int, std: torch.Tensor,
                  size: tuple[int, int]) -> torch.Tensor:
    """[n, channels, H, W]: Gaussian values on a ``grid x grid`` lattice, bicubic upsampled."""
    coarse = torch.randn(n, channels, grid, grid, generator=g, dtype=torch.float64) \
        * std.view(-1, 1, 1, 1)
    return F.interpolate(coarse.float(), size=size, mode="bicubic", align_corners=True)


def deformation_grid(g: torch.Generator, n: int, h: int, w: int,
                     spec: AppearanceSpec) -> torch.Tensor:
    """[n, H, W, 2] sampling grid (x, y in [-1, 1]): random affine plus smooth displacements."""
    ang = torch.deg2rad(_u(g, -spec.max_rotate_deg, spec.max_rotate_deg, n))
    sx, sy = _u(g, *spec.scale, n), _u(g, *spec.scale, n)
    shear = _u(g, -spec.max_shear, spec.max_shear, n)
    t = _u(g, -spec.max_translate, spec.max_translate, n, 2) * 2
    c, s = torch.cos(ang), torch.sin(ang)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    shape = torch.stack([torch.stack([sx, shear], -1), torch.stack([torch.zeros_like(sx), sy],
                                                                      -1)], -2)
    theta = torch.cat([rot @ shape, t[:, :, None]], -1).float()
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    amp = _u(g, 0.0, spec.max_elastic, n) * 2          # fraction of the size -> [-1, 1] units
    disp = _smooth_field(g, n, 2, spec.elastic_grid, amp, (h, w))
    return grid + disp.permute(0, 2, 3, 1)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample separable Gaussian blur of ``[B, 1, H, W]`` (sigma 0: unchanged)."""
    if float(sigma.max()) <= 0:
        return x
    b = x.shape[0]
    radius = int(math.ceil(3 * float(sigma.max())))
    r = torch.arange(-radius, radius + 1, dtype=torch.float64)
    sig = sigma.view(-1, 1).clamp_min(1e-3)
    k = torch.exp(-0.5 * (r[None] / sig) ** 2)
    k = torch.where(sigma.view(-1, 1) > 0, k, (r[None] == 0).double())
    k = (k / k.sum(1, keepdim=True)).float().to(x.device)
    y = F.conv2d(F.pad(x.transpose(0, 1), (radius, radius, 0, 0), mode="replicate"),
                 k.view(b, 1, 1, -1), groups=b)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k.view(b, 1, -1, 1), groups=b)
    return y.transpose(0, 1)


def _low_resolution(x: torch.Tensor, on: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Down to ``size / factor`` per axis and back up (bilinear), for the samples ``on``."""
    h, w = x.shape[-2:]
    out = x.clone()
    for i in torch.nonzero(on).flatten().tolist():
        small = (max(4, round(h / float(factors[i, 0]))), max(4, round(w / float(factors[i, 1]))))
        low = F.interpolate(x[i:i + 1], size=small, mode="bilinear", antialias=True,
                            align_corners=False)
        out[i:i + 1] = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return out


def percentile_to_unit(x: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """0 .. the 99.5th percentile of the field of view -> [0, 1], clipped; outside it 0.

    The percentile is the nearest rank, from one batched ``topk`` (``torch.quantile`` per sample
    cost more than the rest of the rendering).
    """
    b = x.shape[0]
    vals = torch.where(inside, x, -math.inf).view(b, -1)
    n_in = inside.view(b, -1).sum(1)
    k = torch.ceil(0.005 * n_in.double()).long().clamp_min(1)
    top = vals.topk(int(k.max()), dim=1).values
    hi = top.gather(1, (k - 1)[:, None]).clamp_min(1e-6).view(b, 1, 1, 1)
    return torch.where(inside, (x / hi).clamp(0, 1), 0.0)


def render_batch(structures: torch.Tensor, masks: torch.Tensor, generator: torch.Generator,
                 spec: AppearanceSpec = AppearanceSpec(), groups: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render ``structures [B, H, W]`` (ids; :data:`PAD` outside the field of view) with random
    appearance; ``masks [B, H, W]`` follow the same deformation. ``groups`` (:func:`tissue_groups`)
    ties the means of one tissue's structures; None draws every structure's mean on its own.

    Returns (images ``[B, 1, H, W]`` float in [0, 1], masks ``[B, H, W]``, deformed structures).
    """
    g = generator
    b, h, w = structures.shape
    device = structures.device
    grid = deformation_grid(g, b, h, w, spec).to(device)
    # Sample ids + 1 so that the zeros padding_mode brings in 0 outside: the PAD id again.
    ids = F.grid_sample(structures[:, None].float() + 1, grid, mode="nearest", padding_mode="zeros",
                        align_corners=False)[:, 0].round().long() - 1
    ids = torch.where(ids < 0, PAD, ids)
    out_mask = F.grid_sample(masks[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                             align_corners=False)[:, 0].round().to(masks.dtype)
    means = torch.rand(b, N_IDS, generator=g, dtype=torch.float64)
    if groups is not None:
        jitter = _u(g, 0.0, spec.max_group_jitter, b)[:, None] \
            * torch.randn(b, N_IDS, generator=g, dtype=torch.float64)
        means = (means[:, groups.cpu()] + jitter).clamp(0, 1)
    means = means.float().to(device)
    stds = (torch.rand(b, N_IDS, generator=g, dtype=torch.float64) * spec.max_std).float().to(device)
    flat = ids.view(b, -1)
    x = means.gather(1, flat) + stds.gather(1, flat) * \
        torch.randn(b, h * w, generator=g).to(device)
    x = x.view(b, 1, h, w)
    inside = (ids != PAD)[:, None]
    x = _blur(x, _u(g, 0.0, spec.max_blur_px, b))
    lowres_on = torch.rand(b, generator=g, dtype=torch.float64) < spec.p_lowres
    x = _low_resolution(x, lowres_on, _u(g, *spec.lowres, b, 2))
    log_bias = _smooth_field(g, b, 1, spec.bias_grid, _u(g, 0.0, spec.max_bias, b), (h, w))
    x = x * torch.exp(log_bias.to(device))
    sigma = _u(g, 0.0, spec.max_noise, b).float().to(device).view(-1, 1, 1, 1)
    n1, n2 = torch.randn(2, b, 1, h, w, generator=g).to(device)
    if spec.max_noise > 0:
        x = torch.sqrt((x + sigma * n1) ** 2 + (sigma * n2) ** 2)
    gamma = torch.exp(torch.randn(b, generator=g, dtype=torch.float64) * spec.gamma_std)
    if spec.gamma_std > 0:
        lo = x.amin((2, 3), keepdim=True)
        span = (x.amax((2, 3), keepdim=True) - lo).clamp_min(1e-6)
        x = ((x - lo) / span).clamp(0, 1) ** gamma.float().to(device).view(-1, 1, 1, 1)
    return percentile_to_unit(x, inside), out_mask, ids
