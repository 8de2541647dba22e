"""The 2D training code on a CUDA GPU: bf16 autocast, channels_last, pinned-memory loading, and a
model trained on the GPU that loads and predicts on CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpc_seg.bench.train import write_synthetic_slices
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.cardiac.train.loop import place_model, train_segmenter, train_step
from hpc_seg.cardiac.train.losses import LOSSES
from hpc_seg.cardiac.train.model_file import build_model, load_model
from hpc_seg.runtime.device import amp_dtype

pytestmark = pytest.mark.gpu


def _cfg(**changes) -> TrainConfig:
    base = {"encoder": "resnet18", "decoder_channels": [16, 16, 8, 8, 8], "image_size": 64,
            "batch_size": 8, "lr": 1e-3, "freeze_encoder": False, "epochs_frozen": 1,
            "epochs_unfrozen": 0, "confidence_set": "all", "augment": "none",
            "max_val_images": 16, "shuffle_buffer": 64}
    return TrainConfig(**{**base, **changes})


def _discs(n: int, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images, masks = [], []
    for _ in range(n):
        cy, cx = rng.uniform(0.35, 0.65, 2) * size
        d = np.hypot(yy - cy, xx - cx)
        mask = np.where(d <= 0.15 * size, 1, np.where(d <= 0.22 * size, 2, 0)).astype(np.uint8)
        images.append((np.array([30, 220, 110])[mask] + rng.normal(0, 10, mask.shape)).clip(0, 255))
        masks.append(mask)
    return {"image": torch.as_tensor(np.stack(images)[:, None].astype(np.uint8)),
            "mask": torch.as_tensor(np.stack(masks))}


def test_bf16_channels_last_training_step_learns_with_float32_weights(device):
    cfg = _cfg(amp=True, channels_last=True)
    if device.type == "cuda":
        assert amp_dtype(device, True) is torch.bfloat16, "this GPU has no bf16: training is fp32"
    torch.manual_seed(0)
    model = place_model(build_model(cfg, init=True), cfg, device)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    batch, gen = _discs(8, 64), torch.Generator().manual_seed(0)
    losses = [float(train_step(model, opt, batch, cfg, LOSSES["ce"], device, gen)[0])
              for _ in range(20)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.6 * losses[0], losses
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {p.device.type for p in model.parameters()} == {device.type}


def test_bf16_and_channels_last_forward_match_fp32(device):
    torch.manual_seed(0)
    model = build_model(_cfg(), init=True).to(device).eval()
    x = torch.rand(4, 1, 64, 64, device=device)
    with torch.no_grad():
        ref = model(x).float()
        with torch.autocast(device.type, dtype=torch.bfloat16):  # bf16 even on a CPU without units
            low = model(x).float()
        model = model.to(memory_format=torch.channels_last)
        cl = model(x.contiguous(memory_format=torch.channels_last)).float()
    assert float((low - ref).norm() / ref.norm()) < 5e-2
    assert float((cl - ref).norm() / ref.norm()) < 1e-3


def test_model_trained_on_the_device_loads_and_predicts_on_cpu(device, tmp_path):
    slices = write_synthetic_slices(tmp_path / "slices", 32, 64, val_images=16)
    cfg = _cfg(device=str(device), num_workers=1, augment="normal")  # pinned-memory DataLoader on CUDA
    result = train_segmenter(cfg, slices, tmp_path / "run")
    assert result.epochs == 1 and math.isfinite(result.final["val_loss"])
    model, loaded = load_model(result.model_path, device="cpu")
    assert loaded.device == str(device)
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    with torch.no_grad():
        assert model(torch.rand(2, 1, 64, 64)).shape == (2, 3, 64, 64)
