"""``hpc-seg bench ingest``: files/s and MB/s of both ingest engines against two baselines.

In one run, on the same (page-cached) short-axis files:

- ``pydicom floor``: one process, ``dcmread`` + ``pixel_array`` of every file, nothing else;
- ``local``: the local engine, curation and compressed Parquet writing included;
- ``ray``: the Ray Data engine; cluster start-up (``ray.init``, then a warm-up pipeline that starts
  Ray Data's helper actors and imports the ingest code in every worker) is timed and left out;
- ``dcm2niix -z n``: the dcm2niix binary per patient folder (no cleaning, uncompressed NIfTI).

Generating the cohort (when ``--src`` is not given) is not timed; an existing cohort in the
work dir with the same patient count and seed is reused.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hpc_seg.bench.config import BenchIngestConfig
from hpc_seg.cardiac.ingest.layout import PatientFolder, discover_cohort
from hpc_seg.errors import InputError
from hpc_seg.runtime.ray_connect import cluster_address, ray_session

log = logging.getLogger(__name__)



@dataclass
class BenchRow:
    """One contender's timing."""

    name: str
    seconds: float
    files: int
    mb: float
    note: str = ""
    extra: dict = field(default_factory=dict)
    cpu_s: float | None = None
    """CPU seconds of this process and its waited-for children"""

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.mb / self.seconds if self.seconds > 0 else float("nan")


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (pool workers,
    dcm2niix). Ray workers are not our children: Ray rows take their workers' own count."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, *args, cpu: bool = True) -> BenchRow:
    """Run ``fn(*args) -> BenchRow`` and attach its CPU seconds."""
    c0 = _cpu_seconds()
    row = fn(*args)
    if cpu:
        row.cpu_s = _cpu_seconds() - c0
    return row


def prepare_cohort(cfg: BenchIngestConfig) -> Path:
    """The cohort to time: ``--src`` or one generated (once) under the work dir, re-encoded
    (once, not timed) when ``transfer_syntax`` is not the generator's own."""
    base = _base_cohort(cfg)
    if cfg.transfer_syntax == "explicit":
        return base
    from hpc_seg.cardiac.synth.relayout import VariantOptions, rewrite_cohort

    variant = cfg.workdir / f"{base.name}-{cfg.transfer_syntax}"
    done = variant / ".variant-complete"
    if done.is_file() and done.read_text() == str(base.resolve()):
        log.info("reusing %s cohort %s", cfg.transfer_syntax, variant)
        return variant
    shutil.rmtree(variant, ignore_errors=True)
    log.info("re-encoding %s as %s into %s (not timed)", base, cfg.transfer_syntax, variant)
    rewrite_cohort(base, variant, VariantOptions(transfer_syntax=cfg.transfer_syntax))
    done.write_text(str(base.resolve()))
    return variant


def _base_cohort(cfg: BenchIngestConfig) -> Path:
    if cfg.src is not None:
        return Path(cfg.src)
    cohort = cfg.workdir / f"cohort-{cfg.patients}p-seed{cfg.seed}"
    manifest = cohort / "manifest.json"
    if manifest.is_file():
        log.info("reusing cohort %s", cohort)
        return cohort
    from hpc_seg.cardiac.synth.cohort import CineSynthConfig, generate_cine_cohort

    log.info("generating %d patients into %s (not timed)", cfg.patients, cohort)
    synth = CineSynthConfig(max_matrix=cfg.max_matrix) if cfg.max_matrix else CineSynthConfig()
    generate_cine_cohort(cohort, cfg.patients, cfg.seed, config=synth)
    return cohort


def _warm_cache(paths: list[Path]) -> None:
    """Read every file once so that no contender pays for cold disk reads."""
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 20):
                pass


def settle_writeback() -> None:
    """Write back what earlier contenders left dirty in the page cache before the next one starts.

    Without it, the kernel may flush the previous contender's output (0.8-1.4 GB here) while the
    next one runs, on the same two cores (2.2 GB was seen dirty after a run with dcm2niix). It
    does not remove the slow first round of a run (local 1.09x the floor with it, 1.10-1.18x
    without), which comes from this VM's idle memory going back to its host. Each contender's
    own writeback still happens after its clock stops, as it does after a real run.
    """
    os.sync()


def time_pydicom_floor(paths: list[Path]) -> BenchRow:
    """Single process: dcmread + pixel_array of every file (corrupt ones caught), nothing else."""
    import pydicom

    t0 = time.perf_counter()
    ok = 0
    for p in paths:
        try:
            pydicom.dcmread(p).pixel_array
            ok += 1
        except Exception:
            pass
    dt = time.perf_counter() - t0
    return BenchRow("pydicom floor (1 process)", dt, len(paths),
                    sum(p.stat().st_size for p in paths) / 1e6, f"{ok} decoded")


def time_engine(src: Path, out: Path, engine: str, cfg: BenchIngestConfig, nfiles: int,
                mb: float) -> BenchRow:
    """Time one ingest engine into ``out``, which the caller has removed (Ray start-up excluded)."""
    from hpc_seg.cardiac.ingest.run import IngestConfig, ingest

    note, extra = "", {}
    with ExitStack() as stack:
        if engine == "ray":
            import ray

            from hpc_seg.cardiac.ingest.engine_ray import warm_up

            t0 = time.perf_counter()
            # the one way hpc-seg joins or starts Ray (a local instance binds 127.0.0.1 only);
            # the engine then reuses this connection
            stack.enter_context(ray_session(cluster_address(cfg.ray_address), log_to_driver=False,
                                            num_cpus=cfg.workers or os.cpu_count(),
                                            include_dashboard=False))
            extra["ray_start_s"] = time.perf_counter() - t0
            extra["ray_nodes"] = sum(1 for n in ray.nodes() if n.get("Alive"))
            extra["ray_cpus"] = ray.cluster_resources().get("CPU", 0)
            t0 = time.perf_counter()
            warm_up(int(extra["ray_cpus"]) or 1)
            extra["ray_warm_up_s"] = time.perf_counter() - t0
            where = "join" if cfg.ray_address else "start"
            note = (f"{extra['ray_nodes']} node(s), {extra['ray_cpus']:g} CPUs; Ray {where} "
                    f"{extra['ray_start_s']:.1f} s and worker warm-up {extra['ray_warm_up_s']:.1f} "
                    "s not included")
        t0 = time.perf_counter()
        summary = ingest(src, out, IngestConfig(engine=engine, workers=cfg.workers,
                                                compression=cfg.compression,
                                                pixel_compression=cfg.pixel_compression,
                                                progress=False))
        dt = time.perf_counter() - t0
    out_mb = sum(f.stat().st_size for f in out.rglob("*.parquet")) / 1e6
    extra.update(stacks=summary.stacks, files_used=summary.files_used, output_mb=out_mb,
                 workers=int(extra.get("ray_cpus") or cfg.workers or os.cpu_count() or 1),
                 worker_cpu_s=summary.cpu_seconds)
    if summary.placement:
        nodes: dict[str, int] = {}
        for where_ in summary.placement.values():
            nodes[where_["hostname"]] = nodes.get(where_["hostname"], 0) + 1
        extra["patients_per_node"] = nodes
    note = "; ".join(x for x in (note, f"{summary.stacks} stacks, output {out_mb:.0f} MB "
                                       f"(pixels {cfg.pixel_compression}, rest {cfg.compression})")
                     if x)
    name = f"{engine} engine ({extra['workers']} workers)"
    row = BenchRow(name, dt, nfiles, mb, note, extra)
    if engine == "ray":
        # Ray workers are not this process's children: their CPU time comes from the workers
        # themselves (process time per patient, summed over every node).
        row.cpu_s = summary.cpu_seconds
    return row


def patient_folders(src: Path, patients: list[PatientFolder]) -> list[Path]:
    """The folders dcm2niix reads, one per patient where it can be: the deepest folder holding all
    of a patient's files (in every layout the engines accept, as discovery found the patients);
    where that folder holds other patients' files too (a scanner export), each folder of the
    patient's files."""
    dirs = {p.pid: sorted({(src / f).parent for f in p.files}) for p in patients}
    folders: set[Path] = set()
    for pid, own in dirs.items():
        if not own:
            continue
        common = Path(os.path.commonpath(own))
        others = (d for other, ds in dirs.items() if other != pid for d in ds)
        if any(d == common or common in d.parents for d in others):
            folders.update(own)
        else:
            folders.add(common)
    return sorted(folders)


def time_dcm2niix(src: Path, out: Path, jobs: int, folders: list[Path]) -> BenchRow:
    """dcm2niix -z n per folder (:func:`patient_folders`) into ``out``, which the caller has
    removed (all series of a folder; counted with its own file total)."""
    exe = Path(sys.executable).parent / "dcm2niix"
    exe = exe if exe.exists() else shutil.which("dcm2niix")
    if not exe:
        raise InputError("dcm2niix: not found next to the Python interpreter or on PATH "
                         "(pip install dcm2niix)")
    files = sorted({f for d in folders for f in d.rglob("*") if f.is_file()})

    def one(folder: Path) -> int:
        dest = out / folder.relative_to(src)
        dest.mkdir(parents=True, exist_ok=True)
        return subprocess.run([str(exe), "-z", "n", "-b", "n", "-o", str(dest), str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = list(pool.map(one, folders))
    dt = time.perf_counter() - t0
    n_out = len(list(out.rglob("*.nii")))
    return BenchRow(f"dcm2niix -z n ({jobs} at a time)", dt, len(files),
                    sum(f.stat().st_size for f in files) / 1e6,
                    f"{n_out} NIfTI files, {sum(c != 0 for c in codes)} folders with errors; "
                    f"all series incl. long-axis")


def run_bench(cfg: BenchIngestConfig) -> list[BenchRow]:
    """Run every selected contender once; results are also saved to workdir/bench_ingest.json."""
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    src = prepare_cohort(cfg)
    patients = discover_cohort(src)
    paths = [src / f for p in patients for f in p.files]
    mb = sum(p.nbytes for p in patients) / 1e6
    # Contenders take turns, round after round, so that slow phases of a shared machine (and the
    # page cache, which this VM's DAMON pages out after ~60 s without access) hit all of them alike.
    contenders: list[tuple] = []  # (function, its arguments, CPU measurable, its output)
    if "floor" in cfg.engines:
        contenders.append((time_pydicom_floor, (paths,), True, None))
    for engine in ("local", "ray"):
        if engine in cfg.engines:
            out = cfg.workdir / f"out-{engine}"
            contenders.append((time_engine, (src, out, engine, cfg, len(paths), mb),
                               engine == "local", out))
    if "dcm2niix" in cfg.engines:
        out = cfg.workdir / "out-dcm2niix"
        contenders.append((time_dcm2niix, (src, out, cfg.dcm2niix_jobs,
                                           patient_folders(src, patients)), True, out))
    rounds: list[list[BenchRow]] = [[] for _ in contenders]
    for _ in range(cfg.repeat):
        _warm_cache(paths)
        for runs, (fn, args, cpu, out) in zip(rounds, contenders):
            if out is not None:
                shutil.rmtree(out, ignore_errors=True)
            settle_writeback()
            runs.append(timed(fn, *args, cpu=cpu))
    rows = [median_row(runs) for runs in rounds]
    ray_row = next((r for r in rows if r.name.startswith("ray")), None)
    if ray_row is not None and ray_row.cpu_s:
        # What the cluster costs beyond the curation itself: CPU seconds its workers could have
        # spent in that wall time, minus what the curation used.
        ray_row.extra["cluster_idle_cpu_s"] = (ray_row.seconds * ray_row.extra["workers"]
                                               - ray_row.cpu_s)
    if "floor" in cfg.engines and cfg.repeat > 1:
        # Each round's ratio to the floor of the same round: a slow phase of the machine that
        # lasts a round hits both sides of it, so these vary less than the ratio of medians.
        for row, runs in zip(rows[1:], rounds[1:]):
            row.extra["x_floor_by_round"] = [r.files_per_s / f.files_per_s
                                             for r, f in zip(runs, rounds[0])]
    record = {"src": str(src), "transfer_syntax": cfg.transfer_syntax,
              "patients": len(patients), "files": len(paths), "mb": mb,
              "cpus": os.cpu_count(), "ray_address": cfg.ray_address,
              "rows": [asdict(r) | {"files_per_s": r.files_per_s, "mb_per_s": r.mb_per_s}
                       for r in rows]}
    (cfg.workdir / "bench_ingest.json").write_text(json.dumps(record, indent=2))
    return rows


def median_row(runs: list[BenchRow]) -> BenchRow:
    """The run with the median wall time (lower median for an even count), its note extended
    with the spread of all runs."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    row = ordered[(len(ordered) - 1) // 2]
    if len(runs) > 1:
        spread = f"median of {len(runs)}: {ordered[0].seconds:.2f}-{ordered[-1].seconds:.2f} s"
        row.note = "; ".join(x for x in (spread, row.note) if x)
        row.extra["seconds_all"] = [r.seconds for r in runs]
    return row


def format_table(rows: list[BenchRow]) -> str:
    """Aligned text table with ratios to the pydicom floor's files/s.

    ``CPU ms/file`` does not depend on other load on the machine; ``x floor (CPU)`` projects the
    wall-clock ratio on otherwise idle cores: floor CPU per file x workers / CPU per file.
    """
    floor = next((r for r in rows if r.name.startswith("pydicom floor")), None)
    lines = [f"{'contender':34s} {'seconds':>8s} {'files':>7s} {'files/s':>9s} {'MB/s':>8s} "
             f"{'x floor':>8s} {'CPU ms/file':>12s} {'x floor (CPU)':>14s}  note"]
    for r in rows:
        ratio = r.files_per_s / floor.files_per_s if floor else float("nan")
        # a contender that found no file has no per-file figure (n/a, not a crash)
        cpu = f"{1e3 * r.cpu_s / r.files:12.3f}" if r.cpu_s and r.files else f"{'n/a':>12s}"
        proj = "n/a"
        if r.cpu_s and r.files and floor and floor.cpu_s and floor.files and r is not floor:
            workers = r.extra.get("workers", 1)
            proj = f"{(floor.cpu_s / floor.files) * workers / (r.cpu_s / r.files):.2f}"
        elif r is floor:
            proj = "1.00"
        lines.append(f"{r.name:34s} {r.seconds:8.2f} {r.files:7d} {r.files_per_s:9.0f} "
                     f"{r.mb_per_s:8.1f} {ratio:8.2f} {cpu} {proj:>14s}  {r.note}")
    for r in rows:
        by_round = r.extra.get("x_floor_by_round")
        if by_round:
            lines.append(f"{r.name}: x floor round by round {', '.join(f'{x:.2f}' for x in by_round)}"
                         f" (median {statistics.median(by_round):.2f})")
    local = next((r for r in rows if r.name.startswith("local")), None)
    ray = next((r for r in rows if r.name.startswith("ray")), None)
    if ray and ray.files and "cluster_idle_cpu_s" in ray.extra:
        x = ray.extra
        lines.append(f"ray cluster: {x.get('ray_nodes')} node(s), {x.get('ray_cpus'):g} CPUs, "
                     f"patients per node {x.get('patients_per_node', {})}; worker CPU "
                     f"{1e3 * ray.cpu_s / ray.files:.2f} ms/file; CPU-seconds not spent curating "
                     f"{x['cluster_idle_cpu_s']:.1f} of {ray.seconds * x['workers']:.1f} "
                     f"({100 * x['cluster_idle_cpu_s'] / max(ray.seconds * x['workers'], 1e-9):.0f}%)")
    if local and ray:
        lines.append(f"ray / local wall time: {ray.seconds / local.seconds:.2f} (target <= 1.5)")
    return "\n".join(lines)
