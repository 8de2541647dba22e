"""Synthetic Kaggle-like cardiac cine cohort: orchestration, per-patient writing, manifest.

Layout written under OUT:
``{train,validate,test}/<pid>/study/{sax_*,2ch_*,4ch_*}/IM-<series>-<frame>.dcm``, ``truth.csv``,
``masks/<pid>.npz`` (label source, keyed by SOPInstanceUID), ``truth_masks/<pid>.npz`` (the
undegraded masks, same keys), ``manifest.json`` and, with ``label_maps`` on,
``label_maps/<split>/<pid>.nii.gz`` + ``label_maps/structures.json`` (:mod:`.label_maps`).

Each patient is a pure function of (seed, pid, config) and is written to a temporary folder that is
renamed when complete, so an interrupted run leaves no half patient; re-running the same command
resumes, skipping finished patients.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from hpc_seg.config import to_dict
from hpc_seg.storage.generated import GeneratedFolder, UnitDone, generate_units, open_folder
from hpc_seg.storage.shards import atomic_write_bytes, output_error
from hpc_seg.cardiac.synth import labels as cine_labels
from hpc_seg.cardiac.synth import quirks as cine_quirks
from hpc_seg.cardiac.synth.config import LABEL_ERROR_KINDS, VARIETY_KEYS, CineSynthConfig
from hpc_seg.cardiac.synth.dicom import (SeriesWriter, make_uid, truncate_pixels,
                                           write_not_dicom)
from hpc_seg.cardiac.synth.label_maps import FOLDER as LABEL_MAPS, write_label_map, write_structures
from hpc_seg.cardiac.synth.phantom import RV_CAVITY
from hpc_seg.cardiac.synth.plan import LABELS, NOISE, PatientPlan, SeriesPlan, build_plan, stream
from hpc_seg.cardiac.synth.render import render_series
from hpc_seg.errors import ConfigError

__all__ = ["CineSynthConfig", "PatientResult", "generate_cine_cohort", "generate_patient"]

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
STATE_FILE = ".synth-cine.json"     # marks OUT as ours while generating (and after)
DONE_DIR = ".patients"              # one JSON per finished patient (manifest entry + truth)
SPLITS = ("train", "validate", "test")


@dataclass
class PatientResult:
    pid: int
    entry: dict           # the manifest's patients[pid]
    n_files: int
    n_bytes: int


def _series_time(plan: PatientPlan, sp: SeriesPlan) -> str:
    # Series are acquired in SeriesNumber order, one breath-hold (~25 s) each, from 08:05.
    first = min(s.series_number for s in plan.series)
    secs = 8 * 3600 + 300 + 25 * (sp.series_number - first)
    return f"{secs // 3600:02d}{secs // 60 % 60:02d}{secs % 60:02d}.000000"


def _series_dicom(seed: int, plan: PatientPlan, sp: SeriesPlan) -> dict:
    desc = {"sax": "CINE_segmented_SAX", "repeat": "CINE_segmented_SAX_repeat",
            "outlier": "CINE_segmented_SAX", "2ch": "CINE_segmented_LAX_2Ch",
            "4ch": "CINE_segmented_LAX_4Ch"}[sp.role]
    time = _series_time(plan, sp)
    return {"SeriesInstanceUID": make_uid("series", seed, plan.pid, sp.series_number),
            "SeriesNumber": sp.series_number, "SeriesDescription": desc, "SeriesTime": time,
            "AcquisitionTime": time, "ContentTime": time,
            "SliceThickness": f"{sp.plane.thickness:g}", "CardiacNumberOfImages": len(sp.frames)}


def _write_series(seed: int, plan: PatientPlan, sp: SeriesPlan, study: Path,
                  masks: dict, uids: dict, oversample: int) -> tuple[int, int]:
    """Render and write one series; fill ``masks[(sn, frame)]`` and ``uids[uid] = key``."""
    rng = stream(seed, plan.pid, NOISE, sp.series_number)
    # Short-axis masks are needed for every frame (truth), long-axis ones only where written.
    frames = list(range(plan.n_frames)) if sp.stack >= 0 else sp.frames
    times = plan.frame_times()
    rendered, labels = render_series(plan.anat, plan.contrast, sp.plane, [times[f] for f in frames],
                                     rng, oversample=oversample)
    images = {}
    for f, img, m in zip(frames, rendered, labels):
        images[f] = np.rot90(img) if sp.rotate else img
        masks[(sp.series_number, f)] = np.ascontiguousarray(np.rot90(m) if sp.rotate else m)
    if sp in plan.dropped:
        return 0, 0
    folder = study / sp.folder
    folder.mkdir(parents=True, exist_ok=True)
    writer = SeriesWriter(plan.dicom, _series_dicom(seed, plan, sp))
    n_files = n_bytes = 0
    for f in sp.frames:
        uid = make_uid("sop", seed, plan.pid, sp.series_number, f)
        path = folder / sp.file_name(f)
        trigger = f * plan.rr_ms / plan.n_frames
        pixels = None if sp.corrupt.get(f) == "no_pixel_data" else images[f]
        writer.write(path, geom=sp.geom, sop_uid=uid, instance=f + 1, trigger_time_ms=trigger,
                     pixels=pixels)
        if sp.corrupt.get(f) == "truncated":
            truncate_pixels(path, images[f].nbytes)
        uids[uid] = (sp.series_number, f)     # long-axis images get masks too
        n_files += 1
        n_bytes += path.stat().st_size
    return n_files, n_bytes


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def generate_patient(seed: int, pid: int, n_patients: int, config: CineSynthConfig,
                     out: Path) -> PatientResult:
    """Write patient ``pid`` under ``out`` (atomically) and return its manifest entry."""
    plan = build_plan(seed, pid, n_patients, config)
    cine_quirks.apply_quirks(plan, cine_quirks.choose_quirks(seed, pid, config), seed, config)
    final = out / plan.split / str(pid)
    tmp = out / plan.split / f".tmp-{pid}-{uuid.uuid4().hex[:8]}"
    try:
        study = tmp / "study"
        masks: dict = {}
        uids: dict = {}
        n_files = n_bytes = 0
        for sp in plan.series + plan.dropped:
            nf, nb = _write_series(seed, plan, sp, study, masks, uids,
                                   config.oversample)
            n_files, n_bytes = n_files + nf, n_bytes + nb
        junk_rng = stream(seed, pid, NOISE, 0)
        for rel in plan.not_dicom:
            write_not_dicom(study / rel, junk_rng)
            n_files += 1
        if config.domain == "7t":     # 7T data come with LV and myocardium labels only
            for m in masks.values():
                m[m == RV_CAVITY] = 0
        entry = _labels_and_truth(seed, plan, config, masks, uids, out)
        if config.label_maps:
            write_label_map(plan, out)
        entry["skipped_files"] = cine_quirks.skipped_files(plan)
        entry["n_files"] = n_files
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(Path(getattr(exc, "filename", None) or tmp), exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PatientResult(pid=pid, entry=entry, n_files=n_files, n_bytes=n_bytes)


def _labels_and_truth(seed: int, plan: PatientPlan, config: CineSynthConfig, masks: dict,
                      uids: dict, out: Path) -> dict:
    """Truth volumes, the degraded label source, and the manifest entry."""
    rng = stream(seed, plan.pid, LABELS)
    kinds = list(config.label_error)
    w = np.asarray([config.label_error[k] for k in kinds], dtype=float)
    kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    shipped = cine_labels.degrade_masks(masks, plan, kind, rng)
    slices, spacing = cine_quirks.curated_slices(plan, 0)
    truth = cine_labels.lv_volumes_ml(slices, masks, plan.n_frames, spacing, curated=False)
    systole, diastole = round(float(truth.min()), 2), round(float(truth[0]), 2)
    perfect = cine_labels.lv_volumes_ml(slices, masks, plan.n_frames, spacing, curated=True)
    labelled = cine_labels.lv_volumes_ml(slices, shipped, plan.n_frames, spacing, curated=True)
    atomic_write_bytes(_npz_bytes({u: shipped[k] for u, k in uids.items()}),
                       out / "masks" / f"{plan.pid}.npz")
    atomic_write_bytes(_npz_bytes({u: masks[k] for u, k in uids.items()}),
                       out / "truth_masks" / f"{plan.pid}.npz")
    return {"split": plan.split, "quirks": plan.quirks,
            "label_error": round(cine_labels.confidence_score(labelled, systole, diastole), 5),
            "label_error_kind": kind,
            "perfect_curation_error": round(
                cine_labels.confidence_score(perfect, systole, diastole), 5),
            "truth": {"Systole": systole, "Diastole": diastole},
            "expected_stacks": cine_quirks.expected_stacks(plan),
            "model": {"edv_ml": round(plan.anat.edv_ml, 2), "ef": round(plan.anat.ef, 4),
                      "heart_rate_bpm": round(60000.0 / plan.rr_ms, 1), **_variety_entry(plan)}}


def _variety_entry(plan: PatientPlan) -> dict:
    """What a variety patient drew that a benchmark splits on (nothing for the shipped phantom)."""
    v = plan.anat.extra
    if v is None:
        return {}
    return {"size_scale": round(v.scale, 4), "pediatric": v.pediatric,
            "vendor": plan.dicom["Manufacturer"], "bits_stored": plan.contrast.bits,
            "snr": round(plan.contrast.snr, 2)}


COHORT = GeneratedFolder(what="synthetic cine cohort", state_file=STATE_FILE, done_dir=DONE_DIR,
                         can_overwrite=True)


def _patient_unit(seed: int, n_patients: int, config: CineSynthConfig, out: Path,
                  pid: int) -> UnitDone:
    res = generate_patient(seed, pid, n_patients, config, out)
    return UnitDone(str(res.pid), res.entry, res.n_files)


def generate_cine_cohort(out: Path, n_patients: int, seed: int,
                         config: CineSynthConfig | None = None, *, overwrite: bool = False) -> Path:
    """Generate a cohort of ``n_patients`` under ``out``; return the manifest path.

    A re-run with the same settings resumes an unfinished cohort and returns a finished one as it
    is; ``overwrite`` replaces a cohort made with other settings (only one this generator made).
    """
    config = config or CineSynthConfig()
    out = Path(out)
    if n_patients < 1:
        raise ConfigError(f"synth cine: --patients must be >= 1, but got {n_patients}")
    if seed < 0:
        raise ConfigError(f"synth cine: --seed must be >= 0, but got {seed}")
    gen = {"version": GENERATOR_VERSION, "seed": seed, "n_patients": n_patients,
           **to_dict(config)}
    gen.pop("workers")     # the worker count does not change the output
    if not config.variety:  # the ranges do nothing then: keep the shipped manifest (and hash)
        for key in VARIETY_KEYS:
            gen.pop(key)
    if not config.label_maps:   # likewise: a cohort without label maps keeps its manifest
        gen.pop("label_maps")
    open_folder(out, COHORT, gen, overwrite=overwrite)
    if (out / "manifest.json").is_file():
        return out / "manifest.json"
    entries = generate_units(out, COHORT, range(1, n_patients + 1),
                             partial(_patient_unit, seed, n_patients, config, out), str,
                             workers=config.workers, label="synth cine", unit="patients",
                             extra_unit="files")
    return _write_outputs(out, gen, {int(k): v for k, v in entries.items()}, n_patients)


def _write_outputs(out: Path, generator: dict, entries: dict[int, dict], n: int) -> Path:
    train, val = round(0.6 * n), round(0.8 * n)
    rows = ["Id,Systole,Diastole"] + [
        f"{pid},{entries[pid]['truth']['Systole']},{entries[pid]['truth']['Diastole']}"
        for pid in sorted(entries)]
    atomic_write_bytes(("\n".join(rows) + "\n").encode(), out / "truth.csv")
    manifest = {"generator": generator,
                "split_rule": f"pid <= {train} train, <= {val} validate, else test",
                "labels": {"0": "background", "1": "LV cavity (papillary muscles included)",
                           "2": "LV myocardium", "3": "RV cavity"},
                "label_error_kinds": list(LABEL_ERROR_KINDS),
                "patients": {str(pid): entries[pid] for pid in sorted(entries)}}
    if generator.get("label_maps"):
        write_structures(out)
        manifest["label_maps"] = f"{LABEL_MAPS}/<split>/<pid>.nii.gz (ids: " \
            f"{LABEL_MAPS}/structures.json)"
    path = out / "manifest.json"
    atomic_write_bytes(json.dumps(manifest, indent=1).encode(), path)
    return path
