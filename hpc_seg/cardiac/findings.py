"""What the cardiac cine study found in a run folder, for the report (see
:mod:`hpc_seg.report.findings`).

Headlines come from the evaluation's ``ef_table.csv``: the best model's EF error and the label
source's, beside the published 3.64 (r34_p05_s256) and 5.42 (UKBB, the label source). A
search without an evaluation gets the search's best validation value as its headline. The
evidence is the EF and Dice tables with their figures, the EF per patient, the search's trials
and the label confidence sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hpc_seg.report.findings import (Evidence, Figure, Headline, StudyFindings, find_files,
                                     mean_ci, read_csv, unreadable)

if TYPE_CHECKING:
    import pandas as pd

TITLE = "Cardiac cine segmentation"
REFERENCE = "Ankenbrand et al., MRM 2021"
#: the published EF error (mean |true EF - predicted EF| x 100, Kaggle test split)
PUBLISHED_BEST = 3.64       # r34_p05_s256, the search's best model
PUBLISHED_SOURCE = 5.42     # UKBB, the network whose labels the models learned from
#: fewer test patients than this and the mean's interval is too wide to compare with 3.64
MIN_PATIENTS = 10
LABEL_SOURCE = "label source"
NEEDED = {"method", "mean", "sd", "n"}    # columns of ef_table.csv the headlines read
EF_UNIT = "EF points"       # |true EF - predicted EF| x 100
PUBLISHED_ROWS = [          # the published EF table's first and last rows
    {"method": "published: r34_p05_s256", "mean": 3.64, "sd": 3.38, "median": 2.87, "iqr": 3.72},
    {"method": "published: UKBB (label source)", "mean": 5.42, "sd": 8.83, "median": 3.72,
     "iqr": 4.34},
]


def in_transfer(path: Path, run: Path) -> bool:
    """Whether ``path`` belongs to a transfer study's folder (its own findings show it)."""
    for parent in path.parents:
        if (parent / "tasks.json").is_file() or parent.name == "transfer":
            return True
        if parent == run:
            return False
    return False


def _verdict(mean: float, sd: float, n: int, missing: int, published: float, what: str
             ) -> tuple[str, str]:
    """(verdict, detail) of an EF error against the published one."""
    if n < MIN_PATIENTS:
        verdict = "too few patients to compare"
        detail = f"{MIN_PATIENTS} or more test patients needed."
    else:
        low, high = mean_ci(mean, sd, n) or (mean, mean)
        if low <= published <= high:
            verdict = f"consistent with the published {published}"
        elif high < published:
            verdict = f"lower (better) than the published {published}"
        else:
            verdict = f"higher (worse) than the published {published}"
        detail = f"{what}: mean ± 2 standard errors is {low:.3g} to {high:.3g}."
    if missing:
        detail += f" {missing} patient(s) had no usable prediction and count as an error of 100."
    return verdict, detail


def _synthetic(run: Path) -> str | None:
    if (run / ".stages" / "synth_cine.json").is_file() or (run / "cohort" / "manifest.json").is_file():
        return ("Data: a synthetic Kaggle-like cohort made by this run (synth_cine); the numbers "
                "show what the pipeline does, not the published result.")
    return None


def _ef_headlines(ef: pd.DataFrame, rel: str) -> list[Headline]:
    source = ef[ef.method.astype(str).str.startswith(LABEL_SOURCE)]
    models = ef[~ef.index.isin(source.index)].sort_values("mean", kind="stable")
    out = []
    if len(models):
        m = models.iloc[0]
        n, missing = int(m["n"]), int(m.get("missing", 0) or 0)
        verdict, detail = _verdict(float(m["mean"]), float(m["sd"]), n, missing, PUBLISHED_BEST,
                                   "EF error")
        others = f"; {len(models) - 1} other model(s) in the EF table" if len(models) > 1 else ""
        out.append(Headline(
            key="cardiac.ef_error", label=f"EF error of the best model ({m['method']})",
            short="EF error, best model", value=float(m["mean"]), unit=EF_UNIT, decimals=2,
            n=n, n_unit="patients", spread=float(m["sd"]), published=PUBLISHED_BEST,
            published_text="r34_p05_s256 (best of the published search)", verdict=verdict,
            detail=detail + others, source=f"{rel}: method {m['method']}, column mean"))
    if len(source):
        s = source.iloc[0]
        n, missing = int(s["n"]), int(s.get("missing", 0) or 0)
        verdict, detail = _verdict(float(s["mean"]), float(s["sd"]), n, missing,
                                   PUBLISHED_SOURCE, "EF error of the labels")
        out.append(Headline(
            key="cardiac.ef_error_label_source", label=f"EF error of the training labels ({s['method']})",
            short="EF error, label source", value=float(s["mean"]), unit=EF_UNIT, decimals=2,
            n=n, n_unit="patients", spread=float(s["sd"]), published=PUBLISHED_SOURCE,
            published_text="UKBB network (the published label source)", verdict=verdict,
            detail=detail, source=f"{rel}: method {s['method']}, column mean"))
    return out


def _ef_evidence(folder: Path, ef: pd.DataFrame) -> list[Evidence]:
    import pandas as pd

    figs = folder / "figures"
    shown = pd.concat([ef, pd.DataFrame(PUBLISHED_ROWS)], ignore_index=True)
    shown = shown.rename(columns={"mean": "mean", "sd": "sd", "median": "median", "iqr": "IQR",
                                  "n": "patients", "missing": "no prediction"})
    out = [Evidence(
        title="EF error per method", table=shown, csv=folder / "ef_table.csv",
        decimals={c: 2 for c in ("mean", "sd", "median", "IQR")},
        caption=("|true EF − predicted EF| × 100 per patient (EF percentage points), one scored "
                 "stack per patient; a patient without a usable prediction counts as 100. The "
                 "published rows are the paper's best model and its label source."),
        figures=[Figure(path=figs / "bland_altman_ef.png",
                        caption="Bland-Altman of EF: predicted − true against their mean, per method"),
                 Figure(path=figs / "volumes.png",
                        caption="Predicted against true EDV and ESV (mL), per method")])]
    per_patient = folder / "ef_per_patient.csv"
    pp = read_csv(per_patient) if per_patient.is_file() else None
    if pp is not None:
        cols = {"method": "method", "patient_id": "patient", "true_edv_ml": "true EDV (mL)",
                "pred_edv_ml": "predicted EDV (mL)", "true_esv_ml": "true ESV (mL)",
                "pred_esv_ml": "predicted ESV (mL)", "true_ef": "true EF (%)",
                "pred_ef": "predicted EF (%)", "abs_diff": "|ΔEF| (EF points)",
                "ed_frame": "ED frame", "es_frame": "ES frame"}
        pp = pp[[c for c in cols if c in pp.columns]].copy()
        for c in ("true_ef", "pred_ef", "abs_diff"):
            if c in pp.columns:
                pp[c] = pp[c] * 100
        out.append(Evidence(
            title="EF per patient", table=pp.rename(columns=cols), csv=per_patient,
            id_columns=["patient", "ED frame", "ES frame"], decimals={
                cols["abs_diff"]: 2, cols["true_ef"]: 1, cols["pred_ef"]: 1,
                **{cols[c]: 1 for c in ("true_edv_ml", "pred_edv_ml", "true_esv_ml",
                                        "pred_esv_ml")}},
            caption="True volumes from the cohort's truth table; predicted ones from the LV "
                    "pixels summed over slices (ED: most pixels, ES: fewest)."))
    return out


def _dice_evidence(folder: Path) -> list[Evidence]:
    path = folder / "dice_table.csv"
    dice = read_csv(path) if path.is_file() else None
    if dice is None:
        return []
    names = {"method": "model", "dice_lv": "Dice LV", "dice_my": "Dice MY",
             "dice_fg": "Dice LV+MY", "accuracy": "pixel accuracy",
             "hd95_lv_mm": "HD95 LV mean (mm)", "hd95_lv_mm_median": "HD95 LV median (mm)",
             "hd95_my_mm": "HD95 MY mean (mm)", "hd95_my_mm_median": "HD95 MY median (mm)",
             "images": "images"}
    shown = dice[[c for c in names if c in dice.columns]].rename(columns=names)
    decimals = {n: 3 for n in ("Dice LV", "Dice MY", "Dice LV+MY", "pixel accuracy")}
    decimals |= {n: 1 for n in names.values() if n.startswith("HD95")}
    overlays = sorted((folder / "figures").glob("overlays_*.png"))
    return [Evidence(
        title="Segmentation per model (test images)", table=shown, csv=path, decimals=decimals,
        caption="Mean over the test split's images; Dice of an empty prediction of an empty "
                "truth counts 1. HD95: 95th-percentile Hausdorff distance.",
        figures=[Figure(path=p, caption=f"Predicted (colour) and true contours, "
                                        f"{p.stem.removeprefix('overlays_')}: ED and ES frames")
                 for p in overlays])]


def _search_evidence(run: Path) -> tuple[list[Evidence], list[Headline]]:
    """The cardiac search (Optuna storage under a ``tune`` folder), with a headline of its own
    when there is no EF table to give one."""
    dbs = [p for p in find_files(run, "study.db") if not in_transfer(p, run)]
    if not dbs:
        return [], []
    evidence = [Evidence(title="Hyperparameter search", optuna=db,
                         caption="Optuna TPE over Ray Tune trials with ASHA stopping; the best "
                                 "trial's model is the one evaluated.") for db in dbs]
    histories = _trial_histories(dbs[0].parent)
    if histories is not None:
        evidence.append(histories)
    heads = []
    try:
        from hpc_seg.hpo.study_info import best_trial, list_studies, load, resolve_storage

        storage = resolve_storage(dbs[0])
        info = list_studies(storage)[0]
        best = best_trial(storage, info["study"])
        metric = load(storage, info["study"]).user_attrs.get("metric") or "validation value"
        heads.append(Headline(
            key="cardiac.search_best", label=f"best trial's {metric} ({info['study']})",
            short=f"search best {metric}", value=float(best["value"]), decimals=3,
            n=int(info.get("complete", 0)), n_unit="complete trials",
            published_text="the paper chose by test-split EF (run the evaluate stage)",
            verdict="no published figure to compare",
            detail=f"trial {best['number']} of {info['trials']}; a search alone does not give "
                   "the EF error the paper reports.",
            source=f"{dbs[0].relative_to(run).as_posix()}: study {info['study']}"))
    except Exception as exc:  # noqa: BLE001 - the search table still shows what it can
        evidence[0].caption += f" (its best trial could not be read: {exc})"
    return evidence, heads


def _trial_histories(search: Path) -> Evidence | None:
    """Every trial's ``history.csv`` as one table (trial, epoch, losses, Dice, time)."""
    import pandas as pd

    files = sorted((search / "trials").glob("trial-*/history.csv"))
    frames = [df.assign(trial=int(p.parent.name.removeprefix("trial-")))
              for p in files if (df := read_csv(p)) is not None]
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    keep = ["trial", "epoch", "stage", "lr", "train_loss", "val_loss", "dice_lv", "dice_my",
            "dice_fg", "seconds"]
    return Evidence(title="Epochs of every trial", table=df[[c for c in keep if c in df.columns]],
                    covers=files, id_columns=["trial", "epoch"], fold=True,
                    caption="Training and validation loss, validation Dice and time per epoch "
                            "of each trial (its history.csv).")


def _labels_evidence(run: Path) -> list[Evidence]:
    out = []
    for path in find_files(run, "confidence_counts.csv"):
        if in_transfer(path, run):
            continue
        counts = read_csv(path)
        if counts is None:
            continue
        out.append(Evidence(
            title="Confidence sets of the training labels", table=counts, csv=path,
            caption="Patients per split whose label volumes are within 5, 10 and 15 % of the "
                    "truth (published: 175, 520 and 763 of 1140)."))
        truth = run / "cohort" / "truth.csv"
        if truth.is_file():
            out[-1].covers.append(truth)
        skipped = path.parent / "skipped.csv"
        if skipped.is_file():
            out[-1].covers.append(skipped)
            sk = read_csv(skipped)
            if sk is not None and len(sk):
                out.append(Evidence(title="Stacks without labels", table=sk, csv=skipped))
    return out


def cardiac_findings(run: Path) -> list[StudyFindings]:
    """The cardiac study's findings in ``run`` (one per evaluation folder; none when neither an
    EF table nor a search is there)."""
    run = Path(run).resolve()
    tables = [p for p in find_files(run, "ef_table.csv") if not in_transfer(p, run)]
    labels = _labels_evidence(run)
    search, search_heads = _search_evidence(run)
    notes = [n for n in (_synthetic(run),) if n]
    found = []
    for i, path in enumerate(tables):
        ef = read_csv(path)
        if ef is None or not NEEDED <= set(ef.columns):
            found.append(unreadable("cardiac" if i == 0 else f"cardiac-{i + 1}", TITLE, REFERENCE,
                                    path, run, NEEDED))
            found[-1].evidence = search + labels if i == 0 else []
            continue
        folder = path.parent
        rel = path.relative_to(run).as_posix()
        evidence = _ef_evidence(folder, ef) + _dice_evidence(folder)
        if i == 0:
            evidence += search + labels
        found.append(StudyFindings(
            key="cardiac" if i == 0 else f"cardiac-{i + 1}",
            title=TITLE if i == 0 else f"{TITLE} ({folder.relative_to(run).as_posix()})",
            reference=REFERENCE, folder=folder, headlines=_ef_headlines(ef, rel),
            key_figure=Figure(path=folder / "figures" / "bland_altman_ef.png",
                              caption="Bland-Altman of EF per method (evidence below)"),
            evidence=evidence, notes=notes))
    if not found and search:
        found.append(StudyFindings(
            key="cardiac", title=f"{TITLE}: search", reference=REFERENCE,
            folder=search[0].optuna.parent, headlines=search_heads, evidence=search + labels,
            notes=notes))
    return found
