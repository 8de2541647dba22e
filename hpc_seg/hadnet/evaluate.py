"""BraTS scores of several HAD-Net models on one split: per case, summaries, tables, figures.

For each named model (e.g. teacher, student, student-ft, AD-Net, HAD-Net) the predictions are
written with :func:`hpc_seg.hadnet.predict.predict` (re-used when present) and compared, on the
original grid, with the case's ``<subject>_seg.nii.gz`` (or, if the source is gone, the
preprocessed label restored to the original grid). Per case and region (WT, TC, ET): Dice (both
empty = 1), HD95 in mm at the case's voxel spacing, sensitivity and specificity, all through the
MONAI wrappers of :mod:`hpc_seg.metrics` (see :mod:`hpc_seg.hadnet.region_scores`). With
``uncertainty`` the predictions also carry uncertainty maps, and each case and region gets the
BraTS QU score and its three AUCs (:mod:`hpc_seg.metrics.qu_score`), the FTN counted inside the
brain mask.

Outputs in ``out_dir`` (stable names; other tools read them):

- ``scores_per_case.csv``: model, case_id, region, dice, hd95_mm, sensitivity, specificity
  [, qu, qu_auc_dice, qu_auc_ftp, qu_auc_ftn]
- ``scores_summary.csv``: model, region, metric, n, mean, std, median
- ``scores_table.md``: one models x regions table per metric, ``mean ± sd (median)``
- ``hd95.png``: box plots of HD95 per region, one box per model
- ``qu_curves.csv`` / ``qu_curves.png`` (with uncertainty): mean Dice, FTP and FTN ratio against
  the threshold, per model and region
- ``dice_per_case.csv`` (model, case_id, ET, TC, WT), ``dice_summary.csv`` (model, region, n, mean,
  std, median; the returned table), ``dice_table.md`` and ``dice.png``: the Dice-only views
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpc_seg.errors import InputError
from hpc_seg.hadnet.region_scores import REGIONS, region_dice, region_masks, region_scores
from hpc_seg.hadnet.predict import prediction_path, predict, uncertainty_paths
from hpc_seg.hadnet.score_tables import (box_figure, markdown_tables, qu_curve_figure,
                                   summarise_scores)
from hpc_seg.hadnet.brats.preprocess import restore_to_original
from hpc_seg.hadnet.brats.reader import labels_to_classes
from hpc_seg.hadnet.brats.shards import read_cases
from hpc_seg.hadnet.uncertainty import UncertaintyMethod
from hpc_seg.metrics.qu_score import qu_score
from hpc_seg.storage.shards import atomic_write_bytes, decode_array

log = logging.getLogger(__name__)

REGION_ORDER = ("ET", "TC", "WT")  # column order of dice_per_case.csv (unchanged)


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


def brain_mask(row: dict) -> np.ndarray:
    """The case's brain mask (bool) on its original grid."""
    shape = row.get("brain_mask_shape") or row["image_shape"][1:]
    mask = decode_array(row["brain_mask"], shape, "|u1")
    return restore_to_original(mask, row).astype(bool)


def voxel_spacing(row: dict) -> list[float]:
    """Voxel size in mm along the three array axes, from the case's affine."""
    affine = np.asarray(row["affine"], dtype=np.float64).reshape(4, 4)
    return [float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0))]


def _load_classes(path: Path) -> np.ndarray:
    import nibabel as nib

    if not path.is_file():
        raise InputError(f"{path}: prediction missing")
    return labels_to_classes(np.asarray(nib.load(path).dataobj))


def dice_rows(name: str, pred_dir: Path, rows: list[dict]) -> list[dict]:
    """Per-case Dice of one model's predictions (the ``dice_per_case.csv`` rows)."""
    out = []
    for row in rows:
        pred = _load_classes(prediction_path(pred_dir, row["case_id"]))
        d = region_dice(pred, ground_truth(row), smooth=0.0)
        out.append({"model": name, "case_id": row["case_id"], **{r: d[r] for r in REGION_ORDER}})
    return out


def score_case(name: str, pred_dir: Path, row: dict, with_qu: bool
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of ``scores_per_case.csv`` (one per region) and QU curve rows of one case."""
    import nibabel as nib

    pred = _load_classes(prediction_path(pred_dir, row["case_id"]))
    gt = ground_truth(row)
    scores = region_scores(pred, gt, voxel_spacing(row))
    rows = [{"model": name, "case_id": row["case_id"], "region": r, "dice": s["dice"],
             "hd95_mm": s["hd95"], "sensitivity": s["sensitivity"],
             "specificity": s["specificity"]} for r, s in scores.items()]
    curves: list[dict[str, Any]] = []
    if with_qu:
        brain = brain_mask(row)
        p_masks, g_masks = region_masks(pred).numpy(), region_masks(gt).numpy()
        paths = uncertainty_paths(pred_dir, str(row["case_id"]))
        for i, (rec, region) in enumerate(zip(rows, REGIONS)):
            unc = np.asarray(nib.load(paths[region]).dataobj, dtype=np.float64)
            q = qu_score(p_masks[i], g_masks[i], unc, brain)
            rec.update(qu=q.score, qu_auc_dice=q.auc_dice, qu_auc_ftp=q.auc_ftp,
                       qu_auc_ftn=q.auc_ftn)
            curves += [{"model": name, "case_id": row["case_id"], "region": region, "tau": t,
                        "dice": d, "ftp": fp, "ftn": fn}
                       for t, d, fp, fn in zip(q.thresholds, q.dice, q.ftp, q.ftn)]
    return rows, curves


def _csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_bytes(df.to_csv(index=False).encode(), path)


def evaluate(models: dict[str, str | Path], pre_dir: str | Path, out_dir: str | Path, *,
             split: str = "test", device: str = "auto", uncertainty: str | None = None,
             seed: int = 0) -> Path:
    """Predict with every model and tabulate the BraTS scores; returns ``dice_summary.csv``.

    ``uncertainty`` (``entropy``, ``mcdropout[:N]``) adds uncertainty maps and the QU score.
    """
    pre_dir, out_dir = Path(pre_dir), Path(out_dir)
    if not models:
        raise InputError("evaluate: no models given")
    method = UncertaintyMethod.parse(uncertainty) if uncertainty else None
    # Geometry, labels and masks only: the images are re-read, one at a time, by predict.
    rows = [{k: v for k, v in r.items() if k != "image"} for r in read_cases(pre_dir, split=split)]
    if not rows:
        raise InputError(f"{pre_dir}: no cases in split {split!r}")
    per_case, dice_wide, curves = [], [], []
    for name, model in models.items():
        pred_dir = predict(model, pre_dir, out_dir / "predictions" / name, split=split,
                           device=device, uncertainty=method, seed=seed)
        for row in rows:
            recs, curve = score_case(name, pred_dir, row, with_qu=method is not None)
            per_case += recs
            curves += curve
            dice_wide.append({"model": name, "case_id": row["case_id"],
                              **{r["region"]: r["dice"] for r in recs}})
    scores = pd.DataFrame(per_case)
    summary = summarise_scores(scores)
    _csv(scores, out_dir / "scores_per_case.csv")
    _csv(summary, out_dir / "scores_summary.csv")
    title = f"HAD-Net scores, {split} split, {len(rows)} case(s)" + (
        f", uncertainty {method}" if method else "")
    table = markdown_tables(summary, len(rows), title)
    atomic_write_bytes(table.encode(), out_dir / "scores_table.md")
    box_figure(scores, "hd95_mm", out_dir / "hd95.png")
    if method is not None:
        mean_curves = (pd.DataFrame(curves).groupby(["model", "region", "tau"], sort=False)
                       [["dice", "ftp", "ftn"]].mean().reset_index())
        _csv(mean_curves, out_dir / "qu_curves.csv")
        qu_curve_figure(mean_curves, out_dir / "qu_curves.png", str(method))
    # The Dice-only views, as before this module grew the other scores.
    dice_summary = summary[summary.metric == "dice"].drop(columns="metric")
    _csv(pd.DataFrame(dice_wide)[["model", "case_id", *REGION_ORDER]], out_dir / "dice_per_case.csv")
    _csv(dice_summary, out_dir / "dice_summary.csv")
    atomic_write_bytes(markdown_tables(summary[summary.metric == "dice"], len(rows)).encode(),
                       out_dir / "dice_table.md")
    box_figure(scores, "dice", out_dir / "dice.png", ylim=(-0.02, 1.02))
    log.info("BraTS scores of %d model(s) on %d case(s) -> %s\n%s", len(models), len(rows),
             out_dir, table)
    return out_dir / "dice_summary.csv"
