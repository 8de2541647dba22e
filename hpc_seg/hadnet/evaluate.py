"""Dice ET / TC / WT of several HAD-Net models on one split: per case, summary, table, figure.

For each named model (e.g. teacher, student, AD-Net, HAD-Net) the predictions are written with
:func:`hpc_seg.hadnet.predict.predict` (re-used when present) and compared, in the
original grid, with the case's ``<subject>_seg.nii.gz`` (or, if the source is gone, the
preprocessed label restored to the original grid). Dice is the plain one with "both empty = 1".

Outputs in ``out_dir``:

- ``dice_per_case.csv``: model, case_id, ET, TC, WT
- ``dice_summary.csv``: model, region, n, mean, std, median (the returned table)
- ``dice_table.md``: models x regions, mean +- std, as printed by ``hpc-seg hadnet evaluate``
- ``dice.png``: box plots per region, one box per model
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hpc_seg.storage.shards import atomic_write_bytes, decode_array
from hpc_seg.errors import InputError
from hpc_seg.hadnet.predict import predict
from hpc_seg.hadnet.brats.preprocess import restore_to_original
from hpc_seg.hadnet.brats.reader import labels_to_classes
from hpc_seg.hadnet.brats.shards import read_cases
from hpc_seg.hadnet.metrics import region_dice

log = logging.getLogger(__name__)

REGION_ORDER = ("ET", "TC", "WT")


def ground_truth(row: dict) -> np.ndarray:
    """Classes 0..3 of one case on its original grid."""
    import nibabel as nib

    seg = Path(str(row.get("source_dir") or "")) / f"{row['case_id']}_seg.nii.gz"
    if seg.is_file():
        return labels_to_classes(np.asarray(nib.load(seg).dataobj))
    if row.get("label") is None:
        raise InputError(f"case {row['case_id']}: no label in the cohort and no {seg}")
    label = decode_array(row["label"], row["label_shape"], row["label_dtype"])
    return restore_to_original(label.astype(np.uint8), row)


def dice_rows(name: str, pred_dir: Path, rows: list[dict]) -> list[dict]:
    """Per-case Dice of one model's predictions."""
    import nibabel as nib

    out = []
    for row in rows:
        pred = labels_to_classes(np.asarray(nib.load(pred_dir / f"{row['case_id']}.nii.gz").dataobj))
        gt = ground_truth(row)
        d = region_dice(pred, gt, smooth=0.0)
        out.append({"model": name, "case_id": row["case_id"], **{r: d[r] for r in REGION_ORDER}})
    return out


def summarise(per_case: pd.DataFrame) -> pd.DataFrame:
    """model x region: n, mean, std, median (models in their given order)."""
    long = per_case.melt(id_vars=["model", "case_id"], value_vars=list(REGION_ORDER),
                         var_name="region", value_name="dice")
    g = long.groupby(["model", "region"], sort=False)["dice"]
    summary = g.agg(n="count", mean="mean", std="std", median="median").reset_index()
    return summary


def markdown_table(summary: pd.DataFrame) -> str:
    """Models as rows, ET/TC/WT as columns, ``mean +- std``."""
    lines = ["| model | " + " | ".join(f"Dice {r}" for r in REGION_ORDER) + " | n |",
             "|---|" + "---|" * (len(REGION_ORDER) + 1)]
    for model, sub in summary.groupby("model", sort=False):
        cells = []
        for r in REGION_ORDER:
            s = sub[sub.region == r].iloc[0]
            cells.append(f"{s['mean']:.3f} ± {0.0 if np.isnan(s['std']) else s['std']:.3f}")
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {int(sub.n.iloc[0])} |")
    return "\n".join(lines) + "\n"


def dice_figure(per_case: pd.DataFrame, path: Path) -> Path:
    """Box plots of per-case Dice, one panel per region, one box per model."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(per_case.model))
    fig, axes = plt.subplots(1, len(REGION_ORDER), figsize=(4 * len(REGION_ORDER), 4), sharey=True)
    for ax, region in zip(axes, REGION_ORDER):
        data = [per_case[per_case.model == m][region].to_numpy() for m in models]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(models) + 1), models, rotation=20)
        ax.set_title(f"Dice {region}")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("Dice per case")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(buf.getvalue(), path)


def evaluate(models: dict[str, str | Path], pre_dir: str | Path, out_dir: str | Path, *,
             split: str = "test", device: str = "auto") -> Path:
    """Predict with every model and tabulate Dice ET/TC/WT; returns ``dice_summary.csv``."""
    pre_dir, out_dir = Path(pre_dir), Path(out_dir)
    if not models:
        raise InputError("evaluate: no models given")
    # Geometry and labels only: the images are re-read, one at a time, by predict.
    rows = [{k: v for k, v in r.items() if k != "image"} for r in read_cases(pre_dir, split=split)]
    if not rows:
        raise InputError(f"{pre_dir}: no cases in split {split!r}")
    per_case = []
    for name, model in models.items():
        pred_dir = predict(model, pre_dir, out_dir / "predictions" / name, split=split,
                           device=device)
        per_case += dice_rows(name, pred_dir, rows)
    df = pd.DataFrame(per_case)
    summary = summarise(df)
    atomic_write_bytes(df.to_csv(index=False).encode(), out_dir / "dice_per_case.csv")
    atomic_write_bytes(summary.to_csv(index=False).encode(), out_dir / "dice_summary.csv")
    atomic_write_bytes(markdown_table(summary).encode(), out_dir / "dice_table.md")
    dice_figure(df, out_dir / "dice.png")
    log.info("Dice table of %d model(s) on %d case(s) -> %s", len(models), len(rows), out_dir)
    return out_dir / "dice_summary.csv"
