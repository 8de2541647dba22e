"""Typed configuration of a hyperparameter search (the ``[search]`` table of a job TOML)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hpc_seg.config import from_dict, load_toml
from hpc_seg.errors import ConfigError, HpcSegError

METRIC_MODES = {"dice_fg": "max", "dice_lv": "max", "dice_my": "max", "accuracy": "max",
                "val_loss": "min"}


@dataclass(kw_only=True)
class AshaConfig:
    """ASHA early stopping (``[search.asha]``); time is the epoch (Tune's training_iteration)."""

    max_t: int = 0
    """last epoch; 0 = the train config's epochs"""
    grace_period: int = 1
    """epochs before a trial may be stopped"""
    reduction_factor: int = 2
    """keep the best 1/N at each rung"""

    def __post_init__(self) -> None:
        for name, low in (("max_t", 0), ("grace_period", 1), ("reduction_factor", 2)):
            if getattr(self, name) < low:
                raise ConfigError(f"asha: {name} must be >= {low}, but got {getattr(self, name)}")


@dataclass(kw_only=True)
class SearchData:
    """Where the trials read their data (``[search.data]``)."""

    slices_dir: str = ""
    """slices dataset; '{image_size}' in the path is replaced by the trial's image size"""


@dataclass(kw_only=True)
class SearchConfig:
    """Everything that decides what a search runs; see ``jobs/cardiac_search.toml``."""

    mode: Literal["tpe", "grid", "random"] = "tpe"
    """tpe/random: sample the space; grid: exactly the runs of `grid` (the published 9)"""
    num_samples: int | None = None
    """trials to finish (default 20; grid: 9)"""
    max_concurrent: int = 4
    """trials running at once"""
    space: dict[str, Any] = field(default_factory=dict)
    """overrides of the default space, key by key (a one-element list fixes a value)"""
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    """tpe/random: configurations to run first (partial dicts; other keys sampled)"""
    asha: AshaConfig = field(default_factory=AshaConfig)
    """ASHA early stopping"""
    metric: Literal["dice_fg", "dice_lv", "dice_my", "accuracy", "val_loss"] = "dice_fg"
    """what the search optimises"""
    metric_mode: Literal["max", "min"] | None = None
    """default: max for Dice/accuracy, min for val_loss"""
    storage: str | None = None
    """Optuna storage URL; default sqlite:///<run_dir>/study.db; postgresql://... for many
    drivers"""
    study_name: str = "cardiac_search"
    """name of the Optuna study in the storage"""
    seed: int = 0
    """seed of the sampler"""
    n_startup_trials: int = 5
    """TPE: random trials before TPE"""
    gpus_per_trial: float | None = None
    """GPU fraction per trial; default 0.25 where the cluster has GPUs, else 0"""
    cpus_per_trial: float = 1.0
    """CPUs Ray reserves per trial"""
    train: dict[str, Any] = field(default_factory=dict)
    """base TrainConfig values (default: the job's [train] table)"""
    train_fn: str = "hpc_seg.cardiac.train.loop:train_segmenter"
    """module:function trained per trial"""
    train_config: str = "hpc_seg.cardiac.train.loop:TrainConfig"
    """module:class of the training config"""
    default_space: str = "hpc_seg.cardiac.search_space:DEFAULT_SPACE"
    """module:attribute of the study's default space; [search] space overrides its keys"""
    grid: str = "hpc_seg.cardiac.search_space:published_grid"
    """module:function returning the fixed (name, params) runs of grid mode"""
    data: SearchData = field(default_factory=SearchData)
    """where the trials read their data"""
    ray_address: str | None = None
    """join this Ray cluster; default: RAY_ADDRESS when set (inside `hpc-seg cluster submit`),
    else start a local instance"""
    num_cpus: int | None = None
    """CPUs of a local Ray instance"""
    dashboard: bool = True
    """start the Ray dashboard with a local Ray instance"""
    dashboard_host: str = "127.0.0.1"
    """address the Ray dashboard binds (127.0.0.1: this machine only)"""
    dashboard_port: int | None = None
    """port of the Ray dashboard (default: Ray's 8265)"""
    stale_after_s: float = 900.0
    """a RUNNING trial of another host counts as stale after this long without heartbeat"""

    def __post_init__(self) -> None:
        # optuna and the trainable are imported here: the CLI builds `tune`'s flags from this
        # class, and `hpc-seg --help` must not import them
        from hpc_seg.hpo.space import check_params_in_space, to_distributions
        from hpc_seg.hpo.trainable import load_callable

        for name in ("train_fn", "train_config", "default_space", "grid"):
            if ":" not in getattr(self, name):
                raise ConfigError(f"{name}: expected 'module:attribute', but got "
                                  f"{getattr(self, name)!r}")
        self.space = {**copy.deepcopy(load_callable(self.default_space, "default_space")),
                      **self.space}
        dists = to_distributions(self.space, "space")
        if self.metric_mode is None:
            self.metric_mode = METRIC_MODES[self.metric]
        if self.mode == "grid":
            runs = len(self.grid_points())
            if self.num_samples not in (None, runs):
                raise ConfigError(f"num_samples: grid mode runs exactly the {runs} published configurations "
                                  f"of {self.grid}, but got num_samples={self.num_samples}")
            if self.points_to_evaluate:
                raise ConfigError("points_to_evaluate: not used in grid mode; remove it")
            for name, params in self.grid_points():
                check_params_in_space(params, dists, f"space (published grid run {name!r})")
        for i, point in enumerate(self.points_to_evaluate):
            unknown = sorted(set(point) - set(dists))
            if unknown:
                raise ConfigError(f"points_to_evaluate[{i}]: key(s) {unknown} are not in the "
                                  f"search space {sorted(dists)}")
        if self.num_samples is not None and self.num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, but got {self.num_samples}")
        if self.max_concurrent < 1:
            raise ConfigError(f"max_concurrent must be >= 1, but got {self.max_concurrent}")
        if self.cpus_per_trial <= 0:
            raise ConfigError(f"cpus_per_trial must be > 0, but got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise ConfigError(f"gpus_per_trial must be >= 0, but got {self.gpus_per_trial}")
        if self.stale_after_s <= 0:
            raise ConfigError(f"stale_after_s must be > 0, but got {self.stale_after_s}")

    def grid_points(self) -> list[tuple[str, dict[str, Any]]]:
        """The fixed runs of grid mode, as ``(name, full params)``."""
        from hpc_seg.hpo.trainable import load_callable

        return load_callable(self.grid, "grid")()

    @property
    def target_trials(self) -> int:
        """How many finished (COMPLETE or PRUNED) trials the study needs."""
        if self.mode == "grid":
            return len(self.grid_points())
        return self.num_samples or 20

    @property
    def direction(self) -> str:
        return "maximize" if self.metric_mode == "max" else "minimize"


def search_table(tables: dict[str, Any]) -> dict[str, Any]:
    """A job's ``[search]`` table with the trials' base config: its ``train`` key, else the
    job's ``[train]`` table."""
    table = dict(tables.get("search", {}))
    if "train" not in table and isinstance(tables.get("train"), dict):
        table["train"] = dict(tables["train"])
    return table


def search_config_from_tables(tables: dict[str, Any], where: str) -> SearchConfig:
    """A :class:`SearchConfig` from a job's tables: ``[search]`` (+ ``[train]`` as the base)."""
    table = search_table(tables)
    try:
        return from_dict(SearchConfig, table, f"{where}: [search]")
    except HpcSegError as exc:
        msg = str(exc)
        if msg.startswith(where):
            raise
        raise ConfigError(f"{where}: [search] {msg}") from None


def load_search_config(path: str | Path) -> SearchConfig:
    """Read the ``[search]`` (and ``[train]``) tables of a job TOML file."""
    return search_config_from_tables(load_toml(path), str(path))
