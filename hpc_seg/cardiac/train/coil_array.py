"""Phased-array reception of training images: coil shading and the root-sum-of-squares noise floor.

Why: a cine is received by several surface coils around the chest, each seeing the body through its
own smooth sensitivity, and the coils' magnitude images are combined as the root-sum-of-squares
(RSS). That does two things to the heart, which lies in the middle of the chest, far from every
coil:

- **shading**: the image is bright near the coils and darker in the middle; once the image is
  scaled to its 99.5th percentile, the heart's grey values are squeezed into the lower part of the
  range;
- **a noise floor**: the RSS of N coils' complex noise is non-central chi with 2N degrees of
  freedom, so dark tissue (myocardium, lung) is lifted by about ``sigma * sqrt(2N)`` and the
  blood-myocardium contrast shrinks. One coil gives Rician noise; N coils lift the floor more.

The generator's images and the random appearance renderings have neither. ``bench generalise
--cross-ablation`` measured what they cost a model trained without them: rendering the
cross-generator cohort with one uniform coil instead of the renderer's 4-8 lowered the
``hybrid_zoom_out`` model's EF error on the bSSFP patients from 8.67 to 6.49 points (128 px; README),
while the same coil arrays on the generator's own contrast cost it little (EF 4.5 -> 4.7, a probe):
coils hurt where the blood is not the brightest tissue.

Model, per picked image ``x`` in [0, 1]: ``N ~ U{1..8}`` coils, evenly spaced on a ring around the
image centre from a random angle (+-0.3 rad jitter each), ring radius ``U(0.45, 0.75)`` and
Gaussian sensitivity width ``U(0.25, 0.5)`` (fractions of the image side); per-coil noise
``sigma = q99(x) * rss_ref / snr`` with ``snr ~ U(5, 40)`` and ``rss_ref`` the RSS of the coils'
mean sensitivities (so ``snr`` is the brightest tissue's at the mean sensitivity); the image is
``sqrt(sum_c (x s_c + sigma n_c)^2 + (sigma m_c)^2)``, scaled 0 .. its 99.5th percentile -> [0, 1]
(clipped), as the stored images are. Pixels do not move, so the masks stay as they are. All draws
come from the ``torch.Generator`` passed in (on the CPU), so a resumed run receives alike.
"""

from __future__ import annotations

import math

import torch

from hpc_seg.cardiac.train.draws import apply_to_some
from hpc_seg.cardiac.train.draws import uniform as _u

N_COILS = (1, 8)
RING = (0.45, 0.75)
WIDTH = (0.25, 0.5)
SNR = (5.0, 40.0)
ANGLE_JITTER = 0.3


def coil_sensitivities(g: torch.Generator, n: int, h: int, w: int) -> torch.Tensor:
    """``[n, N_COILS[1], h, w]`` Gaussian coil sensitivities (module docstring); the coils beyond
    each image's own count are all zero."""
    c = N_COILS[1]
    counts = torch.randint(N_COILS[0], c + 1, (n,), generator=g)
    k = torch.arange(c)
    angle = _u(g, 0.0, 2 * math.pi, n)[:, None] + 2 * math.pi * k[None] / counts[:, None] \
        + _u(g, -ANGLE_JITTER, ANGLE_JITTER, n, c)
    radius, width = _u(g, *RING, n, c), _u(g, *WIDTH, n, c)
    cy = (0.5 + radius * torch.sin(angle))[..., None, None]
    cx = (0.5 + radius * torch.cos(angle))[..., None, None]
    yy = ((torch.arange(h) + 0.5) / h).view(1, 1, h, 1)
    xx = ((torch.arange(w) + 0.5) / w).view(1, 1, 1, w)
    sens = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width[..., None, None] ** 2))
    return sens * (k[None] < counts[:, None])[..., None, None]


def receive(images: torch.Tensor, sens: torch.Tensor, snr: torch.Tensor, g: torch.Generator
            ) -> torch.Tensor:
    """RSS magnitude of ``images [n, 1, H, W]`` seen by the coils ``sens [n, C, H, W]`` with
    per-coil complex Gaussian noise at ``snr [n]`` (not rescaled)."""
    n = images.shape[0]
    active = (sens.flatten(2).amax(2) > 0).to(images.dtype)                       # [n, C]
    rss_ref = sens.mean((2, 3)).pow(2).sum(1).sqrt()                               # [n]
    bright = torch.quantile(images.flatten(1).float(), 0.99, dim=1).clamp_min(1e-6)
    sigma = (bright * rss_ref / snr).view(n, 1, 1, 1) * active[..., None, None]
    real = torch.randn(sens.shape, generator=g).to(images.device)
    imag = torch.randn(sens.shape, generator=g).to(images.device)
    signal = images * sens.to(images.device)
    return ((signal + sigma * real) ** 2 + (sigma * imag) ** 2).sum(1, keepdim=True).sqrt()


def random_coil_array(images: torch.Tensor, generator: torch.Generator, p: float) -> torch.Tensor:
    """Receive each image of ``images [B, 1, H, W]`` (float, [0, 1]) with probability ``p``
    through its own random coil array (module docstring). ``p = 0`` draws nothing."""
    from hpc_seg.cardiac.train.appearance import percentile_to_unit

    def change(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        sens = coil_sensitivities(generator, n, *x.shape[-2:])
        y = receive(x.float(), sens, _u(generator, *SNR, n).to(x.device), generator)
        return percentile_to_unit(y, torch.ones_like(y, dtype=torch.bool))

    return apply_to_some(images, generator, p, change)
