"""A tiny synthetic cohort, its ingested stacks, and helpers to compare stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hpc_seg.cardiac.ingest.run import IngestConfig, ingest
from hpc_seg.cardiac.ingest.tables import SCHEMAS
from hpc_seg.cardiac.synth.cohort import generate_cine_cohort
from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.cardiac.synth.relayout import VariantOptions, rewrite_cohort
from hpc_seg.storage.shards import decode_array

#: two quirk-free patients (train and validate), 6 slices of 4 frames of 64x52 (JPEG 2000
#: needs both sides >= 32: OpenJPEG encodes 6 resolution levels)
TINY = CineSynthConfig(no_random_quirks=True, n_frames=4, long_axis_frames=2, max_matrix=64,
                       matrices=[[256, 208]], matrix_weights=[1.0], slices=(6, 6), workers=1)
LOCAL = IngestConfig(engine="local", workers=1, progress=False)


def make_original(root: Path, n_patients: int = 2) -> Path:
    generate_cine_cohort(root, n_patients, 5, TINY)
    return root


def variant(original: Path, out: Path, **options) -> Path:
    return rewrite_cohort(original, out, VariantOptions(**options))


def ingest_tables(src: Path, out: Path) -> dict[str, pd.DataFrame]:
    ingest(src, out, LOCAL)
    got = {}
    for name in ("volumes", "issues", "patients"):
        df = pd.read_parquet(out / name)
        # a table with no rows may have no shard at all: give it its columns
        got[name] = df if len(df.columns) else SCHEMAS[name].empty_table().to_pandas()
    return got


def stacks(volumes: pd.DataFrame) -> dict[str, dict]:
    """stack_id → pixels, affine (4x4), frame times, split."""
    out = {}
    for row in volumes.itertuples():
        out[row.stack_id] = {
            "pixels": decode_array(row.pixels, row.shape, row.dtype),
            "mask": None if row.mask is None else decode_array(row.mask, row.shape, "uint8"),
            "affine": np.asarray(row.affine, float).reshape(4, 4),
            "frame_times": list(row.frame_times_ms), "split": row.split}
    return out


def assert_same_stacks(got: dict[str, dict], want: dict[str, dict], masks: bool = True) -> None:
    """Bit-identical pixels (same dtype) and label masks, affine within 0.05 mm, same frame
    times."""
    assert sorted(got) == sorted(want)
    for sid, w in want.items():
        g = got[sid]
        assert g["pixels"].dtype == w["pixels"].dtype, sid
        assert g["pixels"].shape == w["pixels"].shape, sid
        assert np.array_equal(g["pixels"], w["pixels"]), f"{sid}: pixels differ"
        if masks:      # (a cohort's masks are found by pid under SRC/masks)
            assert w["mask"] is not None and np.array_equal(g["mask"], w["mask"]), f"{sid}: masks"
        assert np.abs(g["affine"] - w["affine"]).max() < 0.05, sid
        assert g["frame_times"] == w["frame_times"], sid
