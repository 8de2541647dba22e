"""The transfer study's two figures: validation curves and the data-requirement plot."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from hpc_seg.storage.shards import atomic_write_bytes

COLORS = {"R": "tab:blue", "TL": "tab:orange", "TL2": "tab:green"}


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(buf.getvalue(), path)


def validation_curves(logs: pd.DataFrame, path: Path) -> None:
    """Validation Dice (LV solid, MY dashed) against images seen: one panel per subset, one
    colour per init."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subsets = list(dict.fromkeys(logs.subset)) if len(logs) else ["(none)"]
    ncol = min(3, len(subsets))
    nrow = math.ceil(len(subsets) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False,
                             sharey=True)
    for ax, subset in zip(axes.flat, subsets):
        for init, g in logs[logs.subset == subset].groupby("init"):
            ax.plot(g.images_seen, g.diceLV, "-", color=COLORS.get(init), label=f"{init} LV")
            ax.plot(g.images_seen, g.diceMY, "--", color=COLORS.get(init), label=f"{init} MY")
        ax.set_title(subset)
        ax.set_xlabel("images seen")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(subsets):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("validation Dice")
    axes[0, 0].legend(fontsize=7)
    _save(fig, path)


def data_requirement(dice: pd.DataFrame, path: Path) -> None:
    """Test Dice LV and MY per subset (x) and init (colour); rows that did not run are absent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = dice[dice.init.isin(COLORS) & dice.LV.notna() & (dice.reference == "observer1")]
    subsets = list(dict.fromkeys(runs.subset)) or ["(none)"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    x = np.arange(len(subsets))
    for ax, col in zip(axes, ("LV", "MY")):
        for k, (init, color) in enumerate(COLORS.items()):
            g = runs[runs.init == init].set_index("subset")
            ys = [g[col].get(s, np.nan) for s in subsets]
            ax.bar(x + (k - 1) * 0.27, ys, 0.27, color=color, label=init)
        for ref, style in (("base", ":"), ("observer 2", "--")):
            val = dice.loc[dice.model == ref, col]
            if len(val) and pd.notna(val.iloc[0]):
                ax.axhline(float(val.iloc[0]), color="k", ls=style, lw=1, label=ref)
        ax.set_xticks(x, subsets)
        ax.set_title(f"test Dice {col}")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    missing = dice.loc[dice.note.fillna("").str.startswith("not run"), "model"].tolist()
    if missing:
        fig.text(0.01, -0.04, "not run: " + ", ".join(missing), fontsize=7)
    _save(fig, path)
