"""Random dark bands across training images: balanced SSFP's off-resonance banding.

Why: a bSSFP cine loses its signal where the off-resonance phase accrued per TR nears 180 degrees,
so an imperfect shim draws dark stripes across the field of view, and where one crosses the heart
part of the blood pool turns grey. The bench's cross-generator test showed what a network that
never saw one does: it takes the darkened part of the cavity for myocardium (one patient's EDV
30 % short). Neither the generator's images nor the random appearance renderings have such bands.

Model, per picked image: the off-resonance phase is a random linear ramp across the image (-2 .. 2
cycles per field of view on each axis, a random offset) plus a smooth random field (a 3 x 3
Gaussian grid, bicubic upsampled, std up to pi / 2); the signal is multiplied by
``1 - depth * exp(-d^2 / (2 w^2))``, where ``d`` is the phase's distance from 180 degrees (wrapped),
``w ~ U(0.15, 0.5)`` rad and ``depth ~ U(0.4, 0.95)``. A band can also miss the image, as it can on
a scanner. Pixels are only darkened, never moved, so the masks stay as they are. All draws come
from the ``torch.Generator`` passed in (on the CPU), so a resumed run bands its images alike.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hpc_seg.cardiac.train.draws import apply_to_some
from hpc_seg.cardiac.train.draws import uniform as _u

MAX_CYCLES = 2.0
MAX_WARP_RAD = math.pi / 2
WIDTH_RAD = (0.15, 0.5)
DEPTH = (0.4, 0.95)


def band_fields(g: torch.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """``[n, 1, h, w]`` multiplicative fields in ``[1 - DEPTH[1], 1]`` (module docstring)."""
    v = torch.linspace(-0.5, 0.5, h).view(1, h, 1)
    u = torch.linspace(-0.5, 0.5, w).view(1, 1, w)
    cycles = _u(g, -MAX_CYCLES, MAX_CYCLES, n, 2)
    offset = _u(g, 0.0, 2 * math.pi, n)
    phase = 2 * math.pi * (cycles[:, 0].view(n, 1, 1) * v + cycles[:, 1].view(n, 1, 1) * u) \
        + offset.view(n, 1, 1)
    warp = torch.randn(n, 1, 3, 3, generator=g) * _u(g, 0.0, MAX_WARP_RAD, n).view(n, 1, 1, 1)
    phase = phase + F.interpolate(warp, size=(h, w), mode="bicubic", align_corners=True)[:, 0]
    d = torch.remainder(phase, 2 * math.pi) - math.pi      # distance from 180 degrees, wrapped
    width = _u(g, *WIDTH_RAD, n).view(n, 1, 1)
    depth = _u(g, *DEPTH, n).view(n, 1, 1)
    return (1 - depth * torch.exp(-0.5 * (d / width) ** 2))[:, None]


def random_banding(images: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """Darken each image of ``images [B, 1, H, W]`` (float, [0, 1]) with probability ``p`` by its
    own random band field (:func:`band_fields`). ``p = 0`` draws nothing from ``generator``."""
    h, w = images.shape[-2:]
    return apply_to_some(images, generator, p, lambda x: x * band_fields(generator, len(x), h, w)
                         .to(x.device, x.dtype))
