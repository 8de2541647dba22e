"""``hpc-seg hadnet check-teacher MODEL PRE OUT``: does a pre-trained teacher segment ET?"""

from __future__ import annotations

import argparse

from hpc_seg.config_flags import add_config_options
from hpc_seg.hadnet.teacher_check import TeacherCheckConfig
from hpc_seg.options import add_job_option

NAME = "check-teacher"
HELP = ("score a teacher on the cases whose truth has the region (ET by default) and exit 2 when "
        "its Dice is below --min-et-dice: with no ET to distil, HAD-Net's comparison says nothing")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="the teacher's best.pt (from pretrain)")
    parser.add_argument("pre", metavar="PRE",
                        help="preprocessed cohort (from `hpc-seg hadnet preprocess`)")
    parser.add_argument("out", metavar="OUT",
                        help="output folder (predictions/, teacher_check.json)")
    add_job_option(parser, "[hadnet_check_teacher]")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_config_options(parser.add_argument_group("check options (TeacherCheckConfig)"),
                       TeacherCheckConfig, table="hadnet_check_teacher")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.config_flags import config_from_options
    from hpc_seg.hadnet.teacher_check import check_teacher

    cfg = config_from_options(TeacherCheckConfig, args, table="hadnet_check_teacher")
    res = check_teacher(args.model, args.pre, args.out, cfg, device=args.device)
    print(res["line"])
    print(res["check"])
    return 0
