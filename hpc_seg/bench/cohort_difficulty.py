"""What a test cohort asks of a model, apart from the model: how much one pixel of LV border is
worth, and whether the border can be seen at all.

``bench generalise`` reports mean volume errors; these two figures say how to read them:

- :func:`border_sensitivity`: on small hearts at a coarse matrix the volume targets are sub-pixel
  demands (on the held-out children at 128 px one pixel is ~30 % of the ESV);
- :func:`border_contrast`: a renderer can give the blood pool the myocardium's grey value (the
  k-space renderer's spoiled gradient echo, whose inflow contrast fades over the cycle, did so for
  one held-out patient's end-systole). There the cavity's border is not in the image, a model can
  only guess it from shape, and that patient's error says nothing about what a recipe learned.
  The benchmark scores the cohorts with and without such patients, and names them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Below this contrast-to-noise ratio between the LV cavity and the myocardium (either sign), the
#: two tissues' grey values overlap more than they differ: the border is not in the image.
LOW_CNR = 1.0


def border_sensitivity(slices_dir: Path) -> dict[str, float]:
    """What a one-pixel error of the LV border costs on a test cohort: mean over its patients of
    the EF change (points) and the EDV and ESV changes (% of the truth) when every true LV mask of
    the ED and ES frames grows by one pixel (4-connected), at the dataset's image size."""
    df = pd.read_parquet(slices_dir, columns=["patient_id", "is_ed", "is_es", "mask", "shape"])
    rows = []
    for _, g in df.groupby("patient_id"):
        area, grown = {}, {}
        for phase in ("is_ed", "is_es"):
            area[phase] = grown[phase] = 0
            for mask, shape in zip(g[g[phase]]["mask"], g[g[phase]]["shape"]):
                lv = np.frombuffer(mask, np.uint8).reshape(tuple(shape)) == 1
                ring = lv.copy()
                ring[1:] |= lv[:-1]
                ring[:-1] |= lv[1:]
                ring[:, 1:] |= lv[:, :-1]
                ring[:, :-1] |= lv[:, 1:]
                area[phase] += int(lv.sum())
                grown[phase] += int(ring.sum())
        if min(area.values()) == 0:
            continue
        ef = 1 - area["is_es"] / area["is_ed"]
        ef_grown = 1 - grown["is_es"] / grown["is_ed"]
        rows.append({"ef": abs(ef_grown - ef) * 100,
                     "edv_pct": (grown["is_ed"] / area["is_ed"] - 1) * 100,
                     "esv_pct": (grown["is_es"] / area["is_es"] - 1) * 100})
    return {k: float(np.mean([r[k] for r in rows])) for k in ("ef", "edv_pct", "esv_pct")} \
        if rows else {}


def _test_slices(workdir: Path, folder: str) -> Path | None:
    """The finished slices dataset of a test cohort's folder in the work folder (None before)."""
    from hpc_seg.cardiac.slices.build import META

    found = sorted(p.parent for p in Path(workdir).glob(f"{folder}/slices_*/{META}"))
    return found[0] if found else None


def held_out_border(workdir: Path) -> dict[str, float]:
    """:func:`border_sensitivity` of the work folder's held-out cohort ({} before it exists)."""
    slices = _test_slices(workdir, "held_out")
    return {"image_size": int(slices.name.split("_")[-1]), **border_sensitivity(slices)} \
        if slices else {}


def _cnr(inside: np.ndarray, outside: np.ndarray) -> float:
    """|mean difference| / pooled standard deviation (NaN where a class is empty)."""
    if inside.size == 0 or outside.size == 0:
        return float("nan")
    spread = np.sqrt(0.5 * (inside.var() + outside.var()))
    return float(abs(inside.mean() - outside.mean()) / spread) if spread > 0 else float("inf")


def border_contrast(slices_dir: Path) -> pd.DataFrame:
    """Per patient (``patient_id`` as str): the contrast-to-noise ratio of the true LV cavity (mask
    1) against the true myocardium (mask 2) in the stored images, over all slices of the true ED
    frame (``ed_cnr``) and of the true ES frame (``es_cnr``)."""
    df = pd.read_parquet(slices_dir, columns=["patient_id", "is_ed", "is_es", "image", "mask",
                                              "shape"])
    rows = []
    for pid, g in df.groupby("patient_id"):
        row = {"patient_id": str(pid)}
        for phase in ("ed", "es"):
            lv, my = [], []
            for image, mask, shape in zip(*(g[g[f"is_{phase}"]][c] for c in
                                            ("image", "mask", "shape"))):
                img = np.frombuffer(image, np.uint8).reshape(tuple(shape)).astype(np.float64)
                m = np.frombuffer(mask, np.uint8).reshape(tuple(shape))
                lv.append(img[m == 1])
                my.append(img[m == 2])
            row[f"{phase}_cnr"] = _cnr(np.concatenate(lv), np.concatenate(my)) if lv \
                else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=["patient_id", "ed_cnr", "es_cnr"])


def unseen_border(contrast: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`border_contrast` whose cavity border is not in the image at ED or ES."""
    return contrast[(contrast[["ed_cnr", "es_cnr"]] < LOW_CNR).any(axis=1)]


def cohort_contrast(workdir: Path) -> dict[str, pd.DataFrame]:
    """:func:`border_contrast` of the work folder's test cohorts that exist (``held_out``,
    ``cross``)."""
    out = {}
    for cohort, folder in (("held_out", "held_out"), ("cross", "held_out_kspace")):
        slices = _test_slices(workdir, folder)
        if slices:
            out[cohort] = border_contrast(slices)
    return out


def contrast_line(contrast: dict[str, pd.DataFrame]) -> str:
    """One line naming, per test cohort, the patients whose LV border is not in the image."""
    parts = []
    for cohort, df in contrast.items():
        low = unseen_border(df)
        names = ", ".join(f"{r.patient_id} (ED {r.ed_cnr:.1f}, ES {r.es_cnr:.1f})"
                          for r in low.itertuples()) or "none"
        parts.append(f"{cohort} {names}")
    return (f"Patients whose LV border is not in the image (cavity/myocardium contrast-to-noise "
            f"below {LOW_CNR:g} at ED or ES; the `visible border` figures leave them out): "
            + "; ".join(parts) + ".")
