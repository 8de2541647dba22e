"""``hpc-seg bench train``: images/s of the real training step by precision and memory format,
and the data-loading overhead of streaming from shards.

Every measurement calls :func:`hpc_seg.cardiac.train.loop.train_step`, the function the training
loop runs, on a model built and placed by the loop's own code. Two parts:

1. **Precision and memory format**: fp32, bf16 autocast, and each with channels_last, on batches
   already in memory. The modes run in interleaved rounds (mode A, B, C, D, then again) and the
   median round counts, so a neighbour's load on a shared machine hits every mode alike. bf16 is
   forced here whatever the CPU reports (the point is to see what it would give); training itself
   uses it only where the CPU has bf16 units (:mod:`hpc_seg.runtime.device`). On a GPU each mode
   also reports the most memory a step allocates on top of its model and optimiser state.
2. **Streaming vs in memory** for the mode training would use here: the same step fed from
   :class:`SliceStream` over the Parquet shards through a DataLoader; the overhead is
   ``1 - streaming / in-memory`` images per second (target: at most 10 %).
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from hpc_seg.bench.config import MODES
from hpc_seg.cardiac.slices.build import read_meta
from hpc_seg.cardiac.slices.stream import SliceStream
from hpc_seg.cardiac.train.config import PRESETS, TrainConfig
from hpc_seg.cardiac.train.losses import LOSSES
from hpc_seg.cardiac.train.loop import place_model, train_step
from hpc_seg.cardiac.train.model_file import build_model
from hpc_seg.errors import ConfigError
from hpc_seg.runtime.device import (CPU_BF16_ENV, amp_dtype, detect_cpu_features, resolve_device,
                                    use_channels_last)

log = logging.getLogger(__name__)



@dataclass(kw_only=True)
class BenchTrainConfig:
    slices: Path | None = None
    """a slices dataset; None = write a synthetic one to a temp dir"""
    images: int = 2048
    """images in the synthetic dataset"""
    preset: str = "cpu"
    """the training preset whose model is timed (encoder, widths, size, batch)"""
    image_size: int | None = None
    encoder: str | None = None
    batch_size: int | None = None
    steps: int = 4
    """timed steps per mode and round"""
    rounds: int = 3
    warmup: int = 2
    device: str = "auto"
    num_workers: int = 2
    augment: str = "normal"
    modes: tuple[str, ...] = MODES
    streaming: bool = True
    """also time the shard stream against memory (part 2)"""
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"bench train: preset must be one of {sorted(PRESETS)}, but got "
                              f"{self.preset!r}")
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ConfigError(f"bench train: modes must be some of {list(MODES)}, but got {bad}")
        if self.steps < 1 or self.rounds < 1 or self.warmup < 0:
            raise ConfigError(f"bench train: need steps >= 1, rounds >= 1 and warmup >= 0, but got "
                              f"steps {self.steps}, rounds {self.rounds}, warmup {self.warmup}")

    def train_config(self, image_size: int) -> TrainConfig:
        """The timed model's TrainConfig: the preset, then the explicit options."""
        keys = {**PRESETS[self.preset], "augment": self.augment, "confidence_set": "all",
                "image_size": image_size, **self.overrides}
        for name in ("encoder", "batch_size"):
            if getattr(self, name) is not None:
                keys[name] = getattr(self, name)
        tcfg = TrainConfig(**keys)
        if self.images < tcfg.batch_size:
            raise ConfigError(f"bench train: images ({self.images}) must be >= batch_size "
                              f"({tcfg.batch_size})")
        return tcfg


def write_synthetic_slices(out: Path, n_images: int, size: int, seed: int = 0,
                           val_images: int = 0) -> Path:
    """A slices dataset of random disc phantoms in the real on-disk format: ``n_images`` in the
    train split and ``val_images`` in the validate split (which training reads for metrics)."""
    import json

    import pyarrow as pa

    from hpc_seg.storage.shards import atomic_write_bytes, atomic_write_table
    from hpc_seg.cardiac.slices.build import IMAGES_PER_SHARD, META, ROW_GROUP

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for split, count in (("train", n_images), ("validate", val_images)):
        rows, shard = [], 0
        for i in range(count):
            (cy, cx), r = rng.uniform(0.35, 0.65, 2) * size, rng.uniform(0.08, 0.2) * size
            d = np.hypot(yy - cy, xx - cx)
            mask = np.where(d <= r, 1, np.where(d <= 1.4 * r, 2, 0)).astype(np.uint8)
            img = np.clip(np.array([30, 220, 110])[mask] + rng.normal(0, 20, mask.shape), 0,
                          255).astype(np.uint8)
            rows.append({"file": f"synthetic/{split}/{i}", "split": split, "in_p05": True,
                         "in_p10": True, "in_p15": True, "image": img.tobytes(),
                         "mask": mask.tobytes()})
            if len(rows) == IMAGES_PER_SHARD or i == count - 1:
                atomic_write_table(pa.Table.from_pylist(rows),
                                   out / f"part-{split}-{shard:05d}.parquet",
                                   row_group_size=ROW_GROUP)
                rows, shard = [], shard + 1
    atomic_write_bytes(json.dumps({"format": 1, "image_size": size, "label_source": "synthetic",
                                   "complete": True}).encode(), out / META)
    return out


@contextmanager
def forced_cpu_precision(bf16: bool) -> Iterator[None]:
    """Force bf16 on or off for CPU autocast while timing one mode (restored afterwards)."""
    old = os.environ.get(CPU_BF16_ENV)
    os.environ[CPU_BF16_ENV] = "on" if bf16 else "off"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(CPU_BF16_ENV, None)
        else:
            os.environ[CPU_BF16_ENV] = old


def _mode_config(tcfg: TrainConfig, mode: str) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(tcfg, amp=mode.startswith("bf16"), channels_last=mode.endswith("+cl"))


class _Timed:
    """One mode's model, optimiser and batch source, stepped through the loop's ``train_step``."""

    def __init__(self, tcfg: TrainConfig, device: torch.device, batches: Iterator[dict]):
        torch.manual_seed(0)
        self.cfg, self.device, self.batches = tcfg, device, batches
        self.model = place_model(build_model(tcfg, init=True), tcfg, device)
        self.model.train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.01)
        self.loss_fn = LOSSES[tcfg.loss]
        self.gen = torch.Generator().manual_seed(0)
        self.peak_step_mb: float | None = None
        """CUDA only: the most memory a step allocated on top of what was held before it"""

    def run(self, steps: int) -> tuple[float, float]:
        """Images per wall second and per CPU second of this process over ``steps`` steps.

        The CPU figure does not change when other processes compete for the cores (the wall one
        does), so on a shared machine it is the one to compare modes by; it counts this process
        only (not DataLoader worker processes) and sums its threads.
        """
        n = 0
        _sync(self.device)
        cuda = self.device.type == "cuda"
        if cuda:
            # The other modes' models stay on the device between rounds, so the peak is taken
            # above what is allocated now: activations, gradients, optimiser state, workspaces.
            held = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            _, size = train_step(self.model, self.opt, next(self.batches), self.cfg, self.loss_fn,
                                 self.device, self.gen)
            n += size
        _sync(self.device)
        rates = n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)
        if cuda:
            peak = (torch.cuda.max_memory_allocated(self.device) - held) / 2**20
            self.peak_step_mb = max(self.peak_step_mb or 0.0, peak)
        return rates


def run_bench(cfg: BenchTrainConfig) -> dict[str, Any]:
    """Time every mode (part 1) and streaming vs memory (part 2); figures in a dict."""
    device = resolve_device(cfg.device)
    features = detect_cpu_features()
    with tempfile.TemporaryDirectory(prefix="hpcseg-bench-") as tmp:
        size = cfg.image_size or int(PRESETS[cfg.preset].get("image_size", 256))
        slices = cfg.slices or write_synthetic_slices(Path(tmp) / "slices", cfg.images, size)
        size = int(read_meta(slices)["image_size"])
        tcfg = cfg.train_config(size)
        stream = SliceStream(slices, "train", batch_size=tcfg.batch_size, shuffle=True,
                             shuffle_buffer=1024)
        # The in-memory copy is the first few batches' worth of images, decoded once, on the device.
        n_mem = min(stream.n_rows, tcfg.batch_size * 16)
        mem = {k: v.to(device) for k, v in _first_images(stream, n_mem).items()}

        def memory_batches(seed: int) -> Iterator[dict]:
            gen = torch.Generator().manual_seed(seed)
            while True:
                idx = torch.randint(0, n_mem, (tcfg.batch_size,), generator=gen).to(device)
                yield {"image": mem["image"][idx], "mask": mem["mask"][idx]}

        per_mode: dict[str, list[tuple[float, float]]] = {m: [] for m in cfg.modes}
        timed = {m: _Timed(_mode_config(tcfg, m), device, memory_batches(i))
                 for i, m in enumerate(cfg.modes)}
        for m, t in timed.items():
            with forced_cpu_precision(m.startswith("bf16")):
                t.run(max(cfg.warmup, 1))
        for _ in range(cfg.rounds):
            for m, t in timed.items():
                with forced_cpu_precision(m.startswith("bf16")):
                    per_mode[m].append(t.run(cfg.steps))
        peaks = {m: t.peak_step_mb for m, t in timed.items()}
        model_mb = {m: _model_state_mb(t) for m, t in timed.items()}
        del timed
        modes = {m: {"images_per_s": statistics.median(w for w, _ in v),
                     "images_per_cpu_s": statistics.median(c for _, c in v),
                     "rounds": [w for w, _ in v], "peak_step_mb": peaks[m],
                     "model_state_mb": model_mb[m]} for m, v in per_mode.items()}
        base = modes.get("fp32")
        for row in modes.values():
            for key, ratio in (("images_per_s", "vs_fp32"), ("images_per_cpu_s", "vs_fp32_cpu")):
                row[ratio] = row[key] / base[key] if base else float("nan")
        chosen = ("bf16" if amp_dtype(device, tcfg.amp) is not None else "fp32") + \
            ("+cl" if use_channels_last(device, tcfg.channels_last) else "")
        result: dict[str, Any] = {
            "device": str(device), "cpu": features.describe(), "cpu_native_bf16": features.native_bf16,
            "threads": torch.get_num_threads(), "encoder": tcfg.encoder, "image_size": size,
            "batch_size": tcfg.batch_size, "modes": modes, "training_uses": chosen}
        if cfg.streaming:
            result.update(_stream_vs_memory(cfg, tcfg, chosen, device, stream, memory_batches))
    return result


def _stream_vs_memory(cfg: BenchTrainConfig, tcfg: TrainConfig, mode: str, device: torch.device,
                      stream: SliceStream, memory_batches) -> dict[str, float]:
    def stream_batches() -> Iterator[dict]:
        loader = DataLoader(stream, batch_size=None, num_workers=cfg.num_workers,
                            pin_memory=device.type == "cuda", persistent_workers=cfg.num_workers > 0)
        epoch = 0
        while True:
            stream.set_epoch(epoch)
            yield from loader
            epoch += 1

    mcfg = _mode_config(tcfg, mode)
    paths = {"in_memory": _Timed(mcfg, device, memory_batches(99)),
             "streaming": _Timed(mcfg, device, stream_batches())}
    rates: dict[str, list[float]] = {k: [] for k in paths}
    with forced_cpu_precision(mode.startswith("bf16")):
        for t in paths.values():
            t.run(max(cfg.warmup, 1))
        for _ in range(cfg.rounds):
            for k, t in paths.items():
                rates[k].append(t.run(cfg.steps)[0])  # wall: the workers' CPU time is elsewhere
    out = {k: statistics.median(v) for k, v in rates.items()}
    out["overhead"] = 1.0 - out["streaming"] / out["in_memory"]
    return out


def _model_state_mb(t: _Timed) -> float:
    """Parameters and optimiser state of one timed model (what a step's peak comes on top of)."""
    tensors = list(t.model.parameters()) + list(t.model.buffers())
    tensors += [v for s in t.opt.state.values() for v in s.values() if torch.is_tensor(v)]
    return sum(x.numel() * x.element_size() for x in tensors) / 2**20


def _first_images(stream: SliceStream, n: int) -> dict[str, torch.Tensor]:
    images, masks, got = [], [], 0
    for batch in stream:
        images.append(batch["image"])
        masks.append(batch["mask"])
        got += len(batch["image"])
        if got >= n:
            break
    return {"image": torch.cat(images)[:n], "mask": torch.cat(masks)[:n]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
