"""Transfer subsets: nesting, prefixes, twin sizes, ED/ES frames, determinism, split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpc_seg.cardiac.transfer.subsets import (SUBSETS, SubsetConfig, epochs_for, esed_frames,
                                              make_subsets, split_volunteers)
from hpc_seg.errors import ConfigError, InputError


def _images(seed: int = 0, volunteers: int = 14) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for v in range(volunteers):
        frames, slices = int(rng.integers(18, 26)), int(rng.integers(14, 19))
        curve = rng.uniform(50, 100) + 40 * np.cos(np.linspace(0, 2 * np.pi, frames, endpoint=False)
                                                   + rng.uniform(0, 6))
        for t in range(frames):
            for s in range(slices):
                lv = int(max(0, curve[t] * np.sin(np.pi * (s + 0.5) / slices) + rng.normal(0, 3)))
                rows.append({"file": f"{v + 1}_a/slice{s:02d}_frame{t:02d}", "Id": str(v + 1),
                             "frame": t, "slice": s, "lv_pixels": lv})
    return pd.DataFrame(rows)


def test_nesting_prefixes_and_twin_sizes():
    images = _images()
    subsets, _ = make_subsets(images)
    vols = {k: set(subsets.Id[subsets[k]]) for k in ("v7", "v3", "v1")}
    assert [len(vols[k]) for k in ("v7", "v3", "v1")] == [7, 3, 1]
    assert vols["v1"] <= vols["v3"] <= vols["v7"]
    for k in ("v7", "v3", "v1"):     # a volunteer subset holds all images of its volunteers
        assert subsets[k].sum() == images.Id.isin(vols[k]).sum()
    for r, twin in (("r7", "v7"), ("r3", "v3"), ("r1", "v1"), ("r_esed", "esed")):
        assert subsets[r].sum() == subsets[twin].sum()
    # prefixes of one permutation: each smaller random subset lies inside each larger one
    sizes = sorted(((int(subsets[r].sum()), r) for r in ("r7", "r3", "r1", "r_esed")))
    for (_, small), (_, big) in zip(sizes, sizes[1:]):
        assert not (subsets[small] & ~subsets[big]).any()
    assert list(subsets.columns) == ["file", "Id", "frame", "slice", *SUBSETS, "full"]
    assert subsets.full.all()


def test_esed_is_argmax_argmin_of_lv_pixels_over_slices():
    images = _images(1)
    subsets, frames = make_subsets(images)
    per = images.groupby(["Id", "frame"]).lv_pixels.sum()
    for vid, es, ed in zip(frames.Id, frames.es, frames.ed):
        curve = per.loc[vid]
        assert ed == curve.index[np.argmax(curve.to_numpy())]
        assert es == curve.index[np.argmin(curve.to_numpy())]
        chosen = subsets[(subsets.Id == vid) & subsets.esed]
        assert set(chosen.frame) == {es, ed}
        assert len(chosen) == 2 * images[images.Id == vid].slice.nunique()
    assert list(frames.columns) == ["Id", "es", "ed"]


def test_deterministic_in_seed_and_independent_of_row_order():
    images = _images(2)
    a, _ = make_subsets(images, SubsetConfig(seed=42))
    b, _ = make_subsets(images.sample(frac=1.0, random_state=3), SubsetConfig(seed=42))
    c, _ = make_subsets(images, SubsetConfig(seed=43))
    pd.testing.assert_frame_equal(a, b)
    assert not a[list(SUBSETS)].equals(c[list(SUBSETS)])


def test_errors_and_epochs_and_split():
    with pytest.raises(ConfigError, match="need n_v7 >= n_v3 >= n_v1 >= 1, got 2, 3, 1"):
        SubsetConfig(n_v7=2, n_v3=3)
    with pytest.raises(InputError, match="v7 needs 7"):
        make_subsets(_images(volunteers=5))
    assert epochs_for(5076, 2626) == 19 and epochs_for(5076, 1001) == 51
    assert epochs_for(5076, 306) == 166 and epochs_for(5076, 448) == 113
    ids = [str(i) for i in range(1, 23)]
    split = split_volunteers(ids, ["20", "21", "22"], 5, 42)
    assert [v for v, s in split.items() if s == "test"] == ["20", "21", "22"]
    assert sum(s == "validate" for s in split.values()) == 5
    assert sum(s == "train" for s in split.values()) == 14
    assert split == split_volunteers(list(reversed(ids)), ["20", "21", "22"], 5, 42)


def test_esed_frames_ties_take_the_first_frame():
    df = pd.DataFrame({"Id": ["1"] * 4, "frame": [0, 1, 2, 3], "lv_pixels": [5, 9, 9, 1]})
    assert esed_frames(df).to_dict("records") == [{"Id": "1", "es": 3, "ed": 1}]
