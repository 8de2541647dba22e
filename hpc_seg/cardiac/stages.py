"""The cardiac study's job stages: synth_cine, ingest, labels, slices, train, tune, evaluate.

Each stage function takes the :class:`~hpc_seg.stage.Context`, validates its own TOML table into
the stage's typed config, calls the stage API, and returns a small JSON-friendly dict of outputs for
later stages and the run summary. Heavy imports stay inside the functions so that ``hpc-seg --help``
stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpc_seg.cardiac.transfer.stages import TRANSFER_STAGES
from hpc_seg.config import from_dict, typed_value
from hpc_seg.errors import ConfigError, InputError
from hpc_seg.stage import Context, StageFn, plannable

#: tables the cardiac stages read besides their own (``[stage]``)
CARDIAC_TABLES = frozenset({"search", "train", "transfer", "transfer_data", "launch"})


def _value(ctx: Context, stage: str, table: dict[str, Any], key: str, hint: Any, default: Any) -> Any:
    """``table.pop(key, default)`` checked against ``hint`` (the error names the key)."""
    return typed_value(hint, table.pop(key, default), f"{ctx.where(stage)}.{key}")


def _only_keys(ctx: Context, stage: str, table: dict[str, Any], keys: set[str]) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise ConfigError(f"{ctx.where(stage)}: unknown key(s) {unknown}; valid keys are {sorted(keys)}")


@plannable
def synth_cine(ctx: Context) -> dict[str, Any]:
    """Generate a synthetic Kaggle-like cine DICOM cohort ([synth_cine]: patients, seed, options)."""
    from hpc_seg.cardiac.synth.cohort import generate_cine_cohort
    from hpc_seg.cardiac.synth.config import CineSynthConfig

    table = dict(ctx.table("synth_cine"))
    patients = _value(ctx, "synth_cine", table, "patients", int, 8)
    seed = _value(ctx, "synth_cine", table, "seed", int, 0)
    cfg = from_dict(CineSynthConfig, table, ctx.where("synth_cine"))
    ctx.begin()
    out = ctx.out / "cohort"
    manifest = generate_cine_cohort(out, patients, seed, cfg) if not (out / "manifest.json").exists() \
        else out / "manifest.json"
    return {"cohort": str(out), "manifest": str(manifest), "patients": patients}


@plannable
def ingest(ctx: Context) -> dict[str, Any]:
    """Curate the cine DICOM into 4D stacks ([ingest]: src, engine, workers...)."""
    from hpc_seg.cardiac.ingest.run import IngestConfig, ingest as run_ingest

    table = dict(ctx.table("ingest"))
    src = Path(_value(ctx, "ingest", table, "src", str | None, None)
               or ctx.result("synth_cine", "cohort"))
    cfg = from_dict(IngestConfig, table, ctx.where("ingest"))
    ctx.begin()
    summary = run_ingest(src, ctx.out / "ingest", cfg)
    return {"volumes": str(summary.tables["volumes"]), "stacks": summary.stacks,
            "files_used": summary.files_used, "files_skipped": summary.files_skipped,
            "engine": summary.engine, "truth_csv": str(cfg.truth_csv or src / "truth.csv")}


@plannable
def labels(ctx: Context) -> dict[str, Any]:
    """Per-frame LV volumes, ED/ES, confidence scores and 5/10/15 % sets ([labels]: source)."""
    from hpc_seg.cardiac.labels.build import build_labels
    from hpc_seg.cardiac.segment import label_source

    table = dict(ctx.table("labels"))
    _only_keys(ctx, "labels", table, {"source", "truth_csv"})
    source = _value(ctx, "labels", table, "source", str, "shipped")
    truth = _value(ctx, "labels", table, "truth_csv", str | None, None) \
        or ctx.result("ingest", "truth_csv")
    volumes = ctx.result("ingest", "volumes")
    ctx.begin()
    out = ctx.out / "labels"
    summary = build_labels(Path(volumes), out,
                           Path(truth) if truth and Path(truth).is_file() else None,
                           source=label_source(source))
    # plain values (the run's record and report show them; a dataclass would print as a repr)
    return {"labels": str(out), "source": summary.source, "stacks": summary.stacks,
            "labelled_stacks": summary.labelled_stacks, "skipped": summary.skipped}


@plannable
def slices(ctx: Context) -> dict[str, Any]:
    """The 2D ``slices`` training dataset, resized as published ([slices]: image_size)."""
    from hpc_seg.cardiac.slices.build import build_slices

    table = dict(ctx.table("slices"))
    _only_keys(ctx, "slices", table, {"image_size"})
    size = _value(ctx, "slices", table, "image_size", int, 256)
    volumes, labels_dir = ctx.result("ingest", "volumes"), ctx.result("labels", "labels")
    ctx.begin()
    out = build_slices(Path(volumes), Path(labels_dir), ctx.out / "slices", size)
    return {"slices": str(out), "image_size": size}


@plannable
def train(ctx: Context) -> dict[str, Any]:
    """Train one 2D U-Net with the [train] table (a TrainConfig)."""
    from hpc_seg.cardiac.train.loop import TrainConfig, train_segmenter

    cfg = from_dict(TrainConfig, ctx.table("train"), ctx.where("train"))
    slices_dir = ctx.result("slices", "slices")
    ctx.begin()
    result = train_segmenter(cfg, Path(slices_dir), ctx.out / "train")
    return {"model": str(result.model_path), "epochs": result.epochs,
            "dice_fg": round(float(result.final.get("dice_fg", float("nan"))), 4)}


@plannable
def tune(ctx: Context) -> dict[str, Any]:
    """Hyperparameter search ([search] + [train]): Ray Tune trials, Optuna TPE/grid, ASHA."""
    from hpc_seg.hpo.search_config import search_config_from_tables
    from hpc_seg.hpo.tuner import run_search

    search = dict(ctx.table("search"))
    if "slices" in ctx.results and not search.get("data", {}).get("slices_dir"):
        search["data"] = {**search.get("data", {}), "slices_dir": ctx.result("slices", "slices")}
    cfg = search_config_from_tables({**ctx.tables, "search": search}, str(ctx.job_file))
    ctx.table("train")      # the trials' base config (read by search_config_from_tables)
    ctx.begin()
    # resume=True: a re-run of the job continues the same study instead of refusing it.
    r = run_search(cfg, ctx.out / "tune", resume=True)
    if r.best_model is None:
        # Recording the stage now would make every re-run skip it and fail later on a model
        # that does not exist; a re-run resumes the study instead.
        raise InputError(f"{ctx.out / 'tune'}: the search ended without a COMPLETE trial with a "
                         f"model ({r.states}); see the trials with `hpc-seg study show "
                         f"{ctx.out / 'tune'}` and run the job again to resume it")
    return {"model": str(r.best_model), "name": f"tune-best-{r.best_trial}", "study": r.study_name,
            "storage": r.storage, "best_value": r.best_value, "best_params": r.best_params,
            "states": r.states}


@plannable
def evaluate(ctx: Context) -> dict[str, Any]:
    """EF table, Dice and figures for the trained/best models on the test split."""
    from hpc_seg.cardiac.evaluate import evaluate as run_evaluate

    models = {}
    for stage in ("tune", "train"):
        if stage in ctx.results:
            models[ctx.results[stage].get("name", stage)] = Path(ctx.results[stage]["model"])
    table = dict(ctx.table("evaluate"))
    _only_keys(ctx, "evaluate", table, {"split"})
    split = _value(ctx, "evaluate", table, "split", str, "test")
    slices_dir, labels_dir = ctx.result("slices", "slices"), ctx.result("labels", "labels")
    ctx.begin()
    out = run_evaluate(models, Path(slices_dir), Path(labels_dir), ctx.out / "evaluate",
                       split=split)
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
