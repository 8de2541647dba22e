"""HAD-Net inference: label maps in each case's original geometry.

Input is either a preprocessed cohort (``PRE/`` with ``preprocess.json``; the cases of one split)
or a raw BraTS-layout folder of NIfTI files (``<root>/<subject>/<subject>_{flair,t1,t1ce,t2}``, or
under ``HGG``/``LGG``), which is normalised and padded to the *model's* saved pad size (centre-crop
if larger, with a warning from the preprocessing). One forward pass per case, softmax, argmax,
classes 0..3 -> labels 0/1/2/4, padding and bounding box undone, saved as ``<subject>.nii.gz``
(uint8) with the FLAIR affine. Existing outputs are kept (a re-run only fills in what is missing);
every file is written under a temporary name and renamed.

``predictions.csv`` in the output folder lists case_id, file, seconds and voxels per label.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpc_seg.storage.shards import atomic_write, atomic_write_bytes
from hpc_seg.errors import InputError
from hpc_seg.progress import progress_bar
from hpc_seg.hadnet.brats.preprocess import preprocess_case, restore_to_original
from hpc_seg.hadnet.brats.reader import classes_to_labels, find_cases
from hpc_seg.hadnet.brats.shards import read_cases
from hpc_seg.hadnet.train.data import row_tensors
from hpc_seg.hadnet.models.io import load_model_file
from hpc_seg.runtime.device import autocast, resolve_device

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


@torch.no_grad()
def predict_classes(model: torch.nn.Module, image: torch.Tensor, channels: list[int],
                    device: torch.device, amp: bool = True) -> np.ndarray:
    """Argmax classes [D, H, W] (uint8) of one padded [4, D, H, W] image."""
    x = image[channels][None].to(device).float()
    with autocast(device, amp):
        logits, _ = model(x)
    probs = torch.softmax(logits.float(), dim=1)
    return probs.argmax(1)[0].to(torch.uint8).cpu().numpy()


def predict(model: str | Path, src_or_pre: str | Path, out_dir: str | Path, *,
            split: str | None = "test", device: str = "auto") -> Path:
    """Write ``<subject>.nii.gz`` for every case of ``src_or_pre``; returns ``out_dir``.

    ``split`` selects the cases of a preprocessed cohort (``None`` = all); raw folders use all.
    """
    model, src, out_dir = Path(model), Path(src_or_pre), Path(out_dir)
    dev = resolve_device(device)
    net, meta = load_model_file(model, map_location=dev)
    net.to(dev)
    channels = list(meta["channels"])
    out_dir.mkdir(parents=True, exist_ok=True)
    records, done = [], 0
    with progress_bar(f"predict {meta['role']}", total=None, unit="cases") as bar:
        for row in _rows(src, list(meta["pad_size"]), split):
            target = out_dir / f"{row['case_id']}.nii.gz"
            if target.exists():
                records.append({"case_id": row["case_id"], "file": target.name, "seconds": None})
                bar.advance()
                continue
            t0 = time.perf_counter()
            image, _, _ = row_tensors(row)
            classes = predict_classes(net, image, channels, dev)
            labels = classes_to_labels(restore_to_original(np.asarray(classes), row))
            affine = np.asarray(row["affine"], dtype=np.float64).reshape(4, 4)
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
