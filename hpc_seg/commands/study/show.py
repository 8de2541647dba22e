"""``hpc-seg study show STORAGE``: one study's trials (states, values, links to Tune)."""

from __future__ import annotations

import argparse

NAME = "show"
HELP = "show a study's trials: state, value, epochs, params, Tune trial id, checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("storage", metavar="STORAGE",
                        help="search folder, study.db file, or database URL")
    parser.add_argument("--study", default=None, help="study name (default: the only one)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")
    parser.add_argument("--plot", default=None, help="write per-epoch learning curves to this PNG")


def run(args: argparse.Namespace) -> int:
    from hpc_seg.storage.shards import atomic_write_bytes
    from hpc_seg.hpo.study_info import load, plot_learning_curves, resolve_storage, trials_table

    study = load(resolve_storage(args.storage), args.study)
    table = trials_table(study)
    print(f"study {study.study_name} ({study.direction.name.lower()} "
          f"{study.user_attrs.get('metric', 'value')}), {len(table)} trials")
    if len(table):
        shown = table.drop(columns=["checkpoint", "model_path"]).dropna(axis=1, how="all")
        print(shown.astype(object).where(shown.notna(), "").to_string(index=False))
    if args.csv:
        atomic_write_bytes(table.to_csv(index=False).encode(), args.csv)
    if args.plot:
        print(f"learning curves: {plot_learning_curves(study, args.plot)}")
    return 0
