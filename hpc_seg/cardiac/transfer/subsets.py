"""Training subsets of the transfer study: volunteer, random-image and ED/ES subsets.

All draws come from one ``numpy.random.default_rng(seed)`` stream, in the published order:

1. ``v7`` = ``n_v7`` training volunteers drawn without replacement; ``v3`` = ``n_v3`` drawn from
   ``v7``; ``v1`` = ``n_v1`` drawn from ``v3`` (so v1 is in v3 is in v7);
2. one permutation of all training images; ``r7``, ``r3``, ``r1`` and ``r_esed`` are its first
   ``|v7|``, ``|v3|``, ``|v1|`` and ``|esed|`` images, so every random subset is a prefix of the
   larger ones and has the size of its twin.

``esed`` = every slice of each training volunteer's ED frame (most LV pixels summed over slices)
and ES frame (fewest). Ties go to the earliest frame (``argmax``/``argmin``).

Tables (published columns): ``esed_frames`` (Id, es, ed) and ``image_subsets`` (file, Id, frame,
slice, then one boolean column per subset). ``full`` marks the whole training set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hpc_seg.cardiac.transfer.config import SUBSETS, SubsetConfig
from hpc_seg.errors import InputError

TWINS = {"r7": "v7", "r3": "v3", "r1": "v1", "r_esed": "esed"}


def esed_frames(images: pd.DataFrame) -> pd.DataFrame:
    """``Id, es, ed`` per volunteer from per-image LV pixel counts (columns Id, frame, lv_pixels)."""
    per_frame = images.groupby(["Id", "frame"], sort=True)["lv_pixels"].sum().reset_index()
    rows = []
    for vid, g in per_frame.groupby("Id", sort=True):
        frames, lv = g.frame.to_numpy(), g.lv_pixels.to_numpy()
        rows.append({"Id": vid, "es": int(frames[np.argmin(lv)]), "ed": int(frames[np.argmax(lv)])})
    return pd.DataFrame(rows, columns=["Id", "es", "ed"])


def make_subsets(images: pd.DataFrame, cfg: SubsetConfig | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``image_subsets``, ``esed_frames``) for the training images.

    ``images`` has one row per training image: ``file, Id, frame, slice, lv_pixels``. Its row
    order does not matter (rows are sorted by file first, so the draw depends only on the data).
    """
    cfg = cfg or SubsetConfig()
    need = {"file", "Id", "frame", "slice", "lv_pixels"}
    if missing := need - set(images.columns):
        raise InputError(f"subsets: image table lacks columns {sorted(missing)}")
    if images.file.duplicated().any():
        raise InputError("subsets: duplicate image ids in the training set")
    img = images.sort_values("file", kind="stable").reset_index(drop=True)
    volunteers = np.array(sorted(img.Id.unique()))
    if len(volunteers) < cfg.n_v7:
        raise InputError(f"subsets: {len(volunteers)} training volunteers, but v7 needs "
                         f"{cfg.n_v7}; lower subsets.n_v7")
    rng = np.random.default_rng(cfg.seed)
    v7 = rng.choice(volunteers, cfg.n_v7, replace=False)
    v3 = rng.choice(v7, cfg.n_v3, replace=False)
    v1 = rng.choice(v3, cfg.n_v1, replace=False)
    perm = rng.permutation(len(img))
    frames = esed_frames(img)
    ed = dict(zip(frames.Id, frames.ed))
    es = dict(zip(frames.Id, frames.es))
    out = img[["file", "Id", "frame", "slice"]].copy()
    out["full"] = True
    out["v7"] = img.Id.isin(v7)
    out["v3"] = img.Id.isin(v3)
    out["v1"] = img.Id.isin(v1)
    out["esed"] = [f == ed[v] or f == es[v] for v, f in zip(img.Id, img.frame)]
    for name, twin in TWINS.items():
        flag = np.zeros(len(img), dtype=bool)
        flag[perm[:int(out[twin].sum())]] = True
        out[name] = flag
    return out[["file", "Id", "frame", "slice", *SUBSETS, "full"]], frames


def epochs_for(n_full: int, n_subset: int, base_epochs: int = 10) -> int:
    """Epochs per phase keeping the steps constant: ``round(base * N_full / n)`` (the published rule)."""
    if n_subset < 1:
        raise InputError("a training subset is empty")
    return max(1, round(base_epochs * n_full / n_subset))


def split_volunteers(ids: list[str], test: list[str], n_validate: int = 5, seed: int = 42
                     ) -> dict[str, str]:
    """Volunteer -> split: ``test`` as given (those with a second observer), ``n_validate``
    random others (seeded) validate, the rest train."""
    ids = sorted(ids)
    unknown = sorted(set(test) - set(ids))
    if unknown:
        raise InputError(f"split: test volunteers {unknown} are not in the cohort")
    rest = [v for v in ids if v not in set(test)]
    if len(rest) <= n_validate:
        raise InputError(f"split: {len(rest)} volunteers outside the test set, but {n_validate} "
                         "are to validate and at least one must train")
    val = set(np.random.default_rng(seed).choice(rest, n_validate, replace=False).tolist())
    return {v: "test" if v in set(test) else "validate" if v in val else "train" for v in ids}
