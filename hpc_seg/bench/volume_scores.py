"""Volume errors of a model against the truth, for ``bench generalise`` and its breakdowns.

One definition for the headline scores and every breakdown (by vendor, by kind of scan, by
ablation variant), so that all count a patient without a prediction the same way.
"""

from __future__ import annotations

import pandas as pd


def volume_scores(per_patient: pd.DataFrame) -> dict[str, float]:
    """Mean |EF error| x 100 and mean |EDV|, |ESV| error in % of the truth.

    A patient without a prediction counts as volumes of 0 (100 % error), as its EF error counts 1.
    """
    df = per_patient.assign(pred_edv_ml=per_patient.pred_edv_ml.fillna(0.0),
                            pred_esv_ml=per_patient.pred_esv_ml.fillna(0.0))
    return {"ef_err": float(df.abs_diff.mean() * 100),
            "edv_err_pct": float(((df.pred_edv_ml - df.true_edv_ml).abs() / df.true_edv_ml).mean()
                                 * 100),
            "esv_err_pct": float(((df.pred_esv_ml - df.true_esv_ml).abs() / df.true_esv_ml).mean()
                                 * 100),
            "edv_bias_pct": float(((df.pred_edv_ml - df.true_edv_ml) / df.true_edv_ml).mean() * 100),
            "n": int(len(df)), "missing": int(df.pred_ef.isna().sum())}


def grouped_scores(model_rows: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """:func:`volume_scores` per group of ``model_rows`` (one row per group, its keys first): every
    breakdown counts a missing prediction as the headline does."""
    keys = [by] if isinstance(by, str) else list(by)
    return pd.DataFrame([{**dict(zip(keys, k if isinstance(k, tuple) else (k,))), **volume_scores(g)}
                         for k, g in model_rows.groupby(keys)])


def scan_kind(rows: pd.DataFrame) -> pd.Series:
    """The kind of scan the k-space renderer drew for each cross-generator row: ``bssfp``, ``gre``
    or ``bssfp with a band`` (from the ``kspace_*`` columns)."""
    return rows.kspace_sequence.where(rows.kspace_band_depth == 0,
                                      rows.kspace_sequence + " with a band")
