"""``hpc-seg bench slurm``: SLURM round trip (median of N trivial jobs) and a 100-task array."""

from __future__ import annotations

import argparse

from hpc_seg.bench.config import BenchSlurmConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_renamed

NAME = "slurm"
HELP = "submit-to-result round trip of a trivial SLURM job (median of 10) and a 100-task array's wall time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None,
                        help="keep the jobs' logs here (default: a temporary folder)")
    add_renamed(parser, "--folder", "--out", "out")
    add_config_options(parser, BenchSlurmConfig, table="bench_slurm", taken={"folder": "--out"},
                       renamed={"--parallelism": "array_parallelism"})


def run(args: argparse.Namespace) -> int:
    from hpc_seg.bench.slurm import run_bench
    from hpc_seg.config_flags import config_from_options

    cfg = config_from_options(BenchSlurmConfig, args, table="bench_slurm",
                              fixed={"folder": args.out})
    r = run_bench(cfg)
    print(f"round trip, trivial job (median of {cfg.repeats}): {r['roundtrip_median_s']:.2f} s "
          f"(min {r['roundtrip_min_s']:.2f}, max {r['roundtrip_max_s']:.2f})")
    print(f"array of {cfg.array_size} tasks (%{cfg.array_parallelism}): {r['array_wall_s']:.1f} s "
          f"wall, {r['array_tasks_per_s']:.1f} tasks/s")
    return 0
