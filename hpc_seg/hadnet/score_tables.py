"""Tables and figures of ``hpc-seg hadnet evaluate``: per-model summaries of the per-case scores.

Input is the long per-case table (one row per model, case and region with the columns of
:data:`METRICS` that were computed). Summaries give n (finite values only: sensitivity is
undefined for a region absent from the truth), mean, sd and median per model, region and metric.
Models keep the order they were given in; regions are shown WT, TC, ET.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from hpc_seg.metrics.paired import PAIRED_COLUMNS, paired_difference
from hpc_seg.storage.shards import atomic_write_bytes

REGION_ORDER = ("WT", "TC", "ET")
# column -> (title, decimals)
METRICS: dict[str, tuple[str, int]] = {
    "dice": ("Dice", 3), "hd95_mm": ("HD95 (mm)", 1), "sensitivity": ("Sensitivity", 3),
    "specificity": ("Specificity", 4), "qu": ("QU score", 3), "qu_auc_dice": ("QU AUC Dice", 3),
    "qu_auc_ftp": ("QU AUC FTP (lower is better)", 3),
    "qu_auc_ftn": ("QU AUC FTN (lower is better)", 4)}


def summarise_scores(per_case: pd.DataFrame) -> pd.DataFrame:
    """model, region, metric, n, mean, std, median (models in their given order)."""
    metrics = [m for m in METRICS if m in per_case.columns]
    long = per_case.melt(id_vars=["model", "case_id", "region"], value_vars=metrics,
                         var_name="metric", value_name="value").dropna(subset=["value"])
    g = long.groupby(["model", "region", "metric"], sort=False)["value"]
    out = g.agg(n="count", mean="mean", std="std", median="median").reset_index()
    order = {m: i for i, m in enumerate(dict.fromkeys(per_case.model))}
    out["_m"], out["_r"] = out.model.map(order), out.region.map(REGION_ORDER.index)
    out["_k"] = out.metric.map(list(METRICS).index)
    return out.sort_values(["_k", "_m", "_r"]).drop(columns=["_m", "_r", "_k"]).reset_index(drop=True)


# The paper's claims (HAD-Net ahead of the pre-trained student and of AD-Net, the ablation without
# feature pairs), AD-Net against the student, and HAD-Net against the control that trains the same
# epochs with lambda = 0 (what the teacher adds beyond the extra training).
COMPARISONS = (("HAD-Net", "student"), ("HAD-Net", "AD-Net"), ("AD-Net", "student"),
               ("HAD-Net", "student-ft"))
PAIRED_METRICS = ("dice", "qu")
PAIRED_TABLE_COLUMNS = ["comparison", "region", "metric", "cases", *PAIRED_COLUMNS]


def paired_table(per_case: pd.DataFrame) -> pd.DataFrame:
    """Paired differences of the models in :data:`COMPARISONS` per region and metric (Dice, QU).

    The unit is the test case. ``cases = "all"`` uses every test case, BraTS's convention (a case
    without the region scores Dice 1 for an empty prediction, 0 otherwise); ``cases = "with
    region"`` only the cases whose truth has the region (those where sensitivity is defined), the
    ones on which a model can show that it segments it. Comparisons whose models were not
    evaluated are left out.
    """
    rows = []
    models = set(per_case.model)
    metrics = [m for m in PAIRED_METRICS if m in per_case.columns]
    for a, b in COMPARISONS:
        if not {a, b} <= models:
            continue
        pa = per_case[per_case.model == a].set_index(["case_id", "region"])
        pb = per_case[per_case.model == b].set_index(["case_id", "region"])
        joined = pa.merge(pb, left_index=True, right_index=True, suffixes=("_a", "_b"))
        for region in REGION_ORDER[::-1]:
            every = joined.xs(region, level="region")
            # sensitivity is undefined (NaN) exactly when the truth lacks the region
            subsets = {"all": every, "with region": every[every.sensitivity_a.notna()]}
            for metric in metrics:
                for cases, s in subsets.items():
                    res = paired_difference(s[f"{metric}_a"].to_numpy(), s[f"{metric}_b"].to_numpy())
                    rows.append({"comparison": f"{a} - {b}", "region": region, "metric": metric,
                                 "cases": cases, **res.as_dict()})
    return pd.DataFrame(rows, columns=PAIRED_TABLE_COLUMNS)


def paired_markdown(paired: pd.DataFrame, title: str = "") -> str:
    """The paired table as markdown: ``mean_diff [ci_low, ci_high]``, p and n per row."""
    out = [f"## {title}\n"] if title else []
    out += ["| comparison | region | metric | cases | n | mean diff [95 % CI] | Wilcoxon p |",
            "|---|---|---|---|---|---|---|"]
    for r in paired.itertuples(index=False):
        out.append(f"| {r.comparison} | {r.region} | {r.metric} | {r.cases} | {r.n} | "
                   f"{r.mean_diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] | {r.p_wilcoxon:.3g} |")
    return "\n".join(out) + "\n"


def markdown_tables(summary: pd.DataFrame, n_cases: int, title: str = "") -> str:
    """One models x regions table per metric: ``mean ± sd (median)``; ``n=`` where values miss."""
    out = [f"## {title}\n"] if title else []
    models = list(dict.fromkeys(summary.model))
    for metric, (name, dec) in METRICS.items():
        sub = summary[summary.metric == metric]
        if sub.empty:
            continue
        out += [f"### {name}: mean ± sd (median)\n", "| model | " + " | ".join(REGION_ORDER) + " |",
                "|---|" + "---|" * len(REGION_ORDER)]
        for model in models:
            cells = []
            for region in REGION_ORDER:
                s = sub[(sub.model == model) & (sub.region == region)]
                if s.empty:
                    cells.append("n/a")
                    continue
                s = s.iloc[0]
                sd = 0.0 if np.isnan(s["std"]) else s["std"]
                cell = f"{s['mean']:.{dec}f} ± {sd:.{dec}f} ({s['median']:.{dec}f})"
                if int(s.n) < n_cases:
                    cell += f" n={int(s.n)}"
                cells.append(cell)
            out.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _save_png(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(buf.getvalue(), path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def box_figure(per_case: pd.DataFrame, metric: str, path: Path, ylim: tuple | None = None) -> Path:
    """Box plots of one per-case metric, one panel per region, one box per model."""
    plt = _pyplot()
    models = list(dict.fromkeys(per_case.model))
    fig, axes = plt.subplots(1, len(REGION_ORDER), figsize=(4 * len(REGION_ORDER), 4), sharey=True)
    for ax, region in zip(axes, REGION_ORDER):
        sub = per_case[per_case.region == region]
        data = [sub[sub.model == m][metric].dropna().to_numpy() for m in models]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(models) + 1), models, rotation=20)
        ax.set_title(f"{METRICS[metric][0]} {region}")
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"{METRICS[metric][0]} per case")
    return _save_png(fig, path)


def qu_curve_figure(curves: pd.DataFrame, path: Path, method: str) -> Path:
    """Mean Dice, FTP ratio and FTN ratio against the threshold: rows curves, columns regions."""
    plt = _pyplot()
    models = list(dict.fromkeys(curves.model))
    kinds = (("dice", "Dice of the kept voxels"), ("ftp", "filtered TP ratio"),
             ("ftn", "filtered TN ratio"))
    fig, axes = plt.subplots(len(kinds), len(REGION_ORDER), figsize=(4 * len(REGION_ORDER), 9),
                             sharex=True, sharey="row")
    for j, region in enumerate(REGION_ORDER):
        for i, (col, label) in enumerate(kinds):
            ax = axes[i, j]
            for m in models:
                c = curves[(curves.model == m) & (curves.region == region)].sort_values("tau")
                ax.plot(c.tau, c[col], label=m)
            ax.set_xlim(100, 0)  # filtering grows left to right, as in the BraTS QU paper
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"{region} ({method})")
            if j == 0:
                ax.set_ylabel(label)
            if i == len(kinds) - 1:
                ax.set_xlabel("uncertainty threshold tau")
    axes[0, 0].legend(fontsize=8)
    return _save_png(fig, path)
