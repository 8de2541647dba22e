"""``hpc-seg bench generalise``: does a model trained on synthetic cines learn the heart?

It trains on a cohort drawn from one part of the generator's ranges and measures LV volumes and EF
on a cohort drawn from a part held out by the benchmark itself: another seed, other vendor profiles
(and so other bit depths, grey-value scales, field strengths) and other body sizes. The training
cohort can also be the shipped generator (``train_variety = False``), which is the "before":
the same held-out cohort, a model that only ever saw the shipped phantom.

Every step is the project's own: ``synth cine`` -> ``ingest`` -> ``labels`` -> ``slices`` ->
``train`` -> ``evaluate`` (one call per split of the held-out cohort: all its patients are held
out). Both cohorts are quirk-free and ship their exact masks as labels, so what is measured is
generalisation, not curation or label noise. Steps whose outputs exist are skipped on a re-run.

Reported per cohort (held-out, and the training cohort's own test split): mean |EF error| x 100,
mean |EDV| and |ESV| error in % of the truth, for the model and for the resized label masks (what
a perfect segmentation of the 2D slices would score: the floor set by the image size).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpc_seg.bench.config import GeneraliseConfig

log = logging.getLogger(__name__)

SPLITS = ("train", "validate", "test")


def _cohort_config(cfg: GeneraliseConfig, held_out: bool):
    from hpc_seg.cardiac.synth.config import CineSynthConfig

    common = dict(n_frames=cfg.n_frames, max_matrix=cfg.max_matrix, slices=cfg.slices,
                  no_random_quirks=True, label_error={"none": 1.0}, workers=cfg.workers)
    if held_out:
        return CineSynthConfig(variety=True, vendors=cfg.test_vendors, size_scale=cfg.test_sizes,
                               **common)
    if not cfg.train_variety:
        return CineSynthConfig(**common)
    return CineSynthConfig(variety=True, vendors=cfg.train_vendors, size_scale=cfg.train_sizes,
                           **common)


def _prepare(cfg: GeneraliseConfig, name: str, held_out: bool, n: int, seed: int) -> dict[str, Path]:
    """Cohort -> ingest -> labels -> slices under ``workdir/name``; returns the paths."""
    from hpc_seg.cardiac.ingest.run import IngestConfig, ingest
    from hpc_seg.cardiac.labels.build import build_labels
    from hpc_seg.cardiac.slices.build import build_slices
    from hpc_seg.cardiac.synth.cohort import generate_cine_cohort

    root = cfg.workdir / name
    cohort = root / "cohort"
    if not (cohort / "manifest.json").is_file():
        generate_cine_cohort(cohort, n, seed, _cohort_config(cfg, held_out))
    summary = ingest(cohort, root / "ingest", IngestConfig(engine="local", workers=cfg.workers,
                                                           progress=False))
    volumes = summary.tables["volumes"]
    build_labels(volumes, root / "labels", cohort / "truth.csv", source="shipped")
    slices = build_slices(volumes, root / "labels", root / f"slices_{cfg.image_size}",
                          cfg.image_size)
    return {"cohort": cohort, "labels": root / "labels", "slices": slices}


def train_config(cfg: GeneraliseConfig):
    """The ``cpu`` preset at the benchmark's image size, plus ``cfg.train``."""
    from hpc_seg.config import from_dict
    from hpc_seg.cardiac.train.config import PRESETS, TrainConfig

    table = {**PRESETS["cpu"], "image_size": cfg.image_size, "confidence_set": "all",
             **cfg.train}
    return from_dict(TrainConfig, table, "bench generalise: train")


def _scores(per_patient: pd.DataFrame) -> dict[str, float]:
    """Mean |EF error| x 100 and mean |EDV|, |ESV| error in % of the truth.

    A patient without a prediction counts as volumes of 0 (100 % error), as its EF error counts 1.
    """
    df = per_patient.assign(pred_edv_ml=per_patient.pred_edv_ml.fillna(0.0),
                            pred_esv_ml=per_patient.pred_esv_ml.fillna(0.0))
    return {"ef_err": float(df.abs_diff.mean() * 100),
            "edv_err_pct": float(((df.pred_edv_ml - df.true_edv_ml).abs() / df.true_edv_ml).mean()
                                 * 100),
            "esv_err_pct": float(((df.pred_esv_ml - df.true_esv_ml).abs() / df.true_esv_ml).mean()
                                 * 100),
            "edv_bias_pct": float(((df.pred_edv_ml - df.true_edv_ml) / df.true_edv_ml).mean() * 100),
            "n": int(len(df)), "missing": int(df.pred_ef.isna().sum())}


def target_met(held: dict[str, float] | None) -> bool:
    """The target on the held-out cohort: EF error <= 4, EDV and ESV error <= 10 %."""
    return bool(held) and held["ef_err"] <= 4 and held["edv_err_pct"] <= 10 \
        and held["esv_err_pct"] <= 10


def _evaluate(model: Path, data: dict[str, Path], out: Path, splits: tuple[str, ...]
              ) -> pd.DataFrame:
    """Per-patient EF/volume rows of ``model`` and of the label source over ``splits``."""
    from hpc_seg.cardiac.evaluate import evaluate

    frames = []
    for split in splits:
        evaluate({"model": model}, data["slices"], data["labels"], out / split, split=split,
                 n_overlays=4)
        frames.append(pd.read_csv(out / split / "ef_per_patient.csv").assign(split=split))
    return pd.concat(frames, ignore_index=True)


def _train_name(cfg: GeneraliseConfig) -> str:
    """The training cohort's folder under ``workdir`` (its model, evaluations and results)."""
    return "train_variety" if cfg.train_variety else "train_shipped"


def run_bench(cfg: GeneraliseConfig) -> dict[str, Any]:
    """Run the benchmark; returns scores per (cohort, method) and the wall times of each step."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    train_name = _train_name(cfg)
    train_data = _prepare(cfg, train_name, False, cfg.train_patients, cfg.train_seed)
    test_data = _prepare(cfg, "held_out", True, cfg.test_patients, cfg.test_seed)
    times["data_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    from hpc_seg.cardiac.train.loop import train_segmenter

    tcfg = train_config(cfg)
    result = train_segmenter(tcfg, train_data["slices"], cfg.workdir / train_name / "model")
    times["train_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    held = _evaluate(result.model_path, test_data, cfg.workdir / train_name / "eval_held_out", SPLITS)
    own = _evaluate(result.model_path, train_data, cfg.workdir / train_name / "eval_own_test",
                    ("test",))
    times["evaluate_s"] = time.perf_counter() - t2
    times["total_s"] = time.perf_counter() - t0
    scores = {}
    for cohort, df in (("held_out", held), ("own_test", own)):
        for method, grp in df.groupby("method"):
            key = "model" if method == "model" else "label masks"
            scores[(cohort, key)] = _scores(grp)
    manifest_patients = _manifest_patients(test_data["cohort"])
    held = held.assign(patient_id=held.patient_id.astype(str))
    held["size_scale"] = held.patient_id.map(lambda p: manifest_patients[p].get("size_scale"))
    held["vendor"] = held.patient_id.map(lambda p: manifest_patients[p].get("vendor"))
    return {"scores": scores, "times": times, "per_patient_held_out": held,
            "model": str(result.model_path), "train": tcfg, "epochs": result.epochs}


def save_results(cfg: GeneraliseConfig, r: dict[str, Any]) -> Path:
    """Write the scores, times and settings as ``results.json`` beside the model, and the held-out
    per-patient rows as ``held_out_per_patient.csv``; returns the JSON's path (both atomic)."""
    import json

    from hpc_seg.config import to_dict
    from hpc_seg.storage.shards import atomic_write_bytes

    out = cfg.workdir / _train_name(cfg)
    held = r["scores"].get(("held_out", "model"))
    doc = {"train_variety": cfg.train_variety, "config": to_dict(cfg), "train": to_dict(r["train"]),
           "epochs": r["epochs"], "model": r["model"], "times_s": r["times"],
           "scores": [{"cohort": c, "method": m, **s} for (c, m), s in sorted(r["scores"].items())],
           "target_met": target_met(held)}
    atomic_write_bytes(r["per_patient_held_out"].to_csv(index=False).encode(),
                       out / "held_out_per_patient.csv")
    return atomic_write_bytes((json.dumps(doc, indent=1) + "\n").encode(), out / "results.json")


def _manifest_patients(cohort: Path) -> dict[str, dict]:
    import json

    patients = json.loads((cohort / "manifest.json").read_text())["patients"]
    return {pid: e.get("model", {}) for pid, e in patients.items()}


def format_report(cfg: GeneraliseConfig, r: dict[str, Any]) -> str:
    """The benchmark's printed table."""
    lines = [f"bench generalise: trained on {'variety' if cfg.train_variety else 'shipped'} "
             f"cohort ({cfg.train_patients} patients, seed {cfg.train_seed}"
             + (f", vendors {','.join(cfg.train_vendors)}, sizes {cfg.train_sizes}"
                if cfg.train_variety else "") + ")",
             f"  held out: {cfg.test_patients} patients, seed {cfg.test_seed}, vendors "
             f"{','.join(cfg.test_vendors)}, sizes {cfg.test_sizes}; {cfg.image_size} px, "
             f"{r['epochs']} epochs ({r['train'].encoder})",
             f"  {'cohort':<9} {'method':<12} {'EF err':>7} {'EDV err %':>10} {'ESV err %':>10} "
             f"{'EDV bias %':>11} {'n':>3}"]
    for (cohort, method), s in sorted(r["scores"].items()):
        lines.append(f"  {cohort:<9} {method:<12} {s['ef_err']:7.2f} {s['edv_err_pct']:10.1f} "
                     f"{s['esv_err_pct']:10.1f} {s['edv_bias_pct']:11.1f} {s['n']:3d}"
                     + (f"  ({s['missing']} missing)" if s["missing"] else ""))
    held = r["scores"].get(("held_out", "model"))
    if held:
        lines.append(f"  target (held out, model): EF err <= 4, EDV/ESV err <= 10 %: "
                     f"{'met' if target_met(held) else 'NOT met'}")
    t = r["times"]
    lines.append(f"  wall: data {t['data_s']:.0f} s, train {t['train_s']:.0f} s, evaluate "
                 f"{t['evaluate_s']:.0f} s, total {t['total_s']:.0f} s")
    return "\n".join(lines)


def size_breakdown(held: pd.DataFrame) -> str:
    """Model errors on the held-out cohort by size (pediatric or not) and vendor."""
    df = held[held.method == "model"].copy()
    df["edv_err"] = (df.pred_edv_ml - df.true_edv_ml).abs() / df.true_edv_ml * 100
    df["esv_err"] = (df.pred_esv_ml - df.true_esv_ml).abs() / df.true_esv_ml * 100
    df["ef_err"] = df.abs_diff * 100
    out = df.groupby("vendor")[["ef_err", "edv_err", "esv_err"]].mean().round(1)
    return out.to_string() + f"\n  (size_scale {np.nanmin(df.size_scale):.2f}.." \
        f"{np.nanmax(df.size_scale):.2f})"
