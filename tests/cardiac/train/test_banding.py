"""Random off-resonance bands (hpc_seg.cardiac.train.banding): what they do to an image."""

from __future__ import annotations

import math

import pytest
import torch

from hpc_seg.cardiac.train.banding import DEPTH, band_fields, random_banding
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.errors import ConfigError


def _images(n: int = 6, size: int = 48) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1


def test_bands_only_darken_in_place_and_are_seeded():
    """A picked image is the input times its field (no pixel moves, so the mask still fits); the
    field lies in [1 - max depth, 1]; one seed gives one result, another seed another."""
    images = _images()
    out = random_banding(images, torch.Generator().manual_seed(7), 1.0)
    again = random_banding(images, torch.Generator().manual_seed(7), 1.0)
    other = random_banding(images, torch.Generator().manual_seed(8), 1.0)
    assert torch.equal(out, again) and not torch.equal(out, other)
    ratio = out / images
    assert ratio.max() <= 1.0 + 1e-6 and ratio.min() >= 1 - DEPTH[1] - 1e-6
    g = torch.Generator().manual_seed(7)
    torch.rand(images.shape[0], generator=g)                 # the pick draw comes first
    assert torch.allclose(out, images * band_fields(g, images.shape[0], 48, 48))


def test_a_band_is_a_narrow_dark_stripe_through_the_image():
    """Most fields have a band: a small part of the image darkened a lot, most of it untouched,
    and the darkening changes smoothly from pixel to pixel (a stripe, not speckle)."""
    fields = band_fields(torch.Generator().manual_seed(0), 200, 96, 96)[:, 0]
    dark = (fields < 1 - DEPTH[0] / 2).float().mean((1, 2))  # over half the least depth
    kept = (fields > 0.95).float().mean((1, 2))
    with_band = dark > 0
    assert with_band.float().mean() > 0.7                      # a band can miss the image
    assert dark[with_band].median() < 0.2 and kept.median() > 0.6
    # The largest change between neighbours, per field, is a fraction of the band's depth.
    step = torch.maximum((fields[:, 1:] - fields[:, :-1]).abs().amax((1, 2)),
                         (fields[:, :, 1:] - fields[:, :, :-1]).abs().amax((1, 2)))
    depth = (1 - fields).amax((1, 2))
    assert (step[with_band] / depth[with_band]).median() < 0.4
    # Fields differ from image to image: not one band drawn for all.
    assert (fields[1:] - fields[:1]).abs().amax((1, 2)).min() > 0.05


def test_the_option_is_a_probability():
    assert TrainConfig().banding == 0.0
    with pytest.raises(ConfigError, match="banding must be in"):
        TrainConfig(banding=-0.1)
    assert math.isclose(TrainConfig(banding=0.3).banding, 0.3)
