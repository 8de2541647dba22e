"""``hpc-seg hadnet distill OUT``: HAD-Net (or AD-Net) distillation of a teacher into a student."""

from __future__ import annotations

import argparse

from hpc_seg.commands.hadnet._args import add_train_arguments

NAME = "distill"
HELP = ("adversarial distillation of the teacher into the pre-trained student (HAD-Net, or "
        "AD-Net with --variant ad); resumes from OUT/checkpoints")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser, distill=True)


def run(args: argparse.Namespace) -> int:
    from hpc_seg.commands.hadnet._args import require_pre, resolve
    from hpc_seg.errors import ConfigError
    from hpc_seg.hadnet.api import distill
    from hpc_seg.options import required_path

    out = required_path(args, "out", "OUT")
    cfg, launch = resolve(args)
    if cfg.teacher is None or cfg.student is None:
        raise ConfigError("distill needs --teacher and --student (or [hadnet] teacher and "
                          "student in the --job file)")
    best = distill(cfg, require_pre(cfg), cfg.teacher, cfg.student, out, cfg.variant, launch)
    print(best)
    return 0
