"""``hpc-seg hadnet preprocess``: a BraTS-layout cohort -> ``PRE/cases/part-*.parquet``.

Output ``PRE/``:

- ``preprocess.json``: ``pad_size`` [D, H, W] (largest cropped training shape, rounded up to a
  multiple of 16, or ``--pad-size``), the config, the split rule and counts. It is written before
  any shard, so a re-run (or a crash) keeps the same padding, and it travels with trained models;
- ``cases/part-<tag>-<n>.parquet``: one row per case (schema :data:`CASES_SCHEMA`), one row
  group per case so that reading one case reads only its bytes;
- ``skipped.csv``: cases that could not be used in the last run, with the reason.

Work runs in a process pool: pass 1 computes the bounding boxes of the training cases (only when
the pad size is not known yet); pass 2 preprocesses chunks of cases, each worker writing its
chunk's shard atomically. A re-run skips cases already in a shard.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hpc_seg.hadnet.brats.config import PreprocessConfig
from hpc_seg.hadnet.brats.preprocess import case_row, crop_shape, pad_size_for
from hpc_seg.hadnet.brats.reader import BratsCase, find_cases, load_case
from hpc_seg.storage.shards import (atomic_write_bytes, atomic_write_table, read_column_values,
                                 read_table, remove_stale_temporaries, shard_files)
from hpc_seg.errors import ConfigError, HpcSegError, InputError
from hpc_seg.progress import progress_bar
from hpc_seg.runtime.threads import default_workers

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_ints = pa.list_(pa.int64())
CASES_SCHEMA = pa.schema([
    ("case_id", pa.string()), ("split", pa.string()), ("grade", pa.string()),
    ("image", pa.large_binary()), ("image_shape", _ints), ("image_dtype", pa.string()),
    ("label", pa.large_binary()), ("label_shape", _ints), ("label_dtype", pa.string()),
    ("brain_mask", pa.large_binary()), ("brain_mask_shape", _ints),
    ("original_shape", _ints), ("bbox", _ints), ("pad_before", _ints), ("pad_size", _ints),
    ("cropped", pa.bool_()), ("affine", pa.list_(pa.float64())), ("source_dir", pa.string()),
])
# Statistics only where a filter uses them; dictionaries never (they cost time on array bytes).
_WRITE_OPTIONS = {"use_dictionary": False, "write_statistics": ["case_id", "split"]}


# --- splits -----------------------------------------------------------------------------------

def assign_splits(src: Path, cases: list[BratsCase], cfg: PreprocessConfig
                  ) -> tuple[dict[str, str], str]:
    """``{subject: split}`` and the rule used: SRC/manifest.json if present, else a hash rule.

    Cases without a segmentation are always ``test`` (they can only be predicted).
    """
    manifest = src / "manifest.json"
    listed: dict[str, str] = {}
    rule = (f"sha256('{cfg.split_seed}:<subject>') as a fraction u: u < {cfg.test_fraction} -> "
            f"test, u < {cfg.test_fraction + cfg.val_fraction} -> val, else train")
    if manifest.is_file():
        try:
            listed = {e["subject"]: e["split"] for e in json.loads(manifest.read_text())["cases"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{manifest}: not a synth manifest ({exc!r})") from None
        rule = f"{manifest} (subjects not listed there: {rule})"
    out = {}
    for c in cases:
        if c.seg is None:
            out[c.subject] = "test"
        elif c.subject in listed:
            out[c.subject] = listed[c.subject]
        else:
            digest = hashlib.sha256(f"{cfg.split_seed}:{c.subject}".encode()).digest()
            u = int.from_bytes(digest[:8], "big") / 2 ** 64
            out[c.subject] = ("test" if u < cfg.test_fraction else
                              "val" if u < cfg.test_fraction + cfg.val_fraction else "train")
    return out, rule


# --- workers ----------------------------------------------------------------------------------

def _crop_shape(case: BratsCase) -> tuple[int, int, int] | str:
    """Worker: the cropped brain shape of a case, or the error message."""
    try:
        return crop_shape(load_case(case)[0], case)
    except HpcSegError as exc:
        return str(exc)


def _run_chunk(cases: list[BratsCase], splits: dict[str, str], pad_size: list[int],
               image_dtype: str, out_dir: str
               ) -> tuple[list[str], list[tuple[str, str, str]], list[str]]:
    """Worker: preprocess ``cases`` and write them as one shard.

    Returns (case ids written, [(case_id, source_dir, reason)] skipped, case ids centre-cropped).
    """
    rows, skipped = [], []
    for case in cases:
        try:
            rows.append(case_row(case, pad_size, split=splits[case.subject],
                                 image_dtype=image_dtype))
        except HpcSegError as exc:
            skipped.append((case.subject, str(case.directory), str(exc)))
    if rows:
        table = pa.Table.from_pylist(rows, schema=CASES_SCHEMA)
        atomic_write_table(table, Path(out_dir) / f"part-{uuid.uuid4().hex[:12]}.parquet",
                           row_group_size=1, write_options=_WRITE_OPTIONS)
    return [r["case_id"] for r in rows], skipped, [r["case_id"] for r in rows if r["cropped"]]


def _pool_map(fn, jobs: list[tuple], workers: int, description: str, weights: list[int]):
    """Run ``fn(*job)`` for every job (in a pool when workers > 1); yields (job index, result)."""
    with progress_bar(description, total=sum(weights), unit="cases") as bar:
        if workers <= 1:
            for i, job in enumerate(jobs):
                yield i, fn(*job)
                bar.advance(weights[i])
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                i = futures[fut]
                yield i, fut.result()
                bar.advance(weights[i])


# --- the stage --------------------------------------------------------------------------------

def _load_or_derive_pad(pre_json: Path, cases: list[BratsCase], splits: dict[str, str],
                        cfg: PreprocessConfig, workers: int,
                        skipped: dict[str, tuple[str, str, str]]) -> list[int]:
    if pre_json.is_file():
        saved = json.loads(pre_json.read_text())
        pad = [int(p) for p in saved["pad_size"]]
        if cfg.pad_size is not None and cfg.pad_size != pad:
            raise ConfigError(f"{pre_json}: this folder was preprocessed with pad size {pad}; "
                              f"--pad-size {cfg.pad_size} needs a new output folder")
        if saved.get("config", {}).get("image_dtype", cfg.image_dtype) != cfg.image_dtype:
            raise ConfigError(f"{pre_json}: this folder holds {saved['config']['image_dtype']} "
                              f"images; {cfg.image_dtype} needs a new output folder")
        return pad
    if cfg.pad_size is not None:
        return list(cfg.pad_size)
    train = [c for c in cases if splits[c.subject] == "train"]
    shapes = []
    for i, result in _pool_map(_crop_shape, [(c,) for c in train], workers,
                               "preprocess: brain boxes", [1] * len(train)):
        if isinstance(result, str):
            skipped[train[i].subject] = (train[i].subject, str(train[i].directory), result)
        else:
            shapes.append(result)
    pad = pad_size_for(shapes)
    log.info("pad size %s from %d training case(s) (largest crop %s)", pad, len(shapes),
             np.max(shapes, axis=0).tolist() if shapes else None)
    return pad


def _chunks(cases: list[BratsCase], pad_size: list[int], cfg: PreprocessConfig,
            workers: int) -> list[list[BratsCase]]:
    """Consecutive cases, ~shard_mb per chunk, and >= 4 chunks per worker for a smooth display."""
    case_mb = 4 * int(np.prod(pad_size)) * (2 if cfg.image_dtype == "float16" else 4) / 1e6
    per_chunk = max(1, min(int(cfg.shard_mb // max(case_mb, 1e-6)),
                           -(-len(cases) // (4 * workers))))
    return [cases[i:i + per_chunk] for i in range(0, len(cases), per_chunk)]


def done_case_ids(cases_dir: Path) -> set[str]:
    """Case ids already in a finished shard."""
    return read_column_values(cases_dir, "case_id")


def preprocess_cohort(src: str | Path, out: str | Path,
                      cfg: PreprocessConfig | None = None) -> Path:
    """Preprocess every case of ``src`` into ``out`` (see module doc); returns ``out``."""
    src, out = Path(src), Path(out)
    cfg = cfg or PreprocessConfig()
    cases = find_cases(src)
    splits, rule = assign_splits(src, cases, cfg)
    workers = default_workers(cfg.workers)
    cases_dir = out / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cases_dir)
    skipped: dict[str, tuple[str, str, str]] = {}
    pre_json = out / "preprocess.json"
    pad = _load_or_derive_pad(pre_json, cases, splits, cfg, workers, skipped)
    counts = {s: sum(v == s for v in splits.values()) for s in SPLITS}
    meta = {"pad_size": pad, "pad_multiple": 16, "config": asdict(cfg), "source": str(src),
            "split_rule": rule, "split_counts": counts,
            "channels": ["flair", "t1ce", "t1", "t2"], "student_channels": [0, 2, 3],
            "axes": "NIfTI voxel axes (x, y, z) of the source files = (D, H, W)",
            "label_classes": {"0": 0, "1": 1, "2": 2, "4": 3}}
    atomic_write_bytes(json.dumps(meta, indent=1).encode(), pre_json)
    done = done_case_ids(cases_dir)
    todo = [c for c in cases if c.subject not in done and c.subject not in skipped]
    if done:
        log.info("%s: %d case(s) already preprocessed, %d to do", out, len(done), len(todo))
    chunks = _chunks(todo, pad, cfg, workers)
    jobs = [(chunk, splits, pad, cfg.image_dtype, str(cases_dir)) for chunk in chunks]
    cropped: list[str] = []
    for _, (ids, bad, cut) in _pool_map(_run_chunk, jobs, min(workers, len(jobs)),
                                        "preprocess: cases", [len(c) for c in chunks]):
        skipped.update({b[0]: b for b in bad})
        cropped += cut
    _write_skipped(out / "skipped.csv", list(skipped.values()))
    if cropped:
        log.warning("%d case(s) larger than the pad size %s were centre-cropped: %s",
                    len(cropped), pad, ", ".join(sorted(cropped)[:10]))
    return out


def _write_skipped(path: Path, rows: list[tuple[str, str, str]]) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["case_id", "source_dir", "reason"])
    writer.writerows(sorted(rows))
    atomic_write_bytes(buf.getvalue().encode(), path)
    for case_id, _, reason in sorted(rows):
        log.warning("skipped %s: %s", case_id, reason)


# --- reading ----------------------------------------------------------------------------------

def case_index(pre_dir: str | Path, split: str | None = None) -> list[str]:
    """Sorted ``case_id``s of a split (``None`` = all): the order defining case indices."""
    table = read_table(Path(pre_dir) / "cases", columns=["case_id", "split"])
    ids, sp = table.column("case_id").to_pylist(), table.column("split").to_pylist()
    return sorted(c for c, s in zip(ids, sp) if split is None or s == split)


def read_cases(pre_dir: str | Path, split: str | None = None, rank: int = 0,
               world_size: int = 1) -> Iterator[dict[str, Any]]:
    """Yield the rows of ``split`` (``None`` = all) in ``case_id`` order, keeping only those with
    index ``i % world_size == rank``. Streams: one case in memory at a time."""
    import pyarrow.parquet as pq

    cases_dir = Path(pre_dir) / "cases"
    if not shard_files(cases_dir):
        raise InputError(f"{cases_dir}: no preprocessed cases; run 'hpc-seg hadnet preprocess'")
    where: dict[str, Path] = {}
    for f in shard_files(cases_dir):
        for cid in pq.read_table(f, columns=["case_id"]).column("case_id").to_pylist():
            where[cid] = f
    mine = [cid for i, cid in enumerate(case_index(pre_dir, split)) if i % world_size == rank]
    for cid in mine:
        table = pq.read_table(where[cid], filters=[("case_id", "=", cid)])
        yield table.to_pylist()[0]
