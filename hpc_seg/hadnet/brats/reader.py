"""Reading BraTS 2019 cases: the folder layouts, the label mapping, and validated loading.

Layouts:

- training: ``ROOT/{HGG,LGG}/<subject>/<subject>_{flair,t1,t1ce,t2,seg}.nii.gz`` (seg required);
- inference/validation: ``ROOT/<subject>/<subject>_{flair,t1,t1ce,t2}.nii.gz`` (seg used if there).

Every problem a user can fix (a missing sequence, shapes or affines that disagree, labels outside
{0, 1, 2, 4}, an unreadable file) raises :class:`InputError` naming the file and the cause.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpc_seg.errors import InputError

log = logging.getLogger(__name__)

SEQUENCES = ("flair", "t1", "t1ce", "t2")
SEQUENCES_TEACHER = ("flair", "t1ce", "t1", "t2")      # the stored channel order
SEQUENCES_STUDENT = ("flair", "t1", "t2")              # = stored channels [0, 2, 3]
STUDENT_CHANNELS = tuple(SEQUENCES_TEACHER.index(s) for s in SEQUENCES_STUDENT)
GRADES = ("HGG", "LGG")
BRATS_LABELS = (0, 1, 2, 4)
AFFINE_TOLERANCE_MM = 1e-3

_LABEL_TO_CLASS = np.zeros(256, np.uint8)
_LABEL_TO_CLASS[4] = 3
_LABEL_TO_CLASS[1] = 1
_LABEL_TO_CLASS[2] = 2
_CLASS_TO_LABEL = np.array([0, 1, 2, 4], np.uint8)


def labels_to_classes(seg: np.ndarray) -> np.ndarray:
    """BraTS labels 0/1/2/4 -> classes 0..3 (uint8). Raises ValueError on other values."""
    seg = np.asarray(seg)
    bad = np.setdiff1d(np.unique(seg), BRATS_LABELS)
    if bad.size:
        raise ValueError(f"labels {bad.tolist()} are not BraTS labels {list(BRATS_LABELS)}")
    return _LABEL_TO_CLASS[seg.astype(np.uint8)]


def classes_to_labels(cls: np.ndarray) -> np.ndarray:
    """Classes 0..3 -> BraTS labels 0/1/2/4 (uint8). Raises ValueError on other values."""
    cls = np.asarray(cls)
    if cls.size and (cls.min() < 0 or cls.max() > 3):
        raise ValueError(f"classes must be in 0..3, but got values in [{cls.min()}, {cls.max()}]")
    return _CLASS_TO_LABEL[cls.astype(np.uint8)]


@dataclass(frozen=True)
class BratsCase:
    """One subject's files (paths may not exist: :func:`load_case` checks)."""

    subject: str
    directory: Path
    paths: dict[str, Path]          # sequence -> NIfTI path
    seg: Path | None                # None for inference data
    grade: str | None = None
    """``HGG``/``LGG`` in the training layout"""


def _nifti(directory: Path, subject: str, suffix: str) -> Path:
    """``<subject>_<suffix>.nii.gz`` (or ``.nii`` when only that exists)."""
    gz = directory / f"{subject}_{suffix}.nii.gz"
    plain = directory / f"{subject}_{suffix}.nii"
    return plain if not gz.exists() and plain.exists() else gz


def _subject_dirs(parent: Path) -> list[Path]:
    """Folders of ``parent`` holding NIfTI files (others, like a stray ``logs/``, are ignored)."""
    out = []
    for d in sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(d.glob("*.nii*")):
            out.append(d)
        else:
            log.info("%s: no NIfTI files, not a subject folder; ignored", d)
    return out


def find_cases(root: str | Path) -> list[BratsCase]:
    """Subjects under ``root`` in either layout, sorted by subject name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    grade_dirs = [root / g for g in GRADES if (root / g).is_dir()]
    cases = []
    if grade_dirs:
        for gdir in grade_dirs:
            for d in _subject_dirs(gdir):
                cases.append(BratsCase(subject=d.name, directory=d,
                                       paths={s: _nifti(d, d.name, s) for s in SEQUENCES},
                                       seg=_nifti(d, d.name, "seg"), grade=gdir.name))
    else:
        for d in _subject_dirs(root):
            seg = _nifti(d, d.name, "seg")
            cases.append(BratsCase(subject=d.name, directory=d,
                                   paths={s: _nifti(d, d.name, s) for s in SEQUENCES},
                                   seg=seg if seg.exists() else None))
    if not cases:
        raise InputError(f"{root}: no BraTS subjects (expected {{HGG,LGG}}/<subject>/ or "
                         "<subject>/ folders with <subject>_{flair,t1,t1ce,t2}.nii.gz)")
    names = [c.subject for c in cases]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"{root}: subject(s) {dup} appear in both HGG and LGG")
    return sorted(cases, key=lambda c: c.subject)


def case_from_paths(paths: dict[str, str | Path]) -> BratsCase:
    """A :class:`BratsCase` from ``{sequence: path}`` (extra keys ``seg``, ``subject``, ``dir``)."""
    missing = [s for s in SEQUENCES if s not in paths]
    if missing:
        raise InputError(f"case paths lack sequence(s) {missing}; got keys {sorted(paths)}")
    flair = Path(paths["flair"])
    subject = str(paths.get("subject") or flair.name.split("_flair")[0])
    seg = paths.get("seg")
    return BratsCase(subject=subject, directory=Path(paths.get("dir") or flair.parent),
                     paths={s: Path(paths[s]) for s in SEQUENCES},
                     seg=Path(seg) if seg else None)


def _load(path: Path):
    import nibabel as nib

    if not path.exists():
        raise InputError(f"{path}: missing (a case needs <subject>_{{{','.join(SEQUENCES)}}}"
                         ".nii.gz, and _seg.nii.gz in the HGG/LGG training layout)")
    try:
        img = nib.load(path)
    except Exception as exc:    # nibabel raises several types for corrupt headers
        raise InputError(f"{path}: cannot read NIfTI: {exc}") from None
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        raise InputError(f"{path}: expected a 3D volume, but got shape {tuple(img.shape)}")
    return img


def _data(img, path: Path, dtype) -> np.ndarray:
    try:
        return np.asarray(img.dataobj, dtype=dtype)
    except Exception as exc:    # truncated gzip, short file
        raise InputError(f"{path}: cannot read voxel data: {exc}") from None


def _open_all(case: BratsCase) -> dict[str, Any]:
    """Open every file's header; check each is 3D and shares FLAIR's shape and affine."""
    ref_path = case.paths["flair"]
    imgs = {"flair": _load(ref_path)}
    shape, affine = tuple(imgs["flair"].shape), imgs["flair"].affine
    named = {s: case.paths[s] for s in SEQUENCES if s != "flair"}
    if case.seg is not None:
        named["seg"] = case.seg
    for name, path in named.items():
        img = imgs[name] = _load(path)
        if tuple(img.shape) != shape:
            raise InputError(f"{path}: shape {tuple(img.shape)} differs from {ref_path.name}'s "
                             f"{shape}")
        if not np.allclose(img.affine, affine, atol=AFFINE_TOLERANCE_MM):
            worst = float(np.abs(img.affine - affine).max())
            raise InputError(f"{path}: affine differs from {ref_path.name}'s by up to "
                             f"{worst:.4g} mm (the sequences must be co-registered)")
    return imgs


def load_case(case: BratsCase) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray]:
    """Read and validate one case: ``({sequence: float32 volume}, seg uint8 | None, affine)``.

    The seg keeps BraTS labels (0/1/2/4); the affine is FLAIR's.
    """
    imgs = _open_all(case)
    images = {s: _data(imgs[s], case.paths[s], np.float32) for s in SEQUENCES}
    for s, v in images.items():
        if not np.isfinite(v).all():
            raise InputError(f"{case.paths[s]}: contains NaN or infinite values")
    seg = None
    if case.seg is not None:
        raw = _data(imgs["seg"], case.seg, np.float32)
        bad = [float(v) for v in np.unique(raw) if v not in BRATS_LABELS]
        if bad:
            shown = ", ".join(f"{v:g}" for v in bad[:8]) + (" ..." if len(bad) > 8 else "")
            raise InputError(f"{case.seg}: unknown label value(s) {shown}; BraTS labels are "
                             f"{list(BRATS_LABELS)}")
        seg = raw.astype(np.uint8)
    return images, seg, imgs["flair"].affine
