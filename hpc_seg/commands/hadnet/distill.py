"""``hpc-seg hadnet distill``: HAD-Net (or AD-Net) distillation of a teacher into a student."""

from __future__ import annotations

import argparse

from hpc_seg.commands.hadnet._args import add_train_arguments

NAME = "distill"
HELP = ("adversarial distillation of the teacher into the pre-trained student (HAD-Net, or "
        "AD-Net with --variant ad); resumes from OUT/checkpoints")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", default=None,
                        help="teacher model best.pt (default: [hadnet] teacher of --job)")
    parser.add_argument("--student", default=None,
                        help="pre-trained student best.pt (default: [hadnet] student of --job)")
    parser.add_argument("--variant", choices=["had", "ad"], default=None,
                        help="had: hierarchical discriminator with feature pairs (default); "
                             "ad: logits only (the paper's ablation)")
    add_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from hpc_seg.errors import ConfigError
    from hpc_seg.hadnet.api import distill
    from hpc_seg.commands.hadnet._args import require_pre, resolve

    cfg, launch = resolve(args)
    teacher = args.teacher or cfg.teacher
    student = args.student or cfg.student
    if teacher is None or student is None:
        raise ConfigError("distill needs --teacher and --student (or [hadnet] teacher/student)")
    best = distill(cfg, require_pre(cfg), teacher, student, args.out, args.variant or cfg.variant,
                   launch)
    print(best)
    return 0
