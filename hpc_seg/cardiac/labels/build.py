"""Labels stage: masks from a pluggable source, per-frame LV volumes, ED/ES and confidence sets.

Label sources (``source``):

- ``"shipped"``: the ``mask`` column of the ingest ``volumes`` table (the synthetic cohort's masks);
- ``"folder:PATH"``: masks made by another tool, e.g. ukbb_cardiac. Per stack, the first of
  ``PATH/<stack_id>.nii.gz``, ``PATH/<stack_id>.nii``, ``PATH/<stack_id>/seg_sa.nii.gz`` (a 4D
  NIfTI indexed ``[col, row, slice, frame]`` like the exported stacks), or a folder
  ``PATH/<stack_id>/`` of PNGs named ``slice<k>_frame<t>.png`` (label values as grey levels);
- ``"model:PATH"``: predictions of a trained hpc-seg ``model.pt``; the caller builds that source
  (:func:`hpc_seg.cardiac.segment.label_source`), since labels come before training.

Outputs in ``out_dir``: ``labels/`` (one row per stack and frame; schema in :data:`LABEL_COLUMNS`),
``masks/`` (the label masks for sources other than ``shipped``: one row per stack), ``skipped.csv``
(stacks without a usable mask or truth, and why), ``confidence_counts.csv`` and ``labels.json``
(the summary; its presence marks the stage finished for this source).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from hpc_seg.config import config_hash
from hpc_seg.cardiac.labels.confidence import (LV, MY, EdRule, class_volumes,
                                     confidence_score, ed_es_frames, set_counts, set_membership,
                                     voxel_ml)
from hpc_seg.storage.shards import (ShardWriter, atomic_write_bytes, atomic_write_table, decode_array,
                                 encode_array,
                                 iter_rows, read_table, remove_stale_temporaries,
                                 shard_files)
from hpc_seg.cardiac.finite import frames_text, nonfinite_frames
from hpc_seg.cardiac.truth import read_truth_csv
from hpc_seg.errors import ConfigError, InputError
from hpc_seg.progress import progress_bar

log = logging.getLogger(__name__)

META_COLUMNS = ["stack_id", "subject_id", "patient_id", "split", "rotated_90", "shape",
                "pixel_spacing_mm", "slice_spacing_mm"]
LABEL_COLUMNS = ["stack_id", "subject_id", "patient_id", "split", "rotated_90", "frame", "lv_ml",
                 "my_ml", "is_ed", "is_es", "edv_ml", "esv_ml", "systole", "diastole", "score",
                 "in_p05", "in_p10", "in_p15", "source"]


class LabelSource(Protocol):
    """Gives the ``[frames, slices, rows, cols]`` uint8 label mask of one ``volumes`` row."""

    name: str

    def mask(self, row: dict) -> np.ndarray | None: ...


@dataclass
class LabelsSummary:
    """What :func:`build_labels` produced (also written to ``labels.json``)."""

    out_dir: str
    source: str
    stacks: int
    labelled_stacks: int
    skipped: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    masks_in: str = "volumes"
    """``volumes`` (shipped) or ``masks`` (this stage's masks/ table)"""


class SkipStack(Exception):
    """A label source cannot label this stack (the message says why); it is listed in
    ``skipped.csv`` and the others go on."""


class ShippedMasks:
    """Masks carried by the ingest ``volumes`` table."""

    name = "shipped"

    def mask(self, row: dict) -> np.ndarray | None:
        if row.get("mask") is None:
            return None
        return decode_array(row["mask"], row["shape"], "|u1")


class FolderMasks:
    """Masks written by another tool, one NIfTI (or PNG folder) per stack."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: label folder not found")
        self.name = f"folder:{self.folder}"

    def mask(self, row: dict) -> np.ndarray | None:
        sid = row["stack_id"]
        shape = tuple(int(s) for s in row["shape"])
        for cand in (self.folder / f"{sid}.nii.gz", self.folder / f"{sid}.nii",
                     self.folder / sid / "seg_sa.nii.gz"):
            if cand.is_file():
                return _check_shape(_read_nifti_mask(cand), shape, cand)
        png_dir = self.folder / sid
        if png_dir.is_dir() and any(png_dir.glob("*.png")):
            return _read_png_masks(png_dir, shape)
        return None


def make_source(source: str | LabelSource) -> LabelSource:
    """Parse ``"shipped"``, ``"folder:PATH"`` or ``"model:PATH"`` (or pass a source object through)."""
    if not isinstance(source, str):
        return source
    kind, _, arg = source.partition(":")
    if kind == "shipped" and not arg:
        return ShippedMasks()
    if kind == "folder" and arg:
        return FolderMasks(Path(arg))
    if kind == "model" and arg:
        # Labels come before training: the caller builds the model source
        # (hpc_seg.cardiac.segment.label_source), so this stage never imports a trained network.
        raise ConfigError(f"label source {source!r}: resolve it with "
                          "hpc_seg.cardiac.segment.label_source before calling build_labels")
    raise ConfigError(f"label source {source!r} is invalid; use 'shipped', 'folder:PATH' or "
                      "'model:PATH'")


def load_truth(truth_csv: Path | None, volumes_dir: Path) -> dict[str, tuple[float, float]]:
    """Truth from ``truth_csv``, else from the ingest ``subjects`` table next to ``volumes_dir``."""
    if truth_csv is not None:
        return read_truth_csv(truth_csv)
    subjects = Path(volumes_dir).parent / "subjects"
    if shard_files(subjects):
        df = read_table(subjects).to_pandas()
        if {"patient_id", "Systole", "Diastole"} <= set(df.columns):
            df = df.dropna(subset=["Systole", "Diastole"])
            return {str(p): (float(s), float(d)) for p, s, d in zip(df.patient_id, df.Systole, df.Diastole)}
    raise InputError(f"{subjects}: no Systole/Diastole truth in the ingest subjects table; "
                     "pass the truth CSV (Id,Systole,Diastole)")


def build_labels(volumes_dir: Path, out_dir: Path, truth_csv: Path | None,
                 source: str | LabelSource = "shipped", ed_rule: EdRule = "first") -> LabelsSummary:
    """Compute per-frame LV volumes, ED/ES, confidence scores and sets for every stack."""
    volumes_dir, out_dir = Path(volumes_dir), Path(out_dir)
    src = make_source(source)
    if not shard_files(volumes_dir):
        raise InputError(f"{volumes_dir}: no volumes shards (run `hpc-seg ingest` first)")
    truth = load_truth(truth_csv, volumes_dir)
    # What decides the result besides the volumes: a changed truth or rule rebuilds.
    key = config_hash({"source": src.name, "ed_rule": ed_rule, "truth": sorted(truth.items())})
    done = out_dir / "labels.json"
    if done.is_file():
        previous = json.loads(done.read_text())
        if previous.pop("key", None) == key:
            log.info("labels already built in %s (source %s); skipping", out_dir, src.name)
            previous.pop("ed_rule", None)
            return LabelsSummary(**previous)
    for sub in ("labels", "masks"):
        for old in shard_files(out_dir / sub):
            old.unlink()  # a previous, different source: rebuild from scratch
        remove_stale_temporaries(out_dir / sub)
    shipped = isinstance(src, ShippedMasks)
    columns = META_COLUMNS + (["mask"] if shipped else ["pixels", "dtype"])
    frames, stacks, skipped = [], [], []
    n_total = sum(1 for _ in iter_rows(volumes_dir, columns=["stack_id"]))
    with progress_bar("labels", n_total, "stacks") as bar, \
            ShardWriter(out_dir / "masks", target_mb=128, tag="labels") as masks_out:
        for row in iter_rows(volumes_dir, columns=columns, batch_size=2):
            bar.advance()
            if not shipped:
                bad = nonfinite_frames(decode_array(row["pixels"], row["shape"], row["dtype"]))
                if bad:
                    skipped.append({"stack_id": row["stack_id"], "reason":
                                    f"NaN or infinite pixels in frame(s) {frames_text(bad)}"})
                    continue
            try:
                mask = src.mask(row)
            except SkipStack as exc:
                skipped.append({"stack_id": row["stack_id"], "reason": str(exc)})
                log.warning("labels: stack %s skipped: %s", row["stack_id"], exc)
                continue
            if mask is None:
                skipped.append({"stack_id": row["stack_id"], "reason": f"no mask from {src.name}"})
                continue
            if not shipped:
                data, shape, dtype = encode_array(mask.astype(np.uint8))
                masks_out.add({"stack_id": row["stack_id"], "mask": data, "shape": shape, "dtype": dtype})
            rows = _frame_rows(row, mask, truth, ed_rule, src.name)
            if not np.isfinite(rows[0]["score"]):
                skipped.append({"stack_id": row["stack_id"],
                                "reason": f"no truth for patient {row['patient_id']}"})
            frames.extend(rows)
            stacks.append(rows[0])
    if not frames:
        raise InputError(f"{volumes_dir}: no stack has a label mask from source {src.name}")
    labels = pd.DataFrame(frames, columns=LABEL_COLUMNS)
    atomic_write_table(pa.Table.from_pandas(labels, preserve_index=False),
                       out_dir / "labels" / "part-labels-00000.parquet")
    counts = set_counts(pd.DataFrame(stacks))
    atomic_write_bytes(counts.to_csv().encode(), out_dir / "confidence_counts.csv")
    atomic_write_bytes(pd.DataFrame(skipped, columns=["stack_id", "reason"]).to_csv(index=False).encode(),
                       out_dir / "skipped.csv")
    summary = LabelsSummary(out_dir=str(out_dir), source=src.name, stacks=n_total,
                            labelled_stacks=len(stacks), skipped=len(skipped),
                            counts={k: {c: int(v) for c, v in r.items()} for k, r in counts.iterrows()},
                            masks_in="volumes" if shipped else "masks")
    atomic_write_bytes(json.dumps({**asdict(summary), "ed_rule": ed_rule, "key": key}, indent=2).encode(), done)
    log.info("labels: %d stacks labelled, %d skipped; patients in p05/p10/p15: %s", len(stacks),
             len(skipped), "/".join(str(int(counts.loc[k, "total"])) for k in ("p05", "p10", "p15")))
    return summary


def _frame_rows(row: dict, mask: np.ndarray, truth: dict[str, tuple[float, float]],
                ed_rule: EdRule, source: str) -> list[dict]:
    vox = voxel_ml(row["pixel_spacing_mm"], row["slice_spacing_mm"])
    lv, my = class_volumes(mask, LV, vox), class_volumes(mask, MY, vox)
    ed, es = ed_es_frames(lv, ed_rule)
    systole, diastole = truth.get(str(row["patient_id"]), (float("nan"), float("nan")))
    score = confidence_score(lv[ed], lv[es], diastole, systole)
    common = {k: row[k] for k in ("stack_id", "subject_id", "patient_id", "split", "rotated_90")}
    common.update(edv_ml=float(lv[ed]), esv_ml=float(lv[es]), systole=systole, diastole=diastole,
                  score=score, source=source, **set_membership(score))
    return [{**common, "frame": t, "lv_ml": float(lv[t]), "my_ml": float(my[t]), "is_ed": t == ed,
             "is_es": t == es} for t in range(mask.shape[0])]


def load_stack_masks(labels_dir: Path) -> dict[str, np.ndarray] | None:
    """Masks this stage wrote (``None`` when the masks live in the volumes table)."""
    meta = json.loads((Path(labels_dir) / "labels.json").read_text())
    if meta.get("masks_in", "volumes") == "volumes":
        return None
    return {r["stack_id"]: decode_array(r["mask"], r["shape"], r["dtype"])
            for r in iter_rows(Path(labels_dir) / "masks", batch_size=4)}


def _check_shape(mask: np.ndarray, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if mask.shape != shape:
        raise InputError(f"{path}: mask shape {mask.shape} (frames, slices, rows, cols) does not "
                         f"match the stack's {shape}")
    return mask


def _read_nifti_mask(path: Path) -> np.ndarray:
    import nibabel as nib

    try:
        data = np.asarray(nib.load(str(path)).dataobj)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise InputError(f"{path}: cannot read NIfTI mask ({exc})") from None
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        # rint(NaN) cast to uint8 is an arbitrary label; the stack is not labelled at all
        frames = nonfinite_frames(np.moveaxis(data, -1, 0)) if data.ndim == 4 else []
        raise SkipStack(f"{path}: NaN or infinite label values"
                        + (f" in frame(s) {frames_text(frames)}" if frames else ""))
    if data.ndim == 3:
        data = data[..., None]
    # NIfTI [col, row, slice, frame] -> [frame, slice, row, col]
    return np.ascontiguousarray(np.rint(data).astype(np.uint8).transpose(3, 2, 1, 0))


def _read_png_masks(folder: Path, shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image

    frames, slices, rows, cols = shape
    out = np.zeros(shape, np.uint8)
    for k in range(slices):
        for t in range(frames):
            path = folder / f"slice{k}_frame{t}.png"
            if not path.is_file():
                raise InputError(f"{path}: missing PNG mask (expected slice<k>_frame<t>.png for every "
                                 f"slice and frame of a {shape} stack)")
            out[t, k] = _check_shape(np.asarray(Image.open(path)).astype(np.uint8)[None],
                                     (1, rows, cols), path)[0]
    return out
