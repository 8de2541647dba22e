"""MR contrasts for a tissue map: T1, T1ce, T2 and FLAIR with bias field and Rician noise.

Mean intensities per tissue (arbitrary units, roughly a 3T scanner's range after BraTS's
resampling) follow the textbook ordering: T1 WM > GM > CSF; T2 CSF > GM > WM; FLAIR CSF dark,
edema bright. The enhancing tumour is bright on T1ce only: on T1, T2 and FLAIR it sits ~10 %
away from the edema around it, under a tumour texture of +-12-15 %, so without T1ce a voxel's
intensities barely tell ET apart and only its place (the rim between core and edema) does: the
reason HAD-Net's distillation has something to teach. Vessels (choroid plexus, sagittal sinus)
enhance on T1ce too, so brightness alone is not a perfect ET detector for the teacher either.
The necrotic core is dark on T1/T1ce and bright on T2.

Air stays exactly 0 (as in BraTS, whose volumes are zero outside the head after registration), so
the preprocessing brain mask "non-zero in all four sequences" is the head.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hpc_seg.hadnet.synth.anatomy import TISSUES

SEQUENCES = ("t1", "t1ce", "t2", "flair")

# Rows: sequences in SEQUENCES order; columns: tissues in TISSUES order
# (air, scalp, skull, csf, gm, wm, edema, necrosis, enhancing, vessel).
CONTRAST = np.array([
    [0, 820, 70, 220, 470, 660, 400, 180, 455, 330],    # T1
    [0, 850, 75, 230, 490, 680, 420, 160, 1000, 950],   # T1ce: enhancement (tumour, vessels)
    [0, 520, 60, 980, 600, 430, 820, 930, 745, 350],    # T2
    [0, 480, 55, 140, 560, 430, 880, 520, 800, 300],    # FLAIR
], dtype=np.float32)
# Tissue texture: relative amplitude of a smooth random field (tumours are heterogeneous).
TEXTURE = np.array([0, 0.04, 0.04, 0.03, 0.05, 0.04, 0.12, 0.15, 0.15, 0.05], np.float32)
assert CONTRAST.shape[1] == len(TISSUES)


def render_sequences(tissue: np.ndarray, rng: np.random.Generator, spacing: float,
                     noise: float) -> dict[str, np.ndarray]:
    """Return ``{sequence: int16 volume}`` for a tissue map.

    ``noise`` is the Rician noise sigma as a fraction of the WM T1 intensity.
    """
    head = tissue > 0
    texture = _smooth_noise(tissue.shape, rng, 3.0 / spacing)
    out = {}
    for i, seq in enumerate(SEQUENCES):
        # Per-case tissue contrast jitter (+-6 %) and a global scanner gain.
        means = CONTRAST[i] * rng.uniform(0.94, 1.06, len(TISSUES)).astype(np.float32)
        # One texture field for all sequences (it is the tissue's), its sign varying by sequence.
        sign = np.float32(rng.choice([-1.0, 1.0]))
        image = means[tissue] * (1 + sign * TEXTURE[tissue] * texture)
        image *= np.float32(rng.uniform(0.8, 1.25))
        # Partial-volume blur (about 1 mm, whatever the grid spacing).
        image = ndimage.gaussian_filter(image, sigma=max(0.5, 1.0 / spacing))
        image *= _bias_field(tissue.shape, rng)
        sigma = np.float32(noise * CONTRAST[0, 5])
        real = image + rng.normal(0, 1, image.shape).astype(np.float32) * sigma
        imag = rng.normal(0, 1, image.shape).astype(np.float32) * sigma
        image = np.sqrt(real * real + imag * imag)
        # Zero air; keep every head voxel >= 1 so the "non-zero in all four" mask is the head.
        out[seq] = np.where(head, np.clip(np.rint(image), 1, 32767), 0).astype(np.int16)
    return out


def _smooth_noise(shape: tuple[int, int, int], rng: np.random.Generator,
                  sigma: float) -> np.ndarray:
    """White noise blurred to ``sigma`` voxels, rescaled to unit standard deviation."""
    white = rng.normal(0, 1, shape).astype(np.float32)
    field = ndimage.gaussian_filter(white, sigma=max(sigma, 0.5))
    return field / np.float32(field.std() + 1e-6)


def _bias_field(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field, exp(quadratic polynomial), about +-15 % over the head."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    c = rng.normal(0, 0.08, 9).astype(np.float32)
    log_field = (c[0] * x + c[1] * y + c[2] * z + c[3] * x * y + c[4] * y * z + c[5] * x * z
                 + c[6] * x * x + c[7] * y * y + c[8] * z * z)
    return np.exp(log_field).astype(np.float32)
