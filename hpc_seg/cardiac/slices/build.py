"""The ``slices`` dataset: one Parquet row per 2D image and mask, resized as published.

Each image is fitted into ``size x size`` by scaling its longer side to ``size`` and zero-padding
the shorter one symmetrically, as the published pipeline did. Intensities are scaled per stack to uint8 (0 .. the
stack's 99.5th percentile), the mask keeps background 0, LV 1 and myocardium 2 (RV becomes
background: the models learn 3 classes). Columns (:data:`COLUMNS`): ``file`` (a stable image id),
``stack_id``, ``subject_id``, ``patient_id``, ``split``, ``rotated_90``, ``slice``, ``frame``,
``score`` (label confidence), ``in_p05``/``in_p10``/``in_p15``, ``is_ed``/``is_es`` (label ED/ES
frames), ``image``/``mask`` (uint8 bytes, ``shape`` [size, size]), the stack geometry needed for
volumes (``rows``, ``cols``, ``pixel_spacing_mm``, ``slice_spacing_mm``), the resize (``size``,
``scale``, ``pad_top``, ``pad_left``) and the true ``lv_pixels_true``/``my_pixels_true``.

Shards are ``part-<split>-<n>.parquet`` with row groups of :data:`ROW_GROUP` images, so training
streams a row group at a time (:mod:`hpc_seg.cardiac.slices.stream`). ``_meta.json`` records the
parameters and which stacks each shard holds: a re-run skips finished shards.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from hpc_seg.cardiac.labels.build import load_stack_masks
from hpc_seg.cardiac.finite import frames_text, nonfinite_frames
from hpc_seg.cardiac.resize import FitPad, fit_pad, to_uint8
from hpc_seg.storage.shards import (atomic_write_bytes, atomic_write_table, decode_array, iter_rows,
                                 read_table, remove_stale_temporaries, shard_files)
from hpc_seg.errors import InputError
from hpc_seg.progress import progress_bar

log = logging.getLogger(__name__)

ROW_GROUP = 256
IMAGES_PER_SHARD = 2048
META = "_meta.json"
FORMAT_VERSION = 1


def stack_rows(vol: dict, mask: np.ndarray, labels: pd.DataFrame, size: int) -> list[dict]:
    """All 2D rows of one stack (``vol`` is a ``volumes`` row, ``labels`` its label rows)."""
    frames, slices, rows, cols = (int(s) for s in vol["shape"])
    raw = decode_array(vol["pixels"], vol["shape"], vol["dtype"])
    left_out = set(nonfinite_frames(raw))
    if left_out:    # scaled without them (one NaN would make the stack's percentile NaN)
        log.warning("slices: stack %s: NaN or infinite pixels in frame(s) %s; their images are "
                    "left out", vol["stack_id"], frames_text(sorted(left_out)))
        raw = np.where(np.isfinite(raw), raw, 0)
        good = sorted(set(range(frames)) - left_out)
        pixels = np.zeros(raw.shape, np.uint8)
        if good:
            pixels[good] = to_uint8(raw[good])
    else:
        pixels = to_uint8(raw)
    img = fit_pad(torch.from_numpy(pixels.reshape(-1, rows, cols)), size, "bilinear")
    img = img.round().clamp(0, 255).to(torch.uint8).numpy()
    m = mask.reshape(-1, rows, cols).copy()
    m[m > 2] = 0  # RV -> background: the models learn background / LV / myocardium
    msk = fit_pad(torch.from_numpy(m), size, "nearest").to(torch.uint8).numpy()
    geo = FitPad(rows, cols, size)
    lab = labels.set_index("frame")
    first = lab.iloc[0]
    common = {k: vol[k] for k in ("stack_id", "subject_id", "patient_id", "split", "rotated_90")}
    common.update(score=float(first["score"]), in_p05=bool(first["in_p05"]),
                  in_p10=bool(first["in_p10"]), in_p15=bool(first["in_p15"]), rows=rows, cols=cols,
                  pixel_spacing_mm=[float(v) for v in vol["pixel_spacing_mm"]],
                  slice_spacing_mm=float(vol["slice_spacing_mm"]), size=size, scale=geo.scale,
                  pad_top=geo.pad[0], pad_left=geo.pad[1], shape=[size, size], dtype="|u1")
    out = []
    for t in range(frames):
        if t in left_out:
            continue
        for k in range(slices):
            i = t * slices + k
            out.append({**common, "file": f"{vol['stack_id']}/slice{k:02d}_frame{t:02d}", "slice": k,
                        "frame": t, "is_ed": bool(lab.at[t, "is_ed"]), "is_es": bool(lab.at[t, "is_es"]),
                        "image": img[i].tobytes(), "mask": msk[i].tobytes(),
                        "lv_pixels_true": int((msk[i] == 1).sum()),
                        "my_pixels_true": int((msk[i] == 2).sum())})
    return out


def build_slices(volumes_dir: Path, labels_dir: Path, out_dir: Path, image_size: int) -> Path:
    """Write the ``slices`` dataset for every labelled stack; returns ``out_dir``."""
    volumes_dir, labels_dir, out_dir = Path(volumes_dir), Path(labels_dir), Path(out_dir)
    if not (labels_dir / "labels.json").is_file():
        raise InputError(f"{labels_dir}: no labels.json (run `hpc-seg labels` first)")
    labels = read_table(labels_dir / "labels").to_pandas()
    label_meta = json.loads((labels_dir / "labels.json").read_text())
    meta_cols = ["stack_id", "split", "shape"]
    plan = _plan(pd.DataFrame(list(iter_rows(volumes_dir, columns=meta_cols, batch_size=256))),
                 set(labels.stack_id))
    meta = {"format": FORMAT_VERSION, "image_size": image_size, "label_source": label_meta["source"],
            "labels": label_meta,  # new labels (another truth or ED rule) change this: rebuild
            "volumes_dir": str(volumes_dir), "labels_dir": str(labels_dir), "shards": plan}
    remove_stale_temporaries(out_dir)
    meta_path = out_dir / META
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if {k: v for k, v in old.items() if k != "complete"} != meta:
            log.info("%s: parameters or inputs changed; rebuilding", out_dir)
            for f in shard_files(out_dir):
                f.unlink()
        elif old.get("complete"):
            log.info("slices already built in %s; skipping", out_dir)
            return out_dir
    atomic_write_bytes(json.dumps(meta, indent=1).encode(), meta_path)
    todo = {name: ids for name, ids in plan.items() if not (out_dir / name).is_file()}
    masks = load_stack_masks(labels_dir) if todo else None
    wanted = {sid: name for name, ids in todo.items() for sid in ids}
    pending: dict[str, list[dict]] = {name: [] for name in todo}
    left = {name: len(ids) for name, ids in todo.items()}
    columns = ["stack_id", "subject_id", "patient_id", "split", "rotated_90", "shape", "dtype",
               "pixels", "pixel_spacing_mm", "slice_spacing_mm"] + (["mask"] if masks is None else [])
    by_stack = dict(tuple(labels.groupby("stack_id")))
    with progress_bar("slices", len(wanted), "stacks") as bar:
        for vol in iter_rows(volumes_dir, columns=columns, batch_size=1):
            name = wanted.get(vol["stack_id"])
            if name is None:
                continue
            mask = (decode_array(vol["mask"], vol["shape"], "|u1") if masks is None
                    else masks[vol["stack_id"]])
            pending[name].extend(stack_rows(vol, mask, by_stack[vol["stack_id"]], image_size))
            left[name] -= 1
            bar.advance()
            if left[name] == 0:
                atomic_write_table(pa.Table.from_pylist(pending.pop(name)), out_dir / name,
                                   row_group_size=ROW_GROUP)
    mark_complete(out_dir, meta)
    log.info("slices: %d shards in %s", len(plan), out_dir)
    return out_dir


def _plan(stacks: pd.DataFrame, labelled: set[str]) -> dict[str, list[str]]:
    """Group labelled stacks (in storage order) into shards of about IMAGES_PER_SHARD images."""
    plan: dict[str, list[str]] = {}
    counters: dict[str, int] = {}
    current: dict[str, tuple[str, int]] = {}
    if stacks.empty:
        raise InputError("volumes table is empty")
    for sid, split, shape in zip(stacks.stack_id, stacks.split, stacks["shape"]):
        if sid not in labelled:
            continue
        n = int(shape[0]) * int(shape[1])
        name, count = current.get(split, (None, 0))
        if name is None or count >= IMAGES_PER_SHARD:
            name = f"part-{split}-{counters.get(split, 0):05d}.parquet"
            counters[split] = counters.get(split, 0) + 1
            plan[name], count = [], 0
        plan[name].append(sid)
        current[split] = (name, count + n)
    return plan


def done_or_cleared(out_dir: Path, meta: dict, what: str) -> bool:
    """True when ``out_dir`` already holds a complete dataset built with exactly ``meta`` (logged
    as skipped); otherwise its shards, temporaries and ``_meta.json`` are removed, for a build
    from scratch that :func:`mark_complete` ends."""
    meta_path = Path(out_dir) / META
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if old.get("complete") and {k: v for k, v in old.items() if k != "complete"} == meta:
            log.info("%s already built in %s; skipping", what, out_dir)
            return True
    remove_stale_temporaries(out_dir)
    for f in shard_files(out_dir):
        f.unlink()
    meta_path.unlink(missing_ok=True)
    return False


def mark_complete(out_dir: Path, meta: dict) -> Path:
    """Write ``meta`` as the finished dataset's ``_meta.json`` (last, atomically)."""
    return atomic_write_bytes(json.dumps({**meta, "complete": True}, indent=1).encode(),
                              Path(out_dir) / META)


def read_meta(slices_dir: Path) -> dict:
    """The dataset's ``_meta.json``; a clear error when it is missing or unfinished."""
    path = Path(slices_dir) / META
    if not path.is_file():
        raise InputError(f"{slices_dir}: not a slices dataset (no {META}; run `hpc-seg labels` "
                         "with --slices, or build_slices)")
    meta = json.loads(path.read_text())
    if not meta.get("complete"):
        raise InputError(f"{slices_dir}: slices dataset is incomplete (its build was interrupted); "
                         "re-run the slices stage")
    return meta
