"""``hpc-seg tune JOB``: the hyperparameter search (Ray Tune + Optuna + ASHA)."""

from __future__ import annotations

import argparse

from hpc_seg.hpo.search_config import SearchConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import BoolOption

NAME = "tune"
HELP = "hyperparameter search over 2D U-Nets: Ray Tune trials sampled by Optuna, ASHA stopping"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="job definition with a [search] table, e.g. "
                                                   "jobs/cardiac_search.toml")
    parser.add_argument("--out", default=None,
                        help="search folder: study.db, tune/, trials/ (default: <[job] out or "
                             "runs/<job name>>/tune)")
    parser.add_argument("--resume", action=BoolOption, default=False,
                        help="continue an unfinished study (e.g. after the driver was killed): "
                             "stale RUNNING trials become FAIL, finished ones are kept")
    add_config_options(parser.add_argument_group("search options (override [search])"),
                       SearchConfig, table="search")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.config import load_toml
    from hpc_seg.hpo.search_config import search_table
    from hpc_seg.hpo.tuner import run_search
    from hpc_seg.config_flags import config_from_options, given

    tables = load_toml(args.job)
    search = search_table(tables)
    # grid mode runs the published runs: a job's num_samples (meant for tpe) does not apply
    if getattr(args, "search:mode", None) == "grid" and not given(args, "search", "num_samples"):
        search.pop("num_samples", None)
    cfg = config_from_options(SearchConfig, args, table="search", tables={"search": search},
                              where=args.job)
    job = tables.get("job", {})
    out = Path(args.out) if args.out else \
        Path(job.get("out") or Path("runs") / job.get("name", Path(args.job).stem)) / "tune"
    result = run_search(cfg, out, resume=args.resume)
    print(f"study {result.study_name}: {result.states}   storage {result.storage}")
    if result.best_trial is None:
        print("no COMPLETE trial yet")
        return 1
    print(f"best trial #{result.best_trial}: {cfg.metric} = {result.best_value:.4f}")
    for key, value in result.best_params.items():
        print(f"  {key:16s} {value}")
    print(f"  model            {result.best_model}")
    print(f"inspect: hpc-seg study show {out}   |   hpc-seg study dashboard {out}")
    return 0
