"""The cmr-seg-tl PNG layout -> the ingest ``volumes`` table (masks included).

Files: ``SRC/{ID}_slice%03d_frame%03d-image.png`` and ``...-mask.png`` (mask grey levels 0 bg,
1 LV, 2 MY; a mask saved with 0/127/254 or 0/128/255 levels is mapped back). One volunteer ``ID``
becomes one stack ``[frames, slices, rows, cols]``; a missing mask counts as empty (as in the
original), a missing image is an error naming the file. PNGs carry no geometry, so the pixel and
slice spacing come from the caller (the published analysis used 0.625 mm pixels at 512, i.e.
1.25 mm at 256, and 6 mm slices).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from hpc_seg.cardiac.ingest.tables import volumes_table
from hpc_seg.errors import InputError
from hpc_seg.storage.shards import atomic_write_bytes, atomic_write_table

NAME = re.compile(r"^(?P<id>.+)_slice(?P<slice>\d{3})_frame(?P<frame>\d{3})-(?P<kind>image|mask)\.png$")


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L") if im.mode not in ("L", "I;16", "I") else im)
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"{path}: cannot read PNG ({exc})") from None
    return arr


def _mask_levels(mask: np.ndarray, path: Path) -> np.ndarray:
    values = set(np.unique(mask).tolist())
    if values <= {0, 1, 2}:
        return mask.astype(np.uint8)
    for lv, my in ((127, 254), (128, 255), (85, 170)):
        if values <= {0, lv, my}:
            out = np.zeros(mask.shape, np.uint8)
            out[mask == lv], out[mask == my] = 1, 2
            return out
    raise InputError(f"{path}: mask grey levels {sorted(values)[:6]} are not 0/1/2")


def read_png_layout(src: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{ID: (images [F, S, R, C], masks [F, S, R, C] uint8)}`` from one folder of PNGs."""
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"{src}: PNG folder does not exist")
    files: dict[str, dict[tuple[int, int, str], Path]] = defaultdict(dict)
    for p in src.iterdir():
        m = NAME.match(p.name)
        if m:
            files[m["id"]][(int(m["slice"]), int(m["frame"]), m["kind"])] = p
    if not files:
        raise InputError(f"{src}: no files named {{ID}}_slice%03d_frame%03d-image.png")
    out = {}
    for vid, items in sorted(files.items()):
        slices = sorted({k[0] for k in items})
        frames = sorted({k[1] for k in items})
        first = _read_png(items[next(k for k in sorted(items) if k[2] == "image")]) \
            if any(k[2] == "image" for k in items) else None
        if first is None:
            raise InputError(f"{src}: volunteer {vid} has masks but no images")
        shape = (len(frames), len(slices), *first.shape)
        images = np.zeros(shape, np.uint16)
        masks = np.zeros(shape, np.uint8)
        for ti, t in enumerate(frames):
            for si, s in enumerate(slices):
                ip = items.get((s, t, "image"))
                if ip is None:
                    raise InputError(f"{src / f'{vid}_slice{s:03d}_frame{t:03d}-image.png'}: "
                                     "missing (the other slices/frames of this volunteer exist)")
                img = _read_png(ip)
                if img.shape != first.shape:
                    raise InputError(f"{ip}: {img.shape} differs from {first.shape} of the "
                                     "volunteer's other images")
                images[ti, si] = img
                mp = items.get((s, t, "mask"))
                if mp is not None:
                    mk = _read_png(mp)
                    if mk.shape != first.shape:
                        raise InputError(f"{mp}: mask {mk.shape} differs from its image {first.shape}")
                    masks[ti, si] = _mask_levels(mk, mp)
        out[vid] = (images, masks)
    return out


def ingest_png_layout(src: str | Path, out: str | Path, splits: dict[str, str], *,
                      pixel_spacing_mm: float, slice_spacing_mm: float) -> Path:
    """Write ``out/volumes`` (one stack per volunteer) and ``out/truth.csv``; returns the volumes dir."""
    out = Path(out)
    rows, truth = [], ["Id,Systole,Diastole"]
    for vid, (images, masks) in read_png_layout(src).items():
        if vid not in splits:
            continue
        f, s, r, c = images.shape
        affine = np.diag([pixel_spacing_mm, pixel_spacing_mm, slice_spacing_mm, 1.0])
        rows.append({"stack_id": f"{vid}_a", "subject_id": f"{vid}_a", "patient_id": vid,
                     "split": splits[vid], "rotated_90": False, "shape": [f, s, r, c],
                     "dtype": images.dtype.str, "pixels": np.ascontiguousarray(images),
                     "mask": np.ascontiguousarray(masks),
                     "pixel_spacing_mm": [pixel_spacing_mm, pixel_spacing_mm],
                     "slice_spacing_mm": slice_spacing_mm,
                     "slice_positions_mm": [k * slice_spacing_mm for k in range(s)],
                     "frame_times_ms": [float(t) for t in range(f)],
                     "affine": affine.reshape(-1).tolist(), "scale_factor": 1.0,
                     "series_numbers": list(range(1, s + 1))})
        lv = (masks == 1).sum((1, 2, 3)) * pixel_spacing_mm ** 2 * slice_spacing_mm / 1000
        truth.append(f"{vid},{lv.min():.3f},{lv.max():.3f}")
    if not rows:
        raise InputError(f"{src}: none of the PNG volunteers is in the split {sorted(splits)}")
    atomic_write_table(volumes_table(rows), out / "volumes" / "part-png-00000.parquet")
    atomic_write_bytes(("\n".join(truth) + "\n").encode(), out / "truth.csv")
    return out / "volumes"

