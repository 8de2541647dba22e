"""The published pre-training augmentation."""

from __future__ import annotations

import math

import torch

from hpc_seg.hadnet.train.augment import AugmentParams, augment_case, random_affine_matrix
from hpc_seg.hadnet.train.data import toy_cases


def _case():
    return toy_cases(1, (32, 40, 24), seed=3)[0]


def test_same_generator_seed_gives_the_same_augmentation():
    c = _case()
    a = augment_case(c.image, c.label, c.mask, torch.Generator().manual_seed(7))
    b = augment_case(c.image, c.label, c.mask, torch.Generator().manual_seed(7))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_no_transform_when_probabilities_are_zero_except_masking():
    c = _case()
    p = AugmentParams(flip_p=0.0, affine_p=0.0)
    img, lab, mask = augment_case(c.image, c.label, c.mask, torch.Generator().manual_seed(1), p)
    assert torch.equal(lab, c.label) and torch.equal(mask, c.mask)
    assert torch.equal(img, c.image * c.mask)


def test_flip_reverses_the_left_right_axis_of_image_label_and_mask():
    c = _case()
    p = AugmentParams(flip_p=1.0, affine_p=0.0)
    img, lab, mask = augment_case(c.image, c.label, c.mask, torch.Generator().manual_seed(1), p)
    assert torch.equal(lab, c.label.flip(0)) and torch.equal(mask, c.mask.flip(0))
    assert torch.equal(img, c.image.flip(1))


def test_affine_keeps_label_values_and_zeroes_images_outside_the_mask():
    c = _case()
    p = AugmentParams(flip_p=0.0, affine_p=1.0)
    img, lab, mask = augment_case(c.image, c.label, c.mask, torch.Generator().manual_seed(5), p)
    assert set(lab.unique().tolist()) <= {0, 1, 2, 3}          # nearest: no blended labels
    assert not torch.equal(lab, c.label)                         # something moved
    assert float(img[:, ~mask].abs().max()) == 0.0
    # a small transform: most label voxels stay where they were
    assert float((lab == c.label).float().mean()) > 0.9


def test_affine_ranges_are_the_published_ones():
    for seed in range(50):
        m = random_affine_matrix(torch.Generator().manual_seed(seed), AugmentParams())
        # det = product of scales (rotations and unit-diagonal shear have det ~1)
        assert 0.96 ** 3 * 0.99 < float(torch.det(m)) < 1.04 ** 3 * 1.01
        assert float((m - torch.eye(3, dtype=m.dtype)).abs().max()) < math.radians(4) * 2 + 0.04 * 3


def _reference_warp(image, label, mask, linear):
    """The hand-written affine_grid / grid_sample warp that MONAI's Affine replaced."""
    import torch.nn.functional as F

    d, h, w = image.shape[1:]
    half = torch.diag(torch.tensor([w / 2, h / 2, d / 2], dtype=torch.float64))
    theta = torch.zeros(1, 3, 4, dtype=torch.float64)
    theta[0, :, :3] = torch.linalg.inv(half) @ linear @ half
    grid = F.affine_grid(theta.float(), [1, 1, d, h, w], align_corners=False)
    img = F.grid_sample(image[None].float(), grid, mode="bilinear", align_corners=False)[0]
    both = F.grid_sample(torch.stack([label.float(), mask.float()])[None], grid, mode="nearest",
                         align_corners=False)[0]
    return img, both[0].round().long(), both[1] > 0.5


def test_monai_warp_equals_the_hand_written_one_it_replaced():
    c = toy_cases(1, (24, 20, 16), seed=4)[0]
    p = AugmentParams(flip_p=0.0, affine_p=1.0, rotation_deg=10.0, shear=0.08, scale=0.08)
    img, lab, mask = augment_case(c.image, c.label.long(), c.mask, torch.Generator().manual_seed(9), p)
    gen = torch.Generator().manual_seed(9)
    torch.rand(1, generator=gen), torch.rand(1, generator=gen)  # flip and affine draws
    linear = random_affine_matrix(gen, p)
    ref_img, ref_lab, ref_mask = _reference_warp(c.image, c.label.long(), c.mask, linear)
    assert torch.equal(lab, ref_lab) and torch.equal(mask, ref_mask)
    assert torch.allclose(img, ref_img * ref_mask[None], atol=1e-5)
