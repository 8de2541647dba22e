"""``hpc-seg hadnet predict MODEL SRC OUT``: NIfTI label maps (0/1/2/4) in each case's original
geometry, and per-region uncertainty maps with ``--uncertainty``."""

from __future__ import annotations

import argparse

from hpc_seg.options import add_path_argument

NAME = "predict"
HELP = ("predict <subject>.nii.gz label maps (0/1/2/4, original grid, FLAIR affine, 0 outside "
        "the brain) with a trained model, from a preprocessed cohort or a raw BraTS-layout folder; "
        "--uncertainty adds WT/TC/ET uncertainty maps in [0, 100]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_path_argument(parser, "model", "MODEL", "a best.pt written by pretrain or distill",
                      old="--model")
    parser.add_argument("src", metavar="SRC",
                        help="preprocessed cohort PRE/ or raw folder of <subject>/ NIfTIs")
    parser.add_argument("out", metavar="OUT", help="output folder")
    parser.add_argument("--split", default="test",
                        help="split of a preprocessed cohort (default test; 'all' = every case)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--uncertainty", default=None, metavar="entropy|mcdropout[:N]",
                        help="also write per-region uncertainty maps in [0, 100] "
                             "(<subject>_unc_{whole,core,enhance}.nii.gz): entropy of one pass, "
                             "or of the mean of N Monte-Carlo dropout passes (default N 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the MC dropout masks")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.hadnet.api import predict
    from hpc_seg.options import required_path

    out = predict(required_path(args, "model", "MODEL"), args.src, args.out,
                  split=None if args.split == "all" else args.split, device=args.device,
                  uncertainty=args.uncertainty, seed=args.seed)
    print(out)
    return 0
