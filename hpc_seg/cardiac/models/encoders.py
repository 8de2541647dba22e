"""ResNet and VGG16-BN encoders in plain torch, with torchvision's parameter names.

torchvision cannot be installed next to the CPU torch here, so the encoders are rebuilt with the
exact module names of ``torchvision.models.resnet*`` / ``vgg16_bn`` (``conv1``, ``bn1``,
``layer1.0.conv1`` ..., ``features.0`` ...). A user's local torchvision ImageNet ``.pth`` therefore
loads with ``load_state_dict``; the classifier keys (``fc.*``, ``classifier.*``) are dropped
because a U-Net does not use them. Weights are never downloaded.

Each encoder returns five feature maps at strides 2, 4, 8, 16 and 32 (what smp's Unet decoder
consumes after dropping the input itself); ``out_channels`` lists their widths.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hpc_seg.errors import InputError
from hpc_seg.runtime.checkpoint import load_weights


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        # torchvision (v1.5) puts the stride on the 3x3 convolution.
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """torchvision ResNet without avgpool/fc; ``forward`` returns the five skip features."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int]):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        e = block.expansion
        self.out_channels = [64, 64 * e, 128 * e, 256 * e, 512 * e]
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [f1, f2, f3, f4, f5]


_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGGEncoder(nn.Module):
    """torchvision ``vgg16_bn().features``; features are taken where smp's VGG encoder takes them.

    smp splits ``features`` at every max-pool: the full-resolution first block is dropped by the
    decoder, the outputs at strides 2..16 end just before the next pool, and the last feature is
    the final pool (stride 32).
    """

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.out_channels = [128, 256, 512, 512, 512]
        self._pools = [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, m in enumerate(self.features):
            if i in self._pools[1:]:  # the output just before pools 2..5 is a skip feature
                feats.append(x)
            x = m(x)
        feats.append(x)  # after the final pool: stride 32
        return feats


ENCODERS = {
    "resnet18": lambda: ResNetEncoder(BasicBlock, [2, 2, 2, 2]),
    "resnet34": lambda: ResNetEncoder(BasicBlock, [3, 4, 6, 3]),
    "resnet50": lambda: ResNetEncoder(Bottleneck, [3, 4, 6, 3]),
    "vgg16_bn": VGGEncoder,
}

_CLASSIFIER_PREFIXES = ("fc.", "classifier.", "avgpool.")


def build_encoder(name: str, weights: Path | None = None) -> nn.Module:
    """A randomly initialised encoder, or one loaded from a local torchvision-format ``.pth``."""
    if name not in ENCODERS:
        raise InputError(f"encoder {name!r} is unknown; valid encoders are {sorted(ENCODERS)}")
    enc = ENCODERS[name]()
    if weights is not None:
        load_encoder_weights(enc, weights)
    return enc


def load_encoder_weights(encoder: nn.Module, path: Path) -> None:
    """Load torchvision ImageNet weights from ``path`` (never from a hub), dropping the classifier."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: encoder weights file not found")
    state = load_weights(path)      # an unreadable or refused file is one InputError line
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not k.startswith(_CLASSIFIER_PREFIXES)}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(f"{path}: not a torchvision {type(encoder).__name__} state dict "
                         f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)")
