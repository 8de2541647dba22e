"""``hpc-seg bench generalise``: EF and EDV/ESV error on synthetic patients from held-out ranges."""

from __future__ import annotations

import argparse

from hpc_seg.bench.config import GeneraliseConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_moved, add_renamed, add_renamed_into

NAME = "generalise"
HELP = ("train on a synthetic cine cohort from one part of the generator's ranges, report EF and "
        "EDV/ESV error on a held-out part (other seed, vendors, sizes)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(GeneraliseConfig.workdir),
                        help="cohorts, datasets, model and evaluations (re-runs skip finished "
                             f"steps; default {GeneraliseConfig.workdir})")
    add_renamed(parser, "--workdir", "--out", "out")
    add_config_options(parser, GeneraliseConfig, table="bench_generalise",
                       taken={"workdir": "--out"}, renamed={"--frames": "n_frames"})
    add_renamed(parser, "--baseline", "--no-train-variety", "bench_generalise:train_variety",
                nargs=0, const=False)
    # the earlier shortcuts into the training config
    for old, key in (("--max-train-images", "max_train_images"),
                     ("--max-val-images", "max_val_images"), ("--threads", "threads")):
        add_renamed_into(parser, old, "--train", "bench_generalise:train", key, int)
    add_moved(parser, "--epochs", "--train epochs_frozen=F --train epochs_unfrozen=U")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.bench.generalise import format_report, run_bench, save_results, size_breakdown
    from hpc_seg.config_flags import config_from_options

    cfg = config_from_options(GeneraliseConfig, args, table="bench_generalise",
                              fixed={"workdir": Path(args.out)})
    result = run_bench(cfg)
    print(format_report(cfg, result))
    print("held-out model errors by vendor:\n" + size_breakdown(result["per_patient_held_out"]))
    print(f"results: {save_results(cfg, result)}")
    return 0
