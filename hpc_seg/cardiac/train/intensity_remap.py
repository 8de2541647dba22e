"""Random-convolution intensity remapping (GIN: Ouyang et al., "Causality-inspired single-source
domain generalization for medical image segmentation", IEEE TMI 2023).

Why: a network trained on one source's images learns that source's tissue contrasts (on the
generator's cines the blood pool is the brightest tissue; on a balanced SSFP scan fat can be
brighter and the blood grey). A shallow convolutional network with random weights, drawn anew for
every image, maps the grey values through a random, mostly non-monotone function of each pixel's
small neighbourhood: tissues keep their shapes and their boundaries, but their order of brightness,
their contrasts and their textures change. The network then has to find the heart by shape.

Per picked image: ``layers`` convolutions (``width`` channels in between; each layer's kernel,
per image, 1x1 or 3x3 with equal odds; weights ~ N(0, 1 / fan-in), biases ~ N(0, 1)) with a
leaky ReLU between them; the result, standardised over the image, is blended with the standardised
input by ``alpha ~ U(0, 1)`` and scaled back to [0, 1] (minimum .. 99.5th percentile, clipped, as
the stored images are). Images that are not picked are returned as they were. All draws come from
the ``torch.Generator`` passed in (on the CPU), so a run and its resumed continuation remap alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hpc_seg.cardiac.train.appearance import percentile_to_unit
from hpc_seg.cardiac.train.draws import apply_to_some

LAYERS = 4
WIDTH = 8
SLOPE = 0.2     # leaky ReLU: keeps the remap non-monotone and still informative below zero


def _conv_layer(x: torch.Tensor, c_in: int, c_out: int, g: torch.Generator) -> torch.Tensor:
    """One random grouped 3x3 convolution of ``x [1, n * c_in, H, W]`` (one group per image);
    each image's kernel is 1x1 (only the centre tap) or 3x3 with equal odds."""
    n = x.shape[1] // c_in
    w = torch.randn(n, c_out, c_in, 3, 3, generator=g)
    point = torch.rand(n, generator=g) < 0.5
    centre_only = torch.zeros(3, 3)
    centre_only[1, 1] = 1.0
    w = torch.where(point.view(n, 1, 1, 1, 1), w * centre_only, w)
    fan_in = torch.where(point, float(c_in), float(9 * c_in)).view(n, 1, 1, 1, 1)
    w = (w / fan_in.sqrt()).reshape(n * c_out, c_in, 3, 3).to(x.device)
    b = torch.randn(n * c_out, generator=g).to(x.device)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, b, groups=n)


def _standardise(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean((1, 2, 3), keepdim=True)
    std = x.std((1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


def random_conv_remap(images: torch.Tensor, generator: torch.Generator, p: float,
                      layers: int = LAYERS, width: int = WIDTH) -> torch.Tensor:
    """Remap each image of ``images [B, 1, H, W]`` (float, [0, 1]) with probability ``p`` through
    its own random shallow convolutional network (module docstring). Masks are not touched: the
    remap moves no pixel. ``p = 0`` draws nothing from ``generator``."""
    g = generator

    def change(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        x = x.float()
        y = x.reshape(1, n, *x.shape[-2:])
        c_in = 1
        for i in range(layers):
            c_out = 1 if i == layers - 1 else width
            y = _conv_layer(y, c_in, c_out, g)
            if i < layers - 1:
                y = F.leaky_relu(y, SLOPE)
            c_in = c_out
        y = y.view(n, 1, *x.shape[-2:])
        alpha = torch.rand(n, generator=g).view(n, 1, 1, 1).to(x.device)
        mixed = alpha * _standardise(y) + (1 - alpha) * _standardise(x)
        # Shifted to start at 0, then the renderer's scaling: 0 .. the 99.5th percentile -> [0, 1].
        lowest = mixed.amin((1, 2, 3), keepdim=True)
        return percentile_to_unit(mixed - lowest, torch.ones_like(mixed, dtype=torch.bool))

    return apply_to_some(images, g, p, change)
