"""``hpc-seg bench ingest``: both ingest engines vs a pydicom floor and dcm2niix, in one run."""

from __future__ import annotations

import argparse

from hpc_seg.bench.config import BenchIngestConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_renamed

NAME = "ingest"
HELP = "files/s and MB/s of the local and Ray ingest engines vs a pydicom floor and dcm2niix"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="/tmp/hpc-seg-bench-ingest",
                        help="the cohort (generated once, reused) and the outputs go here "
                             "(default /tmp/hpc-seg-bench-ingest)")
    add_renamed(parser, "--workdir", "--out", "out")
    add_config_options(parser, BenchIngestConfig, table="bench_ingest",
                       taken={"workdir": "--out"})


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.bench.ingest import format_table, run_bench
    from hpc_seg.config_flags import config_from_options

    cfg = config_from_options(BenchIngestConfig, args, table="bench_ingest",
                              fixed={"workdir": Path(args.out)})
    rows = run_bench(cfg)
    print(format_table(rows))
    print(f"(saved {cfg.workdir / 'bench_ingest.json'})")
    return 0
