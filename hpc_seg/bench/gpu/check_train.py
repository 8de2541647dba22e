"""Check 1: images/s and peak memory of the 2D training step, fp32 vs bf16 vs channels_last, and
streaming from shards vs the same model fed from memory (target: loader overhead <= 10 %).

All figures come from ``hpc-seg bench train``'s :func:`hpc_seg.bench.train.run_bench`, which times
the training loop's own ``train_step`` in interleaved rounds.
"""

from __future__ import annotations

from pathlib import Path

from hpc_seg.bench.gpu.profile import GpuBenchProfile
from hpc_seg.bench.gpu.report import CheckOutcome


def run_check(profile: GpuBenchProfile, workdir: Path) -> CheckOutcome:
    from hpc_seg.bench.train import BenchTrainConfig, run_bench
    from hpc_seg.runtime.threads import configure_torch_threads

    c = profile.train
    configure_torch_threads(0)
    cfg = BenchTrainConfig(images=c.images, preset="published", image_size=c.image_size,
                           encoder=c.encoder, batch_size=c.batch_size, steps=c.steps,
                           rounds=c.rounds, warmup=c.warmup, device=profile.device,
                           num_workers=c.num_workers, modes=tuple(c.modes), streaming=True,
                           overrides=dict(c.overrides))
    r = run_bench(cfg)
    modes = {}
    for mode, row in r["modes"].items():
        peak = (row["model_state_mb"] + row["peak_step_mb"]
                if row.get("peak_step_mb") is not None else None)
        modes[mode] = {"images_per_s": row["images_per_s"], "vs_fp32": row["vs_fp32"],
                       "images_per_cpu_s": row["images_per_cpu_s"], "peak_mb": peak,
                       "peak_step_mb": row.get("peak_step_mb"),
                       "model_state_mb": row["model_state_mb"], "rounds": row["rounds"]}
    figures = {"device": r["device"], "encoder": r["encoder"], "image_size": r["image_size"],
               "batch_size": r["batch_size"], "threads": r["threads"], "cpu": r["cpu"],
               "modes": modes, "training_uses": r["training_uses"],
               "in_memory_images_per_s": r["in_memory"], "streaming_images_per_s": r["streaming"],
               "loader_overhead": r["overhead"], "num_workers": c.num_workers,
               "peak_mb_kind": "CUDA allocated: model + optimiser state + a step's peak"
               if r["device"].startswith("cuda") else "not measured on CPU"}
    parts = [f"{m} {row['images_per_s']:.3g} img/s"
             + (f" {row['peak_mb']:.0f} MB" if row["peak_mb"] is not None else "")
             for m, row in modes.items()]
    summary = (" | ".join(parts) + f"; {r['training_uses']}: streaming {r['streaming']:.3g} vs "
               f"memory {r['in_memory']:.3g} img/s, overhead {100 * r['overhead']:.1f} %")
    return CheckOutcome(figures=figures,
                        target=f"loader overhead <= {100 * c.max_overhead:.0f} %",
                        met=r["overhead"] <= c.max_overhead, summary=summary)
