"""Random coil-array reception (hpc_seg.cardiac.train.coil_array): what it does to an image."""

from __future__ import annotations

import math

import pytest
import torch

from hpc_seg.cardiac.train.coil_array import (N_COILS, coil_sensitivities, random_coil_array,
                                              receive)
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.errors import ConfigError


def _images(n: int = 6, size: int = 48) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1


def test_reception_is_scaled_like_the_stored_images():
    """(Seeding and picking: tests/cardiac/train/test_draws.py, for every augmentation.)"""
    images = _images()
    out = random_coil_array(images, torch.Generator().manual_seed(7), 1.0)
    # 0 .. the 99.5th percentile -> [0, 1]: about 0.5 % of each image's pixels are clipped at 1.
    at_one = (out == 1).flatten(1).float().mean(1)
    assert ((at_one > 0) & (at_one < 0.02)).all()


def test_each_image_has_its_own_array_of_one_to_eight_coils_that_shades_the_middle():
    sens = coil_sensitivities(torch.Generator().manual_seed(0), 300, 64, 64)
    active = (sens.flatten(2).amax(2) > 0).sum(1)
    assert active.min() == N_COILS[0] and active.max() == N_COILS[1]
    assert len(set(active.tolist())) == N_COILS[1]                   # every count occurs
    rss = sens.pow(2).sum(1).sqrt()
    centre = rss[:, 28:36, 28:36].mean((1, 2))
    # The coils sit around the body: the middle of the image, where the heart is, is darker than
    # the brightest part of the image, often by half.
    ratio = centre / rss.amax((1, 2))
    assert (ratio < 1).all() and ratio.median() < 0.6
    assert (sens[1:] - sens[:1]).abs().flatten(1).amax(1).min() > 0.05   # not one array for all


def _half_dark(coils: int) -> torch.Tensor:
    """An image bright (1) on its left half and dark (0) on its right, received by ``coils``
    uniform coils at SNR 10."""
    image = torch.zeros(1, 1, 128, 128)
    image[..., :64] = 1.0
    return receive(image, torch.ones(1, coils, 128, 128), torch.tensor([10.0]),
                   torch.Generator().manual_seed(0))


@pytest.mark.parametrize("coils", [1, 8])
def test_where_there_is_no_signal_the_noise_is_chi_with_2n_degrees_of_freedom(coils):
    """Mean of the root-sum-of-squares of N coils' complex Gaussian noise: sigma * sqrt(2) *
    Gamma(N + 1/2) / Gamma(N) (Rician's sigma * sqrt(pi / 2) for one coil)."""
    sigma = 1.0 * math.sqrt(coils) / 10.0                    # q99 = 1, rss_ref = sqrt(N)
    chi_mean = sigma * math.sqrt(2) * math.exp(math.lgamma(coils + 0.5) - math.lgamma(coils))
    assert _half_dark(coils)[..., 64:].mean().item() == pytest.approx(chi_mean, rel=0.03)


def test_more_coils_lift_dark_tissue_towards_bright_at_one_snr():
    """At one SNR, eight coils lift the dark half, relative to the bright half, about three times
    as far as one coil does: the contrast a network sees shrinks."""
    floors = {n: (_half_dark(n)[..., 64:].mean() / _half_dark(n)[..., :64].mean()).item()
              for n in (1, 8)}
    assert 0.1 < floors[1] < 0.15 and 2.5 < floors[8] / floors[1] < 3.5, floors


def test_the_option_is_a_probability():
    assert TrainConfig().coil_noise == 0.0
    with pytest.raises(ConfigError, match="coil_noise must be in"):
        TrainConfig(coil_noise=1.5)
    assert math.isclose(TrainConfig(coil_noise=0.5).coil_noise, 0.5)
