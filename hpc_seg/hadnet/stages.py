"""HAD-Net stages for job definitions (``hpc-seg run jobs/hadnet_*.toml``).

Each stage reads the job's ``[hadnet]`` and ``[launch]`` tables, then its own table (e.g.
``[hadnet_pretrain_teacher]``), whose keys override ``[hadnet]`` for that stage only; the
preprocessed cohort comes from
``[hadnet] pre_dir`` or from the earlier ``hadnet_preprocess`` stage's ``pre_dir`` result, and
writes under ``<job out>/<stage>/``. ``synth_brats`` and ``hadnet_preprocess`` make and prepare the
cohort. :data:`COHORT_STAGES` and :data:`HADNET_STAGES` are joined with the cardiac stages in :mod:`hpc_seg.pipeline.registry`.

=========================  ==============================================  ======================
stage                      does                                            result keys
=========================  ==============================================  ======================
hadnet_pretrain_teacher    pre-train the 4-sequence teacher                model
hadnet_pretrain_student    pre-train the 3-sequence student                model
hadnet_distill             HAD-Net distillation (hierarchical D)           model, teacher_sha256,
                                                                           student_sha256
hadnet_distill_ad          AD-Net ablation (D without feature pairs)       (same)
hadnet_finetune_ce         control: the distillation schedule with         (same)
                           lambda = 0 (wCE only, no teacher signal)
hadnet_evaluate            Dice, HD95, sensitivity, specificity and QU     table, scores_table,
                           ([hadnet_evaluate] uncertainty: entropy by      figure, and
                           default, mcdropout[:N], none) of every model    {dice,hd95,qu}_<model>
                           above: tables and figures                       _<region>
=========================  ==============================================  ======================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_seg.config import from_dict, typed_value
from hpc_seg.stage import Context, StageFn, plannable

#: tables the HAD-Net stages read besides their own (``[stage]``)
HADNET_TABLES = frozenset({"hadnet", "launch"})

# Heavy imports (torch, pandas) stay inside the functions: the registry is imported by the CLI.

# Display names of the evaluated models, in table order.
MODEL_STAGES = {"teacher": "hadnet_pretrain_teacher", "student": "hadnet_pretrain_student",
                "student-ft": "hadnet_finetune_ce", "AD-Net": "hadnet_distill_ad",
                "HAD-Net": "hadnet_distill"}


def _cfg(ctx: Context, stage: str | None = None) -> tuple[Any, Any]:
    from hpc_seg.launch.config import LaunchConfig
    from hpc_seg.hadnet.train.config import LAUNCH_DEFAULTS, HadnetTrainConfig

    # A stage's own table overrides [hadnet] for that stage: the teacher may need another schedule
    # than the runs that learn from it, without a second job file.
    values = {**ctx.table("hadnet"), **(ctx.table(stage) if stage else {})}
    where = ctx.where("hadnet") + (f" + [{stage}]" if stage and ctx.table(stage) else "")
    cfg = from_dict(HadnetTrainConfig, values, where)
    launch = from_dict(LaunchConfig, {**LAUNCH_DEFAULTS, **ctx.table("launch")},
                       ctx.where("launch"))
    return cfg, launch


def _pre_dir(ctx: Context, cfg: Any) -> Path:
    if cfg.pre_dir is not None:
        return Path(cfg.pre_dir)
    return Path(ctx.result("hadnet_preprocess", "pre_dir"))


def _pretrain(ctx: Context, role: str) -> dict[str, Any]:
    from hpc_seg.hadnet.api import pretrain

    stage = f"hadnet_pretrain_{role}"
    cfg, launch = _cfg(ctx, stage)
    pre_dir = _pre_dir(ctx, cfg)
    ctx.begin()
    best = pretrain(cfg, pre_dir, ctx.out / stage, role, launch)
    return {"model": str(best)}


@plannable
def hadnet_pretrain_teacher(ctx: Context) -> dict[str, Any]:
    """Pre-train the teacher (FLAIR, T1ce, T1, T2)."""
    return _pretrain(ctx, "teacher")


@plannable
def hadnet_pretrain_student(ctx: Context) -> dict[str, Any]:
    """Pre-train the student (FLAIR, T1, T2)."""
    return _pretrain(ctx, "student")


def _distill(ctx: Context, variant: str, stage: str, **overrides: Any) -> dict[str, Any]:
    import dataclasses

    from hpc_seg.hadnet.api import distill

    cfg, launch = _cfg(ctx, stage)
    cfg = dataclasses.replace(cfg, **overrides)
    teacher = Path(cfg.teacher or ctx.result("hadnet_pretrain_teacher", "model"))
    student = Path(cfg.student or ctx.result("hadnet_pretrain_student", "model"))
    pre_dir = _pre_dir(ctx, cfg)
    ctx.begin()
    best = distill(cfg, pre_dir, teacher, student, ctx.out / stage, variant, launch)
    summary = json.loads((best.parent / "summary.json").read_text())
    return {"model": str(best), "teacher_sha256": summary["teacher_sha256"],
            "student_sha256": summary["student_sha256"]}


@plannable
def hadnet_distill(ctx: Context) -> dict[str, Any]:
    """HAD-Net: distil the teacher into the student with the hierarchical discriminator."""
    return _distill(ctx, "had", "hadnet_distill")


@plannable
def hadnet_distill_ad(ctx: Context) -> dict[str, Any]:
    """AD-Net: the same distillation with a discriminator that sees no feature pairs."""
    return _distill(ctx, "ad", "hadnet_distill_ad")


@plannable
def hadnet_finetune_ce(ctx: Context) -> dict[str, Any]:
    """Control for the distillation: the same epochs, optimiser and (un-decayed) weighted CE, but
    lambda = 0, so the teacher has no influence on the student.

    Distillation restarts the CE class weights at their initial values; more ET in the student's
    output can come from that alone. Comparing HAD-Net/AD-Net with this row, not only with the
    pre-trained student, separates the teacher's contribution from the extra training.
    """
    return _distill(ctx, "ad", "hadnet_finetune_ce", lambda_adv=0.0)


@dataclass(kw_only=True)
class EvaluateStageConfig:
    """The ``[hadnet_evaluate]`` table."""

    split: str = "test"
    """split of the preprocessed cohort to score"""
    uncertainty: str = "entropy"
    """entropy (one pass, free), mcdropout[:N] (N dropout passes) or none"""
    seed: int = 0
    """seed of the MC dropout masks"""


@plannable
def hadnet_evaluate(ctx: Context) -> dict[str, Any]:
    """Dice, HD95, sensitivity, specificity and QU on the test split of every model trained by
    this job: tables and figures ([hadnet_evaluate]: split, uncertainty, seed)."""
    import pandas as pd

    from hpc_seg.hadnet.api import evaluate

    cfg, _ = _cfg(ctx)
    ecfg = from_dict(EvaluateStageConfig, ctx.table("hadnet_evaluate"), ctx.where("hadnet_evaluate"))
    models = {name: ctx.results[stage]["model"] for name, stage in MODEL_STAGES.items()
              if stage in ctx.results}
    device = "cpu" if cfg.device == "cpu" else "auto"
    uncertainty = None if ecfg.uncertainty == "none" else ecfg.uncertainty
    out_dir = ctx.out / "hadnet_evaluate"
    pre_dir = _pre_dir(ctx, cfg)
    ctx.begin()
    table = evaluate(models, pre_dir, out_dir, split=ecfg.split, device=device,
                     uncertainty=uncertainty, seed=ecfg.seed)
    summary = pd.read_csv(out_dir / "scores_summary.csv")
    out: dict[str, Any] = {"table": str(table), "scores_table": str(out_dir / "scores_table.md"),
                           "figure": str(out_dir / "dice.png")}
    names = {"dice": "dice", "hd95_mm": "hd95", "qu": "qu"}
    for _, r in summary[summary.metric.isin(list(names))].iterrows():
        out[f"{names[r['metric']]}_{r['model']}_{r['region']}"] = round(float(r["mean"]), 4)
    return out


@plannable
def synth_brats(ctx: Context) -> dict[str, Any]:
    """Generate a synthetic BraTS-like 4-sequence NIfTI cohort ([synth_brats]: cases, seed, shape)."""
    from hpc_seg.hadnet.synth.cohort import SynthBratsConfig, synth_brats as generate

    cfg = from_dict(SynthBratsConfig, ctx.table("synth_brats"), ctx.where("synth_brats"))
    ctx.begin()
    out = ctx.out / "brats"
    manifest = generate(out, cfg)
    return {"cohort": str(out), "manifest": str(manifest), "cases": cfg.cases}


@plannable
def hadnet_preprocess(ctx: Context) -> dict[str, Any]:
    """Brain mask, crop, masked z-score, clip, rescale, fixed padding -> case shards."""
    from hpc_seg.hadnet.brats.shards import PreprocessConfig, preprocess_cohort

    table = dict(ctx.table("hadnet_preprocess"))
    src = Path(typed_value(str | None, table.pop("src", None),
                           f"{ctx.where('hadnet_preprocess')}.src")
               or ctx.result("synth_brats", "cohort"))
    cfg = from_dict(PreprocessConfig, table, ctx.where("hadnet_preprocess"))
    ctx.begin()
    out = ctx.out / "hadnet_pre"
    preprocess_cohort(src, out, cfg)
    return {"pre_dir": str(out)}


#: the stages that make and prepare a cohort
COHORT_STAGES: dict[str, StageFn] = {"synth_brats": synth_brats, "hadnet_preprocess": hadnet_preprocess}

#: the stages that train or evaluate a HAD-Net model (each reads the [hadnet] table)
HADNET_STAGES: dict[str, StageFn] = {
    f.__name__: f for f in (hadnet_pretrain_teacher, hadnet_pretrain_student, hadnet_distill,
                            hadnet_distill_ad, hadnet_finetune_ce, hadnet_evaluate)}
