"""nnU-Net's 2D augmentation from MONAI transforms: what each step does, and its seeding."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.cardiac.train.augment import augment_batch
from hpc_seg.cardiac.train.augment_nnunet import NnUNetSpec, augment_nnunet, build_transforms

SIZE = 64


def _scene(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0.2, 0.8]: a bright disc (mask 1) off-centre, a grey square (mask 2), a ramp."""
    r, c = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    mask = torch.zeros(SIZE, SIZE, dtype=torch.long)
    mask[((r - 20) ** 2 + (c - 42) ** 2) < 64] = 1
    mask[40:50, 12:22] = 2
    img = 0.2 + 0.1 * c / SIZE
    img = torch.where(mask == 1, 0.8, torch.where(mask == 2, 0.5, img))
    return img.expand(n, 1, SIZE, SIZE).clone(), mask.expand(n, SIZE, SIZE).clone()


def _run(*steps: str, seed: int = 0, n: int = 4):
    images, masks = _scene(n)
    out, out_mask = augment_nnunet(images, masks, torch.Generator().manual_seed(seed),
                                   transforms=build_transforms(NnUNetSpec().only(*steps)))
    return images, masks, out, out_mask


def _centroid(m: torch.Tensor) -> torch.Tensor:
    idx = torch.nonzero(m).float()
    return idx.mean(0)


def _aligned(out: torch.Tensor, out_mask: torch.Tensor) -> float:
    """Share of disc pixels (mask 1) whose image is bright: image and mask moved together."""
    return float((out[:, 0][out_mask == 1] > 0.65).float().mean())


def test_rotation_turns_image_and_mask_together_about_the_centre():
    images, masks, out, out_mask = _run("rotate")
    centre = torch.tensor([(SIZE - 1) / 2] * 2)
    for i in range(len(out)):
        before, after = _centroid(masks[i] == 1), _centroid(out_mask[i] == 1)
        assert (after - before).norm() > 1.0                      # it moved ...
        assert (after - centre).norm() == pytest.approx((before - centre).norm(), abs=1.0)  # ... on a circle
        assert (out_mask[i] == 1).sum() == pytest.approx(int((masks[i] == 1).sum()), rel=0.1)
    assert _aligned(out, out_mask) > 0.9


def test_scaling_zooms_about_the_centre_within_its_range():
    images, masks, out, out_mask = _run("scale")
    centre = torch.tensor([(SIZE - 1) / 2] * 2)
    for i in range(len(out)):
        area = float((out_mask[i] == 1).sum()) / float((masks[i] == 1).sum())
        assert 0.7**2 * 0.85 < area < 1.4**2 * 1.15 and abs(area - 1) > 0.02
        dist = (_centroid(out_mask[i] == 1) - centre).norm() / (_centroid(masks[i] == 1) - centre).norm()
        assert float(dist) == pytest.approx(area ** 0.5, rel=0.1)
    assert _aligned(out, out_mask) > 0.9


def test_elastic_deformation_bends_image_and_mask_alike():
    images, masks, out, out_mask = _run("elastic")
    changed = (out_mask != masks).float().mean()
    assert 0 < changed < 0.1
    area = (out_mask == 1).sum() / (masks == 1).sum()     # a few pixels' displacement of a small disc
    assert 0.6 < float(area) < 1.4
    assert _aligned(out, out_mask) > 0.9


def test_noise_adds_zero_mean_noise_and_leaves_the_mask():
    images, masks, out, out_mask = _run("noise")
    diff = out - images
    assert torch.equal(out_mask, masks)
    assert 0 < float(diff.std()) <= 0.08 * 1.1 and abs(float(diff.mean())) < 0.01


def test_blur_smooths_edges_and_keeps_the_mean():
    images, masks, out, out_mask = _run("blur")
    # MONAI pads with zeros, which darkens the outermost pixels: look inside.
    inner = (..., slice(4, -4), slice(4, -4))
    tv = lambda x: ((x[..., 1:, :] - x[..., :-1, :]) ** 2).sum()   # noqa: E731 (edge energy)
    assert torch.equal(out_mask, masks)
    assert tv(out[inner]) < 0.9 * tv(images[inner])
    assert float(out[inner].mean()) == pytest.approx(float(images[inner].mean()), rel=0.02)


def test_brightness_multiplies_each_image_by_one_factor_in_range():
    images, masks, out, out_mask = _run("brightness")
    ratio = out / images
    for i in range(len(out)):
        assert float(ratio[i].max() - ratio[i].min()) < 1e-5
        assert 0.75 <= float(ratio[i].mean()) <= 1.25
    assert torch.equal(out_mask, masks) and not torch.allclose(out, images)


def test_contrast_scales_about_the_mean_and_keeps_the_range():
    images, masks, out, out_mask = _run("contrast")
    for i in range(len(out)):
        x, y = images[i].flatten(), out[i].flatten()
        k = float(((y - y.mean()) * (x - x.mean())).sum() / ((x - x.mean()) ** 2).sum())
        assert 0.75 <= k <= 1.25 and abs(k - 1) > 1e-3
        assert float(y.min()) >= float(x.min()) - 1e-5 and float(y.max()) <= float(x.max()) + 1e-5
    assert torch.equal(out_mask, masks)


def test_low_resolution_loses_detail_but_not_the_picture():
    images, masks, out, out_mask = _run("lowres")
    assert torch.equal(out_mask, masks) and not torch.allclose(out, images, atol=1e-3)
    for i in range(len(out)):
        corr = torch.corrcoef(torch.stack([images[i].flatten(), out[i].flatten()]))[0, 1]
        assert float(corr) > 0.9


@pytest.mark.parametrize("step", ["gamma", "gamma_inverted"])
def test_gamma_is_monotonic_and_keeps_mean_and_spread(step):
    images, masks, out, out_mask = _run(step)
    assert torch.equal(out_mask, masks) and not torch.allclose(out, images, atol=1e-4)
    for i in range(len(out)):
        x, y = images[i].flatten(), out[i].flatten()
        order = torch.argsort(x)
        assert bool((y[order][1:] >= y[order][:-1] - 1e-5).all())     # same order of grey values
        assert float(y.mean()) == pytest.approx(float(x.mean()), abs=1e-3)
        assert float(y.std()) == pytest.approx(float(x.std()), abs=1e-3)


def test_mirroring_flips_image_and_mask_along_both_axes():
    images, masks, out, out_mask = _run("mirror")
    assert torch.equal(out_mask, masks.flip(-1).flip(-2))
    assert torch.allclose(out, images.flip(-1).flip(-2))


def test_seeded_like_the_published_augmentations():
    images, masks = _scene(6)

    def run(seed: int):
        return augment_batch(images, masks, "nnunet", torch.Generator().manual_seed(seed))

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    # Within a batch each sample draws its own parameters.
    assert any(not torch.equal(a[0][0], a[0][i]) for i in range(1, 6))
    with pytest.raises(ValueError, match="unknown augmentation steps"):
        NnUNetSpec().only("rotation")
