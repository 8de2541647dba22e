"""HAD-Net inference: label maps (and uncertainty maps) in each case's original geometry.

Input is either a preprocessed cohort (``PRE/`` with ``preprocess.json``; the cases of one split)
or a raw BraTS-layout folder of NIfTI files (``<root>/<subject>/<subject>_{flair,t1,t1ce,t2}``, or
under ``HGG``/``LGG``), which is normalised and padded to the *model's* saved pad size (centre-crop
if larger, with a warning from the preprocessing). One forward pass per case, softmax, argmax,
classes 0..3 -> labels 0/1/2/4, set to 0 outside the brain mask (BraTS's convention: a weakly
trained net labels background inside the crop box as tumour, which is not brain), padding and
bounding box undone, saved as ``<subject>.nii.gz`` (uint8) with the FLAIR affine.

With ``uncertainty`` (``entropy`` or ``mcdropout:N``, see :mod:`hpc_seg.hadnet.uncertainty`) each
case also gets one map per region in [0, 100], 0 outside the brain, on the same grid with the same
affine, under BraTS's QU-task names: ``<subject>_unc_whole.nii.gz`` (WT), ``_unc_core`` (TC),
``_unc_enhance`` (ET), float32. ``uncertainty.json`` records the method and seed; a folder holding
maps of another method is refused rather than mixed.

Existing outputs are kept (a re-run only fills in what is missing); every file is written under a
temporary name and renamed. ``predictions.csv`` lists case_id, file, seconds and voxels per label.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hpc_seg.storage.shards import atomic_write, atomic_write_bytes
from hpc_seg.errors import InputError
from hpc_seg.progress import progress_bar
from hpc_seg.hadnet.brats.preprocess import preprocess_case, restore_to_original
from hpc_seg.hadnet.brats.reader import classes_to_labels, find_cases
from hpc_seg.hadnet.brats.shards import read_cases
from hpc_seg.hadnet.train.data import row_tensors
from hpc_seg.hadnet.models.io import load_model_file
from hpc_seg.hadnet.uncertainty import UncertaintyMethod, predict_with_uncertainty
from hpc_seg.runtime.device import resolve_device
from hpc_seg.storage.names import child

# BraTS QU-task file suffixes of the region maps, in REGIONS order (WT, TC, ET).
UNCERTAINTY_SUFFIXES = {"WT": "_unc_whole", "TC": "_unc_core", "ET": "_unc_enhance"}

log = logging.getLogger(__name__)


def _rows(src: Path, pad_size: list[int], split: str | None) -> Iterator[dict[str, Any]]:
    if (src / "preprocess.json").is_file():
        pre = json.loads((src / "preprocess.json").read_text())
        if list(pre["pad_size"]) != list(pad_size):
            raise InputError(f"{src}: preprocessed at pad size {pre['pad_size']}, but the model "
                             f"was trained at {pad_size}; predict from the raw NIfTI folder instead")
        yield from read_cases(Path(src), split=split)
        return
    for case in find_cases(src):  # raises InputError naming the layout it expected
        yield preprocess_case(case, list(pad_size))


def save_label_map(labels: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Write an integer label map as NIfTI (uint8) atomically."""
    import nibabel as nib

    img = nib.Nifti1Image(labels.astype(np.uint8), affine)
    img.header.set_data_dtype(np.uint8)
    return atomic_write(path, lambda tmp: nib.save(img, tmp))


def save_map(values: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Write a float map as NIfTI (float32) atomically."""
    import nibabel as nib

    img = nib.Nifti1Image(values.astype(np.float32), affine)
    img.header.set_data_dtype(np.float32)
    return atomic_write(path, lambda tmp: nib.save(img, tmp))


def prediction_path(out_dir: Path, case_id: str) -> Path:
    """Where the case's label map goes (the case id, which comes from folder names, made a safe
    name inside ``out_dir``)."""
    return child(out_dir, case_id, suffix=".nii.gz")


def uncertainty_paths(out_dir: Path, case_id: str) -> dict[str, Path]:
    """Region -> path of the case's uncertainty map."""
    return {r: child(out_dir, case_id, suffix=f"{sfx}.nii.gz")
            for r, sfx in UNCERTAINTY_SUFFIXES.items()}


def _check_method(out_dir: Path, method: UncertaintyMethod | None, seed: int) -> None:
    """Refuse to add maps of one method to a folder holding another's; record ours."""
    if method is None:
        return
    record = out_dir / "uncertainty.json"
    want = {"method": str(method), "seed": int(seed)}
    if record.is_file():
        have = json.loads(record.read_text())
        if have != want:
            raise InputError(f"{record}: the maps there are {have}, not {want}; predict into "
                             "another folder or remove that one")
        return
    atomic_write_bytes(json.dumps(want).encode(), record)


def predict(model: str | Path, src_or_pre: str | Path, out_dir: str | Path, *,
            split: str | None = "test", device: str = "auto",
            uncertainty: str | UncertaintyMethod | None = None, seed: int = 0,
            mc_batch: int = 4) -> Path:
    """Write ``<subject>.nii.gz`` (and uncertainty maps) for every case; returns ``out_dir``.

    ``split`` selects the cases of a preprocessed cohort (``None`` = all); raw folders use all.
    ``uncertainty``: ``None``, ``"entropy"``, ``"mcdropout"`` or ``"mcdropout:N"``; ``seed`` seeds
    the dropout masks (per case, see :func:`hpc_seg.hadnet.uncertainty.case_seed`); ``mc_batch``
    passes run as one batch.
    """
    model, src, out_dir = Path(model), Path(src_or_pre), Path(out_dir)
    method = (UncertaintyMethod.parse(uncertainty) if isinstance(uncertainty, str)
              else uncertainty)
    dev = resolve_device(device)
    net, meta = load_model_file(model, map_location=dev)
    net.to(dev)
    channels = list(meta["channels"])
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_method(out_dir, method, seed)
    records, done = [], 0
    what = f"predict {meta['role']}" + (f" + {method} uncertainty" if method else "")
    extra = "passes" if method is not None and method.kind == "mcdropout" else None
    with progress_bar(what, total=None, unit="cases", extra_unit=extra) as bar:
        for row in _rows(src, list(meta["pad_size"]), split):
            target = prediction_path(out_dir, row["case_id"])
            maps = uncertainty_paths(out_dir, row["case_id"]) if method else {}
            if target.exists() and all(p.exists() for p in maps.values()):
                records.append({"case_id": row["case_id"], "file": target.name, "seconds": None})
                bar.advance()
                continue
            t0 = time.perf_counter()
            image, _, mask = row_tensors(row)
            x = image[channels][None].to(dev).float()
            classes, unc = predict_with_uncertainty(
                net, x, method, seed=seed, case_id=str(row["case_id"]), batch_size=mc_batch,
                on_batch=lambda n: bar.advance(0, extra=n))
            brain = mask.numpy().astype(bool)
            classes = np.where(brain, classes, 0).astype(np.uint8)
            labels = classes_to_labels(restore_to_original(classes, row))
            affine = np.asarray(row["affine"], dtype=np.float64).reshape(4, 4)
            if unc is not None:
                for (region, path), values in zip(maps.items(), unc):
                    save_map(restore_to_original(np.where(brain, values, 0.0), row), affine, path)
            # The label map last: its presence marks the case as done.
            save_label_map(labels, affine, target)
            counts = {f"voxels_{v}": int((labels == v).sum()) for v in (1, 2, 4)}
            records.append({"case_id": row["case_id"], "file": target.name,
                            "seconds": time.perf_counter() - t0, **counts})
            done += 1
            bar.advance()
    if not records:
        raise InputError(f"{src}: no cases{f' in split {split!r}' if split else ''} to predict")
    import pandas as pd

    atomic_write_bytes(pd.DataFrame(records).to_csv(index=False).encode(),
                       out_dir / "predictions.csv")
    log.info("%s: %d case(s) predicted, %d already there", out_dir, done, len(records) - done)
    return out_dir
