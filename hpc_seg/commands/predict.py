"""``hpc-seg predict MODEL SRC OUT``: segment new cine scans with a trained cardiac model."""

from __future__ import annotations

import argparse

from hpc_seg.cardiac.inference.config import PredictConfig
from hpc_seg.config_flags import add_config_options

NAME = "predict"
HELP = ("segment new cine short-axis scans (DICOM folder, 4D NIfTI or volumes table) with a "
        "trained model.pt: label maps, DICOM SEG, LV volumes, EF, mass, QC")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="a trained cardiac model.pt (train, tune or transfer output)")
    parser.add_argument("src", metavar="SRC",
                        help="DICOM folder (DSB2 tree or scanner export), a 4D .nii(.gz), or an "
                             "ingested volumes table")
    parser.add_argument("out", metavar="OUT", help="output folder (created)")
    add_config_options(parser, PredictConfig, table="predict")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.cardiac.inference.run import predict, summary_text
    from hpc_seg.config_flags import config_from_options

    cfg = config_from_options(PredictConfig, args, table="predict")
    result = predict(args.model, args.src, args.out, cfg)
    print(summary_text(result.summary_csv))
    for sid, err in result.failed.items():
        print(f"FAILED {sid}: {err}")
    print(f"{result.stacks} stack(s), {result.flagged} flagged for review; "
          f"summary: {result.summary_csv}")
    return 1 if result.failed else 0
