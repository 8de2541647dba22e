"""``hpc-seg bench hadnet``: seconds per HAD-Net training step, peak memory, DDP scaling."""

from __future__ import annotations

import argparse
import sys

from hpc_seg.options import BoolOption

NAME = "hadnet"
HELP = ("seconds per HAD-Net training step and peak memory (published size on a GPU, reduced on "
        "CPU), and DDP scaling 1 vs 2 CPU processes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: the published size 160x192x160, k=32 (needs a GPU)")
    parser.add_argument("--size", type=int, nargs=3, metavar=("D", "H", "W"), default=None,
                        help="volume size (default: 160 192 160 on cuda, 64 64 64 on cpu); "
                             "multiples of 16")
    parser.add_argument("--k", type=int, default=None, help="U-Net base width (default: 32 on "
                        "cuda, 8 on cpu)")
    parser.add_argument("--mode", choices=["pretrain", "distill", "both"], default="both",
                        help="which training step to time (default both)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--amp", action=BoolOption, default=True,
                        help="bf16 where the hardware has bf16 units (default on; --no-amp: "
                             "float32 everywhere)")
    parser.add_argument("--precisions", nargs="+", choices=["auto", "fp32", "bf16"], default=["auto"],
                        help="time these side by side (bf16 is forced even without bf16 units; "
                             "auto = what training uses here)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved rounds per precision (the median is reported)")
    parser.add_argument("--ddp", action=BoolOption, default=False,
                        help="also measure 1 vs 2 local gloo processes (CPU)")
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[1, 2],
                        help="DDP process counts measured with --ddp (default 1 2)")


def run(args: argparse.Namespace) -> int:
    import torch

    from hpc_seg.bench.hadnet import PUBLISHED_K, PUBLISHED_SIZE, StepBench, ddp_scaling, run_bench
    from hpc_seg.errors import InputError

    if args.device == "cuda" and not torch.cuda.is_available():
        print("hpc-seg bench hadnet: no CUDA GPU on this machine (torch.cuda.is_available() is "
              f"False, torch {torch.__version__}). The published-size benchmark (160x192x160, k=32; "
              "the paper needs >= 18 GB for training) must run on a GPU node, e.g. "
              "'srun --gres=gpu:1 hpc-seg bench hadnet --device cuda'. "
              "Use '--device cpu' for the reduced-size figures.", file=sys.stderr)
        return 2
    gpu = args.device == "cuda"
    size = tuple(args.size) if args.size else (PUBLISHED_SIZE if gpu else (64, 64, 64))
    if any(s % 16 for s in size):
        raise InputError(f"--size {size}: every dimension must be a multiple of 16 (4 poolings)")
    k = args.k or (PUBLISHED_K if gpu else 8)
    modes = ["pretrain", "distill"] if args.mode == "both" else [args.mode]
    b = StepBench(size=size, k=k, device=args.device, steps=args.steps, warmup=args.warmup,
                  amp=args.amp, threads=args.threads)
    rows = run_bench(b, modes, ddp=False, precisions=tuple(args.precisions), rounds=args.rounds)
    from hpc_seg.runtime.device import detect_cpu_features

    print(f"HAD-Net training step, batch 1, {'x'.join(map(str, size))}, k={k}, "
          f"{args.device}, {args.threads} thread(s)")
    if not gpu:
        print(f"CPU: {detect_cpu_features().describe()}")
    print(f"{'mode':10s} {'precision':9s} {'s/step':>9s} {'steps/s':>8s} {'min s':>9s} "
          f"{'CPU s/step':>10s} {'peak MB':>10s}  memory")
    for r in rows:
        print(f"{r['mode']:10s} {r['precision']:9s} {r['s_per_step']:9.3f} "
              f"{1 / r['s_per_step']:8.2f} {r['s_per_step_min']:9.3f} {r['cpu_s_per_step']:10.3f} "
              f"{r['peak_mem_mb']:10.1f}  {r['memory_kind']}")
    if not gpu:
        print("(CPU s/step: CPU seconds of the process per step, all threads; unlike s/step it "
              "does not grow when other processes share the cores)")
    if args.ddp:
        print(f"\nDDP scaling (local gloo processes, {args.threads} thread(s) each, batch 1 per rank)")
        print(f"{'mode':10s} {'ranks':>5s} {'s/step':>9s} {'samples/s':>10s} {'speedup':>8s} "
              f"{'effic.':>7s} {'MB/rank':>8s}")
        for m in modes:
            sb = StepBench(**{**b.__dict__, "mode": m, "device": "cpu"})
            for r in ddp_scaling(sb, tuple(args.world_sizes)):
                print(f"{m:10s} {r['world_size']:5d} {r['s_per_step']:9.3f} "
                      f"{r['samples_per_s']:10.3f} {r['speedup']:8.2f} {r['efficiency']:7.2f} "
                      f"{r['peak_mem_mb_per_rank']:8.1f}")
    return 0
