"""``hpc-seg hadnet evaluate``: Dice ET/TC/WT of several models in one table and one figure."""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = ("Dice ET/TC/WT per case and summary for several models (e.g. teacher, student, AD-Net, "
        "HAD-Net): CSV tables, a markdown table and a box-plot figure")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                        help="a model to evaluate (repeatable), e.g. --model teacher=runs/t/best.pt")
    parser.add_argument("--pre", required=True, help="preprocessed cohort PRE/")
    parser.add_argument("--out", required=True, help="output folder (predictions, tables, dice.png)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--device", default="auto")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.errors import ConfigError
    from hpc_seg.hadnet.api import evaluate

    models = {}
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--model {spec!r}: expected NAME=PATH, e.g. teacher=runs/t/best.pt")
        if name in models:
            raise ConfigError(f"--model {spec!r}: name {name!r} given twice")
        models[name] = Path(path)
    table = evaluate(models, args.pre, args.out, split=args.split, device=args.device)
    print((table.parent / "dice_table.md").read_text(), end="")
    print(f"tables and figure in {table.parent}")
    return 0
