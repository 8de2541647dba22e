"""Evaluate trained 2D U-Nets on held-out patients: predictions, EF table, Dice, figures.

Outputs in ``out_dir``:

- ``predictions/<model>.parquet``: file, lv_pixels, my_pixels (+ ids and per-image metrics) for
  every image of the evaluated split (kept between runs: a re-run only predicts new models);
- ``ef_table.csv``: the published EF table, one row per model plus the label source
  (``label source (<name>)``, the published "UKBB" row);
- ``ef_per_patient.csv``: per method and patient true/predicted EDV, ESV, EF and the error;
- ``dice_table.csv``: mean per-image Dice LV / MY / combined foreground and accuracy per model;
- ``figures/volumes.png``, ``figures/bland_altman_ef.png``, ``figures/overlays_<model>.png``.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from hpc_seg.storage.shards import atomic_write_bytes, read_table, shard_files
from hpc_seg.cardiac.slices.stream import binary_column_to_array
from hpc_seg.cardiac.slices.build import read_meta
from hpc_seg.errors import InputError
from hpc_seg.cardiac.results import ef as efm
from hpc_seg.cardiac.results import figures
from hpc_seg.cardiac.segment import load_model, predict_images, predict_slices
from hpc_seg.runtime.device import resolve_device
from hpc_seg.storage.names import child

log = logging.getLogger(__name__)


def evaluate(models: dict[str, Path], slices_dir: Path, labels_dir: Path, out_dir: Path,
             split: str = "test", device: str = "auto", n_overlays: int = 8) -> Path:
    """Evaluate ``models`` (name -> model.pt) on ``split`` of ``slices_dir``; returns ``out_dir``."""
    slices_dir, labels_dir, out_dir = Path(slices_dir), Path(labels_dir), Path(out_dir)
    meta = read_meta(slices_dir)
    for name, path in models.items():
        if not Path(path).is_file():
            raise InputError(f"{path}: model {name!r} not found")
    info = _slice_info(slices_dir, split)
    geometry = info.drop_duplicates("stack_id")[efm.GEOMETRY_COLUMNS]
    labels = read_table(labels_dir / "labels",
                        columns=["patient_id", "split", "systole", "diastole"]).to_pandas()
    truth = labels[(labels.split == split) & np.isfinite(labels.systole) & np.isfinite(labels.diastole)]
    if truth.empty:
        raise InputError(f"{labels_dir}: no {split} patient has Systole/Diastole truth")
    predictions = {}
    for name, path in models.items():
        out = child(out_dir / "predictions", name, suffix=".parquet")   # a user's model name
        if not out.is_file() or out.stat().st_mtime < Path(path).stat().st_mtime:
            predict_slices(Path(path), slices_dir, out, splits=(split,), device=device)
        predictions[name] = pd.read_parquet(out)
    per_patient = {name: efm.patient_ef(df, "lv_pixels", geometry, truth) for name, df in predictions.items()}
    source = f"label source ({meta.get('label_source', 'labels')})"
    per_patient[source] = efm.patient_ef(info, "lv_pixels_true", geometry, truth)
    ef_table = efm.ef_summary(per_patient)
    dice_table = efm.dice_summary(predictions)
    long = pd.concat([df.assign(method=name) for name, df in per_patient.items()], ignore_index=True)
    _write_csv(ef_table, out_dir / "ef_table.csv")
    _write_csv(dice_table, out_dir / "dice_table.csv")
    _write_csv(long, out_dir / "ef_per_patient.csv")
    figures.volume_scatter(per_patient, out_dir / "figures" / "volumes.png")
    figures.bland_altman(per_patient, out_dir / "figures" / "bland_altman_ef.png")
    for name, path in models.items():
        _overlay_figure(name, Path(path), slices_dir, info,
                        child(out_dir / "figures", f"overlays_{name}", suffix=".png"),
                        n_overlays, device)
    log.info("EF table (|true EF - predicted EF| x 100, %s split):\n%s", split,
             ef_table.to_string(index=False))
    return out_dir


def _slice_info(slices_dir: Path, split: str) -> pd.DataFrame:
    cols = ["file", *efm.GEOMETRY_COLUMNS, "split", "slice", "frame", "lv_pixels_true", "my_pixels_true"]
    files = [f for f in shard_files(slices_dir) if f.name.startswith(f"part-{split}-")]
    if not files:
        raise InputError(f"{slices_dir}: no {split} images")
    return pd.concat([pq.read_table(f, columns=cols).to_pandas() for f in files], ignore_index=True)


def _overlay_figure(name: str, model_path: Path, slices_dir: Path, info: pd.DataFrame, path: Path,
                    n: int, device: str) -> None:
    """Overlays on the ED and ES frames of mid-ventricular slices of a few patients."""
    mid = info[info.lv_pixels_true > 0]
    if mid.empty or n <= 0:
        return
    picks = mid.sort_values("lv_pixels_true", ascending=False).drop_duplicates("stack_id").head(n // 2)
    smallest = mid.sort_values("lv_pixels_true").drop_duplicates("stack_id").head(n - len(picks))
    wanted = set(pd.concat([picks, smallest]).file)
    rows = []
    for f in shard_files(slices_dir):
        tbl = pq.read_table(f, columns=["file", "image", "mask"])
        keep = [i for i, v in enumerate(tbl.column("file").to_pylist()) if v in wanted]
        if keep:
            rows.append(tbl.take(keep))
    size = int(info["size"].iloc[0])
    files = [v for t in rows for v in t.column("file").to_pylist()]
    images = np.concatenate([binary_column_to_array(t.column("image"), (size, size)) for t in rows])
    masks = np.concatenate([binary_column_to_array(t.column("mask"), (size, size)) for t in rows])
    dev = resolve_device(device)
    model, _ = load_model(model_path, str(dev))
    pred = predict_images(model, torch.from_numpy(images.copy())[:, None], dev).numpy()
    figures.overlays(images, masks, pred, [f"{name}\n{f}" for f in files], path)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.4g")
    atomic_write_bytes(buf.getvalue().encode(), path)
