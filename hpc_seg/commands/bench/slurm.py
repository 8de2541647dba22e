"""``hpc-seg bench slurm``: SLURM round trip (median of N trivial jobs) and a 100-task array."""

from __future__ import annotations

import argparse

NAME = "slurm"
HELP = "submit-to-result round trip of a trivial SLURM job (median of 10) and a 100-task array's wall time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=10, help="trivial jobs timed one after another")
    parser.add_argument("--array-size", type=int, default=100, help="tasks in the timed array")
    parser.add_argument("--parallelism", type=int, default=100, help="%%N throttle of the array")
    parser.add_argument("--folder", default=None, help="keep logs here (default: a temp dir)")
    parser.add_argument("--executor", default="slurm", choices=["slurm", "local"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.bench.slurm import BenchSlurmConfig, run_bench

    cfg = BenchSlurmConfig(repeats=args.repeats, array_size=args.array_size,
                           array_parallelism=args.parallelism, executor=args.executor,
                           folder=Path(args.folder) if args.folder else None)
    r = run_bench(cfg)
    print(f"round trip, trivial job (median of {cfg.repeats}): {r['roundtrip_median_s']:.2f} s "
          f"(min {r['roundtrip_min_s']:.2f}, max {r['roundtrip_max_s']:.2f})")
    print(f"array of {cfg.array_size} tasks (%{cfg.array_parallelism}): {r['array_wall_s']:.1f} s "
          f"wall, {r['array_tasks_per_s']:.1f} tasks/s")
    return 0
