"""``hpc-seg bench generalise``: EF and EDV/ESV error on synthetic patients from held-out ranges."""

from __future__ import annotations

import argparse

NAME = "generalise"
HELP = ("train a recipe on a synthetic cine cohort from one part of the generator's ranges, report "
        "EF and EDV/ESV error on a held-out part (within-generator) and on the same patients from "
        "an independent renderer (cross-generator)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="/tmp/hpc-seg-bench-generalise",
                        help="cohorts, datasets, model and evaluations (re-runs skip finished steps)")
    parser.add_argument("--recipe", default="today", metavar="NAME[,NAME]",
                        help="training recipe(s), run one after the other: today (published "
                             "augmentation on the generator's images), augment (nnU-Net's), random "
                             "(random appearance from label maps), both")
    parser.add_argument("--summary", action="store_true",
                        help="print the table of the recipes finished in WORKDIR and exit")
    parser.add_argument("--baseline", action="store_true",
                        help="train on the shipped generator's defaults (no variety): the 'before'")
    parser.add_argument("--train-patients", type=int, default=40)
    parser.add_argument("--test-patients", type=int, default=15)
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--test-seed", type=int, default=1000)
    parser.add_argument("--train-vendors", default="siemens,ge",
                        help="vendor profiles of the training cohort (comma list)")
    parser.add_argument("--test-vendors", default="philips,canon",
                        help="vendor profiles of the held-out cohort (comma list)")
    parser.add_argument("--train-sizes", default="0.75,1.15", metavar="MIN,MAX",
                        help="body/heart size_scale range of the training cohort")
    parser.add_argument("--test-sizes", default="0.6,0.75", metavar="MIN,MAX",
                        help="size_scale range of the held-out cohort (below 0.8: pediatric)")
    parser.add_argument("--frames", type=int, default=10, help="cardiac phases per slice")
    parser.add_argument("--max-matrix", type=int, default=128, help="generator's largest matrix side")
    parser.add_argument("--image-size", type=int, default=128,
                        help="slices dataset / model size (the cpu preset's 128)")
    parser.add_argument("--epochs", default=None, metavar="FROZEN,UNFROZEN",
                        help="training epochs (default: the cpu preset's 8,4)")
    parser.add_argument("--max-train-images", type=int, default=None,
                        help="training images per epoch (default: the cpu preset's 2000)")
    parser.add_argument("--max-val-images", type=int, default=None,
                        help="validation images per epoch (default: the cpu preset's 400)")
    parser.add_argument("--loss", default=None, choices=["ce", "focal", "softdice"],
                        help="training loss of every recipe (default: the cpu preset's ce); "
                             "another loss keeps its results in recipe_<name>-<loss>")
    parser.add_argument("--workers", type=int, default=2, help="generator and ingest processes")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")


def _pair(text: str, option: str, kind=float) -> tuple:
    from hpc_seg.errors import ConfigError

    try:
        lo, hi = (kind(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected MIN,MAX") from None
    return lo, hi


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.bench.generalise import (GeneraliseConfig, format_report, format_summary,
                                          run_bench, save_results, size_breakdown,
                                          summary_table)

    if args.summary:
        table = summary_table(Path(args.workdir))
        print(format_summary(table) if not table.empty else
              f"{args.workdir}: no finished recipe yet")
        return 0
    train: dict = {}
    if args.epochs:
        train["epochs_frozen"], train["epochs_unfrozen"] = _pair(args.epochs, "--epochs", int)
    if args.max_train_images is not None:
        train["max_train_images"] = args.max_train_images
    if args.max_val_images is not None:
        train["max_val_images"] = args.max_val_images
    if args.threads:
        train["threads"] = args.threads
    if args.loss:
        train["loss"] = args.loss
    configs = [GeneraliseConfig(
        workdir=Path(args.workdir), train_patients=args.train_patients,
        test_patients=args.test_patients, train_seed=args.train_seed, test_seed=args.test_seed,
        train_variety=not args.baseline, train_vendors=args.train_vendors.split(","),
        test_vendors=args.test_vendors.split(","),
        train_sizes=_pair(args.train_sizes, "--train-sizes"),
        test_sizes=_pair(args.test_sizes, "--test-sizes"), n_frames=args.frames,
        max_matrix=args.max_matrix, image_size=args.image_size, recipe=recipe, train=train,
        workers=args.workers) for recipe in args.recipe.split(",")]
    for cfg in configs:
        result = run_bench(cfg)
        print(format_report(cfg, result))
        print("model errors by test cohort and vendor:\n"
              + size_breakdown(result["per_patient_held_out"]))
        print(f"results: {save_results(cfg, result)}")
    print(format_summary(summary_table(configs[0].workdir)))
    return 0
