"""``hpc-seg evaluate``: predictions, EF table, Dice and figures for trained 2D U-Nets."""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = "predict held-out images with trained models; EF table, Dice table and figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("slices", metavar="SLICES", help="slices dataset directory")
    parser.add_argument("labels", metavar="LABELS",
                        help="labels folder (from `hpc-seg labels`; holds the truth)")
    parser.add_argument("out", metavar="OUT", help="output folder")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                        help="a model.pt to evaluate (repeatable); NAME labels its table row")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from hpc_seg.cardiac.evaluate import evaluate
    from hpc_seg.options import model_paths

    models = model_paths(args.model)
    out = evaluate(models, Path(args.slices), Path(args.labels), Path(args.out), split=args.split,
                   device=args.device)
    with pd.option_context("display.width", 120, "display.precision", 2):
        print("EF |true - predicted| x 100:")
        print(pd.read_csv(out / "ef_table.csv").to_string(index=False))
        print("\nDice (mean per image):")
        print(pd.read_csv(out / "dice_table.csv").to_string(index=False))
    print(f"\noutputs: {out}")
    return 0
