"""Multi-structure label maps of a synthetic patient: every structure the phantom draws.

With ``CineSynthConfig.label_maps`` on, each patient's short-axis stack is also written as a 4D
NIfTI label map ``OUT/label_maps/<split>/<pid>.nii.gz`` (uint8; X = column, Y = row, Z = slice in
ascending position, T = frame; the affine in RAS, as ``hpc-seg export nifti`` writes stacks), with
``OUT/label_maps/structures.json`` naming the ids (:data:`~phantom.STRUCTURES`) and which of them
make up the mask classes (LV cavity = blood pool + papillary muscles and trabeculae). A label map
is evaluated where the masks are (pixel centres of each slice's centre plane, at every frame), so
its LV, myocardium and RV are exactly the truth masks, pixel for pixel.

These maps are what a label-driven renderer draws from: training images with random appearance
(``hpc-seg train --appearance tissue``, ``random`` or ``hybrid``) or an independently written renderer of the same anatomy
(:mod:`hpc_seg.cardiac.synth.kspace_render`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpc_seg.cardiac.synth import phantom as ph
from hpc_seg.cardiac.synth.plan import PatientPlan
from hpc_seg.cardiac.synth.quirks import curated_slices
from hpc_seg.cardiac.synth.render import pixel_centres
from hpc_seg.storage.shards import atomic_write, atomic_write_bytes

FOLDER = "label_maps"
STRUCTURES_FILE = "structures.json"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Mask class names -> their label in the label masks (the slices keep lv and myocardium).
CLASS_LABELS = {"lv": ph.LV_CAVITY, "myocardium": ph.LV_MYO, "rv": ph.RV_CAVITY}


def structures_doc() -> dict:
    """What ``structures.json`` holds: structure ids and names, and the mask classes' ids."""
    return {"format": "hpc-seg label maps", "version": 1,
            "structures": {str(i): name for i, name in enumerate(ph.STRUCTURES)},
            "classes": {name: [int(s) for s in ph.STRUCTURE_MASK_LABELS[label]]
                        for name, label in CLASS_LABELS.items()},
            "axes": "X column, Y row, Z slice (ascending position), T frame; affine RAS mm"}


def stack_label_map(plan: PatientPlan) -> tuple[np.ndarray, np.ndarray]:
    """(label map ``[T, K, R, C]`` uint8, RAS affine) of the patient's first short-axis stack.

    Slices are the curated stack's positions (ascending); a filled gap holds the anatomy at its
    own position (the slice that was planned but not written), as the truth volumes do.
    """
    slices, spacing = curated_slices(plan, 0)
    times = plan.frame_times()
    per_slice = []
    for e in slices:
        sp = e.truth_series
        x, y, z = pixel_centres(sp.plane)
        frames = [ph.structure_labels(plan.anat, ph.heart_state(plan.anat, t), x, y, z)
                  for t in times]
        per_slice.append([np.rot90(m) if sp.rotate else m for m in frames])
    data = np.ascontiguousarray(np.stack([np.stack(f) for f in zip(*per_slice)]))
    geom = slices[0].series.geom
    lps = np.eye(4)
    lps[:3, 0] = np.asarray(geom.iop[:3]) * geom.ps_col
    lps[:3, 1] = np.asarray(geom.iop[3:]) * geom.ps_row
    lps[:3, 2] = geom.normal * spacing
    lps[:3, 3] = geom.ipp
    return data, LPS_TO_RAS @ lps


def write_label_map(plan: PatientPlan, out: Path) -> Path:
    """Write the patient's label map under ``out/label_maps/<split>/`` (atomically)."""
    import nibabel as nib

    data, affine = stack_label_map(plan)
    img = nib.Nifti1Image(np.transpose(data, (3, 2, 1, 0)), affine)   # [t,k,j,i] -> (i,j,k,t)
    img.header.set_xyzt_units("mm", "msec")
    zooms = list(img.header.get_zooms())
    zooms[3] = plan.rr_ms / plan.n_frames
    img.header.set_zooms(zooms)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    path = Path(out) / FOLDER / plan.split / f"{plan.pid}.nii.gz"
    return atomic_write(path, lambda tmp: nib.save(img, tmp))


def write_structures(out: Path) -> Path:
    """``out/label_maps/structures.json``."""
    return atomic_write_bytes((json.dumps(structures_doc(), indent=1) + "\n").encode(),
                              Path(out) / FOLDER / STRUCTURES_FILE)
