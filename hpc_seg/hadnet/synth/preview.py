"""A PNG contact sheet of synthetic BraTS cases: FLAIR, T1, T1ce, T2 and the labels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from hpc_seg.storage.shards import atomic_write_bytes

_LABEL_COLOURS = {1: (0.9, 0.2, 0.2), 2: (0.2, 0.8, 0.3), 4: (1.0, 0.9, 0.1)}


def preview_png(case_dirs: list[Path], path: Path) -> Path:
    """One row per case: the axial slice with the most tumour, four sequences + label overlay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib

    fig, axes = plt.subplots(len(case_dirs), 5, figsize=(12.5, 2.6 * len(case_dirs)), squeeze=False)
    for row, d in zip(axes, case_dirs):
        vol = {s: np.asarray(nib.load(d / f"{d.name}_{s}.nii.gz").dataobj)
               for s in ("flair", "t1", "t1ce", "t2", "seg")}
        z = int(np.argmax((vol["seg"] > 0).sum(axis=(0, 1))))
        for ax, seq in zip(row, ("flair", "t1", "t1ce", "t2")):
            # Radiological display: rotate so anterior is up (voxel y runs A->P).
            ax.imshow(np.rot90(vol[seq][:, :, z]), cmap="gray")
            ax.set_title(f"{d.name[8:]} {seq} z={z}", fontsize=8)
        overlay = np.zeros((*vol["seg"].shape[:2], 4))
        for label, colour in _LABEL_COLOURS.items():
            overlay[vol["seg"][:, :, z] == label] = (*colour, 1.0)
        row[4].imshow(np.rot90(vol["t1"][:, :, z]), cmap="gray")
        row[4].imshow(np.rot90(overlay, axes=(0, 1)))
        row[4].set_title("labels: 1 red, 2 green, 4 yellow", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return atomic_write_bytes(buf.getvalue(), path)
