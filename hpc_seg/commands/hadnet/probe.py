"""``hpc-seg hadnet probe``: can each role's inputs separate a tumour region? (a linear probe)."""

from __future__ import annotations

import argparse

NAME = "probe"
HELP = ("Fit a voxel-wise logistic regression per role (teacher: 4 sequences, student: no T1ce) "
        "and print its Dice: does the teacher's extra input carry the region?")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pre", required=True, help="preprocessed cohort PRE/")
    parser.add_argument("--region", default="ET", choices=("ET", "TC", "WT"))
    parser.add_argument("--fit-split", default="train")
    parser.add_argument("--eval-split", default="test")
    parser.add_argument("--max-voxels-per-case", type=int, default=50_000,
                        help="uniform subsample of each fitting case's brain voxels (memory bound)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from hpc_seg.hadnet.probe import probe_region, probe_table

    results = probe_region(args.pre, args.region, fit_split=args.fit_split,
                           eval_split=args.eval_split,
                           max_voxels_per_case=args.max_voxels_per_case, seed=args.seed)
    print(probe_table(results))
    return 0
