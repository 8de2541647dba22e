"""``hpc-seg hadnet pretrain OUT --role teacher|student``: pre-train one segmentation network."""

from __future__ import annotations

import argparse

from hpc_seg.commands.hadnet._args import add_train_arguments

NAME = "pretrain"
HELP = ("pre-train the teacher (4 sequences) or the student (FLAIR, T1, T2) with decaying "
        "weighted CE; resumes from OUT/checkpoints")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=["teacher", "student"], required=True,
                        help="teacher: FLAIR, T1ce, T1, T2; student: without T1ce")
    add_train_arguments(parser, distill=False)


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.hadnet._args import require_pre, resolve
    from hpc_seg.hadnet.api import pretrain
    from hpc_seg.options import required_path

    out = required_path(args, "out", "OUT")
    cfg, launch = resolve(args)
    best = pretrain(cfg, require_pre(cfg), out, args.role, launch)
    print(best)
    return 0
