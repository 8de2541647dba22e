"""A second, independently written renderer of cine label maps: signal equations and k-space.

A network trained on one generator's images can learn that generator. To test it on images that
share none of the training source's rendering code, this module turns a multi-structure label map
(:mod:`~hpc_seg.cardiac.synth.label_maps` writes them; structures are looked up by *name*) into
magnitude images by a different route from every training source:

- **contrast from physics, not a grey-value table**: each structure gets relaxation times and
  proton density (T1, T2, PD) drawn per patient around 1.5 T literature values, and the signal
  comes from the steady-state equation of the patient's sequence: balanced SSFP (bright blood and
  fat, flip angle 40-75 degrees) or, for a third of the patients, a spoiled gradient echo (FLASH,
  10-20 degrees) with inflow-enhanced blood that varies over the cycle. bSSFP can show dark
  off-resonance bands;
- **image formation in k-space**: the object (at twice the acquired matrix) is multiplied by the
  complex sensitivities of 4-8 receive coils, Fourier transformed, cut to the acquired k-space
  (Gibbs ringing; a reduced phase-encoding resolution; a Tukey window), given complex Gaussian
  noise per coil and per line, optionally modulated line by line (respiratory ghosts along the
  phase-encoding axis), transformed back and combined as root-sum-of-squares (coil shading and
  non-central-chi noise);
- the grey values are a random scanner scale (uint16).

Independence is a rule, kept by an import-linter contract (``pyproject.toml``): this module
imports neither the generator's anatomy and image formation (``phantom``, ``render``,
``variety``, ``plan``, ``cohort``, ``domain_7t``, ``label_maps``) nor the training-time
randomiser (``cardiac.train``). Only the label maps (and their structure names) are shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hpc_seg.errors import InputError

# 1.5 T relaxation times (ms) and proton density per structure name: blood ~1550/250, myocardium
# ~1000/50, fat ~280/80, liver ~600/45; lung parenchyma has little proton density.
_TISSUE = {
    "background": (1.0, 1.0, 0.0),
    "lv_blood": (1550.0, 250.0, 0.9), "rv_blood": (1550.0, 250.0, 0.9),
    "atria_aortic_root": (1550.0, 250.0, 0.9), "descending_aorta": (1550.0, 250.0, 0.9),
    "lv_myocardium": (1000.0, 50.0, 0.75), "rv_wall": (1000.0, 50.0, 0.75),
    "lv_papillary_trabeculae": (1000.0, 50.0, 0.75),
    "pericardial_fat": (280.0, 80.0, 0.95), "body_fat": (280.0, 80.0, 0.95),
    "body_wall_muscle": (1050.0, 35.0, 0.75), "lungs": (1300.0, 40.0, 0.12),
    "liver": (600.0, 45.0, 0.8), "spine": (600.0, 60.0, 0.7), "soft_tissue": (1100.0, 60.0, 0.8),
}
_BLOOD = ("lv_blood", "rv_blood", "atria_aortic_root", "descending_aorta")


@dataclass(frozen=True)
class Protocol:
    """One patient's scanner protocol and hardware (drawn by :func:`draw_protocol`)."""

    sequence: str                    # "bssfp" or "gre"
    flip_deg: float
    tr_ms: float
    te_ms: float
    tissue: dict[str, tuple[float, float, float]]   # name -> (T1, T2, PD)
    inflow: float                    # GRE blood enhancement at its peak
    coils: tuple[tuple[float, float, float, float], ...]   # (row, col) centre (fraction), width, phase
    snr: float                       # blood signal / noise sigma in the combined image
    pe_axis: int                     # 0 rows, 1 columns
    pe_fraction: float               # phase-encoding resolution (fraction of the lines)
    window: float                    # Tukey taper fraction
    ghost: tuple[float, int]         # amplitude, period in lines (0 amplitude: none)
    band: tuple[float, float, float, float]   # off-resonance cycles across the FOV (row, col), phase, depth
    grey_max: float                  # grey value of the brightest tissue (before coil shading)


def draw_protocol(rng: np.random.Generator) -> Protocol:
    """A random protocol: sequence, relaxation times (+-15 %), coils, noise, artefacts."""
    gre = rng.random() < 1.0 / 3.0
    tissue = {}
    for name, (t1, t2, pd) in _TISSUE.items():
        j = rng.uniform(0.85, 1.15, 3)
        tissue[name] = (t1 * j[0], t2 * j[1], pd * j[2])
    n_coils = int(rng.integers(4, 9))
    ang0 = rng.uniform(0, 2 * math.pi)
    coils = []
    for c in range(n_coils):
        ang = ang0 + 2 * math.pi * c / n_coils + rng.uniform(-0.3, 0.3)
        radius = rng.uniform(0.45, 0.75)
        coils.append((0.5 + radius * math.sin(ang), 0.5 + radius * math.cos(ang),
                      float(rng.uniform(0.25, 0.5)), float(rng.uniform(0, 2 * math.pi))))
    ghost = (float(rng.uniform(0.02, 0.12)), int(rng.integers(2, 6))) if rng.random() < 0.5 \
        else (0.0, 2)
    band = (float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.5, 1.5)),
            float(rng.uniform(0, 2 * math.pi)),
            float(rng.uniform(0.5, 0.9)) if (not gre and rng.random() < 0.3) else 0.0)
    return Protocol(
        sequence="gre" if gre else "bssfp",
        flip_deg=float(rng.uniform(10, 20) if gre else rng.uniform(40, 75)),
        tr_ms=float(rng.uniform(4.0, 6.5) if gre else rng.uniform(2.6, 3.8)),
        te_ms=float(rng.uniform(1.8, 3.0) if gre else 0.0),
        tissue=tissue, inflow=float(rng.uniform(1.5, 2.5)), coils=tuple(coils),
        snr=float(rng.uniform(10, 40)), pe_axis=int(rng.integers(2)),
        pe_fraction=float(rng.uniform(0.65, 1.0)), window=float(rng.uniform(0.0, 0.5)),
        ghost=ghost, band=band, grey_max=float(rng.uniform(400, 4000)))


def steady_state_signal(p: Protocol, name: str) -> float:
    """Relative magnitude signal of a tissue in the protocol's sequence (no inflow)."""
    t1, t2, pd = p.tissue[name]
    if pd == 0:
        return 0.0
    a = math.radians(p.flip_deg)
    e1, e2 = math.exp(-p.tr_ms / t1), math.exp(-p.tr_ms / t2)
    if p.sequence == "bssfp":      # on resonance, echo at TR/2
        s = math.sin(a) * (1 - e1) / (1 - (e1 - e2) * math.cos(a) - e1 * e2)
        return pd * s * math.exp(-0.5 * p.tr_ms / t2)
    # Spoiled gradient echo; T2* taken as 0.6 T2.
    return pd * math.sin(a) * (1 - e1) / (1 - e1 * math.cos(a)) * math.exp(-p.te_ms / (0.6 * t2))


def _lookup(p: Protocol, names: dict[int, str], phase: float) -> np.ndarray:
    """Signal per label id (256 entries) at cardiac phase ``phase`` in [0, 1)."""
    lut = np.zeros(256, np.float64)
    for label, name in names.items():
        if name not in p.tissue:
            raise InputError(f"kspace renderer: structure {name!r} (label {label}) has no tissue "
                             f"parameters; known: {', '.join(sorted(p.tissue))}")
        s = steady_state_signal(p, name)
        if p.sequence == "gre" and name in _BLOOD:   # inflow varies over the cycle
            s *= 1 + (p.inflow - 1) * (0.6 + 0.4 * math.cos(2 * math.pi * phase))
        lut[int(label)] = s
    return lut


def _tukey(n: int, alpha: float) -> np.ndarray:
    if alpha <= 0:
        return np.ones(n)
    x = np.linspace(0, 1, n)
    w = np.ones(n)
    edge = alpha / 2
    lo, hi = x < edge, x > 1 - edge
    w[lo] = 0.5 * (1 + np.cos(math.pi * (2 * x[lo] / alpha - 1)))
    w[hi] = 0.5 * (1 + np.cos(math.pi * (2 * x[hi] / alpha - 2 / alpha + 1)))
    return w


def render_image(labels: np.ndarray, names: dict[int, str], p: Protocol, phase: float,
                 rng: np.random.Generator) -> np.ndarray:
    """One magnitude image (float, grey values) of a 2D label map ``[R, C]``."""
    rows, cols = labels.shape
    lut = _lookup(p, names, phase)
    # The brightest tissue over the cycle (blood at peak inflow for GRE) sets the grey scale.
    brightest = max(float(_lookup(p, names, 0.0).max()), 1e-6)
    blood = max(steady_state_signal(p, "lv_blood"), 1e-6)
    obj = np.kron(lut[labels], np.ones((2, 2)))             # the object at twice the matrix
    r2, c2 = obj.shape
    yy = (np.arange(r2) + 0.5)[:, None] / r2
    xx = (np.arange(c2) + 0.5)[None, :] / c2
    if p.band[3] > 0:      # bSSFP off-resonance: dark bands where the precession phase wraps
        phi = 2 * math.pi * (p.band[0] * yy + p.band[1] * xx) + p.band[2]
        wrapped = np.angle(np.exp(1j * phi))
        obj = obj * (1 - p.band[3] * np.exp(-wrapped**2 / (2 * 0.25**2)))
    # k-space of each coil's image, cut to the acquired matrix (centred FFTs).
    kr0, kc0 = (r2 - rows) // 2, (c2 - cols) // 2
    win = np.outer(_tukey(rows, p.window), _tukey(cols, p.window))
    lines = np.ones(rows if p.pe_axis == 0 else cols)
    n_pe = lines.size
    keep = max(2, int(round(n_pe * p.pe_fraction)))
    lines[:(n_pe - keep) // 2] = 0
    lines[(n_pe - keep) // 2 + keep:] = 0
    if p.ghost[0] > 0:     # a line-periodic modulation: replicas at FOV / period
        k = np.arange(n_pe)
        lines = lines * (1 + p.ghost[0] * np.cos(2 * math.pi * k / p.ghost[1]
                                                  + rng.uniform(0, 2 * math.pi)))
    mod = lines[:, None] if p.pe_axis == 0 else lines[None, :]
    # Noise: sigma per coil so that the combined image's blood SNR is about p.snr.
    sens = [np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
            * np.exp(1j * (ph0 + 2.0 * (yy - cy) + 1.5 * (xx - cx))) for cy, cx, w, ph0 in p.coils]
    rss_ref = math.sqrt(sum(float(np.abs(s).mean()) ** 2 for s in sens))
    sigma_img = blood * rss_ref / p.snr
    combined = np.zeros((rows, cols))
    for s in sens:
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(obj * s)))[kr0:kr0 + rows, kc0:kc0 + cols]
        k = k * (rows * cols) / (r2 * c2)        # same grey scale at the smaller matrix
        # Image-domain noise sigma sigma_img <=> k-space sigma sigma_img * sqrt(rows * cols).
        noise = (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) \
            * sigma_img * math.sqrt(rows * cols)
        img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift((k * win + noise) * mod)))
        combined += np.abs(img) ** 2
    return np.sqrt(combined) * (p.grey_max / (brightest * rss_ref))


def render_stack(labels: np.ndarray, names: dict[int, str], rng: np.random.Generator,
                 protocol: Protocol | None = None) -> np.ndarray:
    """A label map ``[T, K, R, C]`` -> uint16 images of one patient, one protocol."""
    if labels.ndim != 4:
        raise InputError(f"kspace renderer: label map must be [T, K, R, C], got {labels.shape}")
    unknown = sorted(set(np.unique(labels).tolist()) - set(names))
    if unknown:
        raise InputError(f"kspace renderer: label ids {unknown} are not in the structure names")
    p = protocol or draw_protocol(rng)
    n_frames = labels.shape[0]
    out = np.empty(labels.shape, np.uint16)
    for t in range(n_frames):
        for k in range(labels.shape[1]):
            img = render_image(labels[t, k], names, p, t / n_frames, rng)
            out[t, k] = np.clip(np.rint(img), 0, 65535).astype(np.uint16)
    return out
