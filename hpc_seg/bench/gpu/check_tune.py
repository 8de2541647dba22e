"""Check 2: packed search. ``hpc-seg tune``'s :func:`~hpc_seg.hpo.tuner.run_search` runs N
identical one-epoch trials at ``gpus_per_trial = 1/N`` all at once on one GPU while ``nvidia-smi``
samples its utilisation, then a few trials one per GPU (``gpus_per_trial = 1``, one at a time).
Target: at least 4 trials at once per GPU with the GPU at least 80 % busy; trials per hour of both.

Every trial has the same work (the space is pinned to one point), so trials per hour compare the
two packings. The rates count from the first trial's start to the last one's end as the Optuna
study records them (trial start-up included, Ray's own start excluded). On CPU (dry run) the
trials share fractional CPUs instead and ``/proc/stat`` stands in for ``nvidia-smi``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hpc_seg.bench.gpu.profile import GpuBenchProfile, TuneCheck
from hpc_seg.bench.gpu.report import CheckOutcome


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an interval ending as another starts: not both)."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def _search_config(c: TuneCheck, workdir: Path, name: str, trials: int, concurrent: int,
                   gpus: float, cpus: float) -> Any:
    from hpc_seg.config import from_dict
    from hpc_seg.hpo.search_config import SearchConfig

    pinned = {"encoder": [c.encoder], "loss": ["ce"], "image_size": [c.image_size],
              "augment": ["normal"], "confidence_set": ["all"], "batch_size": [c.batch_size],
              "lr": [1e-4]}
    train = {"encoder": c.encoder, "image_size": c.image_size, "batch_size": c.batch_size,
             "epochs_frozen": 1, "epochs_unfrozen": 0, "freeze_encoder": False,
             "confidence_set": "all", "max_val_images": c.val_images, "shuffle_buffer": 256,
             "num_workers": c.num_workers, **c.overrides}
    return from_dict(SearchConfig, {
        "mode": "random", "num_samples": trials, "max_concurrent": concurrent,
        "metric": "val_loss", "study_name": name, "space": pinned, "train": train,
        "gpus_per_trial": gpus, "cpus_per_trial": cpus, "num_cpus": c.num_cpus,
        "dashboard": False, "asha": {"grace_period": 1},
        "data": {"slices_dir": str(workdir / "slices_{image_size}")}}, f"tune check {name}")


def _phase(c: TuneCheck, workdir: Path, name: str, trials: int, concurrent: int, gpus: float,
           cpus: float, kind: str) -> dict[str, Any]:
    """Run one search; its trials' intervals, rate and the device's mean utilisation meanwhile."""
    import optuna

    from hpc_seg.bench.gpu.sampler import UtilisationSampler
    from hpc_seg.hpo.tuner import run_search

    cfg = _search_config(c, workdir, name, trials, concurrent, gpus, cpus)
    offset = time.time() - time.monotonic()  # trial datetimes (wall clock) -> sampler's clock
    t0 = time.perf_counter()
    with UtilisationSampler(kind, c.sample_interval_s) as sampler:
        result = run_search(cfg, workdir / name)
    wall = time.perf_counter() - t0
    study = optuna.load_study(study_name=name, storage=result.storage)
    spans = [(t.datetime_start.timestamp() - offset, t.datetime_complete.timestamp() - offset)
             for t in study.trials if t.datetime_start and t.datetime_complete]
    if len(spans) < trials or result.states.get("COMPLETE", 0) < trials:
        raise RuntimeError(f"search {name}: {len(spans)} of {trials} trials finished "
                           f"(states {result.states}); see {workdir / name}")
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    return {"trials": len(spans), "gpus_per_trial": gpus, "cpus_per_trial": cpus,
            "max_concurrent": concurrent, "concurrent_seen": max_overlap(spans),
            "span_s": last - first, "wall_s": wall,
            "trials_per_hour": 3600.0 * len(spans) / (last - first),
            "trial_seconds": [b - a for a, b in spans],
            "utilisation_mean": sampler.mean(first, last), "utilisation_samples":
            len([1 for t, _, _ in sampler.samples if first <= t <= last]),
            "device_memory_peak_mb": sampler.peak_memory_mb()}


def run_check(profile: GpuBenchProfile, workdir: Path) -> CheckOutcome:
    from hpc_seg.bench.train import write_synthetic_slices

    c = profile.tune
    gpu = profile.device == "cuda"
    kind = "gpu" if gpu else "cpu"
    write_synthetic_slices(workdir / f"slices_{c.image_size}", c.images, c.image_size,
                           val_images=c.val_images)
    packed = _phase(c, workdir, "packed", c.trials, c.trials, c.gpus_per_trial,
                    c.cpus_per_trial, kind)
    # one trial per device: a whole GPU each, or (CPU) the whole Ray instance's CPUs
    whole_cpus = float(c.num_cpus) if c.num_cpus else c.cpus_per_trial
    single = _phase(c, workdir, "single", c.baseline_trials, 1, 1.0 if gpu else 0.0,
                    c.cpus_per_trial if gpu else whole_cpus, kind)
    util = packed["utilisation_mean"]
    met = packed["concurrent_seen"] >= c.min_packed and util is not None and \
        util >= c.min_utilisation
    figures = {"device": kind, "encoder": c.encoder, "image_size": c.image_size,
               "batch_size": c.batch_size, "images_per_trial": c.images,
               "utilisation_source": "nvidia-smi" if gpu else "/proc/stat (all CPUs)",
               "packed": packed, "single": single,
               "speedup": packed["trials_per_hour"] / single["trials_per_hour"]}
    util_text = "n/a" if util is None else f"{util:.0f} %"
    summary = (f"packed {packed['concurrent_seen']} at once: {packed['trials_per_hour']:.0f} "
               f"trials/h at {util_text} busy; one per device: {single['trials_per_hour']:.0f} "
               f"trials/h; {figures['speedup']:.2f}x")
    return CheckOutcome(figures=figures,
                        target=f">= {c.min_packed} trials at once per GPU at >= "
                               f"{c.min_utilisation:.0f} % utilisation",
                        met=met, summary=summary)
