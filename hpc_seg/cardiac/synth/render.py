"""bSSFP-like image formation for the cine phantom.

Per image: tissue classes on a grid ``oversample`` times finer than the acquired one, averaged over
three sub-planes across the slice thickness (in-plane and through-plane partial volume), block
averaged to the acquired matrix, multiplied by a smooth coil-sensitivity bias field, blurred
(k-space apodisation), made Rician (magnitude of the signal plus complex Gaussian noise) and scaled
to uint16. The masks are the labels at the acquired pixel centres on the slice's centre plane.

The torso does not move during a breath-hold, so the background is rendered once per series and
only the heart's bounding box is redrawn per frame; that is what keeps 512^2 matrices affordable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from hpc_seg.cardiac.synth import phantom as ph


@dataclass(frozen=True)
class Plane:
    """An image plane in the heart frame.

    Pixel (row r, col c) sits at ``origin + c*ps_col*col_sign*E[col_axis] +
    r*ps_row*row_sign*E[row_axis]`` where E are the heart-frame axes (0 x, 1 y, 2 z).
    """

    rows: int
    cols: int
    ps_row: float         # spacing between rows (DICOM PixelSpacing[0])
    ps_col: float         # spacing between columns (DICOM PixelSpacing[1])
    origin: tuple[float, float, float]
    col_axis: int = 0
    row_axis: int = 1
    col_sign: float = 1.0
    row_sign: float = 1.0
    thickness: float = 8.0

    @property
    def normal_axis(self) -> int:
        return 3 - self.col_axis - self.row_axis


@dataclass(frozen=True)
class Contrast:
    """Per-patient image formation parameters."""

    intensities: tuple[float, ...]      # relative signal per tissue class
    gain: float                         # grey value of unit signal
    snr: float                          # blood signal / noise sigma
    blur_px: float
    coils: tuple[tuple[float, float, float], ...]   # coil centres in the heart frame (mm)
    coil_reach_mm: float
    b1_wave: tuple[float, float, float, float] | None = None
    """7T: (kx, ky, kz, phase)"""
    bits: int = 12
    """bits stored: grey values are clipped to 2**bits - 1"""
    bias_waves: tuple[tuple[float, float, float, float, float], ...] = ()
    """smooth random bias field: exp(sum amp*cos(kx x + ky y + kz z + phase)), variety only."""
    slab: int = 3
    """sub-planes across the slice thickness (partial volume)"""


# Relative bSSFP signal: bright blood and fat, dark myocardium and lung.
_KAGGLE = {ph.AIR: 0.0, ph.LUNG: 0.05, ph.FAT: 0.85, ph.MUSCLE: 0.24, ph.LIVER: 0.30,
           ph.BLOOD: 1.0, ph.MYO: 0.22, ph.SPINE: 0.45, ph.SOFT: 0.36}
# 7T: less blood/myocardium contrast (inflow and SAR-limited flip angles), brighter fat.
_SEVEN_T = {ph.AIR: 0.0, ph.LUNG: 0.08, ph.FAT: 1.0, ph.MUSCLE: 0.32, ph.LIVER: 0.38,
            ph.BLOOD: 0.78, ph.MYO: 0.33, ph.SPINE: 0.5, ph.SOFT: 0.42}
KAGGLE_SIGNAL = _KAGGLE      # public: the variety vendor profiles start from it


#: period of the transmit-field (B1+) standing wave at 7 T (mm): the spacing of its dark bands.
#: Every 7T-like image of the project draws it from this range.
B1_WAVELENGTH_MM = (150.0, 230.0)


def b1_wave(angle: float, wavelength_mm: float, phase: float) -> tuple[float, float, float, float]:
    """``Contrast.b1_wave`` of a standing wave of ``wavelength_mm`` running at ``angle`` in the
    axial plane (and at 0.3 of the wave number along z), shifted by ``phase``."""
    k = 2 * math.pi / wavelength_mm
    return (k * math.cos(angle), k * math.sin(angle), 0.3 * k, phase)


def sample_contrast(rng: np.random.Generator, anat: ph.Anatomy,
                    domain: Literal["kaggle", "7t"]) -> Contrast:
    """Draw a patient's tissue contrast, coil set-up, noise and blur."""
    table = _KAGGLE if domain == "kaggle" else _SEVEN_T
    jitter = rng.uniform(0.88, 1.12, size=ph.N_TISSUES)
    intens = tuple(float(table[i] * jitter[i]) for i in range(ph.N_TISSUES))
    tcx, tcy, ta, tb = anat.torso
    # Surface coils on the anterior and posterior chest wall: the signal falls off with depth.
    coils = tuple((tcx + dx, tcy + side * (tb + 15.0), float(rng.uniform(-70, -10)))
                  for side in (-1.0, 1.0) for dx in (-70.0 + rng.uniform(-20, 20),
                                                     70.0 + rng.uniform(-20, 20)))
    b1 = None
    if domain == "7t":
        ang = rng.uniform(0, 2 * math.pi)
        wavelength = rng.uniform(*B1_WAVELENGTH_MM)
        b1 = b1_wave(ang, wavelength, float(rng.uniform(0, 2 * math.pi)))
    return Contrast(intensities=intens, gain=float(rng.uniform(900, 1500)),
                    snr=float(rng.uniform(12, 30) if domain == "kaggle" else rng.uniform(8, 20)),
                    blur_px=float(rng.uniform(0.4, 0.8)), coils=coils,
                    coil_reach_mm=float(rng.uniform(110, 170) if domain == "kaggle"
                                        else rng.uniform(80, 120)),
                    b1_wave=b1)


def _coords(plane: Plane, r0: int, r1: int, c0: int, c1: int, k: int, offset: float = 0.0):
    """Broadcastable (x, y, z) for pixel rows r0:r1, cols c0:c1 at ``k`` samples per pixel."""
    sub = (np.arange(k) + 0.5) / k - 0.5
    cols = (np.arange(c0, c1)[:, None] + sub[None, :]).ravel()
    rows = (np.arange(r0, r1)[:, None] + sub[None, :]).ravel()
    out: list = [0.0, 0.0, 0.0]
    out[plane.col_axis] = (plane.origin[plane.col_axis]
                           + plane.col_sign * plane.ps_col * cols)[None, :]
    out[plane.row_axis] = (plane.origin[plane.row_axis]
                           + plane.row_sign * plane.ps_row * rows)[:, None]
    out[plane.normal_axis] = plane.origin[plane.normal_axis] + offset
    return out[0], out[1], out[2]


def pixel_centres(plane: Plane):
    """Broadcastable heart-frame (x, y, z) of every pixel centre of ``plane`` (its centre plane),
    where the label masks are evaluated."""
    return _coords(plane, 0, plane.rows, 0, plane.cols, 1)


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return a
    r, c = a.shape[0] // k, a.shape[1] // k
    return a.reshape(r, k, c, k).mean(axis=(1, 3))


def _index_range(lo: float, hi: float, origin: float, sign: float, ps: float,
                 n: int) -> tuple[int, int]:
    """Pixel index range covering coordinates [lo, hi] along one in-plane axis."""
    i0, i1 = sorted(((lo - origin) / (sign * ps), (hi - origin) / (sign * ps)))
    return max(0, int(math.floor(i0)) - 1), min(n, int(math.ceil(i1)) + 2)


def _heart_box(anat: ph.Anatomy, plane: Plane) -> tuple[int, int, int, int]:
    x0, x1, y0, y1 = anat.heart_extent
    extent = {0: (x0, x1), 1: (y0, y1), 2: (-anat.c_ed - anat.wall_ed - 10.0, 50.0)}
    if anat.extra is not None:     # tilted anatomy: the heart spans more of a long-axis view
        reach = (abs(anat.extra.tilt[0]) + abs(anat.extra.tilt[1])) * x1
        extent[2] = (extent[2][0] - reach, 50.0 * anat.extra.scale + reach)
    r0, r1 = _index_range(*extent[plane.row_axis], plane.origin[plane.row_axis],
                          plane.row_sign, plane.ps_row, plane.rows)
    c0, c1 = _index_range(*extent[plane.col_axis], plane.origin[plane.col_axis],
                          plane.col_sign, plane.ps_col, plane.cols)
    return r0, max(r0, r1), c0, max(c0, c1)


def bias_field(contrast: Contrast, plane: Plane) -> np.ndarray:
    """Smooth multiplicative receive (and at 7T transmit) field at the pixel centres."""
    x, y, z = _coords(plane, 0, plane.rows, 0, plane.cols, 1)
    sens = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)))
    ref = 0.0
    for cx, cy, cz in contrast.coils:
        sens = sens + 1.0 / (1.0 + ((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
                             / contrast.coil_reach_mm**2)
        ref += 1.0 / (1.0 + (cx**2 + cy**2 + (cz + 40.0) ** 2) / contrast.coil_reach_mm**2)
    field = sens / ref     # ~1 at the heart
    if contrast.bias_waves:
        log_field = sum(amp * np.cos(kx * x + ky * y + kz * z + phase)
                        for kx, ky, kz, phase, amp in contrast.bias_waves)
        field = field * np.exp(log_field)
    if contrast.b1_wave is not None:
        kx, ky, kz, phase = contrast.b1_wave
        # Standing-wave B1+ pattern: flip angle, and so bSSFP signal, varies with position.
        field = field * np.clip(0.55 + 0.5 * np.cos(kx * x + ky * y + kz * z + phase), 0.1, None)
    return np.clip(field, 0.15, 4.0).astype(np.float32)


def render_series(anat: ph.Anatomy, contrast: Contrast, plane: Plane, frame_times: list[float],
                  rng: np.random.Generator, oversample: int = 2
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Render one slice position over the given cycle times (fractions of R-R).

    Returns (uint16 images, uint8 label masks), each (rows, cols), in the plane's orientation.
    """
    k = oversample
    lut = np.asarray(contrast.intensities, dtype=np.float32)
    x, y, z = _coords(plane, 0, plane.rows, 0, plane.cols, k)
    bg_low = _block_mean(lut[ph.background_classes(anat, x, y, z)], k)
    r0, r1, c0, c1 = _heart_box(anat, plane)
    bx, by, bz = _coords(plane, r0, r1, c0, c1, k)
    bg_box = ph.background_classes(anat, bx, by, bz)
    lx, ly, lz = _coords(plane, r0, r1, c0, c1, 1)
    offsets = (-plane.thickness / 3.0, 0.0, plane.thickness / 3.0) if contrast.slab == 3 else \
        tuple(plane.thickness * ((i + 0.5) / contrast.slab - 0.5) for i in range(contrast.slab))
    subs = [_coords(plane, r0, r1, c0, c1, k, off) for off in offsets]
    field = bias_field(contrast, plane)
    sigma = lut[ph.BLOOD] / contrast.snr
    images, masks = [], []
    for t in frame_times:
        st = ph.heart_state(anat, t)
        signal = bg_low.copy()
        if r1 > r0 and c1 > c0:
            acc = np.zeros(bg_box.shape, dtype=np.float32)
            for sx, sy, sz in subs:
                acc += lut[ph.overlay_heart(anat, st, sx, sy, sz, bg_box)]
            signal[r0:r1, c0:c1] = _block_mean(acc / len(subs), k)
        mask = np.zeros((plane.rows, plane.cols), dtype=np.uint8)
        mask[r0:r1, c0:c1] = ph.heart_labels(anat, st, lx, ly, lz)
        img = gaussian_filter(signal * field, contrast.blur_px)
        noise = rng.standard_normal((2, plane.rows, plane.cols), dtype=np.float32) * sigma
        img = np.hypot(img + noise[0], noise[1]) * contrast.gain
        images.append(np.clip(np.rint(img), 0, (1 << contrast.bits) - 1).astype(np.uint16))
        masks.append(mask)
    return images, masks
