"""The slices dataset: published resize, plain-pandas readability, streaming without loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from hpc_seg.cardiac.slices.stream import SliceStream
from hpc_seg.cardiac.resize import FitPad, fit_pad, unfit_pad
from hpc_seg.cardiac.slices.build import build_slices


def test_fit_longer_side_then_zero_pad_by_hand():
    geo = FitPad(rows=40, cols=48, size=64)
    assert geo.scale == pytest.approx(64 / 48)
    assert geo.inner == (53, 64) and geo.pad == (5, 0)
    img = torch.full((1, 40, 48), 7.0)
    out = fit_pad(img, 64, "bilinear")
    assert out.shape == (1, 64, 64)
    assert out[0, :5].abs().max() == 0 and out[0, 58:].abs().max() == 0
    assert torch.allclose(out[0, 5:58], torch.full((53, 64), 7.0))
    labels = torch.randint(0, 3, (2, 40, 48)).to(torch.uint8)
    back = unfit_pad(fit_pad(labels, 96, "nearest").to(torch.uint8), 40, 48)
    assert (back == labels).float().mean() > 0.97  # nearest there and back: rounding at edges only


def test_dataset_is_plain_pandas_and_complete(cohort):
    df = pd.read_parquet(cohort["slices"])
    assert len(df) == 5 * 6 * 3  # patients x frames x slices
    assert df.groupby("split").stack_id.nunique().to_dict() == {"train": 3, "validate": 1, "test": 1}
    row = df.iloc[0]
    img = np.frombuffer(row.image, np.uint8).reshape(row["shape"])
    mask = np.frombuffer(row["mask"], np.uint8).reshape(row["shape"])
    assert img.shape == (64, 64) and set(np.unique(mask)) <= {0, 1, 2}  # RV dropped
    assert row.lv_pixels_true == int((mask == 1).sum())
    assert (row["rows"], row["cols"], row["size"], row["pad_top"]) == (40, 48, 64, 5)
    assert df.in_p05.sum() == 3 * 18


def test_rebuild_skips_finished_and_changed_size_rebuilds(cohort, tmp_path):
    out = tmp_path / "s"
    build_slices(cohort["volumes"], cohort["labels"], out, 32)
    shard = sorted(out.glob("part-*.parquet"))[0]
    mtime = shard.stat().st_mtime_ns
    build_slices(cohort["volumes"], cohort["labels"], out, 32)
    assert shard.stat().st_mtime_ns == mtime
    shard.unlink()  # an interrupted build: only the missing shard is written again
    (out / "_meta.json").write_text((out / "_meta.json").read_text().replace('"complete": true', '"complete": false'))
    build_slices(cohort["volumes"], cohort["labels"], out, 32)
    assert shard.is_file()
    build_slices(cohort["volumes"], cohort["labels"], out, 64)
    assert np.frombuffer(pd.read_parquet(shard).image.iloc[0], np.uint8).size == 64 * 64


def _files(ds, workers=0):
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    return [f for b in loader for f in b["file"]]


def test_stream_yields_every_row_once_per_epoch_across_workers(cohort):
    ds = SliceStream(cohort["slices"], "train", batch_size=5, shuffle=True, seed=3,
                     shuffle_buffer=8, with_ids=True)
    expected = set(pd.read_parquet(cohort["slices"], columns=["file", "split"]).query("split == 'train'").file)
    one = _files(ds)
    assert sorted(one) == sorted(expected) and len(one) == 54
    two = _files(ds, workers=2)
    assert sorted(two) == sorted(expected)
    again = _files(ds)
    assert again == one  # same epoch -> same order
    ds.set_epoch(1)
    assert _files(ds) != one


def test_stream_filters_confidence_set_and_caps(cohort):
    p05 = SliceStream(cohort["slices"], "train", confidence_set="p05", batch_size=4, with_ids=True)
    assert {f.split("/")[0] for f in _files(p05)} == {"1"}
    capped = SliceStream(cohort["slices"], "train", batch_size=4, max_images=10, with_ids=True)
    assert len(_files(capped)) == 12  # whole batches up to the cap
    val = SliceStream(cohort["slices"], "validate", batch_size=4, shuffle=False, max_images=7, with_ids=True)
    first = _files(val)
    assert len(first) == 7 and _files(val) == first
    batch = next(iter(SliceStream(cohort["slices"], "test", batch_size=4)))
    assert batch["image"].shape == (4, 1, 64, 64) and batch["image"].dtype == torch.uint8
    assert batch["mask"].shape == (4, 64, 64)
