"""A slices dataset from label maps alone: splits, classes, padding, streaming, errors, re-runs."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from hpc_seg.cardiac.resize import fit_pad
from hpc_seg.cardiac.slices.label_maps import PAD, build_label_map_slices, find_cases
from hpc_seg.cardiac.slices.stream import SliceStream
from hpc_seg.errors import InputError
from tests.cardiac.label_map_fixtures import label_map_slices, write_label_maps  # noqa: F401


def test_rows_hold_the_fitted_structures_and_the_masks_of_their_classes(label_map_slices):
    df = pd.read_parquet(label_map_slices)
    meta = json.loads((label_map_slices / "_meta.json").read_text())
    assert meta["images"] is False and meta["classes"] == {"lv": [1, 4], "myocardium": [2]}
    assert meta["structures"]["4"] == "lv_papillary_trabeculae"
    assert "image" not in df.columns and len(df) == 5 * 4 * 3
    assert df.groupby("split").stack_id.nunique().to_dict() == {"train": 3, "validate": 1, "test": 1}
    row = df[(df.stack_id == "case1") & (df.slice == 1) & (df.frame == 2)].iloc[0]
    s = np.frombuffer(row.structures, np.uint8).reshape(64, 64)
    m = np.frombuffer(row["mask"], np.uint8).reshape(64, 64)
    # The map is fitted like the stored masks: rows 48 > cols 40 -> columns padded.
    source = Path(meta["label_maps_dir"]) / "train" / "case1.nii.gz"
    data = np.asarray(nib.load(source).dataobj).transpose(3, 2, 1, 0)
    expect = fit_pad(torch.from_numpy(data[2, 1].astype(np.int16) + 1)[None], 64, "nearest")[0]
    assert np.array_equal(s.astype(int), np.where(expect.numpy() == 0, PAD, expect.numpy() - 1))
    assert (row.pad_top, row.pad_left) == (0, 5) and bool((s[:, :5] == PAD).all())
    assert np.array_equal(m, np.select([np.isin(s, [1, 4]), s == 2], [1, 2], 0))
    assert row.lv_pixels_true == int((m == 1).sum()) > 0
    # ED and ES come from the LV size: the phantom's ED is frame 0.
    frames = df[df.stack_id == "case1"].groupby("frame").is_ed.first()
    assert frames.tolist() == [True, False, False, False]


def test_the_stream_reads_structures_and_masks(label_map_slices):
    stream = SliceStream(label_map_slices, "train", batch_size=8, columns=("structures", "mask"))
    batch = next(iter(stream))
    assert set(batch) == {"structures", "mask"} and batch["structures"].shape == (8, 64, 64)
    with pytest.raises(InputError, match="no image column"):
        next(iter(SliceStream(label_map_slices, "train", batch_size=8)))


def test_flat_folders_split_by_sorted_name_and_need_their_classes(tmp_path):
    maps = write_label_maps(tmp_path / "flat", 5, split_folders=False, structures_json=False)
    assert [(c.case_id, c.split) for c in find_cases(maps)] == [
        ("case1", "train"), ("case2", "train"), ("case3", "train"), ("case4", "validate"),
        ("case5", "test")]
    with pytest.raises(InputError, match="which label ids are lv and myocardium"):
        build_label_map_slices(maps, tmp_path / "s", 64)
    with pytest.raises(InputError, match=r"ids \[2\] are both"):
        build_label_map_slices(maps, tmp_path / "s", 64, lv=[1, 2], myocardium=[2])
    out = build_label_map_slices(maps, tmp_path / "s", 64, lv=[1, 4], myocardium=[2])
    assert pd.read_parquet(out).split.value_counts().to_dict() == {"train": 36, "validate": 12,
                                                                   "test": 12}


def test_rerun_skips_and_changed_inputs_rebuild(tmp_path):
    maps = write_label_maps(tmp_path / "maps", 5)
    out = build_label_map_slices(maps, tmp_path / "s", 64)
    before = {f.name: f.stat().st_mtime_ns for f in out.glob("*.parquet")}
    build_label_map_slices(maps, out, 64)
    assert {f.name: f.stat().st_mtime_ns for f in out.glob("*.parquet")} == before
    write_label_maps(tmp_path / "maps", 5, seed=1)           # other maps, same names
    build_label_map_slices(maps, out, 64)
    assert {f.name: f.stat().st_mtime_ns for f in out.glob("*.parquet")} != before


def test_bad_label_maps_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no label maps"):
        build_label_map_slices(tmp_path, tmp_path / "s", 64)
    (tmp_path / "train").mkdir()
    nib.save(nib.Nifti1Image(np.full((4, 4, 2), 0.5, np.float32), np.eye(4)),
             tmp_path / "train" / "bad.nii.gz")
    with pytest.raises(InputError, match="bad.nii.gz: label maps hold integer ids"):
        build_label_map_slices(tmp_path, tmp_path / "s", 64, lv=[1], myocardium=[2])
    (tmp_path / "train" / "bad.nii.gz").write_bytes(b"not nifti")
    with pytest.raises(InputError, match="bad.nii.gz: cannot read as NIfTI"):
        build_label_map_slices(tmp_path, tmp_path / "s", 64, lv=[1], myocardium=[2])
