"""A ``slices`` dataset from label maps alone: for training with random appearance.

Input: a folder of NIfTI label maps, one per case (3D ``X, Y, Z`` or 4D ``X, Y, Z, T``; integer
structure ids 0-254), either in ``{train,validate,test}/`` subfolders or flat (then the sorted
cases split 60/20/20, the synthetic cohorts' rule). Which ids make up the network's classes comes
from ``structures.json`` beside them (``classes``: ``lv``, ``myocardium``, as
``hpc-seg synth cine --label-maps`` writes it) or from the caller (``lv``/``myocardium`` ids).

Output: the slices layout (``part-<split>-<n>.parquet`` + ``_meta.json``) with a ``structures``
column (the label map fitted into ``size x size`` like the masks, nearest neighbour; the padding
outside the field of view is :data:`PAD` = 255) and the ``mask`` column (0 / 1 LV / 2 myocardium)
derived from it, but no ``image`` column: ``_meta.json`` says ``"images": false``. Images are
rendered from the structures on the fly by the training loop (``appearance = "random"`` or
``"tissue"``), never stored; :mod:`.hybrid` adds a matching image slices dataset's images
(``appearance = "hybrid"``). A re-run with the same inputs (names, sizes, modification times) and size is skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from hpc_seg.cardiac.resize import FitPad, fit_pad
from hpc_seg.cardiac.slices.build import (IMAGES_PER_SHARD, ROW_GROUP, done_or_cleared,
                                          mark_complete)
from hpc_seg.errors import InputError
from hpc_seg.progress import progress_bar
from hpc_seg.storage.shards import atomic_write_table

log = logging.getLogger(__name__)

PAD = 255
STRUCTURES_FILE = "structures.json"
SPLITS = ("train", "validate", "test")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LabelMapCase:
    case_id: str
    split: str
    path: Path


def _case_id(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def find_cases(folder: Path) -> list[LabelMapCase]:
    """The label maps under ``folder`` and their splits (sub-folders, else sorted 60/20/20)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of label maps")
    nifti = ("*.nii", "*.nii.gz")
    if any((folder / s).is_dir() for s in SPLITS):
        cases = [LabelMapCase(_case_id(p), s, p) for s in SPLITS
                 for pattern in nifti for p in sorted((folder / s).glob(pattern))]
    else:
        paths = sorted(p for pattern in nifti for p in folder.glob(pattern))
        n = len(paths)
        cases = [LabelMapCase(_case_id(p), "train" if i < round(0.6 * n) else
                              "validate" if i < round(0.8 * n) else "test", p)
                 for i, p in enumerate(paths)]
    if not cases:
        raise InputError(f"{folder}: no label maps (*.nii, *.nii.gz) here or in "
                         f"{'/'.join(SPLITS)}/ sub-folders")
    return sorted(cases, key=lambda c: (SPLITS.index(c.split), c.case_id))


def class_ids(folder: Path, lv: list[int] | None, myocardium: list[int] | None
              ) -> tuple[dict[str, list[int]], dict[str, str]]:
    """({"lv": ids, "myocardium": ids}, structure names) from the caller or ``structures.json``."""
    doc_path = Path(folder) / STRUCTURES_FILE
    doc = json.loads(doc_path.read_text()) if doc_path.is_file() else {}
    classes = dict(doc.get("classes", {}))
    if lv is not None:
        classes["lv"] = list(lv)
    if myocardium is not None:
        classes["myocardium"] = list(myocardium)
    missing = [k for k in ("lv", "myocardium") if not classes.get(k)]
    if missing:
        raise InputError(f"{folder}: which label ids are {' and '.join(missing)}? Give them "
                         f"(--lv, --myocardium) or a {STRUCTURES_FILE} with 'classes'")
    overlap = set(classes["lv"]) & set(classes["myocardium"])
    if overlap:
        raise InputError(f"{folder}: ids {sorted(overlap)} are both lv and myocardium")
    return {"lv": [int(i) for i in classes["lv"]], "myocardium": [int(i) for i in
                                                                 classes["myocardium"]]}, \
        {str(k): v for k, v in doc.get("structures", {}).items()}


def load_label_map(path: Path) -> tuple[np.ndarray, tuple[float, float], float]:
    """(``[T, K, R, C]`` uint8, (row, col) pixel spacing mm, slice spacing mm) of one NIfTI."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as exc:   # nibabel raises several types for a damaged file
        raise InputError(f"{path}: cannot read as NIfTI: {exc}") from None
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise InputError(f"{path}: a label map must be 3D or 4D, but has shape {data.shape}")
    if data.dtype.kind == "f" and not np.array_equal(data, np.round(data)):
        raise InputError(f"{path}: label maps hold integer ids, but this one has fractions")
    if data.size and (data.min() < 0 or data.max() >= PAD):
        raise InputError(f"{path}: label ids must be in 0..{PAD - 1}, but range "
                         f"{data.min()}..{data.max()}")
    zooms = img.header.get_zooms()
    return (np.ascontiguousarray(np.transpose(data.astype(np.uint8), (3, 2, 1, 0))),
            (float(zooms[1]), float(zooms[0])), float(zooms[2]))


CLASS_VALUES = {"lv": 1, "myocardium": 2, "rv": 3}


def class_mask(structures: np.ndarray, classes: dict[str, list[int]]) -> np.ndarray:
    """The label mask (1 LV, 2 myocardium, 3 RV) of a structure map: each class named in
    ``classes`` gets its value where the map holds one of its ids; the rest is 0."""
    out = np.zeros(structures.shape, np.uint8)
    for name, ids in classes.items():
        out[np.isin(structures, ids)] = CLASS_VALUES[name]
    return out


def case_rows(case: LabelMapCase, data: np.ndarray, spacing: tuple[float, float],
              slice_spacing: float, classes: dict[str, list[int]], size: int) -> list[dict]:
    """All 2D rows of one label map ``[T, K, R, C]``."""
    frames, slices, rows, cols = data.shape
    flat = torch.from_numpy(data.reshape(-1, rows, cols).astype(np.int16) + 1)
    fitted = fit_pad(flat, size, "nearest").round().to(torch.int16).numpy() - 1   # pad -> -1
    structures = np.where(fitted < 0, PAD, fitted).astype(np.uint8)
    mask = class_mask(structures, classes)     # lv and myocardium only: RV stays background
    lv = (mask == 1).reshape(frames, -1).sum(1)
    ed, es = int(np.argmax(lv)), int(np.argmin(lv))
    geo = FitPad(rows, cols, size)
    common = {"stack_id": case.case_id, "subject_id": case.case_id, "patient_id": case.case_id,
              "split": case.split, "rotated_90": False, "score": 0.0, "in_p05": True,
              "in_p10": True, "in_p15": True, "rows": rows, "cols": cols,
              "pixel_spacing_mm": list(spacing), "slice_spacing_mm": slice_spacing, "size": size,
              "scale": geo.scale, "pad_top": geo.pad[0], "pad_left": geo.pad[1],
              "shape": [size, size], "dtype": "|u1"}
    out = []
    for t in range(frames):
        for k in range(slices):
            i = t * slices + k
            out.append({**common, "file": f"{case.case_id}/slice{k:02d}_frame{t:02d}", "slice": k,
                        "frame": t, "is_ed": t == ed, "is_es": t == es,
                        "structures": structures[i].tobytes(), "mask": mask[i].tobytes(),
                        "lv_pixels_true": int((mask[i] == 1).sum()),
                        "my_pixels_true": int((mask[i] == 2).sum())})
    return out


def build_label_map_slices(folder: Path, out_dir: Path, image_size: int, *,
                           lv: list[int] | None = None, myocardium: list[int] | None = None
                           ) -> Path:
    """Write the slices dataset of the label maps in ``folder``; returns ``out_dir``."""
    folder, out_dir = Path(folder), Path(out_dir)
    if image_size < 32 or image_size % 32:
        raise InputError(f"image size must be a multiple of 32, but got {image_size}")
    cases = find_cases(folder)
    classes, names = class_ids(folder, lv, myocardium)
    meta = {"format": FORMAT_VERSION, "image_size": image_size, "label_source": "label maps",
            "images": False, "structures": names, "classes": classes,
            "label_maps_dir": str(folder),
            "inputs": [[c.split, c.case_id, c.path.stat().st_size, c.path.stat().st_mtime_ns]
                       for c in cases]}
    if done_or_cleared(out_dir, meta, "slices from label maps"):
        return out_dir
    pending: list[dict] = []
    counters: dict[str, int] = {}

    def flush(split: str) -> None:
        name = f"part-{split}-{counters.get(split, 0):05d}.parquet"
        counters[split] = counters.get(split, 0) + 1
        atomic_write_table(pa.Table.from_pylist(pending), out_dir / name, row_group_size=ROW_GROUP)
        pending.clear()

    with progress_bar("label-map slices", len(cases), "cases") as bar:
        for i, case in enumerate(cases):
            data, spacing, slice_spacing = load_label_map(case.path)
            pending.extend(case_rows(case, data, spacing, slice_spacing, classes, image_size))
            last_of_split = i == len(cases) - 1 or cases[i + 1].split != case.split
            if len(pending) >= IMAGES_PER_SHARD or last_of_split:
                flush(case.split)
            bar.advance()
    mark_complete(out_dir, meta)
    log.info("label-map slices: %d cases into %s", len(cases), out_dir)
    return out_dir
