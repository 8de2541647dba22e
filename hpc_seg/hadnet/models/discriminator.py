"""The hierarchical (HAD-Net) and plain (AD-Net) 3D PatchGAN discriminators.

As published: block = Conv3d 4x4x4 stride 2 pad 1 -> optional
InstanceNorm3d (no affine) -> LeakyReLU(0.2). Stage 1 takes concat(logits [4], student input [3])
-> 4k, no norm. Each following stage concatenates the previous output with one feature pair of the
segmentation net (the coarser member upsampled, nearest, to the finer one's size) and halves the
resolution: 8k -> 8k, 16k -> 16k, 32k -> 32k, with norm. A final Conv3d 4x4x4 stride 1 pad 1 gives
one channel of patch scores, no sigmoid (least-squares GAN).

The AD-Net ablation has the same stage 1 and then plain stride-2 blocks 4k -> 8k -> 16k -> 32k that
see no features, so both variants end at the same width and resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hpc_seg.hadnet.models.unet3d import FeaturePair


def down_block(cin: int, cout: int, norm: bool) -> nn.Sequential:
    """Conv3d 4x4x4 stride 2 pad 1 -> [InstanceNorm3d] -> LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.Conv3d(cin, cout, 4, stride=2, padding=1)]
    if norm:
        layers.append(nn.InstanceNorm3d(cout, affine=False))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class Discriminator3D(nn.Module):
    """``forward(logits, x_student, pairs)`` -> patch scores ``[B, 1, d, h, w]``.

    ``hierarchical=False`` is AD-Net: ``pairs`` is ignored (and may be ``None``).
    """

    def __init__(self, k: int = 32, n_classes: int = 4, student_channels: int = 3,
                 hierarchical: bool = True):
        super().__init__()
        self.hierarchical = hierarchical
        self.stage1 = down_block(n_classes + student_channels, 4 * k, norm=False)
        if hierarchical:
            # previous output + feature pair: 4k + (2k + 2k), 8k + (4k + 4k), 16k + (8k + 8k)
            ins = [8 * k, 16 * k, 32 * k]
        else:
            ins = [4 * k, 8 * k, 16 * k]
        outs = [8 * k, 16 * k, 32 * k]
        self.stages = nn.ModuleList([down_block(i, o, norm=True) for i, o in zip(ins, outs)])
        self.final = nn.Conv3d(32 * k, 1, 4, stride=1, padding=1)

    def forward(self, logits: torch.Tensor, x_student: torch.Tensor,
                pairs: Sequence[FeaturePair] | None = None) -> torch.Tensor:
        x = self.stage1(torch.cat([logits, x_student], dim=1))
        for i, stage in enumerate(self.stages):
            if self.hierarchical:
                fine, coarse = pairs[i]
                coarse = F.interpolate(coarse, size=fine.shape[2:], mode="nearest")
                x = torch.cat([x, fine, coarse], dim=1)
            x = stage(x)
        return self.final(x)


def build_discriminator(variant: str, k: int) -> Discriminator3D:
    """``"had"`` (hierarchical, with feature pairs) or ``"ad"`` (logits + input only)."""
    return Discriminator3D(k=k, hierarchical=variant == "had")
