"""Tiny NIfTI label maps as a user (or ``synth cine --label-maps``) would bring them.

Each case is the beating LV phantom of :mod:`tests.cardiac.cohort` with more structures: air
(0) outside an elliptic body (5), LV blood (1) with a papillary muscle (4), myocardium (2), RV (3).
The mask classes are LV = {1, 4}, myocardium = {2}.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.cardiac.cohort import phantom

CLASSES = {"lv": [1, 4], "myocardium": [2]}
NAMES = {"0": "background", "1": "lv_blood", "2": "lv_myocardium", "3": "rv_blood",
         "4": "lv_papillary_trabeculae", "5": "soft_tissue"}


def case_map(rng: np.random.Generator, frames: int = 4, slices: int = 3, rows: int = 48,
             cols: int = 40) -> np.ndarray:
    """[T, K, R, C] structure ids of one case."""
    _, m = phantom(frames, slices, rows, cols, rng)
    yy, xx = np.mgrid[0:rows, 0:cols]
    body = ((yy - rows / 2) / (0.48 * rows)) ** 2 + ((xx - cols / 2) / (0.48 * cols)) ** 2 < 1
    s = np.where(m == 0, np.where(body, 5, 0), m).astype(np.uint8)
    for t in range(frames):
        for k in range(slices):
            lv = np.argwhere(s[t, k] == 1)
            if len(lv):
                r, c = lv[len(lv) // 3]
                s[t, k, r:r + 2, c:c + 2][s[t, k, r:r + 2, c:c + 2] == 1] = 4
    return s


def write_label_maps(root: Path, n_cases: int = 5, *, split_folders: bool = True,
                     structures_json: bool = True, seed: int = 0) -> Path:
    """``root`` with ``{train,validate,test}/case<i>.nii.gz`` (or flat) label maps."""
    rng = np.random.default_rng(seed)
    n_train, n_val = round(0.6 * n_cases), round(0.8 * n_cases)
    for i in range(1, n_cases + 1):
        split = "train" if i <= n_train else "validate" if i <= n_val else "test"
        data = case_map(rng)
        img = nib.Nifti1Image(np.transpose(data, (3, 2, 1, 0)), np.diag([1.5, 1.25, 8.0, 1.0]))
        folder = root / split if split_folders else root
        folder.mkdir(parents=True, exist_ok=True)
        nib.save(img, folder / f"case{i}.nii.gz")
    if structures_json:
        (root / "structures.json").write_text(json.dumps({"structures": NAMES,
                                                          "classes": CLASSES}))
    return root


@pytest.fixture(scope="session")
def label_map_slices(tmp_path_factory):
    """A slices dataset (64 px) built from five label maps alone."""
    from hpc_seg.cardiac.slices.label_maps import build_label_map_slices

    root = tmp_path_factory.mktemp("label_maps")
    maps = write_label_maps(root / "maps")
    return build_label_map_slices(maps, root / "slices_64", 64)


def image_slices_of(label_slices: Path, out: Path) -> Path:
    """An image slices dataset of the same slices as ``label_slices`` (as ``hpc-seg labels``
    would write for the cases the maps were drawn from): a fixed grey value per structure id,
    the ``structures`` column dropped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hpc_seg.storage.shards import shard_files

    lut = np.arange(256, dtype=np.uint8) * 40
    out.mkdir(parents=True)
    for shard in shard_files(label_slices):
        t = pq.read_table(shard)
        images = [lut[np.frombuffer(s, np.uint8)].tobytes() for s in t.column("structures").to_pylist()]
        t = t.drop_columns(["structures"]).append_column("image", pa.array(images, pa.binary()))
        pq.write_table(t, out / shard.name)
    meta = json.loads((label_slices / "_meta.json").read_text())
    meta = {k: v for k, v in meta.items() if k not in ("structures", "label_maps_dir")}
    (out / "_meta.json").write_text(json.dumps({**meta, "images": True}))
    return out


@pytest.fixture(scope="session")
def hybrid_slices(label_map_slices, tmp_path_factory):
    """The label-map slices joined with an image slices dataset of the same slices."""
    from hpc_seg.cardiac.slices.hybrid import build_hybrid_slices

    root = tmp_path_factory.mktemp("hybrid")
    return build_hybrid_slices(label_map_slices, image_slices_of(label_map_slices, root / "images"),
                               root / "hybrid_64")
