"""Tiny BraTS-layout cohorts for the data tests (synthetic, or hand-written NIfTI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_seg.hadnet.synth.cohort import SynthBratsConfig, synth_brats

# The whole head (~170x200x150 mm) in a 32x32x24 grid.
TINY = dict(shape=(32, 32, 24), spacing=6.5)


def tiny_cohort(root: Path, cases: int = 4, seed: int = 3, workers: int = 1) -> Path:
    synth_brats(root, SynthBratsConfig(cases=cases, seed=seed, workers=workers, preview=0, **TINY))
    return root


def write_case(root: Path, subject: str, *, shape=(10, 12, 8), grade: str | None = "HGG",
               seg_values=(0, 1, 2, 4), seed: int = 0) -> Path:
    """A hand-made case: a box of non-zero brain in zeros, seg with ``seg_values``."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    d = root / grade / subject if grade else root / subject
    d.mkdir(parents=True)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    brain = np.zeros(shape, bool)
    brain[2:-2, 3:-2, 1:-1] = True
    for seq in ("flair", "t1", "t1ce", "t2"):
        vol = np.where(brain, rng.integers(50, 500, shape), 0).astype(np.int16)
        nib.save(nib.Nifti1Image(vol, affine), d / f"{subject}_{seq}.nii.gz")
    if seg_values is not None:
        seg = np.zeros(shape, np.uint8)
        core = [slice(4, 6), slice(5, 7), slice(3, 5)]
        seg[tuple(core)] = seg_values[-1]
        seg[4, 5, 2] = seg_values[1] if len(seg_values) > 1 else 0
        seg[3, 5, 3] = seg_values[2] if len(seg_values) > 2 else 0
        nib.save(nib.Nifti1Image(seg, affine), d / f"{subject}_seg.nii.gz")
    return d
