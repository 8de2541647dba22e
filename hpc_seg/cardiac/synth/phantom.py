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
from functools import lru_cache
from typing import Any

import numpy as np

# Tissue classes of the rendered image (not the label masks).
AIR, LUNG, FAT, MUSCLE, LIVER, BLOOD, MYO, SPINE, SOFT = range(9)
N_TISSUES = 9

# Labels of the masks.
BG, LV_CAVITY, LV_MYO, RV_CAVITY = 0, 1, 2, 3

# Structures of the multi-structure label maps (what a label-driven renderer draws from): every
# structure the phantom knows. The mask labels are unions of them: LV cavity = LV blood pool +
# papillary muscles and trabeculae, LV myocardium, RV cavity = RV blood pool.
STRUCTURES = ("background", "lv_blood", "lv_myocardium", "rv_blood", "lv_papillary_trabeculae",
              "rv_wall", "atria_aortic_root", "descending_aorta", "pericardial_fat", "body_fat",
              "body_wall_muscle", "lungs", "liver", "spine", "soft_tissue")
(S_BACKGROUND, S_LV_BLOOD, S_LV_MYO, S_RV_BLOOD, S_LV_PAPILLARY, S_RV_WALL, S_ATRIA, S_AORTA,
 S_PERICARDIAL_FAT, S_BODY_FAT, S_BODY_WALL, S_LUNGS, S_LIVER, S_SPINE, S_SOFT) = \
    range(len(STRUCTURES))
STRUCTURE_MASK_LABELS = {LV_CAVITY: (S_LV_BLOOD, S_LV_PAPILLARY), LV_MYO: (S_LV_MYO,),
                         RV_CAVITY: (S_RV_BLOOD,)}
# The static tissue classes of `background_classes` are one structure each.
_BACKGROUND_STRUCTURE = np.zeros(N_TISSUES, dtype=np.uint8)
for _tissue, _structure in ((AIR, S_BACKGROUND), (LUNG, S_LUNGS), (FAT, S_BODY_FAT),
                            (MUSCLE, S_BODY_WALL), (LIVER, S_LIVER), (BLOOD, S_AORTA),
                            (SPINE, S_SPINE), (SOFT, S_SOFT)):
    _BACKGROUND_STRUCTURE[_tissue] = _structure


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
    extra: Any = None        # a variety.Variety (variety cohorts) or None (shipped phantom)

    @property
    def heart_extent(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) bounding the heart (LV, RV, atria) at ED, with a margin."""
        big = self.a_ed + self.wall_ed + 4.0
        box = (-1.75 * big - 8.0, big + 8.0, -1.45 * big - 8.0, 1.3 * big + 8.0)
        if self.extra is None:
            return box
        # Rolled anatomy, larger chambers and pericardial fat: a symmetric, wider box.
        v = self.extra
        r = max(abs(b) for b in box) * max(1.0, v.rv_scale, v.ra_scale) \
            + v.epi_fat_mm + v.groove_fat_mm
        return (-r, r, -r, r)


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


profile_integral = lru_cache(maxsize=256)(_profile_integral)


def _conserved_wall(anat: Anatomy, a: float, c: float) -> float:
    """Wall thickness that keeps the myocardial volume at its ED value (variety phantom).

    Myocardium = epicardial superellipsoid (a+w, b+w, c+0.8w) minus the cavity (a, b, c), both
    pi * axes product * the same profile integral, so the condition is a cubic in w, increasing
    for w > 0; bisection is exact enough and cheap (once per frame).
    """
    ecc = anat.ecc

    def shell(a_: float, c_: float, w: float) -> float:
        return (a_ + w) * (a_ * ecc + w) * (c_ + 0.8 * w) - a_ * a_ * ecc * c_

    target = shell(anat.a_ed, anat.c_ed, anat.wall_ed)
    lo, hi = 0.0, 4.0 * anat.wall_ed + anat.a_ed
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if shell(a, c, mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


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
    if anat.extra is not None:
        a = math.sqrt(vol * 1000.0 / (math.pi * anat.ecc * c * profile_integral(anat.power)))
        wall = _conserved_wall(anat, a, c)
        return HeartState(a=a, b=a * anat.ecc, c=c, z_base=c - anat.c_ed, wall=wall,
                          rv_scale=1.0 - anat.rv_shrink * f)
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


def posed(anat: Anatomy, x, y, z):
    """Plane coordinates -> anatomy coordinates (the identity for the shipped phantom).

    A variety patient's anatomy is rolled about the long axis and its short-axis planes are
    sheared off the LV axis (z + tilt . (x, y)); both keep volumes, so mask volumes stay exact.
    """
    v = anat.extra
    if v is None:
        return x, y, z
    c, s = math.cos(v.roll), math.sin(v.roll)
    xr, yr = c * x + s * y, -s * x + c * y
    return xr, yr, z + v.tilt[0] * xr + v.tilt[1] * yr


def _regions(anat: Anatomy, st: HeartState, x, y, z):
    """Boolean maps of the heart structures at one instant."""
    x, y, z = posed(anat, x, y, z)
    v = anat.extra
    cavity = _superellipsoid(x, y, z, st.a, st.b, st.c, st.z_base, anat.power)
    epi = _superellipsoid(x, y, z, st.a + st.wall, st.b + st.wall, st.c + 0.8 * st.wall,
                          st.z_base, anat.power)
    # RV: a large ellipse to the patient's right and anterior, minus the LV = a crescent.
    big = anat.a_ed + anat.wall_ed
    rv_a, rv_b = 1.05 * big * st.rv_scale, 1.2 * big * st.rv_scale
    if v is not None:
        rv_a, rv_b = rv_a * v.rv_scale, rv_b * v.rv_scale
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
    r_pap = 0.17 * st.a if v is None else 0.17 * st.a * v.pap_scale
    for ang in anat.pap_angles:
        px, py = 0.55 * st.a * math.cos(ang), 0.55 * st.b * math.sin(ang)
        pap |= _ellipse(x, y, px, py, r_pap, r_pap)
    pap &= cavity & mid
    # Atria and aortic root above the (moving) base plane: blood, not labelled.
    dz = z - st.z_base
    la, ra, root = (1.0, 1.0, 1.0) if v is None else (v.la_scale, v.ra_scale, v.root_scale)
    root_r = 14.0 if v is None else 14.0 * v.scale * root
    atria = (dz > 0) & (_ellipsoid(x, y, dz, 4.0, 0.25 * big, 0.6 * big * la, 0.85 * big * la,
                                   0.8 * big * la, 0.75 * big * la)
                        | _ellipsoid(x, y, dz, -1.3 * big, 0.0, 0.5 * big * ra, 0.7 * big * ra,
                                     0.8 * big * ra, 0.65 * big * ra)
                        | _ellipsoid(x, y, dz, -0.3 * big, -0.55 * big, 0.4 * big, root_r, root_r,
                                     0.9 * big))
    if v is not None:
        pap |= _trabeculae(v, st, x, y, z, cavity, anat.power)
    return cavity, epi & ~cavity, rv_cav, rv_wall, pap, atria


def _trabeculae(v: Any, st: HeartState, x, y, z, cavity, power: float):
    """Muscle fingers in a layer of depth ``trab_mm`` inside the cavity, apical two thirds."""
    if v.trab_mm <= 0.05:
        return np.zeros(cavity.shape, dtype=bool)
    t = v.trab_mm
    inner = _superellipsoid(x, y, z, max(st.a - t, 1.0), max(st.b - t, 1.0), max(st.c - t, 1.0),
                            st.z_base - t, power)
    d = (st.z_base - z) / st.c
    ang = np.arctan2(y, x)
    fingers = np.cos(v.trab_lobes * ang + v.trab_phase + 0.15 * z) > 0.2
    return cavity & ~inner & fingers & (d > 0.3)


def _pericardial_fat(anat: Anatomy, st: HeartState, x, y, z):
    """Epicardial fat around both ventricles, thicker in the AV groove just below the base."""
    v = anat.extra
    x, y, z = posed(anat, x, y, z)
    big = anat.a_ed + anat.wall_ed
    dz = z - st.z_base
    groove = np.clip(1.0 - np.abs(dz + 8.0 * v.scale) / (14.0 * v.scale), 0.0, 1.0)
    f = v.epi_fat_mm + v.groove_fat_mm * groove
    lv = _superellipsoid(x, y, z, st.a + st.wall + f, st.b + st.wall + f,
                         st.c + 0.8 * st.wall + f, st.z_base, anat.power)
    rv_a, rv_b = 1.05 * big * st.rv_scale * v.rv_scale, 1.2 * big * st.rv_scale * v.rv_scale
    rv_len = 0.75 * (st.c + st.wall)
    rv = _superellipsoid(x + 0.55 * big, y + 0.1 * big, z, rv_a + 3.0 + f, rv_b + 3.0 + f,
                         rv_len + 3.0 + f, st.z_base, anat.power)
    return lv | rv


def structure_maps(anat: Anatomy, st: HeartState, x, y, z) -> dict[str, np.ndarray]:
    """Named boolean maps of the heart's structures (for tests and figures), plane coordinates."""
    cavity, myo, rv_cav, rv_wall, pap, atria = _regions(anat, st, x, y, z)
    out = {"lv_cavity": cavity, "lv_myo": myo, "rv_cavity": rv_cav, "rv_wall": rv_wall,
           "papillary_trabeculae": pap, "atria_aortic_root": atria}
    if anat.extra is not None:
        out["pericardial_fat"] = _pericardial_fat(anat, st, x, y, z) & ~(cavity | myo | rv_cav
                                                                          | rv_wall | atria)
    return out


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
    if anat.extra is not None:
        out[_pericardial_fat(anat, st, x, y, z) & np.ones(out.shape, bool)] = FAT
    out[atria] = BLOOD
    out[rv_wall | myo | pap] = MYO
    out[rv_cav | (cavity & ~pap)] = BLOOD
    return out


def structure_labels(anat: Anatomy, st: HeartState, x, y, z) -> np.ndarray:
    """Multi-structure label map (uint8, ids of :data:`STRUCTURES`) at one instant.

    The same geometry, drawn in the same order, as :func:`overlay_heart` over
    :func:`background_classes`, with each structure kept apart instead of merged into its tissue;
    its LV, myocardium and RV are exactly :func:`heart_labels` (``STRUCTURE_MASK_LABELS``).
    """
    out = _BACKGROUND_STRUCTURE[background_classes(anat, x, y, z)]
    cavity, myo, rv_cav, rv_wall, pap, atria = _regions(anat, st, x, y, z)
    full = np.ones(out.shape, bool)
    if anat.extra is not None:
        out[_pericardial_fat(anat, st, x, y, z) & full] = S_PERICARDIAL_FAT
    out[atria & full] = S_ATRIA
    out[rv_wall & full] = S_RV_WALL
    out[myo & full] = S_LV_MYO
    out[pap & full] = S_LV_PAPILLARY
    out[rv_cav & full] = S_RV_BLOOD
    out[cavity & ~pap & full] = S_LV_BLOOD
    return out


def background_classes(anat: Anatomy, x, y, z) -> np.ndarray:
    """Static tissue classes (torso, lungs, spine, aorta, liver, mediastinum) without the heart."""
    x, y, z = posed(anat, x, y, z)
    v = anat.extra
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
    ls = 1.0 if v is None else v.lung_scale
    for side in (-1.0, 1.0):
        lung = _ellipse(x, y, tcx + side * 0.5 * inner_a, tcy + 0.02 * inner_b,
                        0.45 * inner_a * ls, 0.8 * inner_b * ls)
        out[lung & thorax] = LUNG
    big = anat.a_ed + anat.wall_ed
    # Mediastinum around the heart, from below the apex to above the atria.
    zc = (anat.c_ed + anat.wall_ed) * 0.5
    out[_ellipse(x, y, -0.45 * big, 0.0, 1.75 * big + 6, 1.45 * big + 6)
        & np.broadcast_to(((np.asarray(z) + zc) / (zc + 60.0)) ** 2 < 1.0, shape)] = SOFT
    liver = _ellipsoid(x, y, z, lx, ly, lz, la, lb, lc)
    if v is None:
        spine_y = tcy + inner_b - 28.0
        out[_ellipse(x, y, tcx, spine_y, 20.0, 17.0) & np.ones(shape, bool)] = SPINE
        out[_ellipse(x, y, tcx + 30.0, spine_y - 22.0, 11.0, 11.0) & np.ones(shape, bool)] = BLOOD
        out[liver & _ellipse(x, y, tcx, tcy, inner_a, inner_b)] = LIVER
        return out
    # Spine against the posterior body wall, the descending aorta left-anterior of it; both in
    # front of the liver, which wraps around them below the diaphragm.
    out[liver & _ellipse(x, y, tcx, tcy, inner_a, inner_b)] = LIVER
    sdx, sdy, sa, sb = v.spine
    spine_x, spine_y = tcx + sdx, tcy + inner_b - sb - 11.0 * v.scale + sdy
    adx, ady, ar = v.aorta
    out[_ellipse(x, y, spine_x, spine_y, sa, sb) & np.ones(shape, bool)] = SPINE
    out[_ellipse(x, y, spine_x + adx, spine_y - sb + ady, ar, ar) & np.ones(shape, bool)] = BLOOD
    return out
