"""One submitit array task per (subset, init): the transfer study's training runs.

:func:`plan_tasks` turns the subsets and a :class:`TransferConfig` into task specs (plain dicts:
they pickle small and read well in the lineage); :func:`run_task` is what a node runs. It calls the
cardiac study's own training loop (:func:`~hpc_seg.cardiac.train.loop.train_segmenter`), which
checkpoints every epoch and resumes from its newest checkpoint with the RNG state restored; with
:class:`~hpc_seg.launch.tasks.Resumable` around it a pre-empted task requeues itself and ends with
the weights of an uninterrupted run. :func:`run_array` submits the tasks as one job array
(``%N``-throttled), skips finished tasks on a re-run and resubmits only failed ones.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from hpc_seg.cardiac.transfer.config import (ALL_SUBSETS, NO_BASE, NO_IMAGENET, PUBLISHED_TRAIN,
                                             TransferConfig)
from hpc_seg.cardiac.transfer.subsets import epochs_for
from hpc_seg.config import config_hash
from hpc_seg.errors import InputError, LaunchError
from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)

ARRAY_NAME = "transfer"
DONE = "task.json"


def task_name(subset: str, init: str) -> str:
    return f"{subset}-{init}"


def train_settings(cfg: TransferConfig, subset: str, init: str, n_full: int, n_subset: int
                   ) -> dict[str, Any]:
    """The TrainConfig keys of one task: published schedule, job overrides, scaled epochs, init."""
    epochs = epochs_for(n_full, n_subset, cfg.base_epochs)
    if cfg.max_epochs:
        epochs = min(epochs, cfg.max_epochs)
    train = {**PUBLISHED_TRAIN, **cfg.train, "epochs_frozen": epochs, "epochs_unfrozen": epochs,
             "seed": cfg.seed, "encoder_weights": None, "init_checkpoint": None}
    if init == "R":
        train["freeze_encoder"] = False       # random init: everything trains in both phases
    elif init == "TL":
        train["freeze_encoder"] = True
        train["encoder_weights"] = str(cfg.imagenet_weights)
    else:
        train["freeze_encoder"] = cfg.tl2_head_phase == "frozen"
        train["init_checkpoint"] = str(cfg.base_model)
    return train


def plan_tasks(subsets: pd.DataFrame, views: dict[str, str], cfg: TransferConfig, out: Path
               ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(task specs to run, ``{task name: reason}`` for tasks that cannot run)."""
    n_full = int(subsets["full"].sum())
    specs, skipped = [], {}
    for subset in cfg.subsets:
        n = int(subsets[subset].sum())
        for init in cfg.inits:
            name = task_name(subset, init)
            if init == "TL" and cfg.imagenet_weights is None:
                skipped[name] = NO_IMAGENET
                continue
            if init == "TL2" and cfg.base_model is None:
                skipped[name] = NO_BASE
                continue
            specs.append({"name": name, "subset": subset, "init": init, "n_images": n,
                          "slices": views[subset], "out": str(Path(out) / name),
                          "nice": cfg.nice, "train": train_settings(cfg, subset, init, n_full, n)})
    return specs, skipped


def spec_hash(spec: dict[str, Any]) -> str:
    return config_hash({k: spec[k] for k in ("subset", "init", "slices", "train")})


def is_done(spec: dict[str, Any]) -> bool:
    """Finished with exactly this spec (its ``task.json`` carries the spec's hash)."""
    path = Path(spec["out"]) / DONE
    try:
        return json.loads(path.read_text()).get("hash") == spec_hash(spec)
    except (OSError, ValueError):
        return False


def run_task(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one (subset, init); resumes from its own checkpoints. Runs on the node."""
    from hpc_seg.cardiac.train.config import TrainConfig
    from hpc_seg.cardiac.train.loop import train_segmenter
    from hpc_seg.config import from_dict
    from hpc_seg.launch.tasks import record_outputs

    if spec.get("nice"):
        os.nice(int(spec["nice"]))
    cfg = from_dict(TrainConfig, spec["train"], f"transfer task {spec['name']}")
    out = Path(spec["out"])
    result = train_segmenter(cfg, Path(spec["slices"]), out)
    record_outputs(result.model_path, result.history_path)
    summary = {"name": spec["name"], "subset": spec["subset"], "init": spec["init"],
               "model": str(result.model_path), "history": str(result.history_path),
               "epochs": result.epochs, "resumed_from_epoch": result.resumed_from_epoch,
               "hash": spec_hash(spec)}
    atomic_write_bytes(json.dumps(summary, indent=1).encode(), out / DONE)
    return summary


def run_array(specs: list[dict[str, Any]], launch: Any, run_dir: Path, *,
              timeout_s: float | None = None) -> dict[str, Any]:
    """Submit the unfinished specs as one array, wait, and return ``{name: outcome}``.

    The array is named by the hash of all specs. A re-run of the same specs (after a failure, or
    after the driver was killed while the array ran) does not submit it again: it waits for the
    tasks still running, then resubmits only the tasks whose latest attempt did not complete
    (:func:`~hpc_seg.launch.submit.resubmit_failed`, attempts counted in the lineage). Tasks
    finished earlier are never submitted.
    """
    from hpc_seg.launch.lineage import Lineage
    from hpc_seg.launch.submit import ArrayRun, gather, resubmit_failed, submit_array

    run_dir = Path(run_dir)
    key = config_hash([spec_hash(s) for s in specs])
    name = f"{ARRAY_NAME}-{key[:8]}"
    names_file = run_dir / "launch" / f"{name}.tasks.json"
    seen = Lineage(run_dir).rows() if (run_dir / "lineage.sqlite").is_file() else []
    outcomes: dict[str, Any] = {}
    if names_file.is_file() and any(r["name"] == name for r in seen):
        submitted = json.loads(names_file.read_text())
        run = ArrayRun.load(run_dir, name)
        outs = gather(run, timeout_s=timeout_s)
        if not all(o.ok for o in outs):
            run = resubmit_failed(run, outs)
            outs = gather(run, timeout_s=timeout_s)
    else:
        todo = [s for s in specs if not is_done(s)]
        if not todo:
            return {s["name"]: {"state": "COMPLETED", "skipped": "finished earlier"} for s in specs}
        submitted = [s["name"] for s in todo]
        atomic_write_bytes(json.dumps(submitted).encode(), names_file)
        run = submit_array(run_task, todo, launch, run_dir, name=name, config_hash=key,
                           resumable=True)
        outs = gather(run, timeout_s=timeout_s)
    for task, out in zip(submitted, outs):
        outcomes[task] = {"state": out.state, "job_id": out.job_id,
                          "error": (out.error or "").strip().splitlines()[-1:] or None}
    for s in specs:
        outcomes.setdefault(s["name"], {"state": "COMPLETED", "skipped": "finished earlier"})
    failed = [n for n, o in outcomes.items() if o["state"] != "COMPLETED"]
    if failed:
        raise LaunchError(f"transfer array {name}: {len(failed)} task(s) did not complete: "
                          f"{', '.join(failed)}; see `hpc-seg jobs list {run_dir}`, fix, and re-run "
                          "(only these are resubmitted)")
    return outcomes


def check_inputs(cfg: TransferConfig) -> None:
    for name in ("imagenet_weights", "base_model"):
        path = getattr(cfg, name)
        if path is not None and not Path(path).is_file():
            raise InputError(f"{path}: transfer {name} not found")


__all__ = ["ALL_SUBSETS", "plan_tasks", "run_task", "run_array", "check_inputs", "task_name"]
