"""``hpc-seg hadnet evaluate``: the BraTS scores of several models, tables and figures."""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = ("Dice, HD95 (mm), sensitivity, specificity per case and region (WT/TC/ET) for several "
        "models (e.g. teacher, student, AD-Net, HAD-Net), and the QU uncertainty score with "
        "--uncertainty: CSV and markdown tables (mean ± sd, median), box plots, QU curves")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                        help="a model to evaluate (repeatable), e.g. --model teacher=runs/t/best.pt")
    parser.add_argument("--pre", required=True, help="preprocessed cohort PRE/")
    parser.add_argument("--out", required=True, help="output folder (predictions, tables, figures)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--uncertainty", default=None, metavar="entropy|mcdropout[:N]",
                        help="also predict uncertainty maps and score them (BraTS QU and its AUCs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the MC dropout masks")


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
    table = evaluate(models, args.pre, args.out, split=args.split, device=args.device,
                     uncertainty=args.uncertainty, seed=args.seed)
    print((table.parent / "scores_table.md").read_text(), end="")
    print(f"tables and figures in {table.parent}")
    return 0
