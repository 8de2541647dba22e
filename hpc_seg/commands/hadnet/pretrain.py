"""``hpc-seg hadnet pretrain --role teacher|student``: pre-train one segmentation network."""

from __future__ import annotations

import argparse

from hpc_seg.commands.hadnet._args import add_train_arguments

NAME = "pretrain"
HELP = ("pre-train the teacher (4 sequences) or the student (FLAIR, T1, T2) with decaying "
        "weighted CE; resumes from OUT/checkpoints")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=["teacher", "student"], required=True)
    add_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from hpc_seg.hadnet.api import pretrain
    from hpc_seg.commands.hadnet._args import require_pre, resolve

    cfg, launch = resolve(args)
    best = pretrain(cfg, require_pre(cfg), args.out, args.role, launch)
    print(best)
    return 0
