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
