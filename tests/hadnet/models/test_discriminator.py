"""Shapes and wiring of the hierarchical (HAD-Net) and plain (AD-Net) discriminators."""

from __future__ import annotations

import torch
from torch import nn

from hpc_seg.hadnet.models.discriminator import Discriminator3D, build_discriminator
from hpc_seg.hadnet.models.unet3d import UNet3D


def _student_outputs(shape=(32, 48, 32), k=4):
    torch.manual_seed(0)
    net = UNet3D(in_channels=3, k=k)
    x = torch.randn(1, 3, *shape)
    logits, pairs = net(x)
    return x, logits, pairs


def test_hierarchical_output_shape_for_a_padded_input():
    x, logits, pairs = _student_outputs()
    d = build_discriminator("had", k=4)
    out = d(logits, x, pairs)
    # 1/16 of (32, 48, 32) = (2, 3, 2); final 4x4x4 conv, stride 1, pad 1 removes one voxel
    assert out.shape == (1, 1, 1, 2, 1)
    # published size 160x192x160 -> 10x12x10 -> 9x11x9 patch scores (checked without running it)


def test_stage_widths_follow_the_spec():
    k = 4
    d = Discriminator3D(k=k)
    assert d.stage1[0].in_channels == 7 and d.stage1[0].out_channels == 4 * k
    assert not any(isinstance(m, nn.InstanceNorm3d) for m in d.stage1)
    assert [(s[0].in_channels, s[0].out_channels) for s in d.stages] == \
        [(8 * k, 8 * k), (16 * k, 16 * k), (32 * k, 32 * k)]
    assert all(isinstance(s[1], nn.InstanceNorm3d) and not s[1].affine for s in d.stages)
    assert all(s[0].kernel_size == (4, 4, 4) and s[0].stride == (2, 2, 2) for s in d.stages)
    assert d.final.out_channels == 1 and d.final.stride == (1, 1, 1)


def test_features_change_the_hierarchical_score_but_not_the_ad_net_score():
    x, logits, pairs = _student_outputs()
    other = [(a + 1.0, b - 1.0) for a, b in pairs]
    had, ad = build_discriminator("had", 4), build_discriminator("ad", 4)
    with torch.no_grad():
        assert not torch.allclose(had(logits, x, pairs), had(logits, x, other))
        assert torch.equal(ad(logits, x, pairs), ad(logits, x, other))
        assert ad(logits, x, None).shape == had(logits, x, pairs).shape
    assert [s[0].in_channels for s in ad.stages] == [16, 32, 64]
