"""``hpc-seg evaluate``: predictions, EF table, Dice and figures for trained 2D U-Nets."""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = "predict held-out images with trained models; EF table, Dice table and figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("slices", help="slices dataset directory")
    parser.add_argument("labels", help="labels folder (from `hpc-seg labels`; holds the truth)")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL.pt",
                        help="a model to evaluate (repeatable); NAME labels its table row")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from hpc_seg.errors import ConfigError
    from hpc_seg.cardiac.evaluate import evaluate

    models = {}
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--model {spec!r}: expected NAME=PATH/TO/model.pt")
        models[name] = Path(path)
    out = evaluate(models, Path(args.slices), Path(args.labels), Path(args.out), split=args.split,
                   device=args.device)
    with pd.option_context("display.width", 120, "display.precision", 2):
        print("EF |true - predicted| x 100:")
        print(pd.read_csv(out / "ef_table.csv").to_string(index=False))
        print("\nDice (mean per image):")
        print(pd.read_csv(out / "dice_table.csv").to_string(index=False))
    print(f"\noutputs: {out}")
    return 0
