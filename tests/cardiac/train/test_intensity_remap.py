"""Random-convolution intensity remapping (GIN): new contrasts, the same shapes, seeded."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.cardiac.train.intensity_remap import LAYERS, random_conv_remap
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.errors import ConfigError

SIZE = 64
RADIUS = LAYERS     # each 3x3 layer reaches one pixel further: the remap's reach
MARGIN = RADIUS * 2 ** 0.5 + 0.5     # the reach's square, in Euclidean distance


def _regions() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A bright disk ("blood", 0.9) in a dark ring ("muscle", 0.2) on grey ("body", 0.5): the
    image and, per region, its interior (pixels whose whole reach lies in the region)."""
    r, c = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    d = ((r - 32) ** 2 + (c - 32) ** 2).float().sqrt()
    img = torch.full((SIZE, SIZE), 0.5)
    img[d < 24] = 0.2
    img[d < 10] = 0.9
    interior = {"blood": d < 10 - MARGIN, "muscle": (d > 10 + MARGIN)
                & (d < 24 - MARGIN),
                "body": (d > 24 + MARGIN) & (r >= RADIUS) & (r < SIZE - RADIUS)
                & (c >= RADIUS) & (c < SIZE - RADIUS)}
    assert all(int(m.sum()) > 10 for m in interior.values())
    return img, interior


def _batch(n: int) -> torch.Tensor:
    img, _ = _regions()
    return img.expand(n, 1, SIZE, SIZE).clone()


def test_each_image_gets_its_own_remap_seeded():
    x = _batch(8)
    a = random_conv_remap(x, torch.Generator().manual_seed(5), 1.0)
    b = random_conv_remap(x, torch.Generator().manual_seed(5), 1.0)
    c = random_conv_remap(x, torch.Generator().manual_seed(6), 1.0)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Eight copies of one image, eight different remaps.
    assert len({tuple(a[i].flatten().tolist()) for i in range(8)}) == 8
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_the_remap_moves_no_pixel_and_changes_the_contrasts():
    """Inside a region (beyond the network's reach of any border) every pixel gets one value, so
    the shapes stay where the mask says; across draws the tissues' order of brightness changes
    (the bright blood is sometimes darker than the muscle), which a brightness/contrast
    augmentation never does."""
    _, interior = _regions()
    y = random_conv_remap(_batch(200), torch.Generator().manual_seed(2), 1.0)
    flipped = 0
    for img in y[:, 0]:
        for name, m in interior.items():
            vals = img[m]
            assert float(vals.max() - vals.min()) < 1e-5, name
        flipped += bool(img[interior["blood"]][0] < img[interior["muscle"]][0])
    assert 20 < flipped < 180


def test_the_probability_is_checked():
    with pytest.raises(ConfigError, match="intensity_remap must be in"):
        TrainConfig(intensity_remap=1.5)
