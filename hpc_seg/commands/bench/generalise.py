"""``hpc-seg bench generalise``: EF and EDV/ESV error on synthetic patients from held-out ranges."""

from __future__ import annotations

import argparse

from hpc_seg.bench.config import RECIPES, GeneraliseConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import BoolOption, add_moved, add_renamed, add_renamed_into

NAME = "generalise"
HELP = ("train a recipe on a synthetic cine cohort from one part of the generator's ranges, report "
        "EF and EDV/ESV error on a held-out part (within-generator) and on the same patients from "
        "an independent renderer (cross-generator)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(GeneraliseConfig.workdir),
                        help="cohorts, datasets, model and evaluations (re-runs skip finished "
                             f"steps; default {GeneraliseConfig.workdir})")
    add_renamed(parser, "--workdir", "--out", "out")
    parser.add_argument("--recipe", default=None, metavar="NAME[,NAME]",
                        help="training recipe(s), run one after the other with one budget: "
                             f"{', '.join(RECIPES)} (default today)")
    parser.add_argument("--summary", action=BoolOption, default=False,
                        help="print the table of the recipes finished in OUT and exit")
    add_config_options(parser, GeneraliseConfig, table="bench_generalise",
                       taken={"workdir": "--out", "recipe": "--recipe"},
                       renamed={"--frames": "n_frames"})
    add_renamed(parser, "--baseline", "--no-train-variety", "bench_generalise:train_variety",
                nargs=0, const=False)
    # the earlier shortcuts into the training config
    for old, key, convert in (("--max-train-images", "max_train_images", int),
                              ("--max-val-images", "max_val_images", int),
                              ("--threads", "threads", int), ("--loss", "loss", str)):
        add_renamed_into(parser, old, "--train", "bench_generalise:train", key, convert)
    add_moved(parser, "--epochs", "--train epochs_frozen=F --train epochs_unfrozen=U")


def recipe_configs(args: argparse.Namespace) -> list[GeneraliseConfig]:
    """One config per recipe of ``--recipe NAME[,NAME]`` (the rest the same for all)."""
    from pathlib import Path

    from hpc_seg.config_flags import config_from_options

    fixed = {"workdir": Path(args.out)}
    recipes = [r.strip() for r in args.recipe.split(",") if r.strip()] if args.recipe else [None]
    return [config_from_options(GeneraliseConfig, args, table="bench_generalise",
                                fixed={**fixed, "recipe": r} if r else fixed)
            for r in recipes]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.bench.generalise import (format_report, run_bench, save_results, size_breakdown,
                                          summary_markdown)

    if args.summary:
        print(summary_markdown(Path(args.out)) or f"{args.out}: no finished recipe yet")
        return 0
    configs = recipe_configs(args)
    for cfg in configs:
        result = run_bench(cfg)
        print(format_report(cfg, result))
        print("model errors by test cohort and vendor:\n"
              + size_breakdown(result["per_patient_held_out"]))
        if result["cross_ablation"] is not None:
            from hpc_seg.bench.cross_ablation import format_ablation

            print(format_ablation(result["cross_ablation"]))
        print(f"results: {save_results(cfg, result)}")
    # save_results has just written the summary of every finished recipe: print it, not redo it.
    print((configs[0].workdir / "recipes.md").read_text(), end="")
    return 0
