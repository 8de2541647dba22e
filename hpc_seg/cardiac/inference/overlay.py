"""The ED/ES overlay PNG of one subject: basal, mid and apical slices with LV and myocardium."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_seg.cardiac.labels.confidence import LV, MY
from hpc_seg.storage.shards import atomic_write_bytes


def pick_slices(mask: np.ndarray, n: int = 3) -> list[int]:
    """Up to ``n`` slices spread over the ones where the heart appears (all slices if none)."""
    heart = np.flatnonzero(((mask == LV) | (mask == MY)).any(axis=(0, 2, 3)))
    pool = heart if heart.size else np.arange(mask.shape[1])
    idx = np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int)
    return sorted({int(pool[i]) for i in idx})


def write_overlay(pixels: np.ndarray, mask: np.ndarray, ed: int, es: int, title: str,
                  path: Path) -> Path:
    """Two rows (ED, ES) of images with LV (red) and myocardium (green) drawn over them."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slices = pick_slices(mask)
    fig, axes = plt.subplots(2, len(slices), figsize=(2.6 * len(slices), 5.4), squeeze=False)
    shown = pixels if pixels.dtype.kind not in "fc" else pixels[np.isfinite(pixels)]
    hi = (float(np.percentile(shown, 99.5)) if shown.size else 0.0) or 1.0
    colours = np.zeros((3, 4))
    colours[LV] = (1.0, 0.1, 0.1, 0.45)
    colours[MY] = (0.1, 0.9, 0.2, 0.45)
    for r, (name, t) in enumerate((("ED", ed), ("ES", es))):
        for c, k in enumerate(slices):
            ax = axes[r, c]
            ax.imshow(pixels[t, k], cmap="gray", vmin=0, vmax=hi)
            ax.imshow(colours[np.clip(mask[t, k], 0, 2)], interpolation="nearest")
            ax.set_title(f"{name} frame {t}, slice {k}", fontsize=8)
            ax.axis("off")
    fig.suptitle(f"{title} (red: LV cavity, green: myocardium)", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return atomic_write_bytes(buf.getvalue(), path)
