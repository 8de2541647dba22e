"""``hpc-seg study best STORAGE``: the best trial, its params and its model/checkpoint."""

from __future__ import annotations

import argparse

from hpc_seg.options import BoolOption

NAME = "best"
HELP = "print a study's best COMPLETE trial (params, value, checkpoint and model paths)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("storage", metavar="STORAGE",
                        help="search folder, study.db file, or database URL")
    parser.add_argument("--study", default=None, help="study name (default: the only one)")
    parser.add_argument("--json", action=BoolOption, default=False, help="print JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from hpc_seg.hpo.study_info import best_trial, resolve_storage

    best = best_trial(resolve_storage(args.storage), args.study)
    if args.json:
        print(json.dumps(best, indent=1, default=str))
        return 0
    attrs = best["user_attrs"]
    print(f"study {best['study']}: best trial #{best['number']}, value {best['value']:.4f}")
    for key, value in best["params"].items():
        print(f"  {key:16s} {value}")
    for key in ("tune_trial_id", "tune_trial_dir", "checkpoint", "model_path"):
        print(f"  {key:16s} {attrs.get(key)}")
    return 0
