"""Anatomy of one synthetic BraTS-like case: head, brain tissues and a glioma, as tissue maps.

Everything is defined in millimetres in a head-centred frame (x left-right, y posterior-anterior,
z inferior-superior), so a case looks the same at 1 mm on the BraTS grid and at 2 mm on the small
CPU grid; only the sampling differs. Shapes are ellipsoids whose radius is modulated by a few
random low-frequency "harmonics" on the unit sphere (``_Wobble``), which is enough to give
irregular tumours, gyrus-like cortex thickness variations and varied heads.

The output is a tissue map (``TISSUES``) plus the BraTS label map (0, 1 NCR/NET, 2 ED, 4 ET);
contrasts are applied in :mod:`hpc_seg.hadnet.synth.render`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Tissue classes of the rendered volume (not labels).
AIR, SCALP, SKULL, CSF, GM, WM, EDEMA, NECROSIS, ENHANCING, VESSEL = range(10)
TISSUES = ("air", "scalp", "skull", "csf", "gm", "wm", "edema", "necrosis", "enhancing", "vessel")
TUMOUR_TISSUES = (EDEMA, NECROSIS, ENHANCING)

# BraTS 2019 labels.
LABEL_NCR, LABEL_ED, LABEL_ET = 1, 2, 4


@dataclass(frozen=True)
class _Wobble:
    """A smooth random function on the unit sphere: 1 + sum_k a_k cos(f_k <n_k, u> + phi_k)."""

    normals: np.ndarray     # [K, 3] unit vectors
    freqs: np.ndarray       # [K]
    phases: np.ndarray      # [K]
    amps: np.ndarray        # [K]

    @classmethod
    def draw(cls, rng: np.random.Generator, k: int, amp: float, fmax: float = 3.0) -> "_Wobble":
        n = rng.normal(size=(k, 3))
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        return cls(normals=n, freqs=rng.uniform(1.0, fmax, k), phases=rng.uniform(0, 2 * np.pi, k),
                   amps=rng.uniform(0.3, 1.0, k) * amp / np.sqrt(k))

    @property
    def max(self) -> float:
        """An upper bound of the function (to limit evaluation to where it can matter)."""
        return 1.0 + float(np.abs(self.amps).sum())

    def __call__(self, ux: np.ndarray, uy: np.ndarray, uz: np.ndarray) -> np.ndarray:
        # float32 scalars: NumPy 2 would promote float32 arrays to float64 with float64 scalars.
        out = np.ones(np.broadcast_shapes(ux.shape, uy.shape, uz.shape), np.float32)
        for n, f, p, a in zip(self.normals.astype(np.float32), self.freqs.astype(np.float32),
                              self.phases.astype(np.float32), self.amps.astype(np.float32)):
            out += a * np.cos(f * (n[0] * ux + n[1] * uy + n[2] * uz) + p)
        return out


@dataclass(frozen=True)
class Anatomy:
    """Random parameters of one case (all lengths in mm)."""

    grade: str                      # "HGG" or "LGG"
    rotation: np.ndarray            # [3, 3] head orientation in the scanner frame
    shift: np.ndarray               # [3] head centre offset from the grid centre
    brain_axes: np.ndarray          # [3] semi-axes of the brain ellipsoid
    csf_mm: float                   # subarachnoid CSF layer
    skull_mm: float
    scalp_mm: float
    cortex_mm: float                # mean cortical (GM) thickness
    ventricle_scale: float
    brain_wobble: _Wobble
    cortex_wobble: _Wobble
    tumour_centre: np.ndarray       # [3] in the head frame
    core_radius: float              # enhancing + necrotic core
    necrosis_fraction: float        # radius of the necrotic core / core radius (0 = none)
    edema_factor: float             # edema radius / core radius
    enhancement: str                # "rim", "patchy", "thin" or "none"
    core_wobble: _Wobble
    necrosis_wobble: _Wobble
    edema_wobble: _Wobble
    patch_wobble: _Wobble


def draw_anatomy(rng: np.random.Generator, lgg_fraction: float = 0.25) -> Anatomy:
    """Draw the random anatomy of one case from ``rng`` (the only source of randomness)."""
    grade = "LGG" if rng.random() < lgg_fraction else "HGG"
    angles = np.deg2rad(rng.uniform(-6, 6, 3))
    brain_axes = np.array([60.0, 74.0, 54.0]) * rng.uniform(0.9, 1.05) * rng.uniform(0.96, 1.04, 3)
    # Tumour centre: a random hemisphere, inside the brain away from its surface.
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    depth = rng.uniform(0.15, 0.55)
    centre = direction * depth * brain_axes
    centre[0] = abs(centre[0]) * rng.choice([-1.0, 1.0])
    if grade == "HGG":
        core_radius = rng.uniform(10.0, 22.0)
        necrosis_fraction = 0.0 if rng.random() < 0.15 else rng.uniform(0.35, 0.75)
        enhancement = rng.choice(["rim", "rim", "patchy", "thin"])
        edema_factor = rng.uniform(1.4, 2.3)
    else:
        core_radius = rng.uniform(9.0, 18.0)
        necrosis_fraction = 0.0     # the enhancement mode below turns the core into NET (label 1)
        enhancement = "none" if rng.random() < 0.7 else "patchy"
        edema_factor = rng.uniform(1.2, 1.8)
    return Anatomy(
        grade=grade, rotation=_rotation(angles), shift=rng.uniform(-5, 5, 3),
        brain_axes=brain_axes, csf_mm=rng.uniform(1.5, 3.5), skull_mm=rng.uniform(5.0, 7.0),
        scalp_mm=rng.uniform(4.0, 7.0), cortex_mm=rng.uniform(4.5, 6.5),
        ventricle_scale=rng.uniform(0.7, 1.4),
        brain_wobble=_Wobble.draw(rng, 6, 0.05, 2.5),
        cortex_wobble=_Wobble.draw(rng, 16, 0.7, 16.0),
        tumour_centre=centre, core_radius=core_radius, necrosis_fraction=float(necrosis_fraction),
        edema_factor=edema_factor, enhancement=str(enhancement),
        core_wobble=_Wobble.draw(rng, 6, 0.25), necrosis_wobble=_Wobble.draw(rng, 5, 0.25),
        edema_wobble=_Wobble.draw(rng, 8, 0.35), patch_wobble=_Wobble.draw(rng, 4, 1.0, 4.0),
    )


def _rotation(angles: np.ndarray) -> np.ndarray:
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def head_coordinates(anatomy: Anatomy, shape: tuple[int, int, int], spacing: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head-frame coordinates (mm) of every voxel of a ``shape`` grid with isotropic ``spacing``."""
    axes = [((np.arange(n, dtype=np.float32) - (n - 1) / 2) * spacing) for n in shape]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij", sparse=True)
    px, py, pz = gx - anatomy.shift[0], gy - anatomy.shift[1], gz - anatomy.shift[2]
    r = anatomy.rotation.T.astype(np.float32)   # scanner -> head frame
    hx = r[0, 0] * px + r[0, 1] * py + r[0, 2] * pz
    hy = r[1, 0] * px + r[1, 1] * py + r[1, 2] * pz
    hz = r[2, 0] * px + r[2, 1] * py + r[2, 2] * pz
    return hx.astype(np.float32), hy.astype(np.float32), hz.astype(np.float32)


def _radial(x: np.ndarray, y: np.ndarray, z: np.ndarray, c: np.ndarray,
            where: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distance from ``c`` and the unit direction components (of the voxels ``where`` only)."""
    if where is not None:
        x, y, z = x[where], y[where], z[where]
    dx, dy, dz = x - np.float32(c[0]), y - np.float32(c[1]), z - np.float32(c[2])
    d = np.sqrt(dx * dx + dy * dy + dz * dz) + np.float32(1e-6)
    return d, dx / d, dy / d, dz / d


def _ellipsoid_depth(x, y, z, axes: np.ndarray, wobble: _Wobble, pad: float = 0.0) -> np.ndarray:
    """Approximate depth (mm, positive inside) below the surface of a wobbly ellipsoid + ``pad``."""
    a = axes + pad
    rn = np.sqrt((x / np.float32(a[0])) ** 2 + (y / np.float32(a[1])) ** 2
                 + (z / np.float32(a[2])) ** 2) + np.float32(1e-6)
    a32 = a.astype(np.float32)
    w = wobble(x / (rn * a32[0]), y / (rn * a32[1]), z / (rn * a32[2]))
    return (w - rn) * np.float32(np.mean(a))


def tissue_and_labels(anatomy: Anatomy, shape: tuple[int, int, int], spacing: float,
                      et_min_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (tissue map uint8, BraTS label map uint8) on the grid.

    ``et_min_mm``: the least thickness of the enhancing rim (and of a thin rim); 0 keeps the
    anatomy's own (a 1-2 mm rim is real, but at a 4 mm grid it is one voxel that partial volume
    blurs into the necrosis and edema on either side).
    """
    a = anatomy
    x, y, z = head_coordinates(a, shape, spacing)
    depth = _ellipsoid_depth(x, y, z, a.brain_axes, a.brain_wobble)   # 0 at the brain surface
    tissue = np.full(shape, AIR, np.uint8)
    tissue[depth > -(a.csf_mm + a.skull_mm + a.scalp_mm)] = SCALP
    tissue[depth > -(a.csf_mm + a.skull_mm)] = SKULL
    tissue[depth > -a.csf_mm] = CSF
    brain = depth > 0
    tissue[brain] = WM
    # Cortex: a GM shell of varying thickness; where it is thickest, a CSF-filled sulcus.
    shell = brain & (depth < a.cortex_mm * a.cortex_wobble.max)
    _, ux, uy, uz = _radial(*np.broadcast_arrays(x, y, z), np.zeros(3), shell)
    folds, dshell = a.cortex_wobble(ux, uy, uz), depth[shell]
    cortex = np.where(dshell < a.cortex_mm * (folds - 1.2) * 2.0, CSF,
                      np.where(dshell < a.cortex_mm * folds, GM, WM))
    tissue[shell] = cortex
    # Deep grey matter (basal ganglia / thalami) and the lateral ventricles, mirrored in x.
    for side in (-1.0, 1.0):
        nuclei = ((x - side * 17) / 9) ** 2 + ((y - 2) / 14) ** 2 + ((z + 2) / 10) ** 2 < 1
        tissue[brain & nuclei] = GM
        s = a.ventricle_scale
        vent = (((x - side * 7 * s) / (4.5 * s)) ** 2 + ((y - 4) / 26) ** 2
                + ((z - 9) / (8 * s)) ** 2 < 1)
        tissue[brain & vent] = CSF
        # Choroid plexus in the ventricle's posterior part: enhances on T1ce like a tumour does.
        plexus = (((x - side * 7 * s) / 2.5) ** 2 + ((y + 12) / 5) ** 2
                  + ((z - 9) / (2.5 * s)) ** 2 < 1)
        tissue[brain & vent & plexus] = VESSEL
    tissue[brain & (np.abs(x) < 1.0) & (z > 18)] = CSF              # interhemispheric fissure
    # Superior sagittal sinus: along the midline, on top of the brain (enhances too).
    tissue[(np.abs(x) < 3.0) & (z > 25) & (depth < 0.5) & (depth > -a.csf_mm - 1.5)] = VESSEL
    labels = _tumour(a, x, y, z, tissue, brain, et_min_mm)
    return tissue, labels


def _tumour(a: Anatomy, x, y, z, tissue: np.ndarray, brain: np.ndarray,
            et_min_mm: float = 0.0) -> np.ndarray:
    """Paint the tumour into ``tissue`` (in place) and return the label map.

    The shapes are evaluated only on the voxels the edema could reach (the rest of the head
    cannot be tumour), which keeps the 1 mm grid cheap.
    """
    labels = np.zeros(tissue.shape, np.uint8)
    x, y, z = np.broadcast_arrays(x, y, z)
    c = a.tumour_centre
    reach_max = a.core_radius * a.edema_factor * a.edema_wobble.max
    near = brain & ((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 < reach_max ** 2)
    if not near.any():
        return labels
    d, ux, uy, uz = _radial(x, y, z, c, near)
    local = tissue[near]
    core_r = a.core_radius * a.core_wobble(ux, uy, uz)
    core = d < core_r
    necrosis_r = a.core_radius * a.necrosis_fraction * a.necrosis_wobble(ux, uy, uz)
    if et_min_mm > 0:       # the necrosis stops et_min_mm inside the core's surface
        necrosis_r = np.minimum(necrosis_r, core_r - np.float32(et_min_mm))
    necrotic = core & (d < necrosis_r)
    # Edema spreads along white matter: it reaches further inside WM than in GM.
    reach = a.core_radius * a.edema_factor * a.edema_wobble(ux, uy, uz)
    edema = ~core & ((d < reach) & (local == WM) | (d < 0.8 * reach) & (local != CSF))
    enhancing = core & ~necrotic
    if a.enhancement == "thin":
        # A 1-2 mm rim: the rest of the core is non-enhancing.
        rim = core & (d > core_r - max(2.0, et_min_mm))
        necrotic |= enhancing & ~rim
        enhancing &= rim
    elif a.enhancement in ("patchy", "none"):
        keep = a.patch_wobble(ux, uy, uz) > (1.15 if a.enhancement == "patchy" else np.inf)
        necrotic |= enhancing & ~keep
        enhancing &= keep
    lab = np.zeros(d.shape, np.uint8)
    lab[edema], lab[necrotic], lab[enhancing] = LABEL_ED, LABEL_NCR, LABEL_ET
    local[edema], local[necrotic], local[enhancing] = EDEMA, NECROSIS, ENHANCING
    labels[near], tissue[near] = lab, local
    return labels
