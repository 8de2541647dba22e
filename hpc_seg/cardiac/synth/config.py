"""Configuration of the synthetic Kaggle-like cine cohort generator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hpc_seg.errors import ConfigError

# Quirk names as they appear in the manifest's ``quirks`` lists.
QUIRKS = ("fewer_phases", "other_geometry", "inplane_rotated", "rows_lt_cols", "repeated_location",
          "complete_repeat", "nonuniform_spacing", "truncated_file", "not_dicom", "no_pixel_data",
          "outlier_slice")
# Quirks that the rotation of ``guarantee_quirks`` hands out (outlier_slice is optional).
GUARANTEED = QUIRKS[:10]

LABEL_ERROR_KINDS = ("none", "erode", "dilate", "drop_basal")

# Vendor profiles of the `variety` cohorts (hpc_seg.cardiac.synth.variety.VENDORS).
VENDOR_NAMES = ("siemens", "ge", "philips", "canon")

# Config keys that only matter with `variety` on (left out of a shipped cohort's manifest).
VARIETY_KEYS = ("variety", "size_scale", "vendors", "snr", "bias", "blur_px", "tilt_deg",
                "roll_deg", "epicardial_fat_mm", "body_fat_mm", "base_descent",
                "trabeculation_mm", "papillary_scale", "chamber_scale")

# Per-patient ranges drawn when `variety` is on: name -> (min allowed, max allowed).
_RANGE_LIMITS = {"size_scale": (0.4, 1.5), "snr": (2.0, 200.0), "bias": (0.0, 1.5),
                 "blur_px": (0.0, 3.0), "tilt_deg": (0.0, 30.0), "roll_deg": (0.0, 90.0),
                 "epicardial_fat_mm": (0.0, 15.0), "body_fat_mm": (0.0, 60.0),
                 "base_descent": (0.0, 0.35), "trabeculation_mm": (0.0, 8.0),
                 "papillary_scale": (0.3, 2.0), "chamber_scale": (0.5, 1.6)}


def _default_rates() -> dict[str, float]:
    rates = {name: 0.06 for name in QUIRKS}
    rates["outlier_slice"] = 0.0
    return rates


def _default_label_error() -> dict[str, float]:
    return {"none": 0.5, "erode": 0.2, "dilate": 0.2, "drop_basal": 0.1}


def _default_matrices() -> list[list[int]]:
    # (rows, cols): Kaggle's common 256x208 and friends, plus 512 matrices (interpolated scans).
    return [[256, 208], [256, 256], [192, 156], [320, 260], [512, 416], [512, 512]]


@dataclass(kw_only=True)
class CineSynthConfig:
    """Everything that shapes a synthetic cine cohort (besides seed and patient count)."""

    n_frames: int = 30
    """cardiac phases per slice (the modal count; `fewer_phases` slices have fewer)."""
    slices: tuple[int, int] = (6, 14)
    """min, max short-axis slices per stack."""
    slice_spacing_mm: tuple[float, float] = (8.0, 10.0)
    """range of the slice spacing along the normal."""
    pixel_spacing_mm: tuple[float, float] = (0.6, 1.8)
    """range the in-plane spacing is clipped to (before `max_matrix` coarsens it)."""
    fov_mm: tuple[float, float] = (300.0, 400.0)
    """range of the field of view along the longer image side."""
    matrices: list[list[int]] = field(default_factory=_default_matrices)
    """[rows, cols] choices for the acquisition matrix (rows >= cols)."""
    matrix_weights: list[float] = field(
        default_factory=lambda: [0.4, 0.15, 0.1, 0.15, 0.12, 0.08])
    """relative frequency of each entry of `matrices`."""
    long_axis_frames: int = 5
    """phases written for each long-axis (2ch, 4ch) series (at most n_frames)."""
    max_matrix: int = 512
    """cap on the larger image side; smaller caps keep the field of view (coarser pixels)."""
    oversample: int = 2
    """in-plane rendering oversampling factor (partial volume)."""
    edv_ml: tuple[float, float] = (100.0, 250.0)
    """range of the end-diastolic LV volume (mL)"""
    ef: tuple[float, float] = (0.30, 0.70)
    """range of the ejection fraction"""
    quirk_rates: dict[str, float] = field(default_factory=_default_rates)
    """probability per patient of each quirk (missing names count as 0)."""
    guarantee_quirks: bool = True
    """every even pid 2k gets quirk number (k-1) mod 10, so any cohort of >= 20 patients shows
    all ten mandatory quirks; a pure function of pid, so determinism per (seed, pid) holds."""
    force_quirks: dict[str, list[int]] = field(default_factory=dict)
    """quirk name -> pids that must have it."""
    no_random_quirks: bool = False
    """only `force_quirks` apply (no random or guaranteed ones)."""
    label_error: dict[str, float] = field(default_factory=_default_label_error)
    """probability of each label-mask degradation kind (none, erode, dilate, drop_basal)."""
    domain: Literal["kaggle", "7t"] = "kaggle"
    """`7t`: shifted contrast, strong B1 inhomogeneity, finer pixels, no quirks, masks 0/1/2."""
    workers: int = 0
    """worker processes; 0 = the CPUs this process is allocated."""
    label_maps: bool = False
    """also write each patient's multi-structure label maps (`label_maps/<split>/<pid>.nii.gz`:
    every structure the phantom draws, for training from label maps alone)."""
    # --- anatomy, contrast and geometry variety (off by default: the shipped cohorts stay
    # byte-identical). On, each patient draws the values below from its own random stream, so
    # turning it on does not change the quirks, label errors or noise draws of a patient.
    variety: bool = False
    """draw anatomy, contrast and geometry per patient from the ranges below (README)."""
    size_scale: tuple[float, float] = (0.6, 1.15)
    """linear scale of body and heart (volumes scale by its cube, the field of view with it);
    below 0.8 the patient is recorded as pediatric."""
    vendors: list[str] = field(default_factory=lambda: list(VENDOR_NAMES))
    """vendor profiles drawn from (siemens/philips: 12-bit, ge/canon: 16-bit, each with its own
    grey-value scale, field strengths and models)."""
    snr: tuple[float, float] = (8.0, 35.0)
    """blood signal / noise sigma."""
    bias: tuple[float, float] = (0.05, 0.45)
    """amplitude (log scale) of a smooth random multiplicative bias field on top of the coils."""
    blur_px: tuple[float, float] = (0.3, 1.1)
    """Gaussian blur sigma in pixels (k-space apodisation)."""
    tilt_deg: tuple[float, float] = (0.0, 15.0)
    """angle between the planned short-axis normal and the true LV long axis."""
    roll_deg: tuple[float, float] = (0.0, 35.0)
    """in-plane rotation of the anatomy (either sense) about the LV long axis."""
    epicardial_fat_mm: tuple[float, float] = (0.5, 5.0)
    """pericardial/epicardial fat around the ventricles (thicker in the AV groove)."""
    body_fat_mm: tuple[float, float] = (3.0, 35.0)
    """subcutaneous body-wall fat (times size_scale)."""
    base_descent: tuple[float, float] = (0.08, 0.2)
    """long-axis shortening at end-systole as a fraction of the LV length: the base plane
    descends by this much through the fixed slices."""
    trabeculation_mm: tuple[float, float] = (0.0, 3.5)
    """depth of the trabecular layer inside the LV cavity (labelled cavity, dark like muscle)."""
    papillary_scale: tuple[float, float] = (0.6, 1.5)
    """papillary muscle size relative to the shipped phantom's."""
    chamber_scale: tuple[float, float] = (0.8, 1.25)
    """size of the atria, aortic root and RV relative to the LV (each drawn separately)."""

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"synth cine config: {key}: {why}")

        self.slices = tuple(self.slices)
        for key in ("slices", "slice_spacing_mm", "pixel_spacing_mm", "fov_mm", "edv_ml", "ef"):
            lo_hi = tuple(getattr(self, key))
            if len(lo_hi) != 2 or not lo_hi[0] <= lo_hi[1] or lo_hi[0] <= 0:
                raise bad(key, f"must be [min, max] with 0 < min <= max, but got {list(lo_hi)}")
            setattr(self, key, lo_hi)
        if self.n_frames < 4:
            raise bad("n_frames", f"must be >= 4, but got {self.n_frames}")
        if self.long_axis_frames < 1:
            raise bad("long_axis_frames", f"must be >= 1, but got {self.long_axis_frames}")
        if self.slices[0] < 6:
            raise bad("slices", f"minimum must be >= 6 (room for slice quirks), got {self.slices}")
        if self.ef[1] >= 0.95:
            raise bad("ef", f"must stay below 0.95, but got {self.ef}")
        if not 32 <= self.max_matrix <= 1024:
            raise bad("max_matrix", f"must be in [32, 1024], but got {self.max_matrix}")
        if not 1 <= self.oversample <= 4:
            raise bad("oversample", f"must be in [1, 4], but got {self.oversample}")
        if not self.matrices or len(self.matrices) != len(self.matrix_weights):
            raise bad("matrix_weights", f"needs one weight per matrix ({len(self.matrices)}), "
                      f"but got {len(self.matrix_weights)}")
        for m in self.matrices:
            if len(m) != 2 or m[0] < m[1] or m[1] < 16:
                raise bad("matrices", f"each must be [rows, cols] with rows >= cols >= 16, got {m}")
        if min(self.matrix_weights) < 0 or sum(self.matrix_weights) <= 0:
            raise bad("matrix_weights", f"must be >= 0 with a positive sum, got {self.matrix_weights}")
        for name, p in self.quirk_rates.items():
            if name not in QUIRKS:
                raise bad("quirk_rates", f"unknown quirk {name!r}; valid: {list(QUIRKS)}")
            if not 0.0 <= p <= 1.0:
                raise bad(f"quirk_rates.{name}", f"must be a probability, but got {p}")
        for name, pids in self.force_quirks.items():
            if name not in QUIRKS:
                raise bad("force_quirks", f"unknown quirk {name!r}; valid: {list(QUIRKS)}")
            if any(not isinstance(p, int) or p < 1 for p in pids):
                raise bad(f"force_quirks.{name}", f"must list positive integer pids, got {pids}")
        unknown = set(self.label_error) - set(LABEL_ERROR_KINDS)
        if unknown or not self.label_error or min(self.label_error.values()) < 0 \
                or sum(self.label_error.values()) <= 0:
            raise bad("label_error", f"must map {list(LABEL_ERROR_KINDS)} to non-negative "
                      f"weights with a positive sum, but got {self.label_error}")
        if self.workers < 0:
            raise bad("workers", f"must be >= 0 (0 = the CPU allocation), but got {self.workers}")
        for key, (lo, hi) in _RANGE_LIMITS.items():
            lo_hi = tuple(float(v) for v in getattr(self, key))
            if len(lo_hi) != 2 or not lo <= lo_hi[0] <= lo_hi[1] <= hi:
                raise bad(key, f"must be [min, max] within [{lo:g}, {hi:g}], but got {list(lo_hi)}")
            setattr(self, key, lo_hi)
        if not self.vendors or any(v not in VENDOR_NAMES for v in self.vendors):
            raise bad("vendors", f"must list some of {list(VENDOR_NAMES)}, but got {self.vendors}")

    def rate(self, quirk: str) -> float:
        """Per-patient probability of ``quirk`` (0 in the 7T domain: clean research data)."""
        if self.domain == "7t":
            return 0.0
        return self.quirk_rates.get(quirk, 0.0)


@dataclass(kw_only=True)
class Synth7TConfig:
    """Shape of the 7T-like cohort (``hpc-seg synth cine --domain 7t`` / ``[synth_7t]``)."""

    volunteers: int = 22
    """number of volunteers"""
    seed: int = 0
    """cohort seed (volunteer i uses [seed, i])"""
    matrix: tuple[int, int] = (512, 472)
    """acquired (rows, cols); each volunteer is 512x472 or 472x512 at random."""
    pixel_spacing_mm: tuple[float, float] = (0.6, 0.7)
    """range of the in-plane pixel spacing (min max)"""
    slices: tuple[int, int] = (14, 18)
    """slices per volunteer (min max)"""
    frames: tuple[int, int] = (18, 25)
    """cardiac phases per volunteer (min max)"""
    slice_spacing_mm: float = 6.0
    """distance between slices"""
    max_matrix: int = 512
    """cap on the larger image side (CPU-sized runs); the field of view is kept (coarser pixels)."""
    second_observer: int = 3
    """volunteers with a second observer's contours (the test set of the transfer split)."""
    observer2_scale_sd: float = 0.05
    """observer 2: sd of the relative radial change per contour (mean and first two harmonics)."""
    observer2_shift_mm: float = 0.6
    """observer 2: sd of the shift of each contour"""
    observer2_epi_extra_sd: float = 0.035
    """extra relative radial sd of observer 2's epicardium (wall thickness is what observers
    disagree on most: with 0.05 / 0.6 mm / 0.035 LV Dice is ~0.945 and MY ~0.81 at 512)."""
    voids: tuple[int, int] = (0, 3)
    """signal voids per slice (min, max)."""
    oversample: int = 1
    """in-plane rendering oversampling factor (partial volume)"""
    workers: int = 1
    """worker processes; 0 = the CPUs this process is allocated"""

    def __post_init__(self) -> None:
        for key in ("matrix", "pixel_spacing_mm", "slices", "frames", "voids"):
            setattr(self, key, tuple(getattr(self, key)))
            lo, hi = getattr(self, key)
            if key != "matrix" and not 0 <= lo <= hi:
                raise ConfigError(f"synth 7t: {key} must be [min, max] with 0 <= min <= max, "
                                  f"got {[lo, hi]}")
        if self.volunteers < 1 or not 0 <= self.second_observer <= self.volunteers:
            raise ConfigError(f"synth 7t: need volunteers >= 1 and 0 <= second_observer <= "
                              f"volunteers, got {self.volunteers}, {self.second_observer}")
        if self.slices[0] < 6 or self.frames[0] < 4:
            raise ConfigError(f"synth 7t: slices must be >= 6 and frames >= 4, got "
                              f"{self.slices}, {self.frames}")
        if min(self.matrix) < 16 or not 32 <= self.max_matrix <= 1024:
            raise ConfigError(f"synth 7t: matrix sides must be >= 16 and max_matrix in [32, 1024],"
                              f" got {self.matrix}, {self.max_matrix}")
        if self.pixel_spacing_mm[0] <= 0 or self.slice_spacing_mm <= 0:
            raise ConfigError("synth 7t: spacings must be > 0")
