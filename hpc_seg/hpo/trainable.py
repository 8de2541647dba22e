"""The Tune function trainable: one trial = one call of an injected training function.

The training function and its config class are named by ``module:attribute`` strings
(``hpc_seg.cardiac.train.loop:train_segmenter`` / ``...:TrainConfig`` by default), so a search can drive
any trainer with the same contract::

    train_fn(cfg, slices_dir: Path, out_dir: Path, report=callable(dict), resume=True) -> result

``report`` is called once per epoch with ``epoch`` and the metrics; the trainable forwards each
call to ``tune.report`` and adds ``planned_epochs`` (``cfg.epochs``) so the searcher can tell a
finished trial from an early-stopped one. The trainer's own checkpoints
live in ``out_dir`` (a path on the shared file system, chosen by the searcher); Tune does not copy
them.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hpc_seg.config import from_dict
from hpc_seg.storage.shards import atomic_write_bytes
from hpc_seg.errors import ConfigError
from hpc_seg.hpo.optuna_searcher import RESULT_FILE


@dataclass(kw_only=True)
class TrialContext:
    """What every trial of one search shares (sent once through Ray's object store)."""

    train_fn: str
    train_config: str
    train: dict[str, Any] = field(default_factory=dict)
    slices_dir: str = ""
    force_cpu: bool = False


def load_callable(spec: str, where: str = "train_fn") -> Callable:
    """Import ``module:attribute``; errors name the key and the cause."""
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: cannot load {spec!r}: {exc}") from None


def trial_train_config(ctx: TrialContext, params: dict[str, Any]) -> Any:
    """The trial's training config: the base ``[train]`` values updated with the sampled ones."""
    cls = load_callable(ctx.train_config, "train_config")
    values = {**ctx.train, **params}
    if ctx.force_cpu and "device" in {f.name for f in dataclasses.fields(cls)}:
        values["device"] = "cpu"  # a CPU-only trial on a GPU node must not grab a GPU
    return from_dict(cls, values, "[search] trial config")


def trial_slices_dir(ctx: TrialContext, params: dict[str, Any]) -> Path:
    """The slices dataset of a trial; ``{image_size}`` (or any param) in the path is filled in."""
    return Path(ctx.slices_dir.format(**{**ctx.train, **params}))


def train_trial(config: dict, ctx: TrialContext) -> None:
    """Tune function trainable; ``config`` comes from :class:`StudySearcher.suggest`."""
    from ray import tune

    cfg = trial_train_config(ctx, config["params"])
    fn = load_callable(ctx.train_fn)
    planned = int(cfg.epochs)

    def report(metrics: dict) -> None:
        row = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
        tune.report({**row, "planned_epochs": planned})

    out_dir = Path(config["out_dir"])
    result = fn(cfg, trial_slices_dir(ctx, config["params"]), out_dir, report=report, resume=True)
    model = getattr(result, "model_path", None)
    atomic_write_bytes(json.dumps({"model_path": str(model) if model else None}).encode(),
                       out_dir / RESULT_FILE)
