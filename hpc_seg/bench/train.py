"""``hpc-seg bench train``: training-step throughput streaming from slices shards vs in memory.

Both measurements run the same model, loss, augmentation and optimiser step in one process; the
only difference is where batches come from: (a) a uint8 tensor already on the device, indexed
at random; (b) :class:`SliceStream` over the Parquet shards through a DataLoader. The data-loading
overhead is ``1 - streaming / in-memory`` images per second (target: at most 10 %).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from hpc_seg.cardiac.slices.stream import SliceStream
from hpc_seg.cardiac.slices.build import read_meta
from hpc_seg.errors import ConfigError
from hpc_seg.cardiac.train.augment import augment_batch
from hpc_seg.cardiac.train.config import TrainConfig
from hpc_seg.cardiac.train.losses import LOSSES
from hpc_seg.cardiac.train.model_file import build_model
from hpc_seg.runtime.device import autocast, resolve_device

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class BenchTrainConfig:
    slices: Path | None = None
    """a slices dataset; None = write a synthetic one to a temp dir"""
    images: int = 2048
    """images in the synthetic dataset"""
    image_size: int = 128
    encoder: str = "resnet34"
    batch_size: int = 32
    steps: int = 30
    warmup: int = 5
    device: str = "auto"
    num_workers: int = 2
    augment: str = "normal"
    amp: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.warmup < 0 or self.batch_size < 1 or self.images < self.batch_size:
            raise ConfigError(f"bench train: need steps >= 1, warmup >= 0, images >= batch_size; got "
                              f"{self.steps=}, {self.warmup=}, {self.images=}, {self.batch_size=}")


def write_synthetic_slices(out: Path, n_images: int, size: int, seed: int = 0) -> Path:
    """A slices dataset of random disc phantoms (train split), in the real on-disk format."""
    import json

    import pyarrow as pa

    from hpc_seg.storage.shards import atomic_write_bytes, atomic_write_table
    from hpc_seg.cardiac.slices.build import IMAGES_PER_SHARD, META, ROW_GROUP

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    rows, shard = [], 0
    for i in range(n_images):
        (cy, cx), r = rng.uniform(0.35, 0.65, 2) * size, rng.uniform(0.08, 0.2) * size
        d = np.hypot(yy - cy, xx - cx)
        mask = np.where(d <= r, 1, np.where(d <= 1.4 * r, 2, 0)).astype(np.uint8)
        img = np.clip(np.array([30, 220, 110])[mask] + rng.normal(0, 20, mask.shape), 0, 255).astype(np.uint8)
        rows.append({"file": f"synthetic/{i}", "split": "train", "in_p05": True, "in_p10": True,
                     "in_p15": True, "image": img.tobytes(), "mask": mask.tobytes()})
        if len(rows) == IMAGES_PER_SHARD or i == n_images - 1:
            atomic_write_table(pa.Table.from_pylist(rows), out / f"part-train-{shard:05d}.parquet",
                               row_group_size=ROW_GROUP)
            rows, shard = [], shard + 1
    atomic_write_bytes(json.dumps({"format": 1, "image_size": size, "label_source": "synthetic",
                                   "complete": True}).encode(), out / META)
    return out


def run_bench(cfg: BenchTrainConfig) -> dict[str, float]:
    """Measure both paths; returns images/s for each and the overhead fraction."""
    with tempfile.TemporaryDirectory(prefix="hpcseg-bench-") as tmp:
        slices = cfg.slices or write_synthetic_slices(Path(tmp) / "slices", cfg.images, cfg.image_size)
        size = int(read_meta(slices)["image_size"])
        device = resolve_device(cfg.device)
        tcfg = TrainConfig(encoder=cfg.encoder, image_size=size, batch_size=cfg.batch_size,
                           augment=cfg.augment, amp=cfg.amp, channels_last=cfg.channels_last,
                           confidence_set="all")
        torch.manual_seed(0)
        model = build_model(tcfg).to(device)
        if device.type == "cuda" and cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        stream = SliceStream(slices, "train", batch_size=cfg.batch_size, shuffle=True,
                             shuffle_buffer=1024)
        # The in-memory copy is the first few batches' worth of images, decoded once, on the device.
        n_mem = min(stream.n_rows, cfg.batch_size * 16)
        mem = _first_images(stream, n_mem)
        mem = {k: v.to(device) for k, v in mem.items()}
        step = _make_step(model, opt, tcfg, device)
        gen = torch.Generator().manual_seed(0)

        def memory_batches() -> Iterator[dict]:
            while True:
                idx = torch.randint(0, n_mem, (cfg.batch_size,), generator=gen).to(device)
                yield {"image": mem["image"][idx], "mask": mem["mask"][idx]}

        def stream_batches() -> Iterator[dict]:
            loader = DataLoader(stream, batch_size=None, num_workers=cfg.num_workers,
                                pin_memory=device.type == "cuda", persistent_workers=cfg.num_workers > 0)
            epoch = 0
            while True:
                stream.set_epoch(epoch)
                yield from loader
                epoch += 1

        results = {"in_memory": _time(step, memory_batches(), cfg, device, gen),
                   "streaming": _time(step, stream_batches(), cfg, device, gen)}
    results["overhead"] = 1.0 - results["streaming"] / results["in_memory"]
    results.update(device=str(device), image_size=size, batch_size=cfg.batch_size)
    return results


def _first_images(stream: SliceStream, n: int) -> dict[str, torch.Tensor]:
    images, masks, got = [], [], 0
    for batch in stream:
        images.append(batch["image"])
        masks.append(batch["mask"])
        got += len(batch["image"])
        if got >= n:
            break
    return {"image": torch.cat(images)[:n], "mask": torch.cat(masks)[:n]}


def _make_step(model, opt, cfg: TrainConfig, device: torch.device):
    loss_fn = LOSSES[cfg.loss]

    def step(batch: dict, gen: torch.Generator) -> None:
        images = batch["image"].to(device, non_blocking=True).float().div_(255.0)
        masks = batch["mask"].to(device, non_blocking=True).long()
        images, masks = augment_batch(images, masks, cfg.augment, gen)
        if device.type == "cuda" and cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, cfg.amp):
            loss = loss_fn(model(images), masks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _time(step, batches: Iterator[dict], cfg: BenchTrainConfig, device: torch.device,
          gen: torch.Generator) -> float:
    for _ in range(cfg.warmup):
        step(next(batches), gen)
    _sync(device)
    t0, n = time.perf_counter(), 0
    for _ in range(cfg.steps):
        batch = next(batches)
        n += len(batch["image"])
        step(batch, gen)
    _sync(device)
    return n / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
