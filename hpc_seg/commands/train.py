"""``hpc-seg train SLICES OUT``: one 2D U-Net training run from a job's ``[train]`` table and flags."""

from __future__ import annotations

import argparse

from hpc_seg.cardiac.train.config import PRESETS, TrainConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import BoolOption, add_job_option

NAME = "train"
HELP = "train one 2D U-Net on a slices dataset (frozen then unfrozen one-cycle; resumes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("slices", metavar="SLICES",
                        help="slices dataset directory (from `hpc-seg labels`)")
    parser.add_argument("out", metavar="OUT", help="run folder: model.pt, history.csv, checkpoints/")
    add_job_option(parser, "[train]")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="start from a named config (the job file and flags override it): "
                             "published = r34/p05/256/ce/normal; cpu = resnet18 at 128 px, capped "
                             "epochs; debug = seconds")
    parser.add_argument("--restart", action=BoolOption, default=False,
                        help="ignore existing checkpoints / model.pt in OUT and start again")
    add_config_options(parser.add_argument_group("training options (TrainConfig)"), TrainConfig,
                       table="train")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.cardiac.train.loop import train_segmenter
    from hpc_seg.config_flags import config_from_options

    cfg = config_from_options(TrainConfig, args, table="train",
                              preset=PRESETS[args.preset] if args.preset else None)
    result = train_segmenter(cfg, Path(args.slices), Path(args.out), resume=not args.restart,
                             progress=True)
    final = result.final
    print(f"model: {result.model_path}  history: {result.history_path}")
    if final:
        print(f"epoch {final['epoch']}: val_loss {final['val_loss']:.4f}  dice_lv {final['dice_lv']:.3f}  "
              f"dice_my {final['dice_my']:.3f}  dice_fg {final['dice_fg']:.3f}  "
              f"accuracy {final['accuracy']:.3f}")
    return 0
