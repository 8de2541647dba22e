"""Check 3: HAD-Net at the published size (160x192x160, k = 32): step time and peak memory of
pre-training and distillation in fp32 and bf16 (the paper needed 18 GB; target <= 12 GB with
bf16), and one whole-volume inference.

Training steps come from ``hpc-seg bench hadnet``'s :func:`hpc_seg.bench.hadnet.run_bench` (the
trainers' own ``micro_step``/``finish_step``, each measurement in a fresh process); the inference
is the prediction code's :func:`~hpc_seg.hadnet.uncertainty.predict_with_uncertainty` (forward,
softmax, argmax, and the entropy maps) on one volume.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hpc_seg.bench.gpu.profile import GpuBenchProfile
from hpc_seg.bench.gpu.report import CheckOutcome


def _inference(size: tuple[int, int, int], k: int, device_name: str) -> dict[str, Any]:
    import torch

    from hpc_seg.hadnet.models.unet3d import UNet3D
    from hpc_seg.hadnet.train.data import role_channels, toy_cases
    from hpc_seg.hadnet.uncertainty import UncertaintyMethod, predict_with_uncertainty
    from hpc_seg.runtime.device import amp_dtype

    device = torch.device(device_name)
    channels = list(role_channels("student"))
    net = UNet3D(len(channels), k=k).to(device)
    x = toy_cases(1, size, seed=0)[0].image[channels][None].to(device)
    method = UncertaintyMethod.parse("entropy")

    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        classes, maps = predict_with_uncertainty(net, x, method)  # results land on the host
        assert classes.shape == tuple(size) and maps.shape == (3, *size)
        return time.perf_counter() - t0

    once()  # warm-up: cuDNN picks its algorithms, the allocator fills its cache
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = once()
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"seconds": seconds, "peak_mb": peak,
            "precision": "bf16" if amp_dtype(device, True) is not None else "fp32",
            "output": "classes + entropy maps (WT, TC, ET)"}


def run_check(profile: GpuBenchProfile, workdir: Path) -> CheckOutcome:
    from hpc_seg.bench.hadnet import StepBench, run_bench
    from hpc_seg.runtime.threads import configure_torch_threads

    c = profile.hadnet
    size = tuple(c.size)
    bench = StepBench(size=size, k=c.k, device=profile.device, steps=c.steps, warmup=c.warmup,
                      threads=c.threads)
    rows = run_bench(bench, ["pretrain", "distill"], ddp=False, precisions=tuple(c.precisions))
    training = {f"{r['mode']}_{r['precision']}": {
        "s_per_step": r["s_per_step"], "peak_allocated_mb": r["peak_mem_mb"],
        "peak_reserved_mb": r.get("peak_reserved_mb"), "memory_kind": r["memory_kind"]}
        for r in rows}
    configure_torch_threads(c.threads)
    inference = _inference(size, c.k, profile.device)
    limit_mb = c.max_memory_gb * 1e9 / 2**20
    bf16 = [(name, row) for name, row in training.items() if name.endswith("_bf16")]

    def held(row: dict[str, Any]) -> float:
        return row["peak_reserved_mb"] if row["peak_reserved_mb"] is not None \
            else row["peak_allocated_mb"]

    met = bool(bf16) and all(held(row) <= limit_mb for _, row in bf16)
    figures = {"size": "x".join(map(str, size)), "k": c.k, "device": profile.device,
               "batch": 1, "training": training, "inference": inference,
               "bf16_peak_mb": max((held(row) for _, row in bf16), default=None),
               "limit_mb": limit_mb}
    summary = " | ".join(f"{name} {row['s_per_step']:.2f} s/step {held(row):.0f} MB"
                         for name, row in training.items())
    summary += f"; inference {inference['seconds']:.2f} s"
    if inference["peak_mb"] is not None:
        summary += f" {inference['peak_mb']:.0f} MB"
    return CheckOutcome(figures=figures,
                        target=f"bf16 training peak memory <= {c.max_memory_gb:g} GB "
                               "(GPU: the caching allocator's peak reservation)",
                        met=met, summary=summary)
