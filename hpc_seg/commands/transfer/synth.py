"""``hpc-seg transfer synth OUT``: a 7T-like cine cohort (DICOM + QMass .con contours)."""

from __future__ import annotations

import argparse

from hpc_seg.cardiac.synth.config import Synth7TConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_job_option

NAME = "synth"
HELP = "generate a 7T-like cine cohort: GRE contrast, B1 bands, voids, .con contours, 2 observers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT",
                        help="output folder (new, or an unfinished one to resume)")
    add_job_option(parser, "[synth_7t]")
    add_config_options(parser.add_argument_group("generator options (Synth7TConfig)"),
                       Synth7TConfig, table="synth_7t")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.synth.domain_7t import generate_7t_cohort
    from hpc_seg.config_flags import config_from_options

    cfg = config_from_options(Synth7TConfig, args, table="synth_7t")
    manifest = generate_7t_cohort(Path(args.out), cfg)
    print(f"7T cohort written; manifest: {manifest}")
    return 0
