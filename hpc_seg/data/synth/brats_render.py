"""MR contrasts for a tissue map: T1, T1ce, T2 and FLAIR with bias field and Rician noise.

Mean intensities per tissue (arbitrary units, roughly a 3T scanner's range after BraTS's
resampling) follow the textbook ordering: T1 WM > GM > CSF; T2 CSF > GM > WM; FLAIR CSF dark,
edema bright. The enhancing tumour is bright on T1ce only: on T1, T2 and FLAIR it sits a few
percent away from the edema/GM around it, so a network without T1ce has a weak but non-zero cue
(the reason HAD-Net's distillation has something to teach). The necrotic core is dark on T1/T1ce
and bright on T2.

Air stays exactly 0 (as in BraTS, whose volumes are zero outside the head after registration), so
the preprocessing brain mask "non-zero in all four sequences" is the head.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hpc_seg.data.synth.brats_anatomy import TISSUES

SEQUENCES = ("t1", "t1ce", "t2", "flair")

# Rows: sequences in SEQUENCES order; columns: tissues in TISSUES order
# (air, scalp, skull, csf, gm, wm, edema, necrosis, enhancing).
CONTRAST = np.array([
    [0, 820, 70, 220, 470, 660, 400, 180, 455],     # T1
    [0, 850, 75, 230, 490, 680, 420, 160, 1000],    # T1ce: enhancement
    [0, 520, 60, 980, 600, 430, 820, 930, 745],     # T2
    [0, 480, 55, 140, 560, 430, 880, 520, 800],     # FLAIR
], dtype=np.float32)
assert CONTRAST.shape[1] == len(TISSUES)


def render_sequences(tissue: np.ndarray, rng: np.random.Generator, spacing: float,
                     noise: float) -> dict[str, np.ndarray]:
    """Return ``{sequence: int16 volume}`` for a tissue map.

    ``noise`` is the Rician noise sigma as a fraction of the WM T1 intensity.
    """
    head = tissue > 0
    out = {}
    for i, seq in enumerate(SEQUENCES):
        # Per-case tissue contrast jitter (+-6 %) and a global scanner gain.
        means = CONTRAST[i] * rng.uniform(0.94, 1.06, len(TISSUES)).astype(np.float32)
        image = means[tissue] * np.float32(rng.uniform(0.8, 1.25))
        # Partial-volume blur (about 1 mm, whatever the grid spacing).
        image = ndimage.gaussian_filter(image, sigma=max(0.4, 0.8 / spacing))
        image *= _bias_field(tissue.shape, rng)
        sigma = np.float32(noise * CONTRAST[0, 5])
        real = image + rng.normal(0, 1, image.shape).astype(np.float32) * sigma
        imag = rng.normal(0, 1, image.shape).astype(np.float32) * sigma
        image = np.sqrt(real * real + imag * imag)
        # Zero air; keep every head voxel >= 1 so the "non-zero in all four" mask is the head.
        out[seq] = np.where(head, np.clip(np.rint(image), 1, 32767), 0).astype(np.int16)
    return out


def _bias_field(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field, exp(quadratic polynomial), about +-15 % over the head."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    c = rng.normal(0, 0.08, 9).astype(np.float32)
    log_field = (c[0] * x + c[1] * y + c[2] * z + c[3] * x * y + c[4] * y * z + c[5] * x * z
                 + c[6] * x * x + c[7] * y * y + c[8] * z * z)
    return np.exp(log_field).astype(np.float32)
