"""The cmr-seg-tl PNG layout -> volumes (masks included) -> labels -> slices, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hpc_seg.cardiac.ingest.png_layout import ingest_png_layout, read_png_layout
from hpc_seg.cardiac.labels.build import build_labels
from hpc_seg.cardiac.slices.build import build_slices
from hpc_seg.errors import InputError
from hpc_seg.storage.shards import decode_array, iter_rows


def _write(folder, vid, slices=3, frames=2, levels=(1, 2), skip_mask=None):
    rng = np.random.default_rng(int(vid))
    for s in range(slices):
        for t in range(frames):
            img = rng.integers(0, 255, (20, 24), dtype=np.uint8)
            Image.fromarray(img).save(folder / f"{vid}_slice{s:03d}_frame{t:03d}-image.png")
            if (s, t) == skip_mask:
                continue
            mask = np.zeros((20, 24), np.uint8)
            mask[5:15, 6:18] = levels[1]
            mask[8:12, 9:15 - t] = levels[0]
            Image.fromarray(mask).save(folder / f"{vid}_slice{s:03d}_frame{t:03d}-mask.png")


def test_png_layout_to_slices(tmp_path):
    src = tmp_path / "png"
    src.mkdir()
    _write(src, "26")
    _write(src, "30", levels=(127, 254), skip_mask=(1, 1))      # 0/127/254 masks, one missing
    vols = read_png_layout(src)
    assert vols["26"][0].shape == (2, 3, 20, 24)
    assert set(np.unique(vols["30"][1])) == {0, 1, 2}
    assert not vols["30"][1][1, 1].any()                          # missing mask = empty
    volumes = ingest_png_layout(src, tmp_path / "ingest", {"26": "test", "30": "train"},
                                pixel_spacing_mm=1.25, slice_spacing_mm=6.0)
    rows = list(iter_rows(volumes))
    assert [r["patient_id"] for r in rows] == ["26", "30"]
    mask = decode_array(rows[0]["mask"], rows[0]["shape"], "|u1")
    assert np.array_equal(mask, vols["26"][1])
    build_labels(volumes, tmp_path / "labels", tmp_path / "ingest" / "truth.csv")
    out = build_slices(volumes, tmp_path / "labels", tmp_path / "slices", 32)
    assert any(out.glob("part-test-*.parquet")) and any(out.glob("part-train-*.parquet"))


def test_png_layout_errors(tmp_path):
    with pytest.raises(InputError, match="no files named"):
        read_png_layout(tmp_path)
    _write(tmp_path, "5")
    (tmp_path / "5_slice001_frame000-image.png").unlink()
    with pytest.raises(InputError, match=r"5_slice001_frame000-image.png: missing"):
        read_png_layout(tmp_path)
