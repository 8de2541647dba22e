"""``hpc-seg synth brats``: a deterministic BraTS-2019-layout cohort of synthetic glioma cases.

Layout: ``OUT/{HGG,LGG}/<subject>/<subject>_{flair,t1,t1ce,t2,seg}.nii.gz`` plus
``OUT/manifest.json`` and ``OUT/preview.png`` (a look at the first cases). Subjects are
``BraTS19_SYN_<nnnn>_1`` (case index, zero-padded).

Case ``i`` depends only on ``(seed, i)`` (``np.random.default_rng([seed, i])``), so the cohort is
the same whatever the number of workers, and ``--cases 20`` is a prefix of ``--cases 40``.
Split rule (stated in the manifest): ``i % 5 == 3`` -> val, ``i % 5 == 4`` -> test, else train
(60/20/20, stable when the cohort grows).

Each case is written to a temporary folder and renamed, so a re-run skips finished cases and an
interrupted one leaves nothing half-written under a subject name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from functools import partial
from pathlib import Path

import numpy as np

from hpc_seg.hadnet.synth.config import SynthBratsConfig
from hpc_seg.storage.generated import GeneratedFolder, UnitDone, generate_units, open_folder

log = logging.getLogger(__name__)

SPLIT_RULE = "case index i: i % 5 == 3 -> val, i % 5 == 4 -> test, otherwise train"


def subject_name(index: int) -> str:
    return f"BraTS19_SYN_{index:04d}_1"


def split_of(index: int) -> str:
    return {3: "val", 4: "test"}.get(index % 5, "train")


def case_affine(shape: tuple[int, int, int], spacing: float) -> np.ndarray:
    """BraTS-like affine: x and y flipped (the files' voxel axes run R->L and A->P), z up,
    world origin at the grid centre. World coordinates are RAS (NIfTI convention)."""
    aff = np.diag([-spacing, -spacing, spacing, 1.0])
    aff[:3, 3] = [spacing * (n - 1) / 2 * s for n, s in zip(shape, (1, 1, -1))]
    return aff


def generate_case(cfg: SynthBratsConfig, index: int) -> dict:
    """Render case ``index``: ``{'images': {seq: int16}, 'seg': uint8, 'grade', 'enhancement'}``."""
    from hpc_seg.hadnet.synth.anatomy import draw_anatomy, tissue_and_labels
    from hpc_seg.hadnet.synth.render import render_sequences

    rng = np.random.default_rng([cfg.seed, index])
    anatomy = draw_anatomy(rng, cfg.lgg_fraction)
    tissue, seg = tissue_and_labels(anatomy, cfg.shape, cfg.spacing, cfg.et_min_mm)
    images = render_sequences(tissue, rng, cfg.spacing, cfg.noise)
    return {"images": images, "seg": seg, "grade": anatomy.grade,
            "enhancement": anatomy.enhancement}


def case_kind(cfg: SynthBratsConfig, index: int) -> tuple[str, str]:
    """(grade, enhancement pattern) of case ``index``: its first random draws, no rendering."""
    from hpc_seg.hadnet.synth.anatomy import draw_anatomy

    anatomy = draw_anatomy(np.random.default_rng([cfg.seed, index]), cfg.lgg_fraction)
    return anatomy.grade, anatomy.enhancement


def _volumes_ml(seg: np.ndarray, spacing: float) -> dict[str, float]:
    voxel_ml = spacing ** 3 / 1000.0
    return {f"volume_ml_{k}": round(float((seg == v).sum()) * voxel_ml, 3)
            for k, v in (("ncr", 1), ("ed", 2), ("et", 4))}


def _write_case(cfg: SynthBratsConfig, out: str, index: int) -> dict:
    """Generate and write one case (worker entry point); returns its manifest entry."""
    import nibabel as nib

    subject = subject_name(index)
    grade, enhancement = case_kind(cfg, index)
    final = Path(out) / grade / subject
    entry = {"subject": subject, "index": index, "grade": grade, "split": split_of(index),
             "dir": f"{grade}/{subject}", "enhancement": enhancement}
    if final.is_dir():      # finished by an earlier run
        seg = np.asarray(nib.load(final / f"{subject}_seg.nii.gz").dataobj)
        return {**entry, **_volumes_ml(seg, cfg.spacing)}
    case = generate_case(cfg, index)
    affine = case_affine(cfg.shape, cfg.spacing)
    tmp = final.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{subject}")
    tmp.mkdir(parents=True)
    try:
        for name, data in {**case["images"], "seg": case["seg"]}.items():
            img = nib.Nifti1Image(data, affine)
            img.header.set_xyzt_units("mm", "sec")
            img.header.set_qform(affine, code=1)
            img.header.set_sform(affine, code=1)
            _save_gz(img, tmp / f"{subject}_{name}.nii.gz", cfg.compresslevel)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {**entry, **_volumes_ml(case["seg"], cfg.spacing)}


def _save_gz(img, path: Path, level: int) -> None:
    import gzip

    # mtime=0 and no file name in the gzip header: the same case gives byte-identical files.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                compresslevel=level, mtime=0) as fh:
        fh.write(img.to_bytes())


#: the settings that shape a case's bytes; the case count is not one (20 cases are a prefix of 40)
SETTINGS = ("seed", "shape", "spacing_mm", "noise", "lgg_fraction", "et_min_mm")
#: settings added later, with the default that cohorts made before them had (see open_folder)
LATER_SETTINGS = {"et_min_mm": 0.0}
COHORT = GeneratedFolder(what="synthetic BraTS cohort", state_file=".synth-brats.json",
                         done_dir=".cases")


def _cohort_params(cfg: SynthBratsConfig) -> dict:
    return {"generator": "hpc-seg synth brats", "seed": cfg.seed, "shape": list(cfg.shape),
            "spacing_mm": cfg.spacing, "noise": cfg.noise, "lgg_fraction": cfg.lgg_fraction,
            "et_min_mm": cfg.et_min_mm, "split_rule": SPLIT_RULE,
            "affine": "RAS world; voxel axes x R->L, y A->P, z I->S (as BraTS files)"}


def _earlier_settings(out: Path) -> dict | None:
    """The settings of a cohort written before the state file existed (its manifest has them)."""
    try:
        old = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or old.get("generator") != "hpc-seg synth brats":
        return None
    return {k: old.get(k, LATER_SETTINGS.get(k)) for k in SETTINGS}


def _case_unit(cfg: SynthBratsConfig, out: str, index: int) -> UnitDone:
    return UnitDone(str(index), _write_case(cfg, out, index))


def synth_brats(out: Path, cfg: SynthBratsConfig) -> Path:
    """Write the cohort to ``out`` (skipping finished cases); returns the manifest path."""
    from hpc_seg.storage.shards import atomic_write_bytes

    out = Path(out)
    params = _cohort_params(cfg)
    open_folder(out, COHORT, {k: params[k] for k in SETTINGS}, adopt=_earlier_settings,
                later=LATER_SETTINGS)
    entries = generate_units(out, COHORT, range(cfg.cases), partial(_case_unit, cfg, str(out)),
                             str, workers=cfg.workers, label="synth brats", unit="cases")
    cases = [entries[str(i)] for i in range(cfg.cases)]
    manifest = {**params, "cases": cases}
    path = atomic_write_bytes(json.dumps(manifest, indent=1).encode(), out / "manifest.json")
    if cfg.preview:
        from hpc_seg.hadnet.synth.preview import preview_png

        preview_png([out / e["dir"] for e in cases[:cfg.preview]], out / "preview.png")
    log.info("%s: %d case(s) (%d HGG, %d LGG)", out, len(cases),
             sum(e["grade"] == "HGG" for e in cases), sum(e["grade"] == "LGG" for e in cases))
    return path
