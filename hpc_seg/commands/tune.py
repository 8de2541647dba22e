"""``hpc-seg tune JOB.toml``: the hyperparameter search (Ray Tune + Optuna + ASHA)."""

from __future__ import annotations

import argparse

NAME = "tune"
HELP = "hyperparameter search over 2D U-Nets: Ray Tune trials sampled by Optuna, ASHA stopping"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="job definition with a [search] table, e.g. "
                                    "jobs/cardiac_search.toml")
    parser.add_argument("--out", default=None,
                        help="search folder: study.db, tune/, trials/ (default: <[job] out or "
                             "runs/<job name>>/tune)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an unfinished study (e.g. after the driver was killed): "
                             "stale RUNNING trials become FAIL, finished ones are kept")
    parser.add_argument("--mode", choices=["tpe", "grid", "random"], default=None,
                        help="override [search] mode (grid = the published 9 configurations)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="override [search] num_samples (trials to finish)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hpc_seg.config import load_toml
    from hpc_seg.hpo.search_config import search_config_from_tables
    from hpc_seg.hpo.tuner import run_search

    tables = load_toml(args.job)
    search = dict(tables.get("search", {}))
    for key, value in (("mode", args.mode), ("num_samples", args.num_samples)):
        if value is not None:
            search[key] = value
    if args.mode == "grid" and args.num_samples is None:
        search.pop("num_samples", None)
    cfg = search_config_from_tables({**tables, "search": search}, args.job)
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
