"""``hpc-seg report RUN``: one static HTML page summarising a run folder."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = ("write a static HTML report (works offline) of a run folder: what each study found, "
        "its evidence, stages and jobs; and summary.json beside it")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN",
                        help="a run folder (hpc-seg run output, or one stage's output)")
    parser.add_argument("--out", default=None, help="HTML file (default RUN/report.html)")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.pipeline.registry import FINDINGS
    from hpc_seg.report.page import build_report

    print(build_report(args.run, args.out, studies=FINDINGS))
    return 0
