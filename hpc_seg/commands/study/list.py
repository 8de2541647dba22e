"""``hpc-seg study list STORAGE``: the studies in an Optuna storage."""

from __future__ import annotations

import argparse

NAME = "list"
HELP = "list the studies of a search's Optuna storage (trial counts by state, best value)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("storage", metavar="STORAGE",
                        help="search folder, study.db file, or database URL")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from hpc_seg.hpo.study_info import list_studies, resolve_storage

    rows = list_studies(resolve_storage(args.storage))
    if not rows:
        print("no studies")
        return 0
    print(pd.DataFrame(rows).fillna("").to_string(index=False))
    return 0
