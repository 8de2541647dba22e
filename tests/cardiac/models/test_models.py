"""Encoders carry torchvision's parameter names and sizes; the U-Net has smp's shape."""

from __future__ import annotations

import pytest
import torch

from hpc_seg.errors import InputError
from hpc_seg.cardiac.models.encoders import build_encoder
from hpc_seg.cardiac.models.unet2d import Unet2d

# torchvision parameter counts minus the classifier (fc / classifier.*)
TORCHVISION_FEATURE_PARAMS = {"resnet34": 21_797_672 - 513_000, "resnet50": 25_557_032 - 2_049_000,
                              "vgg16_bn": 14_723_136}


@pytest.mark.parametrize("name", sorted(TORCHVISION_FEATURE_PARAMS))
def test_encoder_matches_torchvision_parameter_count(name):
    enc = build_encoder(name)
    assert sum(p.numel() for p in enc.parameters()) == TORCHVISION_FEATURE_PARAMS[name]


def test_torchvision_names():
    keys = set(build_encoder("resnet50").state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight",
            "layer4.2.conv3.weight", "layer3.5.bn2.num_batches_tracked"} <= keys
    vgg = set(build_encoder("vgg16_bn").state_dict())
    assert {"features.0.weight", "features.1.running_var", "features.41.weight"} <= vgg


def test_local_imagenet_file_loads_and_classifier_is_dropped(tmp_path):
    src = build_encoder("resnet18")
    state = dict(src.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(state, path)
    enc = build_encoder("resnet18", path)
    assert torch.equal(enc.layer2[0].conv1.weight, src.layer2[0].conv1.weight)
    torch.save({"something": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="bad.pth"):
        build_encoder("resnet18", tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not found"):
        build_encoder("resnet18", tmp_path / "missing.pth")


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16_bn"])
def test_unet_output_shape(name):
    model = Unet2d(name, num_classes=3, decoder_channels=[16, 8, 8, 8, 8]).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 64, 64))
    assert out.shape == (1, 3, 64, 64)


def test_frozen_encoder_keeps_batchnorm_trainable():
    model = Unet2d("resnet18", decoder_channels=[16, 8, 8, 8, 8])
    model.set_encoder_frozen(True)
    assert not model.encoder.conv1.weight.requires_grad
    assert model.encoder.bn1.weight.requires_grad
    assert model.head.weight.requires_grad
    model.set_encoder_frozen(False)
    assert all(p.requires_grad for p in model.parameters())
