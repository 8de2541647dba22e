"""``hpc-seg bench hadnet``: seconds per training step, peak memory, and DDP scaling.

One step = one optimiser step of batch 1 (one volume): forward + backward + update, exactly the
code of the training loops (:class:`PretrainTrainer` / :class:`DistillTrainer`) on random toy
volumes of the requested size. Peak memory is ``torch.cuda.max_memory_allocated`` (and
``max_memory_reserved``, what the caching allocator took) on a GPU and the process's peak RSS
growth on CPU (each measurement runs in a fresh process so runs do not inherit each other's
peaks). DDP scaling runs the same step in 1 and in N local gloo processes and reports
samples/s; on a 2-core machine expect little gain, the point is that it works and what it costs.
"""

from __future__ import annotations

import logging
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)

PUBLISHED_SIZE = (160, 192, 160)
PUBLISHED_K = 32


@dataclass(kw_only=True)
class StepBench:
    """What to measure."""

    mode: str = "distill"
    """``pretrain`` or ``distill``"""
    size: tuple[int, int, int] = (64, 64, 64)
    k: int = 8
    device: str = "cpu"
    steps: int = 3
    warmup: int = 1
    amp: bool = True
    precision: str = "auto"
    """``fp32``, ``bf16`` (forced, even on a CPU without bf16 units) or ``auto`` (what training
    would use on this machine)"""
    threads: int = 1
    augment: bool = True


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def measure_steps(b: StepBench) -> dict[str, Any]:
    """Run ``warmup + steps`` training steps in this process (rank of a group if there is one)."""
    from hpc_seg.launch.ddp import init_distributed
    from hpc_seg.hadnet.models.unet3d import UNet3D
    from hpc_seg.hadnet.train.config import HadnetTrainConfig
    from hpc_seg.hadnet.train.data import toy_cases
    from hpc_seg.hadnet.train.distill import DistillTrainer
    from hpc_seg.hadnet.train.loop import broadcast_module, seed_sample
    from hpc_seg.hadnet.train.pretrain import PretrainTrainer

    import os

    from hpc_seg.runtime.device import CPU_BF16_ENV

    torch.set_num_threads(b.threads)
    amp = b.amp and b.precision != "fp32"
    if b.precision == "bf16":  # each measurement runs in its own process: no need to restore
        os.environ[CPU_BF16_ENV] = "on"
    cfg = HadnetTrainConfig(k=b.k, device=b.device, amp=amp, augment=b.augment, seed=0)
    env = init_distributed(0, backend="gloo" if b.device == "cpu" else None)
    if b.device == "cpu":
        import dataclasses
        env = dataclasses.replace(env, device=torch.device("cpu"))
    rss0 = _rss_mb()
    if b.mode == "pretrain":
        trainer = PretrainTrainer(cfg, env, "teacher")
    else:
        trainer = DistillTrainer(cfg, env, UNet3D(4, k=b.k), UNet3D(3, k=b.k), "had")
    for m in trainer.modules.values():
        broadcast_module(m, env)
    case = toy_cases(1, b.size, seed=env.rank)[0]
    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(env.device)
    times, cpu_times = [], []
    for i in range(b.warmup + b.steps):
        if env.device.type == "cuda":
            torch.cuda.synchronize(env.device)
        t0, c0 = time.perf_counter(), time.process_time()
        seed_sample(0, 0, i)
        trainer.micro_step(case, epoch=0)
        trainer.finish_step()
        if env.device.type == "cuda":
            torch.cuda.synchronize(env.device)
        if i >= b.warmup:
            times.append(time.perf_counter() - t0)
            # CPU seconds do not grow when other processes share the cores (wall seconds do)
            cpu_times.append(time.process_time() - c0)
    cuda = env.device.type == "cuda"
    peak = torch.cuda.max_memory_allocated(env.device) / 2**20 if cuda else _rss_mb() - rss0
    # what the caching allocator took from the device: what a smaller card must hold
    reserved = torch.cuda.max_memory_reserved(env.device) / 2**20 if cuda else None
    from hpc_seg.launch.ddp import cleanup_distributed

    cleanup_distributed()
    from hpc_seg.runtime.device import amp_dtype

    dtype = amp_dtype(env.device, amp)
    return {"mode": b.mode, "precision": "bf16" if dtype is not None else "fp32",
            "size": "x".join(map(str, b.size)), "k": b.k,
            "device": str(env.device), "world_size": env.world_size,
            "s_per_step": statistics.median(times), "s_per_step_min": min(times),
            "cpu_s_per_step": statistics.median(cpu_times),
            "peak_mem_mb": peak, "peak_reserved_mb": reserved,
            "memory_kind": "cuda allocated" if cuda else "RSS growth"}


def _fresh_process(b: StepBench) -> dict[str, Any]:
    from hpc_seg.launch.spawn import spawn_ranks

    return spawn_ranks(1, measure_steps, b)[0]


def ddp_scaling(b: StepBench, world_sizes: tuple[int, ...] = (1, 2)) -> list[dict[str, Any]]:
    """samples/s with 1..N local gloo ranks, each rank doing ``b.steps`` steps of batch 1."""
    from hpc_seg.launch.spawn import spawn_ranks

    rows = []
    for w in world_sizes:
        res = spawn_ranks(w, measure_steps, b)
        step = max(r["s_per_step"] for r in res)  # the slowest rank sets the pace
        rows.append({"world_size": w, "s_per_step": step, "samples_per_s": w / step,
                     "peak_mem_mb_per_rank": max(r["peak_mem_mb"] for r in res)})
    base = rows[0]["samples_per_s"]
    for r in rows:
        r["speedup"] = r["samples_per_s"] / base
        r["efficiency"] = r["speedup"] / r["world_size"]
    return rows


def run_bench(b: StepBench, modes: list[str], ddp: bool,
              precisions: tuple[str, ...] = ("auto",), rounds: int = 1) -> list[dict[str, Any]]:
    """Per-mode (and per-precision) step measurements in fresh processes, in interleaved rounds
    (the round with the median step time is kept, so a neighbour's load hits every precision
    alike), and DDP scaling on CPU if asked."""
    results = []
    for m in modes:
        runs: dict[str, list[dict[str, Any]]] = {p: [] for p in precisions}
        for _ in range(rounds):
            for p in precisions:
                runs[p].append(_fresh_process(StepBench(**{**b.__dict__, "mode": m, "precision": p})))
        for p, rows in runs.items():
            rows.sort(key=lambda r: r["s_per_step"])
            results.append(rows[len(rows) // 2])
    if ddp:
        for m in modes:
            for row in ddp_scaling(StepBench(**{**b.__dict__, "mode": m})):
                results.append({"mode": f"{m} ddp", **row})
    return results
