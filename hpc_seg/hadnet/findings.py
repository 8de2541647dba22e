"""What the HAD-Net study found in a run folder, for the report (see
:mod:`hpc_seg.report.findings`).

The paper's claims are relative: HAD-Net's enhancing-tumour (ET) Dice 16-26 % above the
pre-trained student's (and AD-Net's), TC Dice improved too, and a better ET uncertainty (QU)
score than the student and AD-Net. The headlines put HAD-Net's number beside the student's of
the same run and say whether the gain has the published sign and size. They come from
``scores_summary.csv`` (or ``dice_summary.csv`` of older runs) of the evaluation folder; a paired
comparison table in that folder (bootstrap CI, Wilcoxon p) is shown when the evaluation wrote one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hpc_seg.hadnet.stages import MODEL_STAGES
from hpc_seg.report.findings import (Evidence, Figure, Headline, StudyFindings, clear_of_zero,
                                     extra_columns, find_files, paired_comparison, read_csv,
                                     unreadable)

if TYPE_CHECKING:
    import pandas as pd

TITLE = "HAD-Net brain tumour segmentation"
REFERENCE = "Vadacchino et al., MIDL 2021"
PUBLISHED_GAIN = (16.0, 26.0)      # % ET Dice over the student, U-HeMIS, U-HVED, KD-Net, AD-Net
#: fewer test cases than this and a mean's difference says little
MIN_CASES = 10
#: a model whose ET Dice is below this has not learned ET at all
NO_ET = 0.05
NEEDED = {"model", "region", "metric", "n", "mean", "std"}   # columns the headlines read


def _summary(folder: Path) -> pd.DataFrame | None:
    """model, region, metric, n, mean, std, median (``dice`` only from a Dice-only summary)."""
    path = folder / "scores_summary.csv"
    if path.is_file():
        return read_csv(path)
    df = read_csv(folder / "dice_summary.csv")
    return None if df is None else df.assign(metric="dice")


def _get(summary: pd.DataFrame, model: str, region: str, metric: str) -> dict | None:
    rows = summary[(summary.model == model) & (summary.region == region)
                   & (summary.metric == metric)]
    return None if rows.empty else rows.iloc[0].to_dict()


def _gain(value: float, base: float) -> float | None:
    return None if base <= 0 else 100.0 * (value - base) / base


def _dice_headline(summary: pd.DataFrame, folder: Path, rel: str, region: str
                   ) -> Headline | None:
    had, student = _get(summary, "HAD-Net", region, "dice"), _get(summary, "student", region, "dice")
    if had is None:
        return None
    key = f"hadnet.{region.lower()}_dice"
    n = int(had["n"])
    value, sd = float(had["mean"]), float(had["std"]) if had["std"] == had["std"] else None
    ad, teacher = _get(summary, "AD-Net", region, "dice"), _get(summary, "teacher", region, "dice")
    others = [f"{m} {float(r['mean']):.3f}" for m, r in (("AD-Net", ad), ("teacher", teacher))
              if r is not None]
    published = ("+16 to +26 % over the student" if region == "ET"
                 else "above the student")
    detail = [f"This run: {', '.join(others)}."] if others else []
    if student is None:
        verdict = "no student in this run to compare with"
    else:
        base = float(student["mean"])
        gain = _gain(value, base)
        if n < MIN_CASES:
            verdict = f"too few cases to compare (n = {n})"
        elif region == "ET" and value < NO_ET and base < NO_ET:
            verdict = "neither predicts ET: says nothing"
        elif gain is None:
            verdict = "student scores 0: no relative gain"
        elif region == "ET" and PUBLISHED_GAIN[0] <= gain <= PUBLISHED_GAIN[1]:
            verdict = f"{gain:+.0f} %: within the published gain"
        elif region == "ET" and gain > PUBLISHED_GAIN[1]:
            verdict = f"{gain:+.0f} %: more than the published gain"
        elif gain > 0:
            verdict = f"{gain:+.0f} %: ahead, less than published" if region == "ET" \
                else f"{gain:+.0f} %: ahead, as published"
        else:
            verdict = f"{gain:+.0f} %: not ahead, unlike the paper"
    if region == "ET" and value < NO_ET and student is not None and float(student["mean"]) < NO_ET:
        detail.append("Neither HAD-Net nor the student predicts ET here.")
    if region == "ET" and teacher is not None and float(teacher["mean"]) < NO_ET:
        detail.append("The teacher (which sees T1ce) did not learn ET: it had nothing to distil.")
    paired = paired_comparison(folder, "HAD-Net", "student", region=region, metric="dice")
    if paired is not None:
        detail.append(clear_of_zero(paired.ci, "HAD-Net − student"))
    return Headline(
        key=key, label=f"{region} Dice of HAD-Net, beside the student's",
        short=f"{region} Dice, HAD-Net", value=value, decimals=3, n=n, n_unit="cases",
        spread=sd, compare=f"student {float(student['mean']):.3f}" if student is not None else "",
        published_text=published,
        published_short="+16–26 %" if region == "ET" else "above",
        verdict=verdict, detail=" ".join(d for d in detail if d),
        ci=paired.ci if paired else None, stats_of="HAD-Net − student" if paired else "",
        p_value=paired.p_value if paired else None,
        source=f"{rel}: model HAD-Net, region {region}, metric dice, column mean")


def _qu_headline(summary: pd.DataFrame, folder: Path, rel: str) -> Headline | None:
    had, student = _get(summary, "HAD-Net", "ET", "qu"), _get(summary, "student", "ET", "qu")
    if had is None:
        return None
    value, n = float(had["mean"]), int(had["n"])
    ad = _get(summary, "AD-Net", "ET", "qu")
    if student is None:
        verdict = "no student in this run to compare with"
    elif n < MIN_CASES:
        verdict = f"too few cases to compare (n = {n})"
    elif value > float(student["mean"]):
        verdict = "above the student, as published"
    else:
        verdict = "not above the student, unlike paper"
    paired = paired_comparison(folder, "HAD-Net", "student", region="ET", metric="qu")
    return Headline(
        key="hadnet.et_qu", label="ET uncertainty score (BraTS QU) of HAD-Net",
        short="ET QU score, HAD-Net", value=value, decimals=3, n=n, n_unit="cases",
        spread=float(had["std"]) if had["std"] == had["std"] else None,
        compare=f"student {float(student['mean']):.3f}" if student is not None else "",
        published_text="above the student and AD-Net", published_short="above",
        verdict=verdict,
        detail=(f"This run: AD-Net {float(ad['mean']):.3f}. " if ad is not None else "")
        + "Higher is better: a good uncertainty removes errors first, correct voxels last.",
        ci=paired.ci if paired else None, stats_of="HAD-Net − student" if paired else "",
        p_value=paired.p_value if paired else None,
        source=f"{rel}: model HAD-Net, region ET, metric qu, column mean")


def _short(name: str) -> str:
    """A metric's name as a column under its region ("QU AUC FTP (lower is better)" -> "AUC FTP";
    the table's caption says which way is better)."""
    return name.replace(" (lower is better)", "").replace("QU AUC", "AUC")


def _pivot(summary: pd.DataFrame, metrics: list[str], with_sd: bool) -> pd.DataFrame:
    """Models x regions: per region the mean (and sd) of one metric, or the means of several;
    and n, the cases with a value."""
    import pandas as pd

    from hpc_seg.hadnet.score_tables import METRICS, REGION_ORDER

    sub = summary[summary.metric.isin(metrics)]
    rows = []
    for model in dict.fromkeys(sub.model):
        row: dict = {("model", ""): model}
        for region in REGION_ORDER:
            for metric in metrics:
                r = sub[(sub.model == model) & (sub.region == region) & (sub.metric == metric)]
                mean = float(r["mean"].iloc[0]) if len(r) else None
                if with_sd:
                    row[(region, "mean")] = mean
                    row[(region, "sd")] = float(r["std"].iloc[0]) if len(r) else None
                else:
                    row[(region, _short(METRICS[metric][0]))] = mean
        row[("cases", "")] = int(sub[sub.model == model]["n"].max())
        rows.append(row)
    df = pd.DataFrame(rows)
    df.columns = pd.MultiIndex.from_tuples(df.columns)
    return df


#: the tables of the evidence: title, metrics, with sd, figure (file, caption), caption
TABLES = [
    ("Dice per model and region", ["dice"], True,
     ("dice.png", "Dice per case: one box per model, one panel per region"),
     "Mean and sd over the test cases; regions: WT whole tumour, TC tumour core, ET enhancing "
     "tumour. An empty prediction of an empty region scores Dice 1."),
    ("HD95 per model and region (mm)", ["hd95_mm"], True,
     ("hd95.png", "HD95 per case (mm): one box per model and region"),
     "95th-percentile Hausdorff distance; an empty prediction of a non-empty region scores the "
     "volume's diagonal, as the BraTS tools do."),
    ("Sensitivity and specificity per model and region", ["sensitivity", "specificity"], False,
     None, "Means over the cases where the region is present (sensitivity) or any case "
     "(specificity)."),
    ("Uncertainty (BraTS QU) per model and region",
     ["qu", "qu_auc_dice", "qu_auc_ftp", "qu_auc_ftn"], False,
     ("qu_curves.png", "QU curves: Dice of the kept voxels, filtered TP and TN ratios against "
                       "the uncertainty threshold"),
     "QU score = (AUC Dice + (1 − AUC FTP) + (1 − AUC FTN)) / 3, higher is better; FTP and FTN "
     "are the ratios of true positives and negatives filtered out (lower is better)."),
]


def _evidence(folder: Path, summary: pd.DataFrame) -> list[Evidence]:
    from hpc_seg.hadnet.score_tables import METRICS

    csv = folder / ("scores_summary.csv" if (folder / "scores_summary.csv").is_file()
                    else "dice_summary.csv")
    have = set(summary.metric)
    out = []
    for title, metrics, with_sd, fig, caption in TABLES:
        metrics = [m for m in metrics if m in have]
        if not metrics:
            continue
        decimals = {"mean": METRICS[metrics[0]][1], "sd": METRICS[metrics[0]][1]} if with_sd \
            else {_short(METRICS[m][0]): METRICS[m][1] for m in metrics}
        covers = [folder / "dice_summary.csv", folder / "dice_table.md",
                  folder / "scores_table.md"] if metrics == ["dice"] else []
        out.append(Evidence(
            title=title, table=_pivot(summary, metrics, with_sd), csv=csv if not out else None,
            decimals=decimals, covers=covers, caption=caption,
            figures=[Figure(path=folder / fig[0], caption=fig[1])] if fig else []))
    for name, title, ids in (("scores_per_case.csv", "Scores per case", ["case_id"]),
                             ("dice_per_case.csv", "Dice per case", ["case_id"]),
                             ("qu_curves.csv", "QU curves (mean over cases)", [])):
        path = folder / name
        df = read_csv(path) if path.is_file() else None
        if df is not None:
            out.append(Evidence(title=title, table=df, csv=path, id_columns=ids))
    out += extra_columns(summary, csv, NEEDED | {"median"}, "Score summary")
    predictions = _predictions(folder)
    if predictions is not None:
        out.append(predictions)
    return out


def _predictions(folder: Path) -> Evidence | None:
    """Every model's ``predictions.csv`` (label maps written, voxels per label, seconds)."""
    import pandas as pd

    files = sorted((folder / "predictions").glob("*/predictions.csv"))
    frames = [df.assign(model=p.parent.name) for p in files
              if (df := read_csv(p)) is not None]
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    df = df[["model", *[c for c in df.columns if c != "model"]]]
    return Evidence(title="Predictions written", table=df, covers=files, id_columns=["case_id"],
                    caption="One label map per model and case (NIfTI, on the case's "
                                       "original grid): voxels per label and seconds.")


def _training(run: Path) -> Evidence | None:
    import json

    import pandas as pd

    rows, covers = [], []
    # the job's training stages write under <run>/<stage>/
    for model, folder in MODEL_STAGES.items():
        path = run / folder / "summary.json"
        if not path.is_file():
            continue
        try:
            s = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        covers.append(path)
        best_epoch = s.get("best_epoch")
        rows.append({"model": model, "epochs": s.get("epochs"),
                     "best epoch": best_epoch + 1 if isinstance(best_epoch, int) else None,
                     "best validation VM": s.get("best_vm"), "ranks": s.get("world_size"),
                     "device": s.get("device"),
                     "minutes": (s.get("seconds_this_session") or float("nan")) / 60})
    if not rows:
        return None
    return Evidence(title="Training runs", table=pd.DataFrame(rows), covers=covers,
                    decimals={"best validation VM": 3, "minutes": 1},
                    caption="VM: mean of the WT, TC and ET validation Dice, which selects each "
                            "run's best checkpoint. Minutes: the last session's wall time.")


def _cohort(run: Path) -> list[Evidence]:
    out = []
    for preview in find_files(run, "preview.png"):
        cohort = preview.parent
        if (cohort / "manifest.json").is_file() and ((cohort / "HGG").is_dir()
                                                     or (cohort / "LGG").is_dir()):
            out.append(Evidence(title="Cohort preview", figures=[Figure(
                path=preview, caption="The first cases of the cohort: sequences and labels")],
                covers=[preview]))
    for skipped in find_files(run, "skipped.csv"):
        if (skipped.parent / "preprocess.json").is_file():
            df = read_csv(skipped)
            if df is not None and df.empty:
                out.append(Evidence(title="Cases skipped by preprocessing", covers=[skipped],
                                    caption="No case was skipped."))
            else:
                out.append(Evidence(title="Cases skipped by preprocessing", table=df, csv=skipped))
    return out


def hadnet_findings(run: Path) -> list[StudyFindings]:
    """The HAD-Net study's findings in ``run``: one per evaluation folder."""
    run = Path(run).resolve()
    folders = [p.parent for p in find_files(run, "scores_summary.csv")]
    folders += [p.parent for p in find_files(run, "dice_summary.csv") if p.parent not in folders]
    synthetic = (run / ".stages" / "synth_brats.json").is_file()
    found = []
    for i, folder in enumerate(folders):
        summary = _summary(folder)
        if summary is None or not NEEDED <= set(summary.columns):
            name = "scores_summary.csv" if (folder / "scores_summary.csv").is_file() \
                else "dice_summary.csv"
            found.append(unreadable("hadnet" if i == 0 else f"hadnet-{i + 1}", TITLE, REFERENCE,
                                    folder / name, run, NEEDED))
            continue
        rel = (folder / ("scores_summary.csv" if (folder / "scores_summary.csv").is_file()
                         else "dice_summary.csv")).relative_to(run).as_posix()
        heads = [h for h in (_dice_headline(summary, folder, rel, "ET"),
                             _dice_headline(summary, folder, rel, "TC"),
                             _qu_headline(summary, folder, rel)) if h is not None]
        evidence = _evidence(folder, summary)
        if i == 0:
            evidence += [e for e in (_training(run),) if e is not None] + _cohort(run)
        notes = []
        if synthetic:
            notes.append("Data: a synthetic BraTS-like cohort made by this run (synth_brats); "
                         "the numbers show what the pipeline does, not the published result.")
        models = list(dict.fromkeys(summary.model))
        notes.append(f"Models evaluated: {', '.join(models)}.")
        found.append(StudyFindings(
            key="hadnet" if i == 0 else f"hadnet-{i + 1}",
            title=TITLE if i == 0 else f"{TITLE} ({folder.relative_to(run).as_posix()})",
            reference=REFERENCE, folder=folder, headlines=heads,
            key_figure=Figure(path=folder / "dice.png",
                              caption="Dice per case and region, one box per model"),
            evidence=evidence, notes=notes))
    return found
