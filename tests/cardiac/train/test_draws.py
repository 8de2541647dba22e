"""What every random image augmentation of the training loop promises (bands, coil arrays,
intensity remap): off draws nothing, the pick is the first draw, one seed gives one result."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.cardiac.train.banding import random_banding
from hpc_seg.cardiac.train.coil_array import random_coil_array
from hpc_seg.cardiac.train.draws import apply_to_some
from hpc_seg.cardiac.train.intensity_remap import random_conv_remap

AUGMENTATIONS = {"bands": random_banding, "coils": random_coil_array, "remap": random_conv_remap}


def _images(n: int, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_off_draws_nothing_and_returns_the_images(name):
    images, g = _images(6), torch.Generator().manual_seed(5)
    state = g.get_state()
    assert AUGMENTATIONS[name](images, g, 0.0) is images
    assert torch.equal(g.get_state(), state)


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_only_the_picked_images_change_and_the_pick_is_the_first_draw(name):
    """One uniform per image, below p: a resumed run (same generator state) picks alike."""
    x = _images(64)
    y = AUGMENTATIONS[name](x, torch.Generator().manual_seed(1), 0.5)
    pick = torch.rand(64, generator=torch.Generator().manual_seed(1)) < 0.5
    assert [not torch.equal(x[i], y[i]) for i in range(64)] == pick.tolist()
    assert 16 < int(pick.sum()) < 48 and y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_one_seed_gives_one_result_and_another_seed_another(name):
    x = _images(8)
    a, b, c = (AUGMENTATIONS[name](x, torch.Generator().manual_seed(s), 1.0) for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_with_no_image_picked_the_images_come_back_untouched():
    x = _images(3)
    calls = []
    out = apply_to_some(x, torch.Generator().manual_seed(0), 1e-9, lambda v: calls.append(v) or v)
    assert out is x and calls == []
