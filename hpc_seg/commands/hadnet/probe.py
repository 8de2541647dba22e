"""``hpc-seg hadnet probe PRE``: can each role's inputs separate a tumour region? (a linear probe)."""

from __future__ import annotations

import argparse

from hpc_seg.options import add_path_argument

NAME = "probe"
HELP = ("fit a voxel-wise logistic regression per role (teacher: 4 sequences, student: no T1ce) "
        "and print its Dice: does the teacher's extra input carry the region?")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_path_argument(parser, "pre", "PRE", "preprocessed cohort (from `hpc-seg hadnet "
                      "preprocess`)", old="--pre")
    parser.add_argument("--region", default="ET", choices=("ET", "TC", "WT"),
                        help="tumour region to separate (default ET)")
    parser.add_argument("--fit-split", default="train", help="split the probe is fitted on")
    parser.add_argument("--eval-split", default="test", help="split its Dice is measured on")
    parser.add_argument("--max-voxels-per-case", type=int, default=50_000,
                        help="uniform subsample of each fitting case's brain voxels (memory bound)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the voxel subsample")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.hadnet.probe import probe_region, probe_table
    from hpc_seg.options import required_path

    results = probe_region(required_path(args, "pre", "PRE"), args.region,
                           fit_split=args.fit_split, eval_split=args.eval_split,
                           max_voxels_per_case=args.max_voxels_per_case, seed=args.seed)
    print(probe_table(results))
    return 0
