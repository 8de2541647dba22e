"""Augmentations: exact geometric cases, lighting formulas, published ranges and probabilities."""

from __future__ import annotations

import math

import pytest
import torch

from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.errors import ConfigError
from hpc_seg.cardiac.train.augment import (AugmentParams, apply_params, augment_batch, sample_params,
                                   warp_homographies)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 1, 8, 10, generator=g), torch.randint(0, 3, (2, 8, 10), generator=g)


def test_identity_parameters_change_nothing(batch):
    images, masks = batch
    out, out_mask = apply_params(images, masks, AugmentParams.identity(2))
    assert torch.allclose(out, images, atol=1e-6)
    assert torch.equal(out_mask, masks)


def test_rotation_90_and_flip_move_image_and_mask_together():
    g = torch.Generator().manual_seed(2)
    images, masks = torch.rand(2, 1, 8, 8, generator=g), torch.randint(0, 3, (2, 8, 8), generator=g)
    p = AugmentParams.identity(2)
    p.angle_deg = torch.tensor([90.0, 0.0])
    p.flip = torch.tensor([False, True])
    out, out_mask = apply_params(images, masks, p)
    assert torch.equal(out_mask[0], torch.rot90(masks[0], 1, (0, 1)))
    assert torch.allclose(out[0, 0], torch.rot90(images[0, 0], 1, (0, 1)), atol=1e-5)
    assert torch.equal(out_mask[1], masks[1].flip(-1))
    assert torch.allclose(out[1], images[1].flip(-1), atol=1e-6)


def test_zoom_2_centred_shows_the_middle_half():
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, 2:6, 2:6] = 1  # the middle half of the image
    p = AugmentParams.identity(1)
    p.zoom = torch.tensor([2.0])
    _, out_mask = apply_params(torch.zeros(1, 1, 8, 8), masks, p)
    assert bool((out_mask == 1).all())


def test_zoom_half_centred_shows_the_image_at_half_size_in_empty_surroundings():
    images = torch.ones(1, 1, 16, 16)
    masks = torch.ones(1, 16, 16, dtype=torch.long)
    p = AugmentParams.identity(1)
    p.zoom = torch.tensor([0.5])
    out, out_mask = apply_params(images, masks, p)
    assert torch.equal(out_mask[0, 4:12, 4:12], torch.ones(8, 8, dtype=torch.long))
    assert int(out_mask.sum()) == 64 and float(out[0, 0, 4:12, 4:12].min()) > 0.99
    assert float(out[0, 0, :3].max()) == 0.0       # outside the shrunk image: empty


def test_min_zoom_below_one_also_shrinks_and_changes_nothing_else():
    """``min_zoom`` moves the zoom's lower end only: every other draw is the published one, and the
    default (1) draws exactly the published parameters."""
    published = sample_params("normal", 4000, torch.Generator().manual_seed(0))
    assert published.zoom.min() >= 1.0    # the default: the published zoom only enlarges
    wide = sample_params("normal", 4000, torch.Generator().manual_seed(0), min_zoom=0.7)
    applied = wide.zoom != 1
    assert wide.zoom.min() >= 0.7 and wide.zoom.max() <= 1.2
    assert (wide.zoom[applied] < 1).float().mean().item() == pytest.approx(0.6, abs=0.03)
    for name in ("angle_deg", "crop_pct", "warp", "brightness", "contrast"):
        assert torch.equal(getattr(wide, name), getattr(published, name)), name
    with pytest.raises(ConfigError, match="min_zoom must be in"):
        TrainConfig(min_zoom=1.5)
    with pytest.raises(ConfigError, match="needs augment normal or extreme"):
        TrainConfig(min_zoom=0.7, augment="nnunet")


def test_lighting_formulas():
    images = torch.tensor([0.25, 0.5]).view(2, 1, 1, 1).expand(2, 1, 2, 2).clone()
    masks = torch.zeros(2, 2, 2, dtype=torch.long)
    p = AugmentParams.identity(2)
    p.contrast = torch.tensor([2.0, 1.0])      # sigmoid(2 * logit(0.25)) = 1 / (1 + 9)
    p.brightness = torch.tensor([0.5, 0.7])    # sigmoid(logit(0.5) + logit(0.7)) = 0.7
    out, _ = apply_params(images, masks, p)
    assert out[0].flatten().tolist() == pytest.approx([0.1] * 4, abs=1e-5)
    assert out[1].flatten().tolist() == pytest.approx([0.7] * 4, abs=1e-5)


def test_symmetric_warp_moves_corners_to_fastai_targets():
    m = torch.tensor([[0.1, -0.2, 0.05, 0.15]])
    h = warp_homographies(m)[0]
    src = torch.tensor([[-1.0, -1.0, 1], [-1, 1, 1], [1, -1, 1], [1, 1, 1]], dtype=torch.float64)
    dst = src @ h.T
    dst = dst[:, :2] / dst[:, 2:]
    a, b, c, d = m[0].double()
    want = torch.tensor([[-1 - d, -1 - b], [-1 - c, 1 + b], [1 + d, -1 - a], [1 + c, 1 + a]])
    assert torch.allclose(dst, want, atol=1e-9)


def test_published_ranges_and_probabilities():
    g = torch.Generator().manual_seed(0)
    n = 4000
    normal = sample_params("normal", n, g)
    assert normal.angle_deg.abs().max() <= 20 and not normal.flip.any()
    assert normal.zoom.min() >= 1.0 and normal.zoom.max() <= 1.2
    assert normal.warp.abs().max() <= 0.2
    assert normal.brightness.min() >= 0.3 and normal.brightness.max() <= 0.7
    assert normal.contrast.min() >= 0.6 - 1e-6 and normal.contrast.max() <= 1 / 0.6 + 1e-6
    for applied in (normal.angle_deg != 0, normal.zoom != 1, normal.warp.abs().sum(1) > 0,
                    normal.brightness != 0.5, normal.contrast != 1):
        assert applied.float().mean().item() == pytest.approx(0.75, abs=0.03)
    extreme = sample_params("extreme", n, g)
    assert extreme.angle_deg.abs().max() > 60 and extreme.angle_deg.abs().max() <= 90
    assert extreme.flip.float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_masks_keep_their_labels_and_runs_are_reproducible(batch):
    images, masks = batch
    a = augment_batch(images, masks, "extreme", torch.Generator().manual_seed(5))
    b = augment_batch(images, masks, "extreme", torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert set(a[1].unique().tolist()) <= {0, 1, 2}
    assert a[0].min() >= 0 and a[0].max() <= 1
    assert augment_batch(images, masks, "none", torch.Generator())[0] is images
    assert math.isfinite(float(a[0].sum()))
