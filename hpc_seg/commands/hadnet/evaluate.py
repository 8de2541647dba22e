"""``hpc-seg hadnet evaluate PRE OUT --model NAME=PATH ...``: the BraTS scores of several models."""

from __future__ import annotations

import argparse

from hpc_seg.hadnet.stages import EvaluateStageConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_job_option, add_path_argument

NAME = "evaluate"
HELP = ("Dice, HD95 (mm), sensitivity, specificity per case and region (WT/TC/ET) for several "
        "models (e.g. teacher, student, AD-Net, HAD-Net), and the QU uncertainty score: CSV and "
        "markdown tables (mean ± sd, median), box plots, QU curves")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_path_argument(parser, "pre", "PRE", "preprocessed cohort (from `hpc-seg hadnet "
                      "preprocess`)", old="--pre")
    add_path_argument(parser, "out", "OUT", "output folder (predictions, tables, figures)",
                      old="--out")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                        help="a model to evaluate (repeatable); NAME labels its rows, e.g. "
                             "--model teacher=runs/t/best.pt")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_job_option(parser, "[hadnet_evaluate]")
    add_config_options(parser, EvaluateStageConfig, table="hadnet_evaluate")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.hadnet.api import evaluate
    from hpc_seg.config_flags import config_from_options
    from hpc_seg.options import model_paths, required_path

    pre, out = required_path(args, "pre", "PRE"), required_path(args, "out", "OUT")
    models = model_paths(args.model)
    cfg = config_from_options(EvaluateStageConfig, args, table="hadnet_evaluate")
    table = evaluate(models, pre, out, split=cfg.split, device=args.device,
                     uncertainty=None if cfg.uncertainty == "none" else cfg.uncertainty,
                     seed=cfg.seed)
    print((table.parent / "scores_table.md").read_text(), end="")
    print(f"tables and figures in {table.parent}")
    return 0
