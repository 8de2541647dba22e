"""``hpc-seg transfer run SRC OUT``: ingest the volunteers, draw the subsets, train R/TL/TL2 as one array."""

from __future__ import annotations

import argparse

from hpc_seg.cardiac.transfer.config import DataConfig, TransferConfig
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_job_option, add_renamed

NAME = "run"
HELP = "ingest DICOM+.con (or PNG) volunteers, build the subsets, train (subset x init) as one job array"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC",
                        help="volunteers folder (SRC/<vid>/ DICOM + .con) or PNG folder")
    parser.add_argument("out", metavar="OUT", help="output folder (a re-run skips finished work)")
    add_job_option(parser, "[transfer_data], [transfer] and [launch]")
    add_config_options(parser.add_argument_group("data options ([transfer_data])"), DataConfig,
                       table="transfer_data", taken={"src": "SRC"})
    add_config_options(parser.add_argument_group("training options ([transfer])"), TransferConfig,
                       table="transfer")
    launch = parser.add_argument_group("launch ([launch])")
    add_config_options(launch, LaunchConfig, table="launch")
    add_renamed(launch, "--parallel", "--array-parallelism", "launch:array_parallelism",
                type=int)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.transfer import study
    from hpc_seg.config_flags import config_from_options
    from hpc_seg.options import job_tables

    tables = job_tables(args)
    data = config_from_options(DataConfig, args, table="transfer_data", tables=tables,
                               fixed={"src": args.src})
    transfer = config_from_options(TransferConfig, args, table="transfer", tables=tables)
    launch = config_from_options(LaunchConfig, args, table="launch", tables=tables)
    out = Path(args.out)
    study.prepare(data, out)
    result = study.train(transfer, launch, out)
    for name, why in result["skipped"].items():
        print(f"{name}: {why}")
    print(f"{result['tasks']} task(s) finished under {out / 'tasks'}; "
          f"next: hpc-seg transfer evaluate {out}")
    return 0
