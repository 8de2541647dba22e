"""Read-back helpers for the synthetic cine tests: headers, series and curated-volume oracles.

These re-derive everything from the files on disk (pydicom) and the manifest, independently of the
generator's internals, so the tests check what an ingest stage would actually see.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

TINY = dict(n_frames=6, max_matrix=64, matrices=[[256, 208]], matrix_weights=[1.0], workers=1)


@dataclass
class Image:
    path: Path
    ds: pydicom.Dataset          # header only

    @property
    def normal(self) -> np.ndarray:
        iop = np.asarray(self.ds.ImageOrientationPatient, float)
        n = np.cross(iop[:3], iop[3:])
        return n / np.linalg.norm(n)

    @property
    def position(self) -> float:
        return float(np.dot(np.asarray(self.ds.ImagePositionPatient, float), self.normal))

    def lps(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """LPS coordinates of pixels (row, col) by the contract's convention."""
        iop = np.asarray(self.ds.ImageOrientationPatient, float)
        ps = np.asarray(self.ds.PixelSpacing, float)
        ipp = np.asarray(self.ds.ImagePositionPatient, float)
        return (ipp[None] + cols[:, None] * ps[1] * iop[None, :3]
                + rows[:, None] * ps[0] * iop[None, 3:])


def load_manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def read_patient(root: Path, pid: str, manifest: dict) -> dict[int, list[Image]]:
    """Short-axis images by SeriesNumber (readable headers only), sorted by InstanceNumber."""
    entry = manifest["patients"][pid]
    study = root / entry["split"] / pid / "study"
    series: dict[int, list[Image]] = defaultdict(list)
    for path in sorted(study.glob("sax_*/*.dcm")):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            continue
        series[int(ds.SeriesNumber)].append(Image(path, ds))
    for imgs in series.values():
        imgs.sort(key=lambda im: int(im.ds.InstanceNumber))
    return dict(series)


def curated_lv_volumes(root: Path, pid: str, manifest: dict, stack: dict,
                       masks_dir: str = "truth_masks") -> np.ndarray:
    """LV volume per frame of a perfect segmentation of the curated stack (from the files).

    Each position takes the masks of its kept series; a frame whose file is missing or skipped
    repeats the previous frame; area uses the file's PixelSpacing, depth the modal spacing.
    """
    entry = manifest["patients"][pid]
    skipped = {root / s["file"] for s in entry["skipped_files"]}
    series = read_patient(root, pid, manifest)
    masks = np.load(root / masks_dir / f"{pid}.npz")
    n_frames = stack["shape"][0]
    vols = np.zeros(n_frames)
    for sn in stack["kept_series_by_position"]:
        by_frame = {int(im.ds.InstanceNumber) - 1: im for im in series[sn] if im.path not in skipped}
        last = None
        for f in range(n_frames):
            if f in by_frame:
                last = by_frame[f]
            ps = np.asarray(last.ds.PixelSpacing, float)
            vols[f] += np.count_nonzero(masks[last.ds.SOPInstanceUID] == 1) * ps[0] * ps[1]
    return vols * stack["slice_spacing_mm"] / 1000.0


def truth_rows(root: Path) -> dict[str, tuple[float, float]]:
    lines = (root / "truth.csv").read_text().strip().splitlines()
    assert lines[0] == "Id,Systole,Diastole"
    return {row.split(",")[0]: (float(row.split(",")[1]), float(row.split(",")[2]))
            for row in lines[1:]}


def score(vols: np.ndarray, systole: float, diastole: float) -> float:
    return max(abs(vols.min() - systole) / systole, abs(vols[0] - diastole) / diastole)
