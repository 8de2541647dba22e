"""A 2D U-Net with a ResNet or VGG16-BN encoder, shaped like segmentation-models-pytorch's ``Unet``.

The decoder follows smp: starting from the stride-32 feature, each block upsamples by 2 (nearest),
concatenates the skip feature of that resolution (none for the last block), and applies two
3x3 conv + BN + ReLU; a 3x3 convolution maps the last decoder width to the class logits.

Inputs are single-channel images scaled to [0, 1]; the network repeats them to three channels and
normalises with the ImageNet statistics (what fastai did for the published models), so an
ImageNet-initialised encoder sees the input distribution it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hpc_seg.cardiac.models.encoders import build_encoder
from hpc_seg.cardiac.models.widths import DEFAULT_DECODER_CHANNELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvBnRelu(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv1 = ConvBnRelu(cin + cskip, cout)
        self.conv2 = ConvBnRelu(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class Unet2d(nn.Module):
    """U-Net: ``forward(x[B,1,H,W] in [0,1]) -> logits[B,classes,H,W]``; H, W multiples of 32."""

    def __init__(self, encoder: str = "resnet34", num_classes: int = 3,
                 decoder_channels: Sequence[int] = DEFAULT_DECODER_CHANNELS,
                 encoder_weights: Path | None = None):
        super().__init__()
        self.encoder = build_encoder(encoder, encoder_weights)
        skips = list(reversed(self.encoder.out_channels[:-1])) + [0]
        cins = [self.encoder.out_channels[-1], *decoder_channels[:-1]]
        self.decoder = nn.ModuleList(DecoderBlock(ci, cs, co)
                                     for ci, cs, co in zip(cins, skips, decoder_channels))
        self.head = nn.Conv2d(decoder_channels[-1], num_classes, 3, padding=1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        feats = self.encoder(x)
        y = feats[-1]
        skips = list(reversed(feats[:-1])) + [None]
        for block, skip in zip(self.decoder, skips):
            y = block(y, skip)
        return self.head(y)

    def set_encoder_frozen(self, frozen: bool) -> None:
        """Freeze the encoder's weights but keep its BatchNorm layers trainable (fastai's
        ``train_bn=True``, which the published models used)."""
        for module in self.encoder.modules():
            trainable = not frozen or isinstance(module, nn.BatchNorm2d)
            for p in module.parameters(recurse=False):
                p.requires_grad_(trainable)
