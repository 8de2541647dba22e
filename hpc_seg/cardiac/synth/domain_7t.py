"""A 7T-like cine cohort for offline transfer-learning runs: volunteers, DICOM, QMass ``.con``.

It differs from the Kaggle-like cohort as 7T data does:

- GRE/FLASH-like contrast (no bSSFP blood brightness: inflow-bright blood, grey myocardium,
  bright fat) instead of bSSFP;
- transmit-field (B1+) shading: a standing-wave pattern whose troughs are dark bands, plus a few
  signal voids (susceptibility at the heart-lung interface, fixed over the cycle);
- finer pixels (0.6-0.7 mm, 512x472 or 472x512 matrices), 6 mm slices, 14-18 slices,
  18-25 phases; 22 volunteers by default.

Everything is a pure function of (seed, volunteer): the anatomy and scanner geometry come from the
Kaggle-like generator's plan (:func:`~hpc_seg.cardiac.synth.plan.build_plan`, same streams), the
7T parts from their own stream.

Layout under OUT::

    <vid>/dicom/sax_<sn>/IM-<sn>-<frame>.dcm    one series per slice position
    <vid>/<vid>.con                             observer 1 (LV endo- and epicardium)
    <vid>/<vid>_observer2.con                   observer 2, only for the test volunteers
    truth_masks/<vid>.npz                       generator truth, keyed by SOPInstanceUID
    manifest.json

Labels are written the way a reader gets them from a clinic: as contours. Observer 1 traces the
truth mask exactly along pixel edges (so the round trip is lossless up to disconnected bits);
observer 2 is observer 1 smoothly deformed (radial scale, shift) so that observer-vs-observer Dice
is about what the paper reports (LV ~0.94, MY ~0.81). Slices and phases without a contour count as
empty masks, as in the original. Contours are numbered in QMass's reversed slice order
(``con slice = n_slices - 1 - DICOM position index``; see :mod:`hpc_seg.cardiac.ingest.qmass_con`).
"""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
import uuid
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from hpc_seg.cardiac.ingest.qmass_con import LV_ENDO, LV_EPI, Contour, mask_outline, write_con
from hpc_seg.cardiac.synth import phantom as ph
from hpc_seg.cardiac.synth.config import CineSynthConfig, Synth7TConfig
from hpc_seg.cardiac.synth.dicom import SeriesWriter, make_uid
from hpc_seg.cardiac.synth.plan import build_plan, stream
from hpc_seg.cardiac.synth.render import B1_WAVELENGTH_MM, Contrast, b1_wave, render_series
from hpc_seg.config import to_dict
from hpc_seg.storage.generated import GeneratedFolder, UnitDone, generate_units, open_folder
from hpc_seg.storage.shards import atomic_write_bytes

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SEVEN_T = 7          # this module's own random stream per volunteer (the plan uses 0..4)
OBSERVER2 = 8
OBSERVER2_SUFFIX = "_observer2"

# Relative GRE (FLASH) signal: inflow-bright blood, less blood/myocardium contrast than bSSFP.
_GRE = {ph.AIR: 0.0, ph.LUNG: 0.04, ph.FAT: 0.95, ph.MUSCLE: 0.30, ph.LIVER: 0.34,
        ph.BLOOD: 0.80, ph.MYO: 0.30, ph.SPINE: 0.42, ph.SOFT: 0.38}


def volunteer_id(pid: int) -> str:
    """Numeric ids, as the published volunteers (and the truth CSV) use them."""
    return str(pid)


def observer2_volunteers(cfg: Synth7TConfig) -> list[int]:
    """Which volunteers a second observer contoured (seeded, independent of everything else)."""
    rng = np.random.default_rng([cfg.seed, 0, OBSERVER2])
    return sorted(int(p) for p in rng.choice(np.arange(1, cfg.volunteers + 1),
                                             cfg.second_observer, replace=False))


def _gre_contrast(rng: np.random.Generator, base: Contrast) -> Contrast:
    jitter = rng.uniform(0.9, 1.1, size=ph.N_TISSUES)
    ang = rng.uniform(0, 2 * math.pi)
    wavelength = rng.uniform(*B1_WAVELENGTH_MM)
    return replace(base, intensities=tuple(float(_GRE[i] * jitter[i]) for i in range(ph.N_TISSUES)),
                   snr=float(rng.uniform(10, 22)), coil_reach_mm=float(rng.uniform(80, 120)),
                   b1_wave=b1_wave(ang, wavelength, float(rng.uniform(0, 2 * math.pi))))


def _void_mask(rng: np.random.Generator, rows: int, cols: int, n: int) -> np.ndarray:
    """Multiplicative field (1 outside) with ``n`` dark elliptical voids near the image centre."""
    out = np.ones((rows, cols), np.float32)
    yy, xx = np.mgrid[:rows, :cols]
    for _ in range(n):
        cy, cx = rows * rng.uniform(0.3, 0.7), cols * rng.uniform(0.3, 0.7)
        a, b = max(rows, cols) * rng.uniform(0.01, 0.03, size=2)
        inside = ((yy - cy) / a) ** 2 + ((xx - cx) / b) ** 2
        out *= (1.0 - 0.9 * np.exp(-inside ** 2)).astype(np.float32)
    return out


def _cine_config(cfg: Synth7TConfig, rng: np.random.Generator) -> tuple[CineSynthConfig, bool]:
    n_frames = int(rng.integers(cfg.frames[0], cfg.frames[1] + 1))
    n_slices = int(rng.integers(cfg.slices[0], cfg.slices[1] + 1))
    rows, cols = max(cfg.matrix), min(cfg.matrix)
    ps_lo, ps_hi = cfg.pixel_spacing_mm
    cine = CineSynthConfig(
        n_frames=n_frames, slices=(n_slices, n_slices),
        slice_spacing_mm=(cfg.slice_spacing_mm, cfg.slice_spacing_mm),
        pixel_spacing_mm=(ps_lo, ps_hi), fov_mm=(rows * ps_lo, rows * ps_hi),
        matrices=[[rows, cols]], matrix_weights=[1.0], max_matrix=cfg.max_matrix,
        oversample=cfg.oversample, quirk_rates={}, guarantee_quirks=False, no_random_quirks=True,
        label_error={"none": 1.0}, workers=1)
    return cine, bool(rng.random() < 0.5)     # True: rows < cols (472x512)


def _observer2(rng: np.random.Generator, pts: np.ndarray, cfg: Synth7TConfig, ps: float,
               epi: bool) -> np.ndarray:
    """Observer 1's polygon, radially rescaled by a smooth random profile and shifted."""
    c = pts.mean(axis=0)
    d = pts - c
    theta = np.arctan2(d[:, 1], d[:, 0])
    sd = math.hypot(cfg.observer2_scale_sd, cfg.observer2_epi_extra_sd) if epi else cfg.observer2_scale_sd
    a = rng.normal(0, sd, 3)
    ph1, ph2 = rng.uniform(0, 2 * math.pi, 2)
    scale = 1.0 + a[0] + a[1] * np.cos(theta - ph1) + a[2] * np.cos(2 * theta - ph2)
    shift = rng.normal(0, cfg.observer2_shift_mm / ps, 2)
    return c + d * scale[:, None] + shift


def generate_volunteer(cfg: Synth7TConfig, pid: int, out: Path, second: bool) -> dict:
    """Write volunteer ``pid`` under ``out`` (atomically); return its manifest entry."""
    rng = stream(cfg.seed, pid, SEVEN_T)
    cine, wide = _cine_config(cfg, rng)
    plan = build_plan(cfg.seed, pid, cfg.volunteers, cine)
    plan.contrast = _gre_contrast(rng, plan.contrast)
    plan.dicom.update(Manufacturer="SIEMENS", ManufacturerModelName="MAGNETOM Terra",
                      MagneticFieldStrength="7.0", ScanningSequence="GR", SequenceVariant="SP",
                      RepetitionTime=f"{rng.uniform(4.5, 6.0):.2f}",
                      EchoTime=f"{rng.uniform(2.0, 3.0):.2f}",
                      FlipAngle=str(int(rng.integers(10, 25))),
                      PatientID=volunteer_id(pid), PatientName=f"VOLUNTEER^{pid}",
                      StudyDescription="Cardiac cine 7T (synthetic)")
    sax = [s for s in plan.series if s.role == "sax"]     # no long-axis views in this cohort
    vid = volunteer_id(pid)
    final, tmp = out / vid, out / f".tmp-{vid}-{uuid.uuid4().hex[:8]}"
    times = plan.frame_times()
    truth: dict[str, np.ndarray] = {}
    positioned = []
    try:
        for sp in sax:
            sp.rotate = wide          # 472x512: pixels and header turned by 90 degrees together
            sp.finalize(plan.base_lps, plan.axes_lps)
            noise = stream(cfg.seed, pid, SEVEN_T, sp.series_number)
            images, masks = render_series(plan.anat, plan.contrast, sp.plane, times, noise,
                                          oversample=cfg.oversample)
            voids = _void_mask(noise, sp.plane.rows, sp.plane.cols,
                               int(noise.integers(cfg.voids[0], cfg.voids[1] + 1)))
            folder = tmp / "dicom" / sp.folder
            folder.mkdir(parents=True, exist_ok=True)
            time = f"{8 + sp.series_number // 60:02d}{sp.series_number % 60:02d}00.000000"
            writer = SeriesWriter(plan.dicom, {
                "SeriesInstanceUID": make_uid("series-7t", cfg.seed, pid, sp.series_number),
                "SeriesNumber": sp.series_number, "SeriesDescription": "cine_gre_SAX",
                "SeriesTime": time, "AcquisitionTime": time, "ContentTime": time,
                "SliceThickness": f"{sp.plane.thickness:g}", "CardiacNumberOfImages": len(times)})
            uids = []
            for f, (img, m) in enumerate(zip(images, masks)):
                img = np.clip(np.rint(img * voids), 0, 4095).astype(np.uint16)
                m = m.copy()
                m[m == ph.RV_CAVITY] = 0       # 7T labels: LV and myocardium only
                if wide:
                    img, m = np.rot90(img), np.rot90(m)
                uid = make_uid("sop-7t", cfg.seed, pid, sp.series_number, f)
                writer.write(folder / sp.file_name(f), geom=sp.geom, sop_uid=uid, instance=f + 1,
                             trigger_time_ms=f * plan.rr_ms / plan.n_frames,
                             pixels=np.ascontiguousarray(img))
                truth[uid] = np.ascontiguousarray(m)
                uids.append(uid)
            positioned.append((sp.geom.position, uids, sp.geom.ps_row))
        positioned.sort(key=lambda t: t[0])          # DICOM order: position along the normal
        n = len(positioned)
        obs1, obs2 = [], []
        o2rng = stream(cfg.seed, pid, OBSERVER2)
        for k, (_pos, uids, ps) in enumerate(positioned):
            for f, uid in enumerate(uids):
                m = truth[uid]
                for ctype, region in ((LV_ENDO, m == 1), (LV_EPI, m >= 1)):
                    pts = mask_outline(region)
                    if pts is None:
                        continue
                    obs1.append(Contour(n - 1 - k, f, ctype, pts))
                    if second:
                        obs2.append(Contour(n - 1 - k, f, ctype, _observer2(o2rng, pts, cfg, ps,
                                                                         ctype == LV_EPI)))
        rows, cols = truth[positioned[0][1][0]].shape
        ps = positioned[0][2]
        header = {"Patient_id": vid, "Study_id": plan.dicom["StudyInstanceUID"],
                  "Field_of_view": f"{rows * ps:.1f}x{cols * ps:.1f} mm",
                  "Image_resolution": f"{cols}x{rows}",
                  "Slicethickness": f"{sax[0].plane.thickness:g} mm",
                  "Patient_weight": f"{rng.uniform(55, 95):.0f} kg",
                  "Patient_height": f"{rng.uniform(160, 195):.0f} cm",
                  "Patient_gender": plan.dicom["PatientSex"]}
        write_con(tmp / f"{vid}.con", obs1, header)
        if second:
            write_con(tmp / f"{vid}{OBSERVER2_SUFFIX}.con", obs2, header)
        buf = io.BytesIO()
        np.savez_compressed(buf, **truth)
        atomic_write_bytes(buf.getvalue(), out / "truth_masks" / f"{vid}.npz")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"id": vid, "rows": int(rows), "cols": int(cols), "pixel_spacing_mm": float(ps),
            "slices": n, "frames": plan.n_frames, "second_observer": second,
            "edv_ml": round(plan.anat.edv_ml, 2), "ef": round(plan.anat.ef, 4)}


COHORT = GeneratedFolder(what="7T cohort", state_file=".synth-7t.json", done_dir=".volunteers")


def _volunteer_unit(cfg: Synth7TConfig, out: Path, second: frozenset[int], pid: int) -> UnitDone:
    return UnitDone(volunteer_id(pid), generate_volunteer(cfg, pid, out, pid in second))


def generate_7t_cohort(out: str | Path, cfg: Synth7TConfig | None = None) -> Path:
    """Generate the cohort under ``out`` (resumes: finished volunteers are kept); returns the manifest."""
    cfg = cfg or Synth7TConfig()
    out = Path(out)
    gen = {"version": GENERATOR_VERSION, **to_dict(cfg)}
    gen.pop("workers")
    open_folder(out, COHORT, gen)
    manifest = out / "manifest.json"
    if manifest.is_file():
        return manifest
    second = frozenset(observer2_volunteers(cfg))
    entries = generate_units(out, COHORT, range(1, cfg.volunteers + 1),
                             partial(_volunteer_unit, cfg, out, second), volunteer_id,
                             workers=cfg.workers, label="synth 7t", unit="volunteers")
    body = {"generator": gen, "observer2_suffix": OBSERVER2_SUFFIX,
            "second_observer": [volunteer_id(p) for p in sorted(second)],
            "con_slice_order": "reversed",
            "labels": {"0": "background", "1": "LV cavity", "2": "LV myocardium"},
            "volunteers": {str(p): entries[volunteer_id(p)] for p in range(1, cfg.volunteers + 1)}}
    atomic_write_bytes(json.dumps(body, indent=1).encode(), manifest)
    return manifest
