"""The cardiac study's job stages: synth_cine, ingest, labels, slices, train, tune, evaluate.

Each stage function takes the :class:`~hpc_seg.stage.Context`, validates its own TOML table into
the stage's typed config, calls the stage API, and returns a small JSON-friendly dict of outputs for
later stages and the run summary. Heavy imports stay inside the functions so that ``hpc-seg --help``
stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpc_seg.config import from_dict
from hpc_seg.cardiac.transfer.stages import TRANSFER_STAGES
from hpc_seg.stage import Context, StageFn


def synth_cine(ctx: Context) -> dict[str, Any]:
    """Generate a synthetic Kaggle-like cine DICOM cohort ([synth_cine]: patients, seed, options)."""
    from hpc_seg.cardiac.synth.cohort import generate_cine_cohort
    from hpc_seg.cardiac.synth.config import CineSynthConfig

    table = dict(ctx.table("synth_cine"))
    patients = int(table.pop("patients", 8))
    seed = int(table.pop("seed", 0))
    cfg = from_dict(CineSynthConfig, table, ctx.where("synth_cine"))
    out = ctx.out / "cohort"
    manifest = generate_cine_cohort(out, patients, seed, cfg) if not (out / "manifest.json").exists() \
        else out / "manifest.json"
    return {"cohort": str(out), "manifest": str(manifest), "patients": patients}


def ingest(ctx: Context) -> dict[str, Any]:
    """Curate the cine DICOM into 4D stacks ([ingest]: src, engine, workers...)."""
    from hpc_seg.cardiac.ingest.run import IngestConfig, ingest as run_ingest

    table = dict(ctx.table("ingest"))
    src = Path(table.pop("src", None) or ctx.result("synth_cine", "cohort"))
    cfg = from_dict(IngestConfig, table, ctx.where("ingest"))
    summary = run_ingest(src, ctx.out / "ingest", cfg)
    return {"volumes": str(summary.tables["volumes"]), "stacks": summary.stacks,
            "files_used": summary.files_used, "files_skipped": summary.files_skipped,
            "engine": summary.engine, "truth_csv": str(cfg.truth_csv or src / "truth.csv")}


def labels(ctx: Context) -> dict[str, Any]:
    """Per-frame LV volumes, ED/ES, confidence scores and 5/10/15 % sets ([labels]: source)."""
    from hpc_seg.cardiac.labels.build import build_labels
    from hpc_seg.cardiac.predict import label_source

    table = ctx.table("labels")
    truth = table.get("truth_csv") or ctx.result("ingest", "truth_csv")
    out = ctx.out / "labels"
    summary = build_labels(Path(ctx.result("ingest", "volumes")), out,
                           Path(truth) if truth and Path(truth).is_file() else None,
                           source=label_source(table.get("source", "shipped")))
    return {"labels": str(out), "summary": str(summary)}


def slices(ctx: Context) -> dict[str, Any]:
    """The 2D ``slices`` training dataset, resized as published ([slices]: image_size)."""
    from hpc_seg.cardiac.slices.build import build_slices

    size = int(ctx.table("slices").get("image_size", 256))
    out = build_slices(Path(ctx.result("ingest", "volumes")), Path(ctx.result("labels", "labels")),
                       ctx.out / "slices", size)
    return {"slices": str(out), "image_size": size}


def train(ctx: Context) -> dict[str, Any]:
    """Train one 2D U-Net with the [train] table (a TrainConfig)."""
    from hpc_seg.cardiac.train.loop import TrainConfig, train_segmenter

    cfg = from_dict(TrainConfig, ctx.table("train"), ctx.where("train"))
    result = train_segmenter(cfg, Path(ctx.result("slices", "slices")), ctx.out / "train")
    return {"model": str(result.model_path), "epochs": result.epochs,
            "dice_fg": round(float(result.final.get("dice_fg", float("nan"))), 4)}


def tune(ctx: Context) -> dict[str, Any]:
    """Hyperparameter search ([search] + [train]): Ray Tune trials, Optuna TPE/grid, ASHA."""
    from hpc_seg.hpo.search_config import search_config_from_tables
    from hpc_seg.hpo.tuner import run_search

    search = dict(ctx.table("search"))
    if "slices" in ctx.results and not search.get("data", {}).get("slices_dir"):
        search["data"] = {**search.get("data", {}), "slices_dir": ctx.result("slices", "slices")}
    cfg = search_config_from_tables({**ctx.tables, "search": search}, str(ctx.job_file))
    # resume=True: a re-run of the job continues the same study instead of refusing it.
    r = run_search(cfg, ctx.out / "tune", resume=True)
    return {"model": str(r.best_model), "name": f"tune-best-{r.best_trial}", "study": r.study_name,
            "storage": r.storage, "best_value": r.best_value, "best_params": r.best_params,
            "states": r.states}


def evaluate(ctx: Context) -> dict[str, Any]:
    """EF table, Dice and figures for the trained/best models on the test split."""
    from hpc_seg.cardiac.evaluate import evaluate as run_evaluate

    models = {}
    for stage in ("tune", "train"):
        if stage in ctx.results:
            models[ctx.results[stage].get("name", stage)] = Path(ctx.results[stage]["model"])
    table = ctx.table("evaluate")
    out = run_evaluate(models, Path(ctx.result("slices", "slices")),
                       Path(ctx.result("labels", "labels")), ctx.out / "evaluate",
                       split=table.get("split", "test"))
    return {"evaluate": str(out)}


CARDIAC_STAGES: dict[str, StageFn] = {
    "synth_cine": synth_cine,
    "ingest": ingest,
    "labels": labels,
    "slices": slices,
    "train": train,
    "tune": tune,
    "evaluate": evaluate,
    **TRANSFER_STAGES,
}
