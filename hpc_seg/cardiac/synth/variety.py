"""Per-patient anatomy, contrast and geometry variety of the cine phantom (``variety = true``).

The shipped phantom varies the LV's volume and function but draws every other structure, the pose
and the contrast from narrow ranges, so a network trained on it can learn the generator rather
than the heart. With ``CineSynthConfig.variety`` on, each patient also draws, from its own random
streams (so quirks, label errors and noise of a patient stay as they were):

- body and heart size (``size_scale``; below 0.8 a pediatric patient, smaller field of view);
- pose: in-plane roll of the anatomy and a tilt of the planned short axis off the LV long axis
  (a volume-preserving shear, so the mask volumes stay the model's volumes);
- the sizes and positions of the atria, aortic root, RV, spine, descending aorta, lungs, liver;
- epicardial/pericardial fat (thicker in the AV groove) and body-wall fat thickness;
- base descent (long-axis shortening) and a myocardium that thickens in systole with its volume
  conserved (rather than its cross-section);
- papillary muscle size and a trabecular layer (both labelled LV cavity, as in ukbb_cardiac);
- a vendor profile (grey-value scale, 12- or 16-bit storage, models and field strengths), tissue
  contrast, SNR, a smooth random multiplicative bias field, blur, and a finer slice profile
  (five sub-planes across the slice thickness).

The label masks are evaluated on the same geometry as the image, so they stay exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hpc_seg.cardiac.synth import phantom as ph
from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.cardiac.synth.render import Contrast, KAGGLE_SIGNAL

# Grey value of blood (unit signal) and bits stored of each vendor profile. The values follow what
# vendors' cine DICOM typically hold: 12-bit Siemens at ~1000, low Philips values, 16-bit GE/Canon.
VENDORS: dict[str, dict] = {
    "siemens": {"maker": "SIEMENS", "bits": 12, "blood": (600.0, 1800.0),
                "models": [("Avanto", 1.5), ("Aera", 1.5), ("Skyra", 3.0), ("Prisma", 3.0)]},
    "ge": {"maker": "GE MEDICAL SYSTEMS", "bits": 16, "blood": (2500.0, 16000.0),
           "models": [("Signa HDxt", 1.5), ("Optima MR450w", 1.5), ("Discovery MR750", 3.0)]},
    "philips": {"maker": "Philips Medical Systems", "bits": 12, "blood": (120.0, 700.0),
                "models": [("Achieva", 1.5), ("Ingenia", 3.0)]},
    "canon": {"maker": "Canon Medical Systems", "bits": 16, "blood": (6000.0, 30000.0),
              "models": [("Vantage Titan", 1.5), ("Vantage Galan 3T", 3.0)]},
}
PEDIATRIC_BELOW = 0.8     # size_scale under which a patient counts (and is recorded) as pediatric
SLAB_SAMPLES = 5          # sub-planes across the slice thickness (the shipped phantom uses 3)


@dataclass(frozen=True)
class Variety:
    """What a variety patient draws beyond the shipped anatomy (lengths in mm, scaled)."""

    scale: float                    # linear body/heart scale (size_scale)
    roll: float                     # in-plane rotation of the anatomy (rad)
    tilt: tuple[float, float]       # shear dz/dx, dz/dy: short-axis plane off the LV axis
    epi_fat_mm: float
    groove_fat_mm: float            # extra fat in the AV groove, near the base
    la_scale: float                 # left atrium
    ra_scale: float                 # right atrium
    root_scale: float               # aortic root
    rv_scale: float                 # RV cavity relative to the shipped RV
    pap_scale: float
    trab_mm: float                  # trabecular layer depth
    trab_lobes: int                 # trabeculae around the circumference
    trab_phase: float
    spine: tuple[float, float, float, float]     # offset x, offset y, semi-axes (x, y)
    aorta: tuple[float, float, float]            # offset from the spine x, y; radius
    lung_scale: float

    @property
    def pediatric(self) -> bool:
        return self.scale < PEDIATRIC_BELOW


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def vary_anatomy(anat: ph.Anatomy, rng: np.random.Generator, cfg: CineSynthConfig) -> ph.Anatomy:
    """``anat`` rescaled and completed with a :class:`Variety` drawn from ``rng``."""
    s = _u(rng, cfg.size_scale)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    roll = sign * math.radians(_u(rng, cfg.roll_deg))
    tilt_mag = math.tan(math.radians(_u(rng, cfg.tilt_deg)))
    tilt_dir = float(rng.uniform(0, 2 * math.pi))
    var = Variety(
        scale=s, roll=roll, tilt=(tilt_mag * math.cos(tilt_dir), tilt_mag * math.sin(tilt_dir)),
        epi_fat_mm=_u(rng, cfg.epicardial_fat_mm) * s,
        groove_fat_mm=float(rng.uniform(2.0, 8.0)) * s,
        la_scale=_u(rng, cfg.chamber_scale), ra_scale=_u(rng, cfg.chamber_scale),
        root_scale=_u(rng, cfg.chamber_scale), rv_scale=_u(rng, cfg.chamber_scale),
        pap_scale=_u(rng, cfg.papillary_scale), trab_mm=_u(rng, cfg.trabeculation_mm) * s,
        trab_lobes=int(rng.integers(7, 15)), trab_phase=float(rng.uniform(0, 2 * math.pi)),
        spine=(float(rng.uniform(-15, 15)) * s, float(rng.uniform(-8, 8)) * s,
               float(rng.uniform(16, 24)) * s, float(rng.uniform(14, 20)) * s),
        aorta=(float(rng.uniform(22, 38)) * s, float(rng.uniform(-10, 2)) * s,
               float(rng.uniform(8, 14)) * s),
        lung_scale=float(rng.uniform(0.8, 1.1)))
    ef = anat.ef
    c_ed = anat.c_ed * s
    c_es = c_ed * (1.0 - _u(rng, cfg.base_descent))
    edv = anat.edv_ml * s**3
    integ = ph.profile_integral(anat.power)
    a_es = math.sqrt(edv * (1.0 - ef) * 1000.0 / (math.pi * anat.ecc * c_es * integ))
    tcx, tcy, ta, tb = anat.torso
    lx, ly, lz, la, lb, lc = anat.liver
    # Liver dome from well below the apex to the level of the apical third (never above the base).
    dome = -c_ed + float(rng.uniform(-25.0, 20.0)) * s
    lc_s = lc * s
    return replace(anat, edv_ml=edv, c_ed=c_ed, c_es=c_es, a_ed=anat.a_ed * s, a_es=a_es,
                   wall_ed=anat.wall_ed * s, wall_es=anat.wall_ed * s,
                   torso=(tcx * s, tcy * s, ta * s, tb * s),
                   fat_mm=_u(rng, cfg.body_fat_mm) * s, muscle_mm=anat.muscle_mm * s,
                   liver=(lx * s, ly * s, dome - lc_s, la * s, lb * s, lc_s), extra=var)


def sample_vendor_contrast(rng: np.random.Generator, anat: ph.Anatomy, cfg: CineSynthConfig
                           ) -> tuple[Contrast, dict]:
    """A vendor profile's contrast and its DICOM attributes (maker, model, field, bits)."""
    name = cfg.vendors[int(rng.integers(len(cfg.vendors)))]
    vendor = VENDORS[name]
    model, field_t = vendor["models"][int(rng.integers(len(vendor["models"])))]
    # Tissue contrast: each tissue +-25 %, 3 T a little more blood-myocardium contrast.
    jitter = rng.uniform(0.75, 1.25, size=ph.N_TISSUES)
    intens = [KAGGLE_SIGNAL[i] * float(jitter[i]) for i in range(ph.N_TISSUES)]
    if field_t >= 3.0:
        intens[ph.MYO] *= 0.85
    intens[ph.BLOOD] = 1.0      # gain is the grey value of blood: keeps the vendor's scale exact
    tcx, tcy, ta, tb = anat.torso
    coils = tuple((tcx + dx, tcy + side * (tb + 15.0), float(rng.uniform(-70, -10)) * anat.extra.scale)
                  for side in (-1.0, 1.0) for dx in ((-70.0 + rng.uniform(-20, 20)) * anat.extra.scale,
                                                     (70.0 + rng.uniform(-20, 20)) * anat.extra.scale))
    # A few long-wavelength cosines: a smooth multiplicative field of log-amplitude `bias`.
    amp = _u(rng, cfg.bias)
    waves = []
    for _ in range(3):
        direction = rng.normal(size=3)
        direction[2] *= 0.5
        k = 2 * math.pi / float(rng.uniform(250.0, 600.0)) * direction / np.linalg.norm(direction)
        waves.append((float(k[0]), float(k[1]), float(k[2]), float(rng.uniform(0, 2 * math.pi)),
                      amp / math.sqrt(3.0)))
    contrast = Contrast(intensities=tuple(intens), gain=_u(rng, vendor["blood"]),
                        snr=_u(rng, cfg.snr), blur_px=_u(rng, cfg.blur_px), coils=coils,
                        coil_reach_mm=float(rng.uniform(100, 190)) * anat.extra.scale,
                        bits=vendor["bits"], bias_waves=tuple(waves), slab=SLAB_SAMPLES)
    dicom = {"Manufacturer": vendor["maker"], "ManufacturerModelName": model,
             "MagneticFieldStrength": str(field_t), "BitsStored": vendor["bits"]}
    return contrast, {"vendor": name, **dicom}
