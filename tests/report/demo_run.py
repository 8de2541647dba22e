"""A run folder shaped like ``hpc-seg run jobs/demo.toml`` output (both studies and the
transfer), written in seconds: the CSVs have the columns and layout the study stages write
(the HAD-Net summaries through the evaluation's own ``summarise_scores``), the figures are small
PNGs, the search a real SQLite Optuna study. Values carry many digits, so that rounding shows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from hpc_seg.hadnet.score_tables import summarise_scores
from hpc_seg.storage.shards import atomic_write_table

#: the paired-statistics table an evaluation may add (bootstrap CI, Wilcoxon p)
PAIRED = pd.DataFrame({"comparison": ["HAD-Net vs student", "HAD-Net vs AD-Net"],
                       "region": ["ET", "ET"], "metric": ["dice", "dice"], "n": [12, 12],
                       "mean_diff": [0.0612345, 0.0212345], "ci_low": [0.0213456, -0.0123456],
                       "ci_high": [0.1034567, 0.0534567], "p_value": [0.0123456, 0.412345]})


TRANSFER_PAIRED = pd.DataFrame({"a": ["TL2", "TL2"], "b": ["R", "R"], "subset": ["full", "v1"],
                                "region": ["LV", "LV"], "n": [24, 24], "diff": [0.3, 0.49],
                                "ci_low": [-0.02, 0.41], "ci_high": [0.61, 0.57],
                                "p_value": [0.08, 0.0004]})


def png(path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 2.2))   # as wide as the studies' figures
    ax.plot([0, 1, 2], [1, 0, 2])
    ax.set_title(title or path.stem)
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return path


def _csv(df: pd.DataFrame, path: Path, float_format: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, float_format=float_format)
    return path


def _record(run: Path, stage: str, seconds: float, result: dict) -> None:
    (run / ".stages").mkdir(parents=True, exist_ok=True)
    (run / ".stages" / f"{stage}.json").write_text(json.dumps(
        {"stage": stage, "seconds": seconds, "fingerprint": "0123456789abcdef", "result": result}))


def ingest_issues(folder: Path) -> None:
    """An ingest ``issues`` table: two missing frames filled, one file skipped."""
    issues = pa.table({"subject_id": ["1", "1", "2"], "patient_id": ["1", "1", "2"],
                       "problem": ["missing_frames", "missing_frames", "not_dicom"],
                       "resolution": ["filled", "filled", "file skipped"],
                       "file": ["a", "b", "c"], "detail": ["", "", ""]})
    atomic_write_table(issues, folder / "part-0.parquet")


def lineage(db: Path, names: tuple[str, str]) -> None:
    """A launcher lineage table of two tasks: one finished, one timed out and requeued."""
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE tasks (job_id TEXT, name TEXT, executor TEXT, state TEXT, "
                    "node TEXT, started_at TEXT, ended_at TEXT, exit_reason TEXT, restarts INTEGER)")
        con.execute("INSERT INTO tasks VALUES ('41_0',?,'slurm','COMPLETED','n1',"
                    "'2026-01-01T00:00:00+00:00','2026-01-01T00:01:30+00:00','ok',0)", (names[0],))
        con.execute("INSERT INTO tasks VALUES ('41_1',?,'slurm','TIMEOUT','n2',"
                    "'2026-01-01T00:00:00+00:00','2026-01-01T01:00:00+00:00','TIMEOUT 0:0',1)",
                    (names[1],))


def study_db(db: Path) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="cardiac_search", storage=f"sqlite:///{db}",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("metric", "val_loss")

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 3e-4, 3e-3, log=True)
        loss = trial.suggest_categorical("loss", ["ce", "focal"])
        trial.set_user_attr("model_path", str(db.parent / "trials" / f"trial-{trial.number:04d}"))
        if trial.number == 2:
            raise optuna.TrialPruned()
        return 0.26790340065956114 + lr * (2 if loss == "ce" else 1)

    study.optimize(objective, n_trials=4)


def cardiac(run: Path) -> None:
    ev = run / "evaluate"
    rng = np.random.default_rng(0)
    rows = []
    for method, scale in (("tune-best-1", 0.3), ("label source (shipped)", 0.03)):
        for pid in ("9", "10", "11"):
            true_ef = rng.uniform(0.3, 0.7)
            pred_ef = true_ef + rng.normal(0, scale)
            rows.append({"patient_id": pid, "true_esv_ml": 46.13123, "true_edv_ml": 128.4567,
                         "stack_id": pid, "ed_frame": 0, "es_frame": 4, "pred_edv_ml": 128.2345,
                         "pred_esv_ml": 115.9876, "pred_ef": pred_ef, "true_ef": true_ef,
                         "abs_diff": abs(true_ef - pred_ef), "method": method})
    pp = pd.DataFrame(rows)
    _csv(pp, ev / "ef_per_patient.csv", "%.4g")
    ef = []
    for method, g in pp.groupby("method", sort=False):
        err = g.abs_diff.to_numpy() * 100
        q1, q3 = np.percentile(err, [25, 75])
        ef.append({"method": method, "mean": err.mean(), "sd": err.std(ddof=1),
                   "median": np.median(err), "iqr": q3 - q1, "n": len(err), "missing": 0})
    _csv(pd.DataFrame(ef).sort_values("mean"), ev / "ef_table.csv", "%.4g")
    _csv(pd.DataFrame([{"method": "tune-best-1", "dice_lv": 0.6762345, "dice_my": 0.1837123,
                        "dice_fg": 0.3777345, "accuracy": 0.9183456, "hd95_lv_mm": 162.12345,
                        "hd95_lv_mm_median": 137.1234, "hd95_my_mm": 213.8123,
                        "hd95_my_mm_median": 178.7123, "images": 192}]),
         ev / "dice_table.csv", "%.4g")
    for name in ("volumes", "bland_altman_ef", "overlays_tune-best-1"):
        png(ev / "figures" / f"{name}.png")
    _csv(pd.DataFrame({"set": ["p05", "p10", "p15", "all"], "train": [3, 3, 3, 6],
                       "validate": [0, 0, 1, 2], "test": [1, 1, 1, 3], "total": [4, 4, 5, 11]}),
         run / "labels" / "confidence_counts.csv")
    _csv(pd.DataFrame(columns=["stack_id", "reason"]), run / "labels" / "skipped.csv")
    (run / "tune").mkdir(parents=True, exist_ok=True)
    study_db(run / "tune" / "study.db")
    ingest_issues(run / "ingest" / "issues")
    _record(run, "synth_cine", 12.3, {"cohort": str(run / "cohort"), "patients": 10})
    _record(run, "ingest", 1.47, {"volumes": str(run / "ingest" / "volumes"), "stacks": 11,
                                  "files_used": 957, "engine": "local"})
    # an older record: the labels stage once returned the repr of its summary object
    _record(run, "labels", 0.123, {"labels": str(run / "labels"), "summary": (
        f"LabelsSummary(out_dir='{run / 'labels'}', source='shipped', stacks=11, "
        "labelled_stacks=11, skipped=0, counts={'p05': {'train': 3, 'test': 1}}, "
        "masks_in='volumes')")})
    _record(run, "tune", 245.2280143, {
        "model": str(run / "tune" / "trials" / "trial-0001" / "model.pt"), "name": "tune-best-1",
        "study": "cardiac_search", "storage": f"sqlite:///{run / 'tune' / 'study.db'}",
        "best_value": 0.27149673700332644,
        "best_params": {"encoder": "resnet18", "lr": 0.0007957489130278428, "batch_size": 16},
        "states": {"COMPLETE": 3, "PRUNED": 1}})
    _record(run, "evaluate", 22.04, {"evaluate": str(ev)})


def transfer(run: Path) -> None:
    root = run / "transfer"
    ev = root / "evaluate"
    nan = float("nan")
    dice = pd.DataFrame([
        ("base", "", "base", "observer1", 0.0972345, 0.1024567, ""),
        ("R", "full", "R", "observer1", 0.5327345, 0.3316789, ""),
        ("TL", "full", "TL", "observer1", nan, nan, "not run: no ImageNet weights"),
        ("TL2", "full", "TL2", "observer1", 0.8336123, 0.6136456, ""),
        ("R-v1", "v1", "R", "observer1", 0.2456123, 0.1292456, ""),
        ("TL-v1", "v1", "TL", "observer1", nan, nan, "not run: no ImageNet weights"),
        ("TL2-v1", "v1", "TL2", "observer1", 0.7363123, 0.5832456, ""),
        ("observer 2", "", "observer2", "observer1", 0.9909123, 0.9124456, ""),
        ("TL2 vs observer 2", "full", "TL2", "observer2", 0.8342123, 0.6147456, "")],
        columns=["model", "subset", "init", "reference", "LV", "MY", "note"])
    _csv(dice, ev / "dice_table.csv", "%.4f")
    rng = np.random.default_rng(1)
    files = [f"{v}/slice{s:02d}_frame{f:02d}" for v in (26, 27, 28) for s in range(4) for f in range(2)]
    for name, mean in (("full-R", 0.53), ("full-TL2", 0.83), ("v1-R", 0.25), ("v1-TL2", 0.74),
                       ("base", 0.1)):
        p = ev / "predictions" / f"{name}.parquet"
        p.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"file": files, "patient_id": [f.split("/")[0] for f in files],
                      "dice_lv": np.clip(rng.normal(mean, 0.1, len(files)), 0, 1),
                      "dice_my": np.clip(rng.normal(mean - 0.2, 0.1, len(files)), 0, 1)}
                     ).to_parquet(p, index=False)
    _csv(TRANSFER_PAIRED, ev / "paired_stats.csv")
    _csv(pd.DataFrame({"method": ["observer2", "full-R", "full-TL2", "full-TL"],
                       "edv_diff_pct": [2.0885, 101.7096, 71.8413, nan],
                       "esv_diff_pct": [0.5128, 311.6578, 124.3667, nan],
                       "sv_diff_pct": [4.7805, 73.4785, 61.4112, nan],
                       "ef_diff_pct": [2.6565, 88.1552, 56.5905, nan],
                       "note": ["", "", "", "not run: no ImageNet weights"]}),
         ev / "volume_table.csv", "%.4f")
    _csv(pd.DataFrame({"patient_id": [26, 27], "edv": [120.1234, 99.8765]}),
         ev / "volumes_per_volunteer.csv", "%.4f")
    logs = []
    for model, subset, init in (("full-R", "full", "R"), ("full-TL2", "full", "TL2"),
                                ("v1-R", "v1", "R"), ("v1-TL2", "v1", "TL2")):
        for epoch in range(4):
            logs.append({"epoch": epoch, "train_loss": 1.2292 / (epoch + 1), "valid_loss": 1.12,
                         "acc_seg": 0.5, "diceComb": 0.4, "diceLV": 0.1 * epoch + 0.3456,
                         "diceMY": 0.05 * epoch + 0.1234, "time": 33.9734, "model": model,
                         "subset": subset, "init": init, "images_seen": 96 * (epoch + 1)})
    _csv(pd.DataFrame(logs), ev / "training_logs.csv", "%.4f")
    conf_cols = ["bg_bg", "bg_lv", "bg_my", "lv_bg", "lv_lv", "lv_my", "my_bg", "my_lv", "my_my"]
    _csv(pd.DataFrame([{"image": f, "set": "test", "methodA": "observer1", "methodB": "full-R",
                        **{c: int(rng.integers(0, 4000)) for c in conf_cols}} for f in files]),
         ev / "confusion.csv")
    for name in ("data_requirement", "validation_curves"):
        png(ev / "figures" / f"{name}.png")
    subsets = pd.DataFrame({"file": files, "Id": [f.split("/")[0] for f in files],
                            "frame": 0, "slice": 0, "full": True,
                            "v1": [f.startswith("26/") for f in files]})
    _csv(subsets, root / "data" / "subsets" / "image_subsets.csv")
    _csv(pd.DataFrame({"Id": [26], "es": [1], "ed": [0]}), root / "data" / "subsets" / "esed_frames.csv")
    _csv(pd.DataFrame({"Id": ["26", "30"], "split": ["test", "validate"]}), root / "data" / "split.csv")
    specs = [{"name": f"{s}-{i}", "subset": s, "init": i, "n_images": n,
              "train": {"image_size": 64, "epochs_frozen": 1, "epochs_unfrozen": 1}}
             for s, n in (("full", 96), ("v1", 24)) for i in ("R", "TL2")]
    (root / "tasks.json").write_text(json.dumps({"specs": specs, "skipped": {
        "full-TL": "not run: no ImageNet weights"}, "base_model": None}))
    lineage(root / "lineage.sqlite", ("full-R", "v1-R"))
    _record(run, "synth_7t", 3.2, {"cohort": str(run / "cohort_7t"), "volunteers": 9})
    _record(run, "transfer_train", 115.8, {"tasks": 4, "skipped": {
        "full-TL": "not run: no ImageNet weights"}, "tasks_dir": str(root / "tasks")})
    _record(run, "transfer_evaluate", 9.87, {"dice_table": str(ev / "dice_table.csv")})


def hadnet(run: Path) -> None:
    ev = run / "hadnet_evaluate"
    rng = np.random.default_rng(2)
    rows = []
    for model, et in (("teacher", 0.81), ("student", 0.41), ("AD-Net", 0.44), ("HAD-Net", 0.47)):
        for case in range(12):
            for region, base in (("WT", 0.85), ("TC", 0.6), ("ET", et)):
                rows.append({"model": model, "case_id": f"BraTS19_synth_{case:03d}",
                             "region": region, "dice": float(np.clip(rng.normal(base, 0.1), 0, 1)),
                             "hd95_mm": float(rng.uniform(2, 40)), "sensitivity": 0.8123456,
                             "specificity": 0.99912345, "qu": float(rng.uniform(0.6, 0.9)),
                             "qu_auc_dice": 0.7123456, "qu_auc_ftp": 0.1234567,
                             "qu_auc_ftn": 0.00123456})
    per_case = pd.DataFrame(rows)
    summary = summarise_scores(per_case)
    _csv(per_case, ev / "scores_per_case.csv")
    _csv(summary, ev / "scores_summary.csv")
    dice = summary[summary.metric == "dice"].drop(columns="metric")
    _csv(dice, ev / "dice_summary.csv")
    _csv(per_case.pivot_table(index=["model", "case_id"], columns="region", values="dice")
         .reset_index(), ev / "dice_per_case.csv")
    _csv(pd.DataFrame([{"model": m, "region": r, "tau": t, "dice": 0.5123, "ftp": 0.1, "ftn": 0.01}
                       for m in ("student", "HAD-Net") for r in ("WT", "TC", "ET")
                       for t in np.linspace(100, 0, 41)]), ev / "qu_curves.csv")
    _csv(PAIRED, ev / "paired_stats.csv")
    (ev / "scores_table.md").write_text("## scores\n")
    (ev / "dice_table.md").write_text("## dice\n")
    for name in ("dice", "hd95", "qu_curves"):
        png(ev / f"{name}.png")
    for stage, role in (("hadnet_pretrain_teacher", "teacher"), ("hadnet_pretrain_student", "student"),
                        ("hadnet_distill_ad", "ad"), ("hadnet_distill", "had")):
        (run / stage).mkdir(parents=True, exist_ok=True)
        (run / stage / "summary.json").write_text(json.dumps({
            "role": role, "epochs": 3, "world_size": 1, "device": "cpu", "best_epoch": 2,
            "best_vm": 0.5123456, "seconds_this_session": 61.23456,
            "teacher_sha256": "ab" * 32}))
        _record(run, stage, 61.23456, {"model": str(run / stage / "best.pt"),
                                       "teacher_sha256": "ab" * 32, "student_sha256": "cd" * 32})
    brats = run / "brats"
    (brats / "HGG").mkdir(parents=True, exist_ok=True)
    (brats / "manifest.json").write_text("{}")
    png(brats / "preview.png")
    (run / "hadnet_pre").mkdir(parents=True, exist_ok=True)
    (run / "hadnet_pre" / "preprocess.json").write_text("{}")
    _csv(pd.DataFrame(columns=["case_id", "reason"]), run / "hadnet_pre" / "skipped.csv")
    _record(run, "synth_brats", 2.5, {"cohort": str(brats), "cases": 8})
    summary_result = {"table": str(ev / "dice_summary.csv")}
    summary_result.update({f"dice_{r['model']}_{r['region']}": round(float(r["mean"]), 4)
                           for _, r in dice.iterrows()})
    _record(run, "hadnet_evaluate", 30.5, summary_result)


def demo_like_run(run: Path) -> Path:
    """The whole demo-shaped run folder under ``run``."""
    cardiac(run)
    transfer(run)
    hadnet(run)
    return run
