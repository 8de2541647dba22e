"""The acquisition plan of one synthetic patient: anatomy, scanner, series, files.

Everything here is a pure function of (seed, pid, config): each concern draws from its own
``numpy.random.default_rng([seed, pid, stream])`` so that, for example, turning a quirk on does not
change the patient's anatomy, and the worker count cannot change anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hpc_seg.cardiac.synth import phantom as ph
from hpc_seg.cardiac.synth.config import CineSynthConfig
from hpc_seg.cardiac.synth.dicom import Geometry, make_uid, plane_geometry, rotate90
from hpc_seg.cardiac.synth.render import Contrast, Plane, sample_contrast

# Independent random streams per patient (VARIETY and VENDOR only with `variety` on).
ANATOMY, ACQUISITION, QUIRK_CHOICE, LABELS, NOISE, VARIETY, VENDOR = range(7)

SCANNERS = [("SIEMENS", "Avanto", 1.5), ("SIEMENS", "Aera", 1.5), ("SIEMENS", "Skyra", 3.0),
            ("GE MEDICAL SYSTEMS", "Signa HDxt", 1.5), ("Philips Medical Systems", "Achieva", 1.5),
            ("Philips Medical Systems", "Ingenia", 3.0)]


def stream(seed: int, pid: int, which: int, *more: int) -> np.random.Generator:
    """The random stream ``which`` of patient ``pid``."""
    return np.random.default_rng([seed, pid, which, *more])


@dataclass(eq=False)     # identity: a plan holds each series once
class SeriesPlan:
    """One series to write: one slice position (or a long-axis view) over the cardiac cycle."""

    series_number: int
    folder: str
    role: str                 # sax, repeat (repeated_location), outlier, 2ch, 4ch
    stack: int                # 0 = first acquisition, 1 = complete repeat, -1 = long axis
    slice_index: int          # index into PatientPlan.z_positions (-1: long axis / outlier)
    plane: Plane
    rotate: bool = False
    """pixels np.rot90'ed and the header geometry with them"""
    frames: list[int] = field(default_factory=list)
    """frame indices written"""
    corrupt: dict[int, str] = field(default_factory=dict)
    """frame -> truncated / no_pixel_data"""

    @property
    def geom(self) -> Geometry:
        return self._geom

    def finalize(self, base_lps: np.ndarray, axes_lps: np.ndarray) -> None:
        g = plane_geometry(self.plane, base_lps, axes_lps)
        self._geom = rotate90(g) if self.rotate else g

    def file_name(self, frame: int) -> str:
        return f"IM-{self.series_number:04d}-{frame + 1:04d}.dcm"


@dataclass
class PatientPlan:
    """Everything needed to write (and to predict the curation of) one patient."""

    pid: int
    split: str
    anat: ph.Anatomy
    contrast: Contrast
    base_lps: np.ndarray
    axes_lps: np.ndarray      # heart-frame axes (x, y, z) as LPS columns
    n_frames: int
    rr_ms: float
    spacing: float
    z_positions: list[float]  # heart-frame z of the planned short-axis slices, base first
    series: list[SeriesPlan]
    dicom: dict               # patient/study-level DICOM attributes
    quirks: list[str] = field(default_factory=list)
    dropped: list[SeriesPlan] = field(default_factory=list)
    """planned but not written (gap)"""
    not_dicom: list[str] = field(default_factory=list)
    """relative paths of junk .dcm files"""

    def sax(self, stack: int | None = None) -> list[SeriesPlan]:
        return [s for s in self.series if s.role in ("sax", "repeat", "outlier")
                and (stack is None or s.stack == stack)]

    def frame_times(self) -> list[float]:
        return [f / self.n_frames for f in range(self.n_frames)]


def split_of(pid: int, n_patients: int) -> str:
    """Contract split rule: pid <= round(0.6 N) train, <= round(0.8 N) validate, else test."""
    if pid <= round(0.6 * n_patients):
        return "train"
    return "validate" if pid <= round(0.8 * n_patients) else "test"


def _orientation(rng: np.random.Generator) -> np.ndarray:
    """Heart-frame axes in LPS: z (apex to base) is an oblique short-axis normal."""
    apex_dir = np.array([0.55, -0.45, -0.70]) + rng.normal(0, 0.08, 3)   # left, anterior, inferior
    ez = -apex_dir / np.linalg.norm(apex_dir)
    ex = np.array([1.0, 0.0, 0.0]) - ez[0] * ez       # image columns towards the patient's left
    ex /= np.linalg.norm(ex)
    ey = np.cross(ez, ex)                             # rows towards posterior: anterior is up
    # Planning is never exact: turn the in-plane axes a little about the normal.
    a = rng.uniform(-0.25, 0.25)
    ex, ey = np.cos(a) * ex + np.sin(a) * ey, -np.sin(a) * ex + np.cos(a) * ey
    return np.stack([ex, ey, ez], axis=1)


def _matrix(rng: np.random.Generator, cfg: CineSynthConfig,
            scale: float = 1.0) -> tuple[int, int, float]:
    """(rows, cols, pixel spacing) keeping the field of view when ``max_matrix`` caps it.

    ``scale`` (variety: the body size) shrinks the field of view for small patients.
    """
    w = np.asarray(cfg.matrix_weights, dtype=float)
    rows, cols = cfg.matrices[int(rng.choice(len(w), p=w / w.sum()))]
    ps = float(np.clip(rng.uniform(*cfg.fov_mm) * scale / rows, *cfg.pixel_spacing_mm))
    if cfg.domain == "7t":
        ps = min(ps, float(rng.uniform(0.6, 0.9)))     # 7T: finer in-plane resolution
        rows = cols = max(rows, 256)
    if max(rows, cols) > cfg.max_matrix:
        f = cfg.max_matrix / max(rows, cols)
        ps, rows, cols = ps / f, cfg.max_matrix, max(8, int(round(cols * f)))
    return rows, cols, round(ps, 5)


def build_plan(seed: int, pid: int, n_patients: int, cfg: CineSynthConfig) -> PatientPlan:
    """The clean acquisition of patient ``pid`` (quirks are applied by cine_quirks)."""
    anat = ph.sample_anatomy(stream(seed, pid, ANATOMY), cfg.edv_ml, cfg.ef)
    # Variety draws come from streams of their own, after the shipped ones: the shipped draws of
    # the acquisition stream below stay in the same order, so turning variety on changes only
    # what it documents (synth.variety).
    scale = 1.0
    if cfg.variety:
        from hpc_seg.cardiac.synth.variety import vary_anatomy
        anat = vary_anatomy(anat, stream(seed, pid, VARIETY), cfg)
        scale = anat.extra.scale
    rng = stream(seed, pid, ACQUISITION)
    contrast = sample_contrast(rng, anat, cfg.domain)
    axes = _orientation(rng)
    base_lps = np.array([20.0, 0.0, 20.0]) + rng.normal(0, 10, 3)
    rows, cols, ps = _matrix(rng, cfg, scale)
    spacing = round(float(rng.uniform(*cfg.slice_spacing_mm)) * min(1.0, scale / 0.85) * 2) / 2
    thickness = round(spacing * float(rng.uniform(0.8, 1.0)), 1)
    lv_length = anat.c_ed + anat.wall_ed
    n_slices = int(np.clip(math.ceil(lv_length / spacing) + int(rng.integers(0, 2)), *cfg.slices))
    z_top = float(rng.uniform(-3.0, 6.0)) * scale
    z_positions = [z_top - k * spacing for k in range(n_slices)]
    # Image centre between the torso centre and the heart, with the LV right of centre.
    centre = (float(rng.uniform(-60, -35)) * scale, float(rng.uniform(10, 30)) * scale)
    first_sn = int(rng.integers(5, 12))
    hr = float(rng.uniform(50, 100))
    maker, model, field_t = SCANNERS[int(rng.integers(len(SCANNERS)))]
    if cfg.domain == "7t":
        maker, model, field_t = "SIEMENS", "MAGNETOM Terra", 7.0
    age = int(rng.integers(18, 90))
    dicom = {"PatientID": f"{pid}", "PatientName": f"SYNTH^{pid}", "PatientAge": f"{age:03d}Y",
             "PatientSex": "MF"[int(rng.integers(2))], "StudyDate": "20150101",
             "StudyTime": "080000", "StudyDescription": "Cardiac cine (synthetic)",
             "Manufacturer": maker, "ManufacturerModelName": model,
             "MagneticFieldStrength": str(field_t), "RepetitionTime": f"{rng.uniform(2.6, 3.4):.2f}",
             "EchoTime": f"{rng.uniform(1.1, 1.6):.2f}", "FlipAngle": str(int(rng.integers(40, 81))),
             "StudyInstanceUID": make_uid("study", seed, pid),
             "FrameOfReferenceUID": make_uid("frame-of-reference", seed, pid)}
    if cfg.variety and cfg.domain == "kaggle":
        from hpc_seg.cardiac.synth.variety import sample_vendor_contrast
        contrast, vendor = sample_vendor_contrast(stream(seed, pid, VENDOR), anat, cfg)
        vendor.pop("vendor")
        dicom.update(vendor)
    if cfg.variety and anat.extra.pediatric:
        dicom["PatientAge"] = f"{min(17, max(1, int(round(30 * (scale - 0.45))))):03d}Y"
    plan = PatientPlan(pid=pid, split=split_of(pid, n_patients), anat=anat, contrast=contrast,
                       base_lps=base_lps, axes_lps=axes, n_frames=cfg.n_frames, rr_ms=60000.0 / hr,
                       spacing=spacing, z_positions=z_positions, series=[], dicom=dicom)
    for k, z in enumerate(z_positions):
        plan.series.append(SeriesPlan(
            series_number=first_sn + k, folder=f"sax_{first_sn + k}", role="sax", stack=0,
            slice_index=k, plane=sax_plane(rows, cols, ps, ps, centre, z, thickness),
            frames=list(range(cfg.n_frames))))
    # Long-axis cines (acquired first): two- and four-chamber views through the LV axis, a few
    # phases each (they only have to be recognised and ignored).
    la_frames = sorted({int(f) for f in np.linspace(0, cfg.n_frames, min(cfg.long_axis_frames, cfg.n_frames),
                                                    endpoint=False)})
    la_z0 = -30.0 * scale + (rows - 1) / 2 * ps       # the heart sits near the image centre
    for sn, view, col_axis in ((first_sn - 2, "2ch", 1), (first_sn - 1, "4ch", 0)):
        origin = [0.0, 0.0, 0.0]
        origin[col_axis] = centre[col_axis] * 0.3 - (cols - 1) / 2 * ps
        origin[2] = la_z0
        plan.series.append(SeriesPlan(
            series_number=sn, folder=f"{view}_{sn}", role=view, stack=-1, slice_index=-1,
            plane=Plane(rows=rows, cols=cols, ps_row=ps, ps_col=ps, origin=tuple(origin),
                        col_axis=col_axis, row_axis=2, row_sign=-1.0, thickness=thickness),
            frames=la_frames))
    return plan


def sax_plane(rows: int, cols: int, ps_row: float, ps_col: float, centre: tuple[float, float],
              z: float, thickness: float) -> Plane:
    """A short-axis plane whose field of view is centred on ``centre`` (heart-frame x, y)."""
    return Plane(rows=rows, cols=cols, ps_row=ps_row, ps_col=ps_col,
                 origin=(centre[0] - (cols - 1) / 2 * ps_col, centre[1] - (rows - 1) / 2 * ps_row, z),
                 thickness=thickness)
