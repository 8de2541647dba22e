"""A tiny ``volumes`` table written the way ingest does, for stage tests.

Each stack is a beating LV phantom: a bright disc (LV cavity, label 1) inside a darker ring
(myocardium, label 2) with an RV crescent (label 3); the cavity radius follows a cosine over the
cardiac cycle, so ED is frame 0 and ES mid-cycle. ``truth.csv`` is written from the exact volumes
times a per-patient error factor, which makes the confidence score known in advance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hpc_seg.cardiac.labels.build import build_labels
from hpc_seg.storage.shards import atomic_write_table, encode_array
from hpc_seg.cardiac.slices.build import build_slices
from hpc_seg.cardiac.train.config import TrainConfig


def phantom(frames: int, slices: int, rows: int, cols: int, rng: np.random.Generator,
            r_ed: float = 0.22, r_es: float = 0.14) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:rows, 0:cols]
    cy, cx = rows / 2 + rng.uniform(-2, 2), cols / 2 + rng.uniform(-2, 2)
    m = np.zeros((frames, slices, rows, cols), np.uint8)
    scale = min(rows, cols)
    for t in range(frames):
        phase = (1 - np.cos(2 * np.pi * t / frames)) / 2  # 0 at ED, 1 mid-cycle (ES)
        for k in range(slices):
            taper = 1.0 - 0.5 * abs(k - (slices - 1) / 2) / max(slices, 1)
            r = (r_ed + (r_es - r_ed) * phase) * scale * taper
            d = np.hypot(yy - cy, xx - cx)
            m[t, k][d <= r + 0.12 * scale * taper] = 2
            m[t, k][d <= r] = 1
            rv = (np.hypot(yy - cy, xx - (cx + 0.3 * scale)) <= 0.12 * scale) & (m[t, k] == 0)
            m[t, k][rv] = 3
    base = np.array([40, 900, 350, 600], np.float32)[m]
    pixels = base + rng.normal(0, 30, m.shape).astype(np.float32)
    return np.clip(pixels, 0, 4000).astype(np.uint16), m


def write_volumes(root: Path, n_patients: int = 4, frames: int = 6, slices: int = 3,
                  rows: int = 40, cols: int = 48, seed: int = 0,
                  truth_error: dict[str, float] | None = None) -> tuple[Path, Path]:
    """Write ``root/volumes`` and ``root/truth.csv``; returns (volumes_dir, truth_csv)."""
    rng = np.random.default_rng(seed)
    rows_out, truth = [], []
    n_train, n_val = round(0.6 * n_patients), round(0.8 * n_patients)
    for pid in range(1, n_patients + 1):
        split = "train" if pid <= n_train else "validate" if pid <= n_val else "test"
        px, m = phantom(frames, slices, rows, cols, rng)
        ps, ss = [1.5, 1.5], 8.0
        pdata, shape, dtype = encode_array(px)
        rows_out.append({"stack_id": str(pid), "subject_id": str(pid), "patient_id": str(pid),
                         "split": split, "rotated_90": False, "shape": shape, "dtype": dtype,
                         "pixels": pdata, "mask": encode_array(m)[0], "pixel_spacing_mm": ps,
                         "slice_spacing_mm": ss, "slice_positions_mm": [8.0 * k for k in range(slices)],
                         "frame_times_ms": [30.0 * t for t in range(frames)],
                         "affine": np.eye(4).ravel().tolist(), "scale_factor": 1.0,
                         "series_numbers": list(range(1, slices + 1))})
        vox = ps[0] * ps[1] * ss / 1000
        lv = (m == 1).reshape(frames, -1).sum(1) * vox
        err = (truth_error or {}).get(str(pid), 0.0)
        truth.append({"Id": pid, "Systole": lv.min() * (1 + err), "Diastole": lv[0] * (1 + err)})
    vol_dir = root / "volumes"
    atomic_write_table(pa.Table.from_pylist(rows_out), vol_dir / "part-test-00000.parquet")
    truth_csv = root / "truth.csv"
    pd.DataFrame(truth).to_csv(truth_csv, index=False)
    return vol_dir, truth_csv


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """5 patients (3 train, 1 validate, 1 test); patient 2's truth is 8 % off, patient 3's 20 %."""
    root = tmp_path_factory.mktemp("cohort")
    volumes, truth = write_volumes(root, n_patients=5, truth_error={"2": 0.08, "3": 0.20})
    labels = root / "labels"
    build_labels(volumes, labels, truth)
    slices = build_slices(volumes, labels, root / "slices_64", 64)
    return {"root": root, "volumes": volumes, "truth": truth, "labels": labels, "slices": slices}


def tiny_config(**changes) -> TrainConfig:
    """A CPU-sized config: resnet18 with a narrow decoder, 64 px, 1 + 1 epochs."""
    base = dict(encoder="resnet18", decoder_channels=[32, 16, 16, 8, 8], image_size=64,
                batch_size=8, epochs_frozen=1, epochs_unfrozen=1, confidence_set="all", lr=1e-3,
                shuffle_buffer=32)
    base.update(changes)
    return TrainConfig(**base)
