"""The transfer study's steps over one output folder (what the stages and commands call).

``OUT/data`` (split, ingest, labels, slices, observer 2, subsets, per-subset views),
``OUT/tasks`` (one folder per (subset, init) with checkpoints, ``model.pt``, ``history.csv``),
``OUT/tasks.json`` (the specs and the tasks that cannot run, with the reason), ``OUT/lineage.sqlite``
+ ``OUT/submitit`` (the job array), ``OUT/evaluate`` (tables and figures).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from hpc_seg.cardiac.slices.build import read_meta
from hpc_seg.cardiac.transfer.config import TransferConfig
from hpc_seg.cardiac.transfer.data import DataConfig, build_subsets, prepare_data, subset_view
from hpc_seg.cardiac.transfer.tasks import check_inputs, plan_tasks, run_array
from hpc_seg.errors import ConfigError, InputError
from hpc_seg.runtime.checkpoint import load_weights
from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)

TASKS_FILE = "tasks.json"


def prepare(cfg: DataConfig, out: Path) -> dict[str, Any]:
    """Data and subsets under ``out/data``; returns the paths (idempotent: stages skip done work)."""
    data = prepare_data(cfg, Path(out) / "data")
    data.update(build_subsets(Path(data["slices"]), Path(out) / "data" / "subsets", cfg.subsets))
    atomic_write_bytes(json.dumps(data, indent=1).encode(), Path(out) / "data" / "data.json")
    return data


def load_data(out: Path) -> dict[str, Any]:
    path = Path(out) / "data" / "data.json"
    if not path.is_file():
        raise InputError(f"{path}: no prepared transfer data (run the transfer_ingest stage or "
                         "`hpc-seg transfer run SRC OUT` first)")
    return json.loads(path.read_text())


def base_architecture(model: Path) -> dict[str, Any]:
    """Encoder and decoder of the TL2 base model: every init then trains the same network."""
    state = load_weights(model)     # an unreadable or refused file: one InputError line
    try:
        cfg = state["config"]
        return {"encoder": cfg["encoder"], "decoder_channels": list(cfg["decoder_channels"]),
                "num_classes": cfg.get("num_classes", 3), "image_size": int(cfg["image_size"])}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{model}: not an hpc-seg model.pt (no training config: "
                         f"{type(exc).__name__} {exc})") from None


def train(cfg: TransferConfig, launch: Any, out: Path, *, timeout_s: float | None = None
          ) -> dict[str, Any]:
    """Build subset views, plan the (subset, init) tasks and run them as one job array."""
    out = Path(out)
    check_inputs(cfg)
    data = load_data(out)
    subsets = pd.read_csv(data["image_subsets"])
    # The image size is the data's: the slices were built at it (and TL2's base must match it).
    size = int(read_meta(Path(data["slices"]))["image_size"])
    if cfg.train.get("image_size", size) != size:
        raise ConfigError(f"[transfer] train.image_size = {cfg.train['image_size']}, but the "
                          f"transfer slices were built at {size} px ([transfer_data] image_size)")
    cfg.train = {**cfg.train, "image_size": size}
    if cfg.base_model is not None:
        arch = base_architecture(cfg.base_model)
        if arch.pop("image_size") != size:
            raise InputError(f"{cfg.base_model}: the TL2 base model was trained at another image "
                             f"size than the transfer slices ({size} px); set [transfer_data] "
                             "image_size to the base model's")
        clash = {k: cfg.train[k] for k in arch if k in cfg.train and cfg.train[k] != arch[k]}
        if clash:
            raise ConfigError(f"[transfer] train sets {clash}, but the TL2 base model "
                              f"{cfg.base_model} is {arch}; all inits train the base's network")
        cfg.train = {**cfg.train, **arch}
    views = {s: str(subset_view(Path(data["slices"]), set(subsets.file[subsets[s]]),
                                out / "data" / "views" / s)) for s in cfg.subsets}
    specs, skipped = plan_tasks(subsets, views, cfg, out / "tasks")
    for name, why in skipped.items():
        log.warning("transfer task %s: %s", name, why)
    atomic_write_bytes(json.dumps({"specs": specs, "skipped": skipped,
                                   "base_model": str(cfg.base_model) if cfg.base_model else None},
                                  indent=1).encode(), out / TASKS_FILE)
    outcomes = run_array(specs, launch, out, timeout_s=timeout_s) if specs else {}
    return {"tasks": len(specs), "skipped": skipped, "outcomes": outcomes}


def evaluate(out: Path, device: str = "auto") -> dict[str, str]:
    """Evaluate every finished task of ``out`` (see :mod:`hpc_seg.cardiac.transfer.evaluate`)."""
    from hpc_seg.cardiac.transfer.evaluate import evaluate_transfer
    from hpc_seg.cardiac.transfer.tasks import DONE

    out = Path(out)
    path = out / TASKS_FILE
    if not path.is_file():
        raise InputError(f"{path}: no transfer tasks here (run `hpc-seg transfer run` first)")
    plan = json.loads(path.read_text())
    data = load_data(out)
    tasks, skipped = {}, dict(plan["skipped"])
    for spec in plan["specs"]:
        done = Path(spec["out"]) / DONE
        if done.is_file():
            tasks[spec["name"]] = {**json.loads(done.read_text()), "n_images": spec["n_images"]}
        else:
            skipped[spec["name"]] = "not run: task did not finish"
    base = Path(plan["base_model"]) if plan.get("base_model") else None
    obs2 = data.get("observer2_slices")
    return evaluate_transfer(tasks, skipped, Path(data["slices"]), out / "evaluate",
                             base_model=base, observer2_dir=Path(obs2) if obs2 else None,
                             device=device)
