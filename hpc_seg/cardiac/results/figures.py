"""Evaluation figures (PNG, matplotlib Agg): volumes, Bland-Altman of EF, example overlays."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from hpc_seg.storage.shards import atomic_write_bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return atomic_write_bytes(buf.getvalue(), path)


def volume_scatter(per_patient: dict[str, pd.DataFrame], path: Path) -> Path:
    """Predicted vs true EDV and ESV, one row of two panels per method."""
    plt = _plt()
    n = len(per_patient)
    fig, axes = plt.subplots(n, 2, figsize=(8, 3.6 * n), squeeze=False)
    for i, (name, df) in enumerate(per_patient.items()):
        for j, (what, true, pred) in enumerate((("EDV", "true_edv_ml", "pred_edv_ml"),
                                                ("ESV", "true_esv_ml", "pred_esv_ml"))):
            ax = axes[i, j]
            ax.scatter(df[true], df[pred], s=12, alpha=0.7)
            hi = np.nanmax([df[true].max(), df[pred].max(), 1.0]) * 1.05
            ax.plot([0, hi], [0, hi], "k--", lw=0.8)
            ax.set(xlim=(0, hi), ylim=(0, hi), xlabel=f"true {what} (mL)",
                   ylabel=f"predicted {what} (mL)", title=f"{name}: {what}")
    fig.tight_layout()
    return _save(fig, path)


def bland_altman(per_patient: dict[str, pd.DataFrame], path: Path) -> Path:
    """Bland-Altman plots of EF (x100): mean of true and predicted vs their difference."""
    plt = _plt()
    n = len(per_patient)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    for ax, (name, df) in zip(axes.ravel(), per_patient.items()):
        ok = df.pred_ef.notna()
        t, p = df.true_ef[ok] * 100, df.pred_ef[ok] * 100
        diff, mean = p - t, (p + t) / 2
        ax.scatter(mean, diff, s=12, alpha=0.7)
        if len(diff):
            bias, sd = diff.mean(), diff.std(ddof=1) if len(diff) > 1 else 0.0
            for y, style in ((bias, "-"), (bias + 1.96 * sd, "--"), (bias - 1.96 * sd, "--")):
                ax.axhline(y, color="k", ls=style, lw=0.8)
        ax.set(xlabel="mean EF (%)", ylabel="predicted - true EF (%)", title=name)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def overlays(images: np.ndarray, truth: np.ndarray, pred: np.ndarray, titles: list[str],
             path: Path) -> Path:
    """Image with the true (green) and predicted (red) LV and myocardium outlines."""
    plt = _plt()
    n = len(images)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax, img, t, p, title in zip(axes.ravel(), images, truth, pred, titles):
        ax.imshow(img, cmap="gray")
        for m, color in ((t, "lime"), (p, "red")):
            for label in (1, 2):
                if (m == label).any():
                    ax.contour((m == label).astype(float), levels=[0.5], colors=color, linewidths=0.8)
        ax.set_title(title, fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)
