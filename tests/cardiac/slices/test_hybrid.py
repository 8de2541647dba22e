"""Hybrid slices: each label-map row gets its own slice's image, or a clear error."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_seg.cardiac.slices.hybrid import build_hybrid_slices
from hpc_seg.errors import InputError
from hpc_seg.storage.shards import shard_files
from tests.cardiac.label_map_fixtures import (hybrid_slices, image_slices_of,  # noqa: F401
                                              label_map_slices)


def test_every_row_gets_the_image_of_its_own_slice_and_a_rerun_skips(hybrid_slices,
                                                                    label_map_slices):
    hybrid = pd.read_parquet(hybrid_slices)
    maps = pd.read_parquet(label_map_slices)
    assert len(hybrid) == len(maps) and set(hybrid.file) == set(maps.file)
    lut = np.arange(256, dtype=np.uint8) * 40          # the fixture's grey value per id
    for row in hybrid.itertuples():
        assert row.image == lut[np.frombuffer(row.structures, np.uint8)].tobytes(), row.file
    meta = json.loads((hybrid_slices / "_meta.json").read_text())
    assert meta["images"] is True and meta["complete"] and "structures" in meta
    before = [(f.name, f.stat().st_mtime_ns) for f in shard_files(hybrid_slices)]
    images = meta["image_slices"][0]
    build_hybrid_slices(label_map_slices, images, hybrid_slices)
    assert [(f.name, f.stat().st_mtime_ns) for f in shard_files(hybrid_slices)] == before


def test_a_slice_whose_masks_differ_or_that_has_no_image_is_refused(label_map_slices, tmp_path):
    images = image_slices_of(label_map_slices, tmp_path / "images")
    shard = shard_files(images)[0]
    t = pq.read_table(shard)
    masks = t.column("mask").to_pylist()
    wrong = bytearray(masks[3])
    wrong[0] = 2 if wrong[0] != 2 else 1
    masks[3] = bytes(wrong)
    changed = t.set_column(t.column_names.index("mask"), "mask", pa.array(masks, pa.binary()))
    pq.write_table(changed, shard)
    with pytest.raises(InputError, match=f"mask of {t.column('file')[3].as_py()} differs"):
        build_hybrid_slices(label_map_slices, images, tmp_path / "a")
    pq.write_table(t.slice(1), shard)                    # the first slice has no image now
    with pytest.raises(InputError, match=f"no image for 1 slices .* {t.column('file')[0].as_py()}"):
        build_hybrid_slices(label_map_slices, images, tmp_path / "b")
    assert not (tmp_path / "b" / "_meta.json").exists()
    shutil.rmtree(images)
    with pytest.raises(InputError, match="not a slices dataset"):
        build_hybrid_slices(label_map_slices, images, tmp_path / "c")
