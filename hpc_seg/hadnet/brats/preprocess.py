"""HAD-Net preprocessing of one case, and its exact inverse.

Per case (as published): brain mask = voxels non-zero in all four sequences; crop to the mask's
bounding box; per sequence z-score with mean/std inside the mask, clip the top at 3, min-max to
[0, 1] inside the mask (0 outside); zero-pad, centred, to the run's fixed ``pad_size``. A case
larger than ``pad_size`` along an axis is centre-cropped there instead (``pad_before`` < 0) and a
warning names it, since the network then never sees the cut margins.

Arrays keep the NIfTI voxel axis order (x, y, z), called (D, H, W) here, so the affine needs no
change and :func:`restore_to_original` is plain slicing: bit-exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpc_seg.hadnet.brats.reader import (SEQUENCES_TEACHER, BratsCase, case_from_paths,
                                       labels_to_classes, load_case)
from hpc_seg.storage.shards import decode_array, encode_array
from hpc_seg.errors import InputError

log = logging.getLogger(__name__)

CLIP_TOP = 3.0
PAD_MULTIPLE = 16


@dataclass(frozen=True)
class Geometry:
    """How a case's padded arrays map back to its original grid."""

    original_shape: tuple[int, int, int]
    bbox: tuple[int, ...]               # (start0, stop0, start1, stop1, start2, stop2)
    pad_before: tuple[int, int, int]    # zeros added before the crop on each axis; < 0 = cut

    @property
    def crop_shape(self) -> tuple[int, int, int]:
        b = self.bbox
        return (b[1] - b[0], b[3] - b[2], b[5] - b[4])


def brain_mask(images: dict[str, np.ndarray]) -> np.ndarray:
    """Voxels non-zero in all four sequences."""
    mask = None
    for v in images.values():
        mask = (v != 0) if mask is None else mask & (v != 0)
    return mask


def bounding_box(mask: np.ndarray) -> tuple[int, ...]:
    """(start, stop) per axis of the non-zero voxels of ``mask`` (stop exclusive)."""
    out: list[int] = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        out += [int(idx[0]), int(idx[-1]) + 1]
    return tuple(out)


def pad_size_for(crop_shapes: list[tuple[int, int, int]],
                 multiple: int = PAD_MULTIPLE) -> list[int]:
    """Largest crop shape per axis, rounded up to a multiple of ``multiple``."""
    if not crop_shapes:
        raise InputError("no training cases to derive the padding size from; pass --pad-size")
    big = np.max(np.asarray(crop_shapes), axis=0)
    return [int(-(-int(s) // multiple) * multiple) for s in big]


def normalise(volume: np.ndarray, mask: np.ndarray, where: str | Path) -> np.ndarray:
    """z-score inside ``mask``, clip the top at 3, min-max to [0, 1] inside the mask, 0 outside."""
    values = volume[mask].astype(np.float64)
    std = values.std()
    if values.size == 0 or std == 0:
        raise InputError(f"{where}: constant inside the brain mask; cannot normalise")
    z = np.minimum((values - values.mean()) / std, CLIP_TOP)
    lo, hi = z.min(), z.max()
    out = np.zeros(volume.shape, np.float32)
    out[mask] = (z - lo) / (hi - lo) if hi > lo else 0.0
    return out


def _placement(crop: int, pad: int, before: int) -> tuple[slice, slice]:
    """(slice in the crop, slice in the padded array) of the voxels both share on one axis."""
    src0, dst0 = max(0, -before), max(0, before)
    n = min(crop - src0, pad - dst0)
    return slice(src0, src0 + n), slice(dst0, dst0 + n)


def centre_pad(array: np.ndarray, pad_size: tuple[int, int, int] | list[int],
               pad_before: tuple[int, int, int]) -> np.ndarray:
    """Place the last 3 axes of ``array`` in a zero array of ``pad_size`` (cutting if larger)."""
    out = np.zeros(array.shape[:-3] + tuple(pad_size), array.dtype)
    src, dst = zip(*(_placement(c, p, b)
                     for c, p, b in zip(array.shape[-3:], pad_size, pad_before)))
    out[(..., *dst)] = array[(..., *src)]
    return out


def geometry_for(shape: tuple[int, int, int], bbox: tuple[int, ...],
                 pad_size: list[int] | tuple[int, ...]) -> Geometry:
    crop = (bbox[1] - bbox[0], bbox[3] - bbox[2], bbox[5] - bbox[4])
    before = tuple(int((p - c) // 2) for p, c in zip(pad_size, crop))
    return Geometry(original_shape=tuple(int(s) for s in shape), bbox=tuple(bbox),
                    pad_before=before)


def _bbox_slices(bbox: tuple[int, ...]) -> tuple[slice, slice, slice]:
    return tuple(slice(bbox[2 * i], bbox[2 * i + 1]) for i in range(3))


def checked_mask(images: dict[str, np.ndarray], where: BratsCase) -> np.ndarray:
    """The brain mask, or an InputError naming the case's FLAIR file when it is empty."""
    mask = brain_mask(images)
    if not mask.any():
        raise InputError(f"{where.paths['flair']}: empty brain mask (no voxel is non-zero in all "
                         "four sequences)")
    return mask


def crop_shape(images: dict[str, np.ndarray], where: BratsCase) -> tuple[int, int, int]:
    """Shape of the brain mask's bounding box (what the pad size must hold)."""
    b = bounding_box(checked_mask(images, where))
    return (b[1] - b[0], b[3] - b[2], b[5] - b[4])


def preprocess_arrays(images: dict[str, np.ndarray], seg: np.ndarray | None,
                      pad_size: list[int] | tuple[int, ...], where: BratsCase
                      ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, Geometry]:
    """(image [4,D,H,W] float32, label classes uint8 | None, mask uint8, geometry), padded."""
    mask = checked_mask(images, where)
    geo = geometry_for(mask.shape, bounding_box(mask), pad_size)
    box = _bbox_slices(geo.bbox)
    if any(b < 0 for b in geo.pad_before):
        log.warning("%s: cropped brain %s is larger than the pad size %s; centre-cropping it",
                    where.subject, geo.crop_shape, list(pad_size))
    m = mask[box]
    image = np.stack([normalise(images[s][box], m, where.paths[s]) for s in SEQUENCES_TEACHER])
    label = None
    if seg is not None:
        label = centre_pad(labels_to_classes(seg[box]), pad_size, geo.pad_before)
    return (centre_pad(image, pad_size, geo.pad_before), label,
            centre_pad(m.astype(np.uint8), pad_size, geo.pad_before), geo)


def case_row(case: BratsCase, pad_size: list[int] | tuple[int, ...], *, split: str,
             image_dtype: str = "float16") -> dict[str, Any]:
    """Load, preprocess and encode one case as a row of the cases table."""
    images, seg, affine = load_case(case)
    image, label, mask, geo = preprocess_arrays(images, seg, pad_size, case)
    row: dict[str, Any] = {"case_id": case.subject, "split": split, "grade": case.grade}
    row["image"], row["image_shape"], row["image_dtype"] = encode_array(image.astype(image_dtype))
    if label is None:
        row["label"], row["label_shape"], row["label_dtype"] = None, None, None
    else:
        row["label"], row["label_shape"], row["label_dtype"] = encode_array(label)
    row["brain_mask"], row["brain_mask_shape"], _ = encode_array(mask)
    row.update(original_shape=list(geo.original_shape), bbox=list(geo.bbox),
               pad_before=list(geo.pad_before), pad_size=[int(p) for p in pad_size],
               cropped=any(b < 0 for b in geo.pad_before),
               affine=[float(a) for a in np.asarray(affine, np.float64).ravel()],
               source_dir=str(case.directory))
    return row


def preprocess_case(paths: dict[str, str | Path] | BratsCase, pad_size: list[int],
                    split: str = "test", image_dtype: str = "float16") -> dict[str, Any]:
    """Preprocess one raw case (``{sequence: path}`` or a :class:`BratsCase`) for inference.

    Returns a row of the same form as the cases table (see :func:`read_cases`).
    """
    case = paths if isinstance(paths, BratsCase) else case_from_paths(paths)
    if len(pad_size) != 3:
        raise InputError(f"pad_size must be 3 sizes, but got {pad_size}")
    return case_row(case, list(pad_size), split=split, image_dtype=image_dtype)


def row_geometry(row: dict[str, Any]) -> Geometry:
    return Geometry(original_shape=tuple(int(s) for s in row["original_shape"]),
                    bbox=tuple(int(b) for b in row["bbox"]),
                    pad_before=tuple(int(b) for b in row["pad_before"]))


def restore_to_original(pred_classes_padded: np.ndarray, row: dict[str, Any]) -> np.ndarray:
    """Undo padding (or centre-cropping) and the bounding-box crop: the values on the case's
    original grid; 0 outside the bounding box and in any centre-cropped margin.

    Class maps come back as uint8 (as always); float arrays (uncertainty maps) keep their dtype.
    """
    geo = row_geometry(row)
    pred = np.asarray(pred_classes_padded)
    dtype = pred.dtype if np.issubdtype(pred.dtype, np.floating) else np.uint8
    pad = pred.shape[-3:]
    crop = np.zeros(geo.crop_shape, dtype)
    src, dst = zip(*(_placement(c, p, b) for c, p, b in zip(geo.crop_shape, pad, geo.pad_before)))
    crop[src] = pred[dst]
    out = np.zeros(geo.original_shape, dtype)
    out[_bbox_slices(geo.bbox)] = crop
    return out


def case_tensors(row: dict[str, Any], compact: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(image [4,D,H,W], label [D,H,W] | None, brain_mask [D,H,W] bool)`` of one row.

    Default dtypes float32 / int64 / bool; ``compact=True`` keeps the stored float16 (or float32)
    image and uint8 label (half the memory, for ranks holding their share of a cohort).
    """
    image = decode_array(row["image"], row["image_shape"], row["image_dtype"])
    label = None
    if row.get("label") is not None:
        label = decode_array(row["label"], row["label_shape"], row["label_dtype"])
    mask = decode_array(row["brain_mask"], row.get("brain_mask_shape") or row["image_shape"][1:],
                        "|u1").astype(bool)
    if compact:
        return image.copy(), None if label is None else label.copy(), mask
    return (image.astype(np.float32), None if label is None else label.astype(np.int64), mask)
