"""``hpc-seg bench generalise``: does a model trained on synthetic cines learn the heart?

It trains on a cohort drawn from one part of the generator's ranges and measures LV volumes and EF
on two test cohorts:

- **within-generator** (``held_out``): a part of the same generator's ranges that the benchmark
  holds out: another seed, other vendor profiles (and so other bit depths, grey-value scales, field
  strengths) and other body sizes;
- **cross-generator** (``cross``): the same held-out patients rendered by an independently written
  renderer of their label maps (:mod:`hpc_seg.cardiac.synth.kspace_render`; an import-linter
  contract keeps it from sharing rendering code with any training source), so the two scores are
  of the same anatomy and differ only in how the images were made.

The training recipe (:data:`RECIPES`) is today's (published fastai augmentation on the generator's
images), nnU-Net's augmentation, random appearance rendered from the training cohort's label maps
alone (SynthSeg-style: a mean per structure, or per tissue), both (nnU-Net's + random), hybrid
(half the generator's images, half tissue renderings), and hybrid with a random-convolution
intensity remap (``hybrid_gin``) or a zoom that also shrinks (``hybrid_zoom_out``); every recipe
trains with the same budget (the ``cpu`` preset's epochs and images per epoch, unless overridden
for all). The training cohort can also be the
shipped generator (``train_variety = False``), the "before" of the variety generator.

Every step is the project's own: ``synth cine`` -> ``ingest`` -> ``labels`` -> ``slices`` (or
``label-maps``) -> ``train`` -> ``evaluate`` (one call per split of the held-out cohort: all its
patients are held out). Both cohorts are quirk-free and ship their exact masks as labels, so what
is measured is generalisation, not curation or label noise. Steps whose outputs exist are skipped
on a re-run; each recipe keeps its model and results in its own folder, and ``recipes.csv`` /
``recipes.md`` in the work folder collect every finished recipe.

Reported per test cohort (and the training cohort's own test split): mean |EF error| x 100, mean
|EDV| and |ESV| error in % of the truth, for the model and for the resized label masks (what a
perfect segmentation of the 2D slices would score: the floor set by the image size).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpc_seg.bench.cohort_difficulty import (border_contrast, cohort_contrast, contrast_line,
                                             held_out_border, unseen_border)
from hpc_seg.bench.config import RECIPES, GeneraliseConfig
from hpc_seg.bench.volume_scores import grouped_scores, scan_kind, volume_scores
from hpc_seg.errors import ConfigError

log = logging.getLogger(__name__)

SPLITS = ("train", "validate", "test")
# The aim for a recommended recipe: cross-generator errors within this factor of the
# within-generator ones, and neither above these limits (EF points, EDV/ESV %).
CROSS_RATIO = 1.5
AIM_LIMITS = {"ef_err": 5.0, "edv_err_pct": 12.0, "esv_err_pct": 12.0}


def _cohort_config(cfg: GeneraliseConfig, held_out: bool):
    from hpc_seg.cardiac.synth.config import CineSynthConfig

    # Label maps: the label-driven recipes train from them, the cross-generator test renders them.
    common = dict(n_frames=cfg.n_frames, max_matrix=cfg.max_matrix, slices=cfg.slices,
                  no_random_quirks=True, label_error={"none": 1.0}, workers=cfg.workers,
                  label_maps=True)
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
    if not (cohort / "label_maps" / "structures.json").is_file():
        raise ConfigError(f"{cohort}: this cohort has no label_maps/ (made before the benchmark "
                          "wrote them); use a fresh --out")
    return {"cohort": cohort, "volumes": volumes, "labels": root / "labels", "slices": slices}


def _label_map_slices(cfg: GeneraliseConfig, data: dict[str, Path]) -> Path:
    """The training cohort's slices dataset from its label maps alone (random-appearance recipes)."""
    from hpc_seg.cardiac.slices.label_maps import build_label_map_slices

    return build_label_map_slices(data["cohort"] / "label_maps",
                                  data["slices"].parent / f"label_slices_{cfg.image_size}",
                                  cfg.image_size)


def _training_slices(cfg: GeneraliseConfig, data: dict[str, Path], appearance: str) -> Path:
    """The slices dataset a recipe trains on: images, label maps alone, or both (hybrid)."""
    if appearance == "image":
        return data["slices"]
    maps = _label_map_slices(cfg, data)
    if appearance != "hybrid":
        return maps
    from hpc_seg.cardiac.slices.hybrid import build_hybrid_slices

    return build_hybrid_slices(maps, data["slices"],
                               data["slices"].parent / f"hybrid_slices_{cfg.image_size}")


def _cross_data(cfg: GeneraliseConfig, held: dict[str, Path]) -> dict[str, Path]:
    """The held-out patients re-rendered by the k-space renderer: slices + the same labels."""
    from hpc_seg.bench.cross_generator import render_cross_volumes
    from hpc_seg.cardiac.slices.build import build_slices

    root = cfg.workdir / "held_out_kspace"
    volumes = render_cross_volumes(held["volumes"], held["cohort"], root / "volumes",
                                   cfg.test_seed)
    slices = build_slices(volumes, held["labels"], root / f"slices_{cfg.image_size}",
                          cfg.image_size)
    return {"cohort": held["cohort"], "labels": held["labels"], "slices": slices}


def train_config(cfg: GeneraliseConfig):
    """The ``cpu`` preset at the benchmark's image size, the recipe, plus ``cfg.train``."""
    from hpc_seg.config import from_dict
    from hpc_seg.cardiac.train.config import PRESETS, TrainConfig

    table = {**PRESETS["cpu"], "image_size": cfg.image_size, "confidence_set": "all",
             **RECIPES[cfg.recipe], **cfg.train}
    return from_dict(TrainConfig, table, "bench generalise: train")


def visible_border_scores(per_patient: pd.DataFrame, unseen: set[str]) -> dict[str, float] | None:
    """:func:`~hpc_seg.bench.volume_scores.volume_scores` of the model's rows without the patients
    in ``unseen`` (whose LV border is not in the image:
    :func:`~hpc_seg.bench.cohort_difficulty.unseen_border`); None when there are none to leave out,
    or nothing is left."""
    rows = per_patient[per_patient.method == "model"]
    kept = rows[~rows.patient_id.astype(str).isin(unseen)]
    return volume_scores(kept) if unseen and len(kept) < len(rows) and len(kept) else None


def target_met(held: dict[str, float] | None) -> bool:
    """The variety generator's target on the held-out cohort: EF error <= 4, EDV and ESV error
    <= 10 %."""
    return bool(held) and held["ef_err"] <= 4 and held["edv_err_pct"] <= 10 \
        and held["esv_err_pct"] <= 10


def cross_ratios(within: dict[str, float], cross: dict[str, float]) -> dict[str, float]:
    """Cross-generator error / within-generator error, per measure."""
    return {k: cross[k] / within[k] if within[k] > 0 else float("inf") for k in AIM_LIMITS}


def aim_met(within: dict[str, float] | None, cross: dict[str, float] | None) -> bool:
    """Cross-generator errors within CROSS_RATIO x the within-generator ones, and both cohorts'
    errors at most AIM_LIMITS (EF 5, EDV and ESV 12 %)."""
    if not within or not cross:
        return False
    ratios_ok = all(r <= CROSS_RATIO for r in cross_ratios(within, cross).values())
    return ratios_ok and all(max(within[k], cross[k]) <= v for k, v in AIM_LIMITS.items())


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
    """The training cohort's folder under ``workdir`` (data; each recipe has a folder inside)."""
    return "train_variety" if cfg.train_variety else "train_shipped"


#: TrainConfig keys that change what the network sees, beyond the recipe's augment and
#: appearance: a ``--train`` override of one gets its own folder, and the summary names them.
DATA_KEYS = ("min_zoom", "intensity_remap", "banding", "coil_noise")


def recipe_dir(cfg: GeneraliseConfig) -> Path:
    """Where a recipe keeps its model, evaluations and results (``recipe_<name>``, ``-<loss>``
    when the loss is not the preset's, ``-<key><value>`` for each :data:`DATA_KEYS` override)."""
    from hpc_seg.cardiac.train.config import PRESETS, TrainConfig

    loss = cfg.train.get("loss", PRESETS["cpu"].get("loss", TrainConfig.loss))
    suffix = "" if loss == PRESETS["cpu"].get("loss", TrainConfig.loss) else f"-{loss}"
    suffix += "".join(f"-{k}{v:g}" for k, v in _off_default(cfg.train).items())
    return cfg.workdir / _train_name(cfg) / f"recipe_{cfg.recipe}{suffix}"


def _off_default(train: dict[str, Any]) -> dict[str, float]:
    """The :data:`DATA_KEYS` that ``train`` (TrainConfig keys) sets off their defaults."""
    from hpc_seg.cardiac.train.config import TrainConfig

    return {k: float(train[k]) for k in DATA_KEYS
            if k in train and float(train[k]) != getattr(TrainConfig, k)}


def _data_keys(train: dict[str, Any]) -> str:
    """``", min_zoom 0.5"`` etc.: the :data:`DATA_KEYS` of a run's TrainConfig off their defaults
    ("" when none is)."""
    return "".join(f", {k} {v:g}" for k, v in _off_default(train).items())


@contextmanager
def _data_lock(workdir: Path) -> Iterator[None]:
    """Recipes run side by side share one work folder: one of them prepares (or checks) the data
    at a time; the others wait (ingest refuses a second writer instead of waiting)."""
    import fcntl

    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / ".data.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: another bench generalise prepares the data; waiting", workdir)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _LoadSampler:
    """The 1-minute load average every ``every`` seconds while training (a shared machine's wall
    times mean little without it)."""

    def __init__(self, every: float = 30.0):
        import os
        import threading

        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.wait(every):
                self.samples.append(os.getloadavg()[0])

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        import os

        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        return {"load_mean": float(np.mean(self.samples)), "load_max": float(max(self.samples))}


def _trained_seconds(model_dir: Path) -> float:
    """Seconds of training in ``history.csv`` (every epoch, whichever process ran it)."""
    try:
        return float(pd.read_csv(model_dir / "history.csv")["seconds"].sum())
    except (OSError, KeyError, ValueError):
        return 0.0


def _trained_precision(history: pd.DataFrame) -> str | None:
    """``bf16``, ``fp32`` or both (``bf16+fp32``, a run resumed on another CPU) as a training's
    history records them; None for a history written before the column existed."""
    if "precision" not in history:
        return None
    return "+".join(sorted(set(history.precision.dropna().astype(str)))) or None


def run_bench(cfg: GeneraliseConfig) -> dict[str, Any]:
    """Run the benchmark for ``cfg.recipe``; returns scores per (cohort, method) and wall times."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    tcfg = train_config(cfg)
    with _data_lock(cfg.workdir):
        train_data = _prepare(cfg, _train_name(cfg), False, cfg.train_patients, cfg.train_seed)
        test_data = _prepare(cfg, "held_out", True, cfg.test_patients, cfg.test_seed)
        cross_data = _cross_data(cfg, test_data)
        train_slices = _training_slices(cfg, train_data, tcfg.appearance)
    times["data_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    from hpc_seg.cardiac.train.loop import train_segmenter

    out = recipe_dir(cfg)
    load = _LoadSampler()
    try:
        result = train_segmenter(tcfg, train_slices, out / "model")
    finally:
        times.update(load.stop())
    # A resumed training ran partly in earlier processes: its history holds every epoch's time.
    times["train_s"] = max(time.perf_counter() - t1, _trained_seconds(out / "model"))
    t2 = time.perf_counter()
    per_cohort = {
        "held_out": _evaluate(result.model_path, test_data, out / "eval_held_out", SPLITS),
        "cross": _evaluate(result.model_path, cross_data, out / "eval_cross", SPLITS),
        "own_test": _evaluate(result.model_path, train_data, out / "eval_own_test", ("test",))}
    times["evaluate_s"] = time.perf_counter() - t2
    ablation = None
    if cfg.cross_ablation:
        from hpc_seg.bench.cross_ablation import run_ablation

        t3 = time.perf_counter()
        with _data_lock(cfg.workdir):      # it renders and builds data beside the others' runs
            ablation = run_ablation(cfg.workdir,
                                    lambda data, where: _evaluate(result.model_path, data, where,
                                                                  SPLITS),
                                    test_data, cfg.image_size,
                                    cfg.test_seed, out, per_cohort["cross"],
                                    per_cohort["held_out"])
        times["ablation_s"] = time.perf_counter() - t3
    times["total_s"] = time.perf_counter() - t0
    scores = {}
    for cohort, df in per_cohort.items():
        for method, grp in df.groupby("method"):
            key = "model" if method == "model" else "label masks"
            scores[(cohort, key)] = volume_scores(grp)
    from hpc_seg.bench.cross_generator import protocol_table

    manifest_patients = _manifest_patients(test_data["cohort"])
    rows = []
    for cohort, data in (("held_out", test_data), ("cross", cross_data)):
        df = per_cohort[cohort].assign(cohort=cohort)
        df = df.assign(patient_id=df.patient_id.astype(str))
        contrast = border_contrast(data["slices"])
        df = df.merge(contrast, on="patient_id", how="left")
        visible = visible_border_scores(df, set(unseen_border(contrast).patient_id))
        if visible:
            scores[(cohort, "model, visible border")] = visible
        df["size_scale"] = df.patient_id.map(lambda p: manifest_patients[p].get("size_scale"))
        df["vendor"] = df.patient_id.map(lambda p: manifest_patients[p].get("vendor"))
        if cohort == "cross":
            df = df.merge(protocol_table(sorted(set(df.patient_id)), cfg.test_seed),
                          on="patient_id", how="left")
        rows.append(df)
    history = pd.read_csv(result.history_path)    # images per epoch = rate x seconds
    return {"scores": scores, "times": times, "per_patient_held_out": pd.concat(rows,
                                                                                ignore_index=True),
            "model": str(result.model_path), "train": tcfg, "epochs": result.epochs,
            "train_images": int(history.images_per_s.mul(history.seconds).round().sum()),
            "precision": _trained_precision(history), "cross_ablation": ablation}


def save_results(cfg: GeneraliseConfig, r: dict[str, Any]) -> Path:
    """Write the scores, times and settings as ``results.json`` in the recipe's folder, and the
    held-out and cross-generator per-patient rows as ``held_out_per_patient.csv``; returns the
    JSON's path (both atomic). Then refresh the work folder's summary of all recipes."""
    import json

    from hpc_seg.config import to_dict
    from hpc_seg.storage.shards import atomic_write_bytes

    out = recipe_dir(cfg)
    held = r["scores"].get(("held_out", "model"))
    cross = r["scores"].get(("cross", "model"))
    doc = {"train_variety": cfg.train_variety, "recipe": cfg.recipe, "config": to_dict(cfg),
           "train": to_dict(r["train"]), "epochs": r["epochs"], "train_images": r["train_images"],
           "model": r["model"], "times_s": r["times"], "precision": r.get("precision"),
           "scores": [{"cohort": c, "method": m, **s} for (c, m), s in sorted(r["scores"].items())],
           "cross_ratios": cross_ratios(held, cross) if held and cross else None,
           "target_met": target_met(held), "aim_met": aim_met(held, cross)}
    atomic_write_bytes(r["per_patient_held_out"].to_csv(index=False).encode(),
                       out / "held_out_per_patient.csv")
    path = atomic_write_bytes((json.dumps(doc, indent=1) + "\n").encode(), out / "results.json")
    write_summary(cfg.workdir)
    return path


def summary_table(workdir: Path, contrast: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per finished recipe under ``workdir`` (any training cohort). ``contrast``: the
    work folder's :func:`~hpc_seg.bench.cohort_difficulty.cohort_contrast`, when already read."""
    import json

    contrast = cohort_contrast(workdir) if contrast is None else contrast
    unseen = {c: set(unseen_border(df).patient_id) for c, df in contrast.items()}
    rows = []
    for path in sorted(Path(workdir).glob("train_*/recipe_*/results.json")):
        doc = json.loads(path.read_text())
        s = {(x["cohort"], x["method"]): x for x in doc["scores"]}
        train = doc["train"]
        row = {"training cohort": "variety" if doc["train_variety"] else "shipped",
               "recipe": doc["recipe"], "augment": train["augment"],
               "appearance": train["appearance"], "loss": train["loss"],
               "data keys": _data_keys(train),
               "budget": f"{train['epochs_frozen']}+{train['epochs_unfrozen']} epochs x "
                         f"{train['max_train_images'] or 'all'} images",
               "images trained": doc["train_images"]}
        for cohort, name in (("held_out", "within"), ("cross", "cross"), ("own_test", "own test")):
            for key, label in (("ef_err", "EF"), ("edv_err_pct", "EDV %"), ("esv_err_pct", "ESV %")):
                row[f"{name} {label}"] = s.get((cohort, "model"), {}).get(key)
        per_patient = path.parent / "held_out_per_patient.csv"
        if unseen.get("cross") and per_patient.exists():
            df = pd.read_csv(per_patient, dtype={"patient_id": str})
            visible = visible_border_scores(df[df.cohort == "cross"], unseen["cross"]) or {}
            for key, label in (("ef_err", "EF"), ("edv_err_pct", "EDV %"), ("esv_err_pct", "ESV %")):
                row[f"cross visible {label}"] = visible.get(key)
        for cohort, name in (("held_out", "within"), ("cross", "cross")):
            floor = s.get((cohort, "label masks"), {})
            row[f"{name} floor EF/EDV/ESV"] = "/".join(f"{floor.get(k, float('nan')):.2f}"
                                                       for k in AIM_LIMITS)
        for key, ratio in (doc.get("cross_ratios") or {}).items():
            row[f"cross/within {key.split('_')[0].upper()}"] = ratio
        t = doc["times_s"]
        row.update({"train wall min": t["train_s"] / 60, "total wall min": t["total_s"] / 60,
                    "load mean": t.get("load_mean"), "load max": t.get("load_max"),
                    "precision": doc.get("precision"), "aim met": doc.get("aim_met")})
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(workdir: Path) -> Path | None:
    """``recipes.csv`` and ``recipes.md`` (a Markdown table) in ``workdir``."""
    from hpc_seg.storage.shards import atomic_write_bytes

    df, text = _summary(workdir)
    if text is None:
        return None
    atomic_write_bytes(df.to_csv(index=False).encode(), Path(workdir) / "recipes.csv")
    return atomic_write_bytes((text + "\n").encode(), Path(workdir) / "recipes.md")


def summary_markdown(workdir: Path) -> str | None:
    """:func:`format_summary` of the work folder, with its border and contrast lines (None before
    any recipe has finished)."""
    return _summary(workdir)[1]


def _summary(workdir: Path) -> tuple[pd.DataFrame, str | None]:
    """The recipe table and its Markdown; the test cohorts' images are read once for both."""
    contrast = cohort_contrast(workdir)
    df = summary_table(workdir, contrast)
    return df, None if df.empty else format_summary(df, held_out_border(workdir), contrast)


def format_summary(df: pd.DataFrame, border: dict[str, float] | None = None,
                   contrast: dict[str, pd.DataFrame] | None = None) -> str:
    """The recipe table as Markdown: errors EF / EDV % / ESV % per test cohort; with ``border``
    (:func:`held_out_border`), a line on what one pixel of LV border is worth; with ``contrast``
    (:func:`cohort_contrast`), a line naming the patients whose border is not in the image."""
    def triple(r: pd.Series, name: str) -> str:
        vals = [r.get(f"{name} {k}") for k in ("EF", "EDV %", "ESV %")]
        return " / ".join("-" if v is None or pd.isna(v) else f"{v:.2f}" if i == 0 else f"{v:.1f}"
                          for i, v in enumerate(vals))

    visible = "cross visible EF" in df.columns
    lines = ["| training cohort | recipe (augment, appearance, loss[, data keys]) | "
             "within-generator EF / EDV % / "
             "ESV % | cross-generator EF / EDV % / ESV % | "
             + ("cross, visible border | " if visible else "")
             + "cross / within | own test | label-mask floor within; cross | budget (images "
             "trained) | train wall, precision (load) | aim |",
             "|---|---|---|---|" + ("---|" if visible else "") + "---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        ratios = " / ".join(f"{r.get(f'cross/within {k}', float('nan')):.1f}"
                            for k in ("EF", "EDV", "ESV"))
        lines.append(
            f"| {r['training cohort']} | {r['recipe']} ({r['augment']}, {r['appearance']}, "
            f"{r['loss']}{r.get('data keys') or ''}) | "
            f"{triple(r, 'within')} | {triple(r, 'cross')} | "
            + (f"{triple(r, 'cross visible')} | " if visible else "")
            + f"{ratios} | {triple(r, 'own test')} | "
            f"{r['within floor EF/EDV/ESV']}; {r['cross floor EF/EDV/ESV']} | {r['budget']} "
            f"({r['images trained']:,}) | {r['train wall min']:.0f} min"
            + (f" {r['precision']}" if isinstance(r.get("precision"), str) else "") + " (load "
            f"{r['load mean']:.1f}, max {r['load max']:.1f}) | "
            f"{'met' if r['aim met'] else 'not met'} |")
    if border and "ef" in border:
        lines.append(f"\nOne pixel of LV border (the true masks grown by one pixel) on the held-out "
                     f"cohort at {border['image_size']} px: EF {border['ef']:.1f}, EDV "
                     f"{border['edv_pct']:.1f} %, ESV {border['esv_pct']:.1f} %.")
    if contrast:
        lines.append("\n" + contrast_line(contrast))
    return "\n".join(lines)


def _manifest_patients(cohort: Path) -> dict[str, dict]:
    import json

    patients = json.loads((cohort / "manifest.json").read_text())["patients"]
    return {pid: e.get("model", {}) for pid, e in patients.items()}


def format_report(cfg: GeneraliseConfig, r: dict[str, Any]) -> str:
    """The benchmark's printed table."""
    tcfg = r["train"]
    lines = [f"bench generalise: recipe {cfg.recipe} (augment {tcfg.augment}, appearance "
             f"{tcfg.appearance}{_data_keys(vars(tcfg))}), trained on "
             f"{'variety' if cfg.train_variety else 'shipped'} "
             f"cohort ({cfg.train_patients} patients, seed {cfg.train_seed}"
             + (f", vendors {','.join(cfg.train_vendors)}, sizes {cfg.train_sizes}"
                if cfg.train_variety else "") + ")",
             f"  held out: {cfg.test_patients} patients, seed {cfg.test_seed}, vendors "
             f"{','.join(cfg.test_vendors)}, sizes {cfg.test_sizes}; cross: the same patients "
             f"from the k-space renderer; {cfg.image_size} px, {r['epochs']} epochs "
             f"({tcfg.encoder}, {r['train_images']:,} training images)",
             f"  {'cohort':<9} {'method':<22} {'EF err':>7} {'EDV err %':>10} {'ESV err %':>10} "
             f"{'EDV bias %':>11} {'n':>3}"]
    for (cohort, method), s in sorted(r["scores"].items()):
        lines.append(f"  {cohort:<9} {method:<22} {s['ef_err']:7.2f} {s['edv_err_pct']:10.1f} "
                     f"{s['esv_err_pct']:10.1f} {s['edv_bias_pct']:11.1f} {s['n']:3d}"
                     + (f"  ({s['missing']} missing)" if s["missing"] else ""))
    held = r["scores"].get(("held_out", "model"))
    cross = r["scores"].get(("cross", "model"))
    if held:
        lines.append(f"  target (held out, model): EF err <= 4, EDV/ESV err <= 10 %: "
                     f"{'met' if target_met(held) else 'NOT met'}")
    if held and cross:
        ratios = cross_ratios(held, cross)
        lines.append(f"  cross / within: EF {ratios['ef_err']:.2f}, EDV {ratios['edv_err_pct']:.2f}"
                     f", ESV {ratios['esv_err_pct']:.2f}; aim (ratios <= {CROSS_RATIO}, errors <= "
                     f"EF 5 / EDV, ESV 12 %): {'met' if aim_met(held, cross) else 'NOT met'}")
    t = r["times"]
    precision = f" in {r['precision']}" if r.get("precision") else ""
    lines.append(f"  wall: data {t['data_s']:.0f} s, train {t['train_s']:.0f} s{precision} "
                 f"(load average {t['load_mean']:.1f}, max {t['load_max']:.1f}), "
                 f"evaluate {t['evaluate_s']:.0f} s, total {t['total_s']:.0f} s")
    return "\n".join(lines)


def size_breakdown(rows: pd.DataFrame) -> str:
    """Model errors per test cohort and vendor profile of the held-out patients."""
    df = rows[rows.method == "model"]
    cols = ["ef_err", "edv_err_pct", "esv_err_pct"]
    out = grouped_scores(df, ["cohort", "vendor"]).set_index(["cohort", "vendor"])[cols].round(1)
    text = out.to_string() + f"\n  (size_scale {np.nanmin(df.size_scale):.2f}.." \
        f"{np.nanmax(df.size_scale):.2f})"
    if "kspace_sequence" in df:
        cross = df[df.cohort == "cross"]
        by_scan = grouped_scores(cross.assign(scan=scan_kind(cross)), "scan").set_index("scan")
        by_scan = by_scan[cols].round(1).assign(patients=by_scan.n)
        text += "\ncross-generator errors by k-space protocol:\n" + by_scan.to_string()
    return text
