"""A beating-heart torso phantom in a heart-centred frame, evaluated on broadcastable grids.

Heart frame (mm): x = image column direction of a standard short-axis view (towards the patient's
left), y = image row direction (posterior), z = x cross y = the LV long axis, pointing from the apex
towards the base. z = 0 is the mitral (base) plane at end-diastole; the apex lies near
``z = -(c_ed + wall)``. Every function takes ``x, y, z`` as numpy arrays that broadcast against
each other (for a short-axis slice: ``x`` of shape (1, C), ``y`` (R, 1), ``z`` a scalar), so one
code path renders short-axis and long-axis planes and stays cheap (no full 3D coordinate arrays).

Labels follow the ukbb_cardiac convention: 1 LV cavity (papillary muscles *included*, as in
Bai et al. 2018), 2 LV myocardium, 3 RV cavity (the RV free wall is not labelled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Tissue classes of the rendered image (not the label masks).
AIR, LUNG, FAT, MUSCLE, LIVER, BLOOD, MYO, SPINE, SOFT = range(9)
N_TISSUES = 9

# Labels of the masks.
BG, LV_CAVITY, LV_MYO, RV_CAVITY = 0, 1, 2, 3


@dataclass(frozen=True)
class Anatomy:
    """Per-patient anatomy: LV shape and function, RV, torso. All lengths in mm."""

    edv_ml: float            # model end-diastolic LV volume (the truth is measured on the masks)
    ef: float                # model ejection fraction
    t_es: float              # end-systole as a fraction of the cycle
    c_ed: float              # LV cavity long-axis length at ED (base plane to endocardial apex)
    c_es: float
    power: float             # superellipsoid exponent of the long-axis profile (2 = ellipsoid)
    ecc: float               # y/x ratio of the short-axis cross-section
    a_ed: float              # cavity x semi-axis at the base plane, ED
    a_es: float
    wall_ed: float           # myocardial wall thickness at ED
    wall_es: float
    rv_shrink: float         # linear RV contraction at ES (fraction)
    pap_angles: tuple[float, float]
    torso: tuple[float, float, float, float]   # centre x, centre y, semi-axis x, semi-axis y
    fat_mm: float
    muscle_mm: float
    liver: tuple[float, float, float, float, float, float]   # centre xyz, semi-axes xyz

    @property
    def heart_extent(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) bounding the heart (LV, RV, atria) at ED, with a margin."""
        big = self.a_ed + self.wall_ed + 4.0
        return (-1.75 * big - 8.0, big + 8.0, -1.45 * big - 8.0, 1.3 * big + 8.0)


@dataclass(frozen=True)
class HeartState:
    """Geometry of the heart at one instant of the cycle."""

    a: float          # cavity x semi-axis at the base plane
    b: float          # cavity y semi-axis
    c: float          # cavity length
    z_base: float     # base plane position (descends towards the apex in systole)
    wall: float
    rv_scale: float   # linear scale of the RV relative to ED


def _profile_integral(power: float) -> float:
    """Integral over [0, 1] of (1 - s^p)^(2/p): cavity volume = pi a b c * this."""
    s = (np.arange(4000) + 0.5) / 4000
    return float(np.mean((1.0 - s**power) ** (2.0 / power)))


def contraction(t: float, t_es: float) -> float:
    """Fraction of the ED->ES change reached at cycle time ``t`` in [0, 1): 0 at ED, 1 at ES.

    Systole is a half-cosine; diastole has rapid early filling, diastasis and an atrial kick, as in
    a real LV volume curve.
    """
    t = t % 1.0
    if t <= t_es:
        return 0.5 * (1.0 - math.cos(math.pi * t / t_es))
    tau = (t - t_es) / (1.0 - t_es)
    kick = min(max((tau - 0.75) / 0.25, 0.0), 1.0)
    filled = 0.8 * (1.0 - math.exp(-tau / 0.15)) / (1.0 - math.exp(-1.0 / 0.15)) \
        + 0.2 * kick * kick * (3.0 - 2.0 * kick)
    return 1.0 - filled


def sample_anatomy(rng: np.random.Generator, edv_range: tuple[float, float],
                   ef_range: tuple[float, float]) -> Anatomy:
    """Draw a plausible patient: EDV in ``edv_range`` mL, EF in ``ef_range``."""
    # Most hearts are near 160 mL; the range's ends are rarer (dilated or small ventricles).
    lo, hi = edv_range
    edv = float(np.clip(rng.normal(160.0, 35.0), lo, hi)) if lo < 160.0 < hi \
        else float(rng.uniform(lo, hi))
    # Most patients have a normal EF; a quarter are impaired (the low end of the range).
    lo, hi = ef_range
    mid = lo + 0.55 * (hi - lo)
    ef = float(rng.uniform(mid, hi) if rng.random() < 0.75 else rng.uniform(lo, mid))
    power = float(rng.uniform(2.4, 3.4))
    ecc = float(rng.uniform(0.86, 1.0))
    c_ed = float(rng.uniform(78.0, 98.0)) * (edv / 160.0) ** (1 / 3)
    c_es = c_ed * (1.0 - 0.16 * ef)
    integ = _profile_integral(power)
    a_ed = math.sqrt(edv * 1000.0 / (math.pi * ecc * c_ed * integ))
    a_es = math.sqrt(edv * (1.0 - ef) * 1000.0 / (math.pi * ecc * c_es * integ))
    wall_ed = float(rng.uniform(8.0, 11.5))
    # Myocardial cross-section is roughly conserved: the wall thickens as the cavity shrinks.
    wall_es = math.sqrt(a_es**2 + (a_ed + wall_ed) ** 2 - a_ed**2) - a_es
    torso = (float(rng.uniform(-75, -50)), float(rng.uniform(20, 40)),
             float(rng.uniform(150, 180)), float(rng.uniform(105, 130)))
    # Below the diaphragm, on the patient's right: it enters the apical slices from one corner.
    liver = (float(rng.uniform(-110, -80)), float(rng.uniform(30, 50)),
             -c_ed - float(rng.uniform(45, 65)), 90.0, 75.0, 55.0)
    return Anatomy(edv_ml=edv, ef=ef, t_es=float(rng.uniform(0.34, 0.40)), c_ed=c_ed, c_es=c_es,
                   power=power, ecc=ecc, a_ed=a_ed, a_es=a_es, wall_ed=wall_ed, wall_es=wall_es,
                   rv_shrink=float(rng.uniform(0.12, 0.22)),
                   pap_angles=(float(rng.uniform(0.5, 0.9)), float(rng.uniform(2.2, 2.6))),
                   torso=torso, fat_mm=float(rng.uniform(8, 25)),
                   muscle_mm=float(rng.uniform(8, 14)), liver=liver)


def heart_state(anat: Anatomy, t: float) -> HeartState:
    """Heart geometry at cycle time ``t`` (fraction of the R-R interval)."""
    f = contraction(t, anat.t_es)
    vol = anat.edv_ml - f * anat.edv_ml * anat.ef
    c = anat.c_ed - f * (anat.c_ed - anat.c_es)
    a = math.sqrt(vol * 1000.0 / (math.pi * anat.ecc * c * _profile_integral(anat.power)))
    wall = math.sqrt(a**2 + (anat.a_ed + anat.wall_ed) ** 2 - anat.a_ed**2) - a
    # The apex stays put; the base plane descends as the long axis shortens.
    return HeartState(a=a, b=a * anat.ecc, c=c, z_base=c - anat.c_ed, wall=wall,
                      rv_scale=1.0 - anat.rv_shrink * f)


def _superellipsoid(x, y, z, a, b, length, z_top, power):
    """Boolean: inside the truncated superellipsoid with base plane ``z_top`` (broadcasting)."""
    d = (z_top - z) / length
    inside = (d >= 0) & (d < 1)
    r = np.where(inside, (1.0 - np.clip(d, 0.0, 1.0) ** power) ** (1.0 / power), 0.0)
    return (x / a) ** 2 + (y / b) ** 2 < r * r


def _ellipse(x, y, cx, cy, a, b):
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 < 1.0


def _ellipsoid(x, y, z, cx, cy, cz, a, b, c):
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 < 1.0


def _regions(anat: Anatomy, st: HeartState, x, y, z):
    """Boolean maps of the heart structures at one instant."""
    cavity = _superellipsoid(x, y, z, st.a, st.b, st.c, st.z_base, anat.power)
    epi = _superellipsoid(x, y, z, st.a + st.wall, st.b + st.wall, st.c + 0.8 * st.wall,
                          st.z_base, anat.power)
    # RV: a large ellipse to the patient's right and anterior, minus the LV = a crescent.
    big = anat.a_ed + anat.wall_ed
    rv_a, rv_b = 1.05 * big * st.rv_scale, 1.2 * big * st.rv_scale
    rv_len = 0.75 * (st.c + st.wall)
    rv_cx, rv_cy = -0.55 * big, -0.1 * big
    rv_out = _superellipsoid(x - rv_cx, y - rv_cy, z, rv_a + 3.0, rv_b + 3.0, rv_len + 3.0,
                             st.z_base, anat.power)
    near_lv = _superellipsoid(x, y, z, st.a + st.wall + 1.5, st.b + st.wall + 1.5,
                              st.c + st.wall + 1.5, st.z_base, anat.power)
    rv_cav = _superellipsoid(x - rv_cx, y - rv_cy, z, rv_a, rv_b, rv_len, st.z_base,
                             anat.power) & ~near_lv
    rv_wall = rv_out & ~rv_cav & ~epi
    # Papillary muscles: two columns in the mid-ventricle, inside the cavity.
    d = (st.z_base - z) / st.c
    mid = (d > 0.25) & (d < 0.8)
    pap = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=bool)
    for ang in anat.pap_angles:
        px, py = 0.55 * st.a * math.cos(ang), 0.55 * st.b * math.sin(ang)
        pap |= _ellipse(x, y, px, py, 0.17 * st.a, 0.17 * st.a)
    pap &= cavity & mid
    # Atria and aortic root above the (moving) base plane: blood, not labelled.
    dz = z - st.z_base
    atria = (dz > 0) & (_ellipsoid(x, y, dz, 4.0, 0.25 * big, 0.6 * big, 0.85 * big, 0.8 * big,
                                   0.75 * big)
                        | _ellipsoid(x, y, dz, -1.3 * big, 0.0, 0.5 * big, 0.7 * big, 0.8 * big,
                                     0.65 * big)
                        | _ellipsoid(x, y, dz, -0.3 * big, -0.55 * big, 0.4 * big, 14.0, 14.0,
                                     0.9 * big))
    return cavity, epi & ~cavity, rv_cav, rv_wall, pap, atria


def heart_labels(anat: Anatomy, st: HeartState, x, y, z) -> np.ndarray:
    """Label mask (uint8) of the heart at one instant: 1 LV cavity, 2 LV myocardium, 3 RV."""
    cavity, myo, rv_cav, _, _, _ = _regions(anat, st, x, y, z)
    out = np.zeros(cavity.shape, dtype=np.uint8)
    out[rv_cav] = RV_CAVITY
    out[myo] = LV_MYO
    out[cavity] = LV_CAVITY
    return out


def overlay_heart(anat: Anatomy, st: HeartState, x, y, z, classes: np.ndarray) -> np.ndarray:
    """Tissue classes with the heart drawn over ``classes`` (a background map of the same shape)."""
    cavity, myo, rv_cav, rv_wall, pap, atria = _regions(anat, st, x, y, z)
    out = classes.copy()
    out[atria] = BLOOD
    out[rv_wall | myo | pap] = MYO
    out[rv_cav | (cavity & ~pap)] = BLOOD
    return out


def background_classes(anat: Anatomy, x, y, z) -> np.ndarray:
    """Static tissue classes (torso, lungs, spine, aorta, liver, mediastinum) without the heart."""
    tcx, tcy, ta, tb = anat.torso
    shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z))
    out = np.full(shape, AIR, dtype=np.uint8)
    f, m = anat.fat_mm, anat.muscle_mm
    out[_ellipse(x, y, tcx, tcy, ta, tb) & np.ones(shape, bool)] = FAT
    out[_ellipse(x, y, tcx, tcy, ta - f, tb - f) & np.ones(shape, bool)] = MUSCLE
    inner_a, inner_b = ta - f - m, tb - f - m
    out[_ellipse(x, y, tcx, tcy, inner_a, inner_b) & np.ones(shape, bool)] = SOFT
    lx, ly, lz, la, lb, lc = anat.liver
    thorax = np.broadcast_to(np.asarray(z) > lz, shape)    # lungs end at the diaphragm
    for side in (-1.0, 1.0):
        lung = _ellipse(x, y, tcx + side * 0.5 * inner_a, tcy + 0.02 * inner_b,
                        0.45 * inner_a, 0.8 * inner_b)
        out[lung & thorax] = LUNG
    big = anat.a_ed + anat.wall_ed
    # Mediastinum around the heart, from below the apex to above the atria.
    zc = (anat.c_ed + anat.wall_ed) * 0.5
    out[_ellipse(x, y, -0.45 * big, 0.0, 1.75 * big + 6, 1.45 * big + 6)
        & np.broadcast_to(((np.asarray(z) + zc) / (zc + 60.0)) ** 2 < 1.0, shape)] = SOFT
    spine_y = tcy + inner_b - 28.0
    out[_ellipse(x, y, tcx, spine_y, 20.0, 17.0) & np.ones(shape, bool)] = SPINE
    out[_ellipse(x, y, tcx + 30.0, spine_y - 22.0, 11.0, 11.0) & np.ones(shape, bool)] = BLOOD
    liver = _ellipsoid(x, y, z, lx, ly, lz, la, lb, lc)
    out[liver & _ellipse(x, y, tcx, tcy, inner_a, inner_b)] = LIVER
    return out
