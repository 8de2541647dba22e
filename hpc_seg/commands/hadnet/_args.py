"""Command-line options shared by ``hpc-seg hadnet pretrain`` and ``hpc-seg hadnet distill``.

Values come, in increasing priority, from the published defaults, the job file's ``[hadnet]`` and
``[launch]`` tables (``--job``), and the options given on the command line; every field of
:class:`~hpc_seg.hadnet.train.config.HadnetTrainConfig` and
:class:`~hpc_seg.launch.config.LaunchConfig` is an option (:mod:`hpc_seg.options`).
"""

from __future__ import annotations

import argparse
from typing import Any

from hpc_seg.hadnet.train.config import LAUNCH_DEFAULTS, HadnetTrainConfig
from hpc_seg.launch.config import LaunchConfig
from hpc_seg.config_flags import add_config_options
from hpc_seg.options import add_job_option, add_path_argument, add_renamed


def add_train_arguments(parser: argparse.ArgumentParser, *, distill: bool) -> None:
    """OUT, ``--job`` and the options of ``[hadnet]`` and ``[launch]``."""
    add_path_argument(parser, "out", "OUT", "run folder (checkpoints, best.pt, history)",
                      old="--out")
    add_job_option(parser, "[hadnet] and [launch]")
    group = parser.add_argument_group("HAD-Net options ([hadnet])")
    add_config_options(group, HadnetTrainConfig, table="hadnet",
                       taken={} if distill else {"teacher": "hadnet distill --teacher",
                                                 "student": "hadnet distill --student",
                                                 "variant": "hadnet distill --variant"})
    add_renamed(group, "--pre", "--pre-dir", "hadnet:pre_dir")
    add_config_options(parser.add_argument_group("launch ([launch])"), LaunchConfig,
                       table="launch")


def resolve(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(HadnetTrainConfig, LaunchConfig)`` from defaults, ``--job`` tables and options; the
    executor defaults to local, as in a job's HAD-Net stages."""
    from hpc_seg.config_flags import config_from_options
    from hpc_seg.options import job_tables

    tables = job_tables(args)
    cfg = config_from_options(HadnetTrainConfig, args, table="hadnet", tables=tables)
    launch = config_from_options(LaunchConfig, args, table="launch", tables=tables,
                                 preset=LAUNCH_DEFAULTS)
    return cfg, launch


def require_pre(cfg: Any) -> Any:
    """The preprocessed cohort folder, or a one-line error saying how to give it."""
    from hpc_seg.errors import ConfigError

    if cfg.pre_dir is None:
        raise ConfigError("no preprocessed cohort: pass --pre-dir PRE or set [hadnet] pre_dir "
                          "in the --job file")
    return cfg.pre_dir
