"""Pipeline stages of the transfer study: synth_7t -> transfer_ingest -> transfer_subsets ->
transfer_train (one job array) -> transfer_evaluate. All write under ``<job out>/transfer``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpc_seg.config import from_dict
from hpc_seg.stage import Context


def _root(ctx: Context) -> Path:
    return ctx.out / "transfer"


def synth_7t(ctx: Context) -> dict[str, Any]:
    """Generate a 7T-like cine cohort: DICOM + QMass .con, two observers ([synth_7t])."""
    from hpc_seg.cardiac.synth.domain_7t import Synth7TConfig, generate_7t_cohort

    cfg = from_dict(Synth7TConfig, ctx.table("synth_7t"), ctx.where("synth_7t"))
    out = ctx.out / "cohort_7t"
    manifest = generate_7t_cohort(out, cfg)
    return {"cohort": str(out), "manifest": str(manifest), "volunteers": cfg.volunteers}


def transfer_ingest(ctx: Context) -> dict[str, Any]:
    """Split the volunteers; ingest DICOM + .con (or PNG) -> volumes, labels, slices ([transfer_data])."""
    from hpc_seg.cardiac.transfer.data import DataConfig, prepare_data

    table = dict(ctx.table("transfer_data"))
    table.setdefault("src", ctx.results.get("synth_7t", {}).get("cohort"))
    table.pop("subsets", None)
    cfg = from_dict(DataConfig, table, ctx.where("transfer_data"))
    data = prepare_data(cfg, _root(ctx) / "data")
    return {k: v for k, v in data.items()}


def transfer_subsets(ctx: Context) -> dict[str, Any]:
    """Nested volunteer subsets, prefix random subsets, ED/ES frames ([transfer_data.subsets])."""
    import json

    from hpc_seg.cardiac.transfer.data import build_subsets
    from hpc_seg.cardiac.transfer.subsets import SubsetConfig
    from hpc_seg.storage.shards import atomic_write_bytes

    table = ctx.table("transfer_data").get("subsets", {})
    cfg = from_dict(SubsetConfig, table, f"{ctx.where('transfer_data')}.subsets")
    data = dict(ctx.results["transfer_ingest"])
    data.update(build_subsets(Path(data["slices"]), _root(ctx) / "data" / "subsets", cfg))
    atomic_write_bytes(json.dumps(data, indent=1).encode(), _root(ctx) / "data" / "data.json")
    return {"image_subsets": data["image_subsets"], "esed_frames": data["esed_frames"]}


def transfer_train(ctx: Context) -> dict[str, Any]:
    """Train every (subset, init) as one submitit job array ([transfer], [launch])."""
    from hpc_seg.cardiac.transfer import study
    from hpc_seg.cardiac.transfer.config import TransferConfig
    from hpc_seg.launch.config import LaunchConfig

    table = dict(ctx.table("transfer"))
    if not table.get("base_model"):
        for stage in ("tune", "train"):     # the cardiac search of the same job, when it ran
            if stage in ctx.results and ctx.results[stage].get("model"):
                table["base_model"] = ctx.results[stage]["model"]
                break
    cfg = from_dict(TransferConfig, table, ctx.where("transfer"))
    if cfg.base_model is None and cfg.base_search is not None:
        from hpc_seg.hpo.study_info import best_trial, resolve_storage

        best = best_trial(resolve_storage(str(cfg.base_search)))
        cfg.base_model = Path(best["user_attrs"]["model_path"])
    launch = from_dict(LaunchConfig, ctx.table("launch"), ctx.where("launch"))
    result = study.train(cfg, launch, _root(ctx))
    return {"tasks": result["tasks"], "skipped": result["skipped"],
            "tasks_dir": str(_root(ctx) / "tasks")}


def transfer_evaluate(ctx: Context) -> dict[str, Any]:
    """Per-image predictions, confusion/Dice/volume tables and figures of the transfer array."""
    from hpc_seg.cardiac.transfer import study

    device = ctx.table("transfer").get("train", {}).get("device", "auto")
    return study.evaluate(_root(ctx), device=device)


TRANSFER_STAGES = {
    "synth_7t": synth_7t,
    "transfer_ingest": transfer_ingest,
    "transfer_subsets": transfer_subsets,
    "transfer_train": transfer_train,
    "transfer_evaluate": transfer_evaluate,
}
