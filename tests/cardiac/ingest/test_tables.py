"""``volumes`` rows are wrapped without copies: what is written reads back byte for byte."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from hpc_seg.cardiac.ingest import tables as T
from hpc_seg.cardiac.curate.stack import CuratedStack
from hpc_seg.storage.shards import atomic_write_table, decode_array


def _stack(sid: str, pixels: np.ndarray, mask: np.ndarray | None) -> CuratedStack:
    return CuratedStack(sid, sid, False, pixels, mask, (1.0, 1.0), 8.0, [0.0, 8.0], [0.0] * 3,
                        np.eye(4), 1.0, [1, 2])


def test_volumes_table_round_trips_arrays_and_null_masks(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 4000, size=(3, 2, 5, 7)).astype(np.uint16)
    rotated = np.rot90(base, axes=(2, 3))            # a non-contiguous view, as for _rot90
    mask = rng.integers(0, 4, size=base.shape).astype(np.uint8)
    rows = [T.volume_row(_stack("1", base, mask), "1", "train"),
            T.volume_row(_stack("1_rot90", rotated, None), "1", "train")]
    path = atomic_write_table(T.volumes_table(rows), tmp_path / "v.parquet",
                              write_options=T.VOLUMES_WRITE_OPTIONS, row_group_size=1)
    back = pq.read_table(path).to_pylist()
    assert [r["stack_id"] for r in back] == ["1", "1_rot90"]
    np.testing.assert_array_equal(decode_array(back[0]["pixels"], back[0]["shape"], back[0]["dtype"]), base)
    np.testing.assert_array_equal(decode_array(back[0]["mask"], back[0]["shape"], "|u1"), mask)
    np.testing.assert_array_equal(decode_array(back[1]["pixels"], back[1]["shape"], back[1]["dtype"]),
                                  rotated)
    assert back[1]["mask"] is None and back[1]["shape"] == [3, 2, 7, 5]
