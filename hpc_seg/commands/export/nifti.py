"""``hpc-seg export nifti VOLUMES STACK_ID OUT.nii.gz``: one stack as NIfTI (RAS, X,Y,Z,T)."""

from __future__ import annotations

import argparse

from hpc_seg.options import BoolOption

NAME = "nifti"
HELP = "write one stack of an ingest volumes table as NIfTI (data X,Y,Z,T; affine RAS)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("volumes", metavar="VOLUMES",
                        help="the ingest volumes table directory (OUT/volumes)")
    parser.add_argument("stack_id", metavar="STACK_ID", help="stack to export, e.g. 12, 12_a, 12_rot90")
    parser.add_argument("out", metavar="OUT", help="output file, .nii or .nii.gz")
    parser.add_argument("--mask", action=BoolOption, default=False,
                        help="export the label mask instead of the pixels")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.export_nifti import export_nifti

    path = export_nifti(Path(args.volumes), args.stack_id, Path(args.out), mask=args.mask)
    print(path)
    return 0
