"""The HAD-Net 3D U-Net (teacher and student share the design; only the input width differs).

As published: block = Conv3d 3x3x3 -> InstanceNorm3d(affine) ->
LeakyReLU(0.01); encoder levels [k, 2k, 4k, 8k] with two blocks each and Dropout3d(0.2) before every
level except the first; MaxPool 2; bottleneck 16k -> 8k; decoder with nearest upsampling to the
skip's size, dropout on both paths, a merge conv of the concatenation (+ IN + LeakyReLU) and one
more block, widths 4k, 2k, k, k; 1x1x1 head to 4 logits. Kaiming-normal init, zero bias.

The forward pass returns the logits and the three feature pairs the hierarchical discriminator
consumes, finest first::

    (encoder level 2 [2k, 1/2], decoder at 1/4 [2k]),
    (encoder level 3 [4k, 1/4], decoder at 1/8 [4k]),
    (encoder level 4 [8k, 1/8], bottleneck     [8k, 1/16])

The bottleneck also gets Dropout3d before it: the spec's "before each level except the first"
applied to the bottleneck as a fifth level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FeaturePair = tuple[torch.Tensor, torch.Tensor]


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Conv3d 3x3x3 (same padding) -> InstanceNorm3d(affine) -> LeakyReLU(0.01)."""
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True),
                         nn.LeakyReLU(0.01, inplace=True))


class _Decoder(nn.Module):
    """Upsample to the skip's size, dropout on both paths, merge conv + IN + LReLU, one block."""

    def __init__(self, c_up: int, c_skip: int, cout: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout3d(dropout)
        self.merge = conv_block(c_up + c_skip, cout)
        self.block = conv_block(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[2:], mode="nearest")
        return self.block(self.merge(torch.cat([self.drop(skip), self.drop(x)], dim=1)))


class UNet3D(nn.Module):
    """3D U-Net with 4 poolings; ``forward`` returns ``(logits, [3 feature pairs])``."""

    def __init__(self, in_channels: int, k: int = 32, n_classes: int = 4, dropout: float = 0.2):
        super().__init__()
        self.in_channels, self.k, self.n_classes = in_channels, k, n_classes
        widths = [k, 2 * k, 4 * k, 8 * k]
        self.encoders = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.encoders.append(nn.Sequential(conv_block(cin, w), conv_block(w, w)))
            cin = w
        self.pool = nn.MaxPool3d(2)
        self.drop = nn.Dropout3d(dropout)
        self.bottleneck = nn.Sequential(conv_block(8 * k, 16 * k), conv_block(16 * k, 8 * k))
        # Decoders from coarse to fine: (upsampled channels, skip channels, output width).
        self.decoders = nn.ModuleList([
            _Decoder(8 * k, 8 * k, 4 * k, dropout),   # at 1/8
            _Decoder(4 * k, 4 * k, 2 * k, dropout),   # at 1/4
            _Decoder(2 * k, 2 * k, k, dropout),       # at 1/2
            _Decoder(k, k, k, dropout),               # at 1/1
        ])
        self.head = nn.Conv3d(k, n_classes, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[FeaturePair]]:
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = self.drop(self.pool(x))
            x = encoder(x)
            skips.append(x)
        bottom = self.bottleneck(self.drop(self.pool(x)))
        decoded = []
        x = bottom
        for decoder, skip in zip(self.decoders, reversed(skips)):
            x = decoder(x, skip)
            decoded.append(x)
        logits = self.head(x)
        # decoded = [1/8 (4k), 1/4 (2k), 1/2 (k), 1/1 (k)]
        pairs = [(skips[1], decoded[1]), (skips[2], decoded[0]), (skips[3], bottom)]
        return logits, pairs


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal conv weights (LeakyReLU gain), zero biases; IN affine stays (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, a=0.01, nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
