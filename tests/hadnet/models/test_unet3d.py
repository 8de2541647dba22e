"""Shapes and initialisation of the HAD-Net 3D U-Net."""

from __future__ import annotations

import torch
from torch import nn

from hpc_seg.hadnet.models.unet3d import UNet3D


def test_logits_and_feature_pairs_have_the_published_shapes():
    torch.manual_seed(0)
    k = 4
    net = UNet3D(in_channels=3, k=k)
    x = torch.randn(1, 3, 32, 48, 32)  # a padded, non-cubic volume (multiple of 16)
    logits, pairs = net(x)
    assert logits.shape == (1, 4, 32, 48, 32)
    assert len(pairs) == 3
    expected = [
        ((2 * k, 16, 24, 16), (2 * k, 8, 12, 8)),   # encoder level 2, decoder at 1/4
        ((4 * k, 8, 12, 8), (4 * k, 4, 6, 4)),      # encoder level 3, decoder at 1/8
        ((8 * k, 4, 6, 4), (8 * k, 2, 3, 2)),       # encoder level 4, bottleneck
    ]
    for (fine, coarse), (ef, ec) in zip(pairs, expected):
        assert tuple(fine.shape[1:]) == ef
        assert tuple(coarse.shape[1:]) == ec


def test_teacher_takes_four_channels_and_rejects_three():
    net = UNet3D(in_channels=4, k=4)
    logits, _ = net(torch.randn(1, 4, 32, 32, 32))
    assert logits.shape == (1, 4, 32, 32, 32)
    try:
        net(torch.randn(1, 3, 32, 32, 32))
    except RuntimeError:
        pass
    else:
        raise AssertionError("a 4-channel net accepted a 3-channel input")


def test_blocks_follow_the_spec_and_init_is_kaiming_with_zero_bias():
    net = UNet3D(in_channels=4, k=8)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    assert all(float(c.bias.detach().abs().max()) == 0.0 for c in convs)
    # kaiming normal (leaky_relu a=0.01, fan_in): std = gain / sqrt(fan_in)
    first = net.encoders[0][0][0]
    fan_in = 4 * 27
    expected = (2.0 / (1 + 0.01 ** 2)) ** 0.5 / fan_in ** 0.5
    assert abs(float(first.weight.detach().std()) - expected) / expected < 0.15
    block = net.encoders[1][0]
    assert isinstance(block[0], nn.Conv3d) and block[0].kernel_size == (3, 3, 3)
    assert isinstance(block[1], nn.InstanceNorm3d) and block[1].affine
    assert isinstance(block[2], nn.LeakyReLU) and block[2].negative_slope == 0.01
    assert net.head.kernel_size == (1, 1, 1) and net.head.out_channels == 4
    widths = [e[0][0].out_channels for e in net.encoders]
    assert widths == [8, 16, 32, 64]
    assert [d.block[0].out_channels for d in net.decoders] == [32, 16, 8, 8]
    assert net.bottleneck[0][0].out_channels == 128 and net.bottleneck[1][0].out_channels == 64


def test_dropout_is_active_in_train_mode_only():
    torch.manual_seed(0)
    net = UNet3D(in_channels=3, k=4)
    x = torch.randn(1, 3, 32, 32, 32)
    net.train()
    a, _ = net(x)
    b, _ = net(x)
    assert not torch.allclose(a, b)
    net.eval()
    with torch.no_grad():
        c, _ = net(x)
        d, _ = net(x)
    assert torch.equal(c, d)
