"""Command-line options shared by ``hpc-seg hadnet pretrain`` and ``hpc-seg hadnet distill``.

Imports only argparse at module level: the CLI imports every command module to build its help.
Values come, in increasing priority, from the published defaults, the job file's ``[hadnet]`` table
(``--job``), and the options given on the command line.
"""

from __future__ import annotations

import argparse
from typing import Any

# option name -> HadnetTrainConfig field (options left at None do not override)
_OVERRIDES = {"k": "k", "epochs": "epochs", "distill_epochs": "distill_epochs", "lr": "lr",
              "grad_accum": "grad_accum", "seed": "seed", "device": "device",
              "threads": "threads", "dropout": "dropout", "validate_every": "validate_every",
              "weight_decay_per_epoch": "weight_decay_per_epoch"}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options common to the training commands (config overrides and launch)."""
    parser.add_argument("--pre", required=False, default=None,
                        help="preprocessed cohort PRE/ (default: [hadnet] pre_dir of --job)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, best.pt, history)")
    parser.add_argument("--job", default=None,
                        help="job TOML whose [hadnet] (and [launch]) tables give the settings")
    g = parser.add_argument_group("overrides of [hadnet]")
    g.add_argument("--k", type=int, help="U-Net base width (published 32)")
    g.add_argument("--epochs", type=int, help="pre-training epochs (published 400)")
    g.add_argument("--distill-epochs", type=int, help="distillation epochs (published 800)")
    g.add_argument("--lr", type=float)
    g.add_argument("--grad-accum", type=int, help="micro-batches per optimiser step and rank")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", choices=["auto", "cpu", "cuda"])
    g.add_argument("--threads", type=int, help="torch CPU threads per rank")
    g.add_argument("--dropout", type=float)
    g.add_argument("--validate-every", type=int)
    g.add_argument("--weight-decay-per-epoch", type=float,
                   help="factor on the CE class weights per pre-training epoch (published 0.98; "
                        "1 = no decay)")
    g.add_argument("--no-augment", action="store_true", help="switch pre-training augmentation off")
    g.add_argument("--no-amp", action="store_true", help="no bf16 autocast on GPU")
    la = parser.add_argument_group("launch (overrides of [launch])")
    la.add_argument("--executor", choices=["local", "slurm", "auto"], default=None,
                    help="run here (default), as a submitit DDP job on SLURM, or auto")
    la.add_argument("--nodes", type=int, default=None)
    la.add_argument("--tasks-per-node", type=int, default=None,
                    help="DDP ranks per node (one per GPU)")


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[hadnet]`` fields the command line sets."""
    out = {field: getattr(args, opt) for opt, field in _OVERRIDES.items()
           if getattr(args, opt, None) is not None}
    if getattr(args, "no_augment", False):
        out["augment"] = False
    if getattr(args, "no_amp", False):
        out["amp"] = False
    if getattr(args, "pre", None):
        out["pre_dir"] = args.pre
    return out


def launch_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[launch]`` fields the command line sets."""
    return {k: v for k, v in (("executor", args.executor), ("nodes", args.nodes),
                              ("tasks_per_node", args.tasks_per_node)) if v is not None}


def resolve(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(HadnetTrainConfig, LaunchConfig)`` (executor defaults to local) from defaults, ``--job`` tables and options."""
    from hpc_seg.config import from_dict, load_toml
    from hpc_seg.launch.config import LaunchConfig
    from hpc_seg.hadnet.train.config import HadnetTrainConfig

    tables = load_toml(args.job) if args.job else {}
    where = f"{args.job}: " if args.job else "command line: "
    hadnet = {**tables.get("hadnet", {}), **config_overrides(args)}
    launch = {"executor": "local", **tables.get("launch", {}), **launch_overrides(args)}
    cfg = from_dict(HadnetTrainConfig, hadnet, f"{where}[hadnet]")
    return cfg, from_dict(LaunchConfig, launch, f"{where}[launch]")


def require_pre(cfg: Any) -> Any:
    """The preprocessed cohort folder, or a one-line error saying how to give it."""
    from hpc_seg.errors import ConfigError

    if cfg.pre_dir is None:
        raise ConfigError("no preprocessed cohort: pass --pre PRE or set [hadnet] pre_dir in --job")
    return cfg.pre_dir
