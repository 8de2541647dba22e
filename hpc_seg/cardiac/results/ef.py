"""Ejection fraction from per-image LV pixel counts, and the published EF table.

Per stack and frame the LV pixels are summed over slices; ED is the frame with the most pixels,
ES the one with the fewest. mL per pixel = max(X, Y)^2 * psX * psY * sliceSpacing / (1000 *
size^2), which undoes the fit-longer-side resize of the slices dataset. EF = (EDV - ESV) / EDV;
the error is |true EF - predicted EF| with the truth from ``truth.csv`` (Systole/Diastole). A
patient without a usable prediction counts as an error of 1. The table reports mean, sd, median
and IQR of the error x 100.

One stack per patient is scored: the unrotated stack of the patient's first acquisition
(``<pid>`` or ``<pid>_a``), so repeat acquisitions and the rotated copies do not count twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GEOMETRY_COLUMNS = ["stack_id", "subject_id", "patient_id", "rotated_90", "rows", "cols",
                    "pixel_spacing_mm", "slice_spacing_mm", "size"]


def ml_per_pixel(rows: int, cols: int, pixel_spacing_mm: list[float], slice_spacing_mm: float,
                 size: int) -> float:
    """Volume (mL) of one pixel of a ``size x size`` slice image, at the stack's native geometry."""
    return (max(rows, cols) ** 2 * float(pixel_spacing_mm[0]) * float(pixel_spacing_mm[1])
            * float(slice_spacing_mm) / (1000.0 * size ** 2))


def scored_stacks(geometry: pd.DataFrame) -> pd.DataFrame:
    """The stack scored for each patient (see the module docstring); one row per patient."""
    g = geometry[~geometry.rotated_90.astype(bool)].sort_values(["patient_id", "subject_id"])
    return g.drop_duplicates("patient_id", keep="first").reset_index(drop=True)


def stack_ef(pixels: pd.DataFrame, lv_column: str, geometry: pd.DataFrame) -> pd.DataFrame:
    """Per stack: EDV, ESV (mL), EF and the ED/ES frames from per-image LV pixel counts.

    ``pixels`` has ``stack_id``, ``frame`` and ``lv_column``; ``geometry`` one row per stack.
    """
    per_frame = pixels.groupby(["stack_id", "frame"], as_index=False)[lv_column].sum()
    out = []
    geo = geometry.set_index("stack_id")
    for sid, grp in per_frame.groupby("stack_id"):
        g = geo.loc[sid]
        scale = ml_per_pixel(int(g["rows"]), int(g["cols"]), g["pixel_spacing_mm"],
                             g["slice_spacing_mm"], int(g["size"]))
        values = grp[lv_column].to_numpy(dtype=np.float64)
        ed, es = int(np.argmax(values)), int(np.argmin(values))
        edv, esv = values[ed] * scale, values[es] * scale
        ef = (edv - esv) / edv if edv > 0 else float("nan")
        out.append({"stack_id": sid, "ed_frame": int(grp.frame.iloc[ed]),
                    "es_frame": int(grp.frame.iloc[es]), "edv_ml": edv, "esv_ml": esv, "ef": ef})
    return pd.DataFrame(out, columns=["stack_id", "ed_frame", "es_frame", "edv_ml", "esv_ml", "ef"])


def patient_ef(pixels: pd.DataFrame, lv_column: str, geometry: pd.DataFrame,
               truth: pd.DataFrame) -> pd.DataFrame:
    """Per patient: true and predicted EDV/ESV/EF and ``abs_diff`` (1.0 when no prediction).

    ``truth`` has ``patient_id``, ``systole`` and ``diastole`` (mL) for the patients to score.
    """
    scored = scored_stacks(geometry)[["patient_id", "stack_id"]]
    pred = stack_ef(pixels, lv_column, geometry)
    t = truth[["patient_id", "systole", "diastole"]].drop_duplicates("patient_id")
    df = t.merge(scored, on="patient_id", how="left").merge(pred, on="stack_id", how="left")
    df["true_ef"] = (df.diastole - df.systole) / df.diastole
    df["abs_diff"] = (df.true_ef - df.ef).abs().fillna(1.0)
    return df.rename(columns={"ef": "pred_ef", "edv_ml": "pred_edv_ml", "esv_ml": "pred_esv_ml",
                              "diastole": "true_edv_ml", "systole": "true_esv_ml"})


def ef_summary(per_patient: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The EF table: one row per method with mean, sd, median, iqr of |dEF| x 100, n, missing."""
    rows = []
    for name, df in per_patient.items():
        err = df.abs_diff.to_numpy(dtype=np.float64) * 100
        q1, q3 = np.percentile(err, [25, 75]) if err.size else (np.nan, np.nan)
        rows.append({"method": name, "mean": err.mean(), "sd": err.std(ddof=1) if err.size > 1 else 0.0,
                     "median": np.median(err), "iqr": q3 - q1, "n": int(err.size),
                     "missing": int(df.pred_ef.isna().sum())})
    return pd.DataFrame(rows).sort_values("mean", kind="stable").reset_index(drop=True)


def dice_summary(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Mean per-image metrics of each model over the evaluated images (HD95 in mm: mean and
    median, when the predictions have it; older prediction files do not)."""
    rows = []
    for name, df in predictions.items():
        row = {"method": name, "dice_lv": df.dice_lv.mean(), "dice_my": df.dice_my.mean(),
               "dice_fg": df.dice_fg.mean(), "accuracy": df.accuracy.mean()}
        for col in ("hd95_lv", "hd95_my"):
            if col in df:
                row[f"{col}_mm"] = df[col].mean()
                row[f"{col}_mm_median"] = df[col].median()
        rows.append({**row, "images": len(df)})
    return pd.DataFrame(rows)
