"""``hpc-seg transfer evaluate OUT``: predictions, confusion, Dice and volume tables, figures."""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = "evaluate a transfer run: per-image predictions, confusion/Dice/volume tables, figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="RUN",
                        help="the output folder of `hpc-seg transfer run` (tables and figures go "
                             "to RUN/evaluate)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from hpc_seg.cardiac.transfer import study

    paths = study.evaluate(Path(args.out), device=args.device)
    table = pd.read_csv(paths["dice_table"])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep=""))
    for key in ("dice_table", "confusion", "volume_table", "training_logs", "data_requirement"):
        print(f"{key}: {paths[key]}")
    return 0
