"""``hpc-seg predict MODEL SRC OUT``: segment new cine scans and measure the LV.

Per stack (``OUT/<stack_id>/``): ``labels.nii.gz`` (the label map on the curated stack's grid
and affine, 0 background, 1 LV cavity, 2 myocardium), ``seg/`` (DICOM SEG objects, one per source
series and frame; DICOM input only), ``volumes.csv`` (per-frame LV and myocardium mL) and ``overlay.png``.
``OUT/summary.csv`` holds one row per stack (EDV, ESV, SV, EF, LV mass, QC flag) and
``OUT/issues.csv`` the curation issues of DICOM input.

Stacks are independent: locally one process predicts them in turn (batched on CPU or GPU);
``executor="slurm"`` runs one array task per stack. A stack that fails is reported and the
others are kept.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpc_seg.cardiac.export_nifti import load_stack, stack_to_nifti
from hpc_seg.cardiac.inference.config import PredictConfig
from hpc_seg.cardiac.finite import nonfinite_frames
from hpc_seg.cardiac.inference.measures import SUMMARY_COLUMNS, frame_volumes, summary_row
from hpc_seg.cardiac.inference.model_check import read_model_info
from hpc_seg.cardiac.inference.overlay import write_overlay
from hpc_seg.cardiac.inference.sources import Source, count_stacks, iter_stacks, open_source
from hpc_seg.errors import ConfigError, HpcSegError, InputError
from hpc_seg.progress import progress_bar
from hpc_seg.storage.names import child
from hpc_seg.storage.shards import atomic_write, atomic_write_bytes, decode_array, read_table

log = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    """What a prediction run produced."""

    out: Path
    summary_csv: Path
    stacks: int
    failed: dict[str, str]
    flagged: int


def _csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_bytes(df.to_csv(index=False).encode(), path)


def write_issues(source: Source, out: Path) -> Path:
    """``OUT/issues.csv``: curation issues of the DICOM input (header only otherwise)."""
    cols = ["subject_id", "patient_id", "problem", "resolution", "file", "detail"]
    df = read_table(source.issues_dir).to_pandas() if source.issues_dir else pd.DataFrame(columns=cols)
    return _csv(df, out / "issues.csv")


def stack_files(source: Source, stack_id: str) -> pd.DataFrame | None:
    """The ingest ``files`` rows of one stack (None without DICOM sources)."""
    if source.files_dir is None or source.dicom_root is None:
        return None
    return read_table(source.files_dir, filters=[("stack_id", "==", stack_id)]).to_pandas()


def write_stack_outputs(row: dict[str, Any], mask: np.ndarray, source: Source, out: Path,
                        dicom_seg: bool = True) -> dict[str, Any]:
    """Every per-stack output of ``mask`` (``[frames, slices, rows, cols]``); the summary row."""
    import nibabel as nib

    sdir = child(out, row["stack_id"])     # ids come from headers or file names
    left_out = nonfinite_frames(row["pixels"])
    if len(left_out) == mask.shape[0]:
        raise InputError(f"stack {row['stack_id']}: NaN or infinite pixels in every frame; "
                         "nothing to segment")
    nifti_row = {**row, "mask": np.ascontiguousarray(mask, np.uint8).tobytes()}
    img = stack_to_nifti(nifti_row, mask=True)
    atomic_write(sdir / "labels.nii.gz", lambda tmp: nib.save(img, tmp))
    lv, my = frame_volumes(mask, row, left_out)
    _csv(pd.DataFrame({"frame": np.arange(len(lv)), "lv_ml": lv, "my_ml": my}), sdir / "volumes.csv")
    summary = summary_row(row, mask, left_out=left_out)
    write_overlay(row["pixels"], mask, summary["ed_frame"], summary["es_frame"],
                  str(row["stack_id"]), sdir / "overlay.png")
    files = stack_files(source, str(row["stack_id"])) if dicom_seg else None
    if files is not None and len(files):
        from hpc_seg.cardiac.inference.dicom_seg import write_dicom_segs

        write_dicom_segs(mask, row, files, source.dicom_root, sdir)
    return summary


@dataclass(frozen=True)
class StackTask:
    """One array task: predict one stack (picklable)."""

    model: Path
    source: Source
    out: Path
    stack_id: str
    config: PredictConfig


def run_stack_task(task: StackTask) -> dict[str, Any]:
    """Array-task body: load the model, predict one stack, write its outputs."""
    from hpc_seg.cardiac.segment import StackPredictor

    predictor = StackPredictor(task.model, device=task.config.device,
                               batch_size=task.config.batch_size)
    row = load_stack(task.source.volumes_dir, task.stack_id)   # reads only its own row group
    row["pixels"] = decode_array(row["pixels"], row["shape"], row["dtype"])
    mask = predictor.predict_stack(row["pixels"])
    return write_stack_outputs(row, mask, task.source, task.out, task.config.dicom_seg)


def _predict_local(model: Path, source: Source, out: Path, cfg: PredictConfig,
                   rows: list[dict], failed: dict[str, str]) -> None:
    from hpc_seg.cardiac.segment import StackPredictor

    predictor = StackPredictor(model, device=cfg.device, batch_size=cfg.batch_size)
    n_stacks, n_images = count_stacks(source)
    with progress_bar("predict", n_images or None, "images") as bar:
        for row in iter_stacks(source):
            try:
                mask = predictor.predict_stack(row["pixels"])
                rows.append(write_stack_outputs(row, mask, source, out, cfg.dicom_seg))
            except (HpcSegError, ValueError) as exc:
                # one bad stack (an edited source file, a header highdicom refuses) must not lose
                # the others; it is listed in failed.csv and the command exits non-zero
                failed[str(row["stack_id"])] = f"{type(exc).__name__}: {exc}"
                log.warning("predict: %s failed: %s", row["stack_id"], exc)
            bar.advance(int(np.prod(row["pixels"].shape[:2])))


def _predict_slurm(model: Path, source: Source, out: Path, cfg: PredictConfig,
                   rows: list[dict], failed: dict[str, str], launch: Any) -> None:
    from hpc_seg.launch.submit import gather, submit_array
    from hpc_seg.storage.shards import iter_rows

    ids = [r["stack_id"] for r in iter_rows(source.volumes_dir, columns=["stack_id", "rotated_90"])
           if not r["rotated_90"]]
    tasks = [StackTask(model, source, out, sid, cfg) for sid in ids]
    run = submit_array(run_stack_task, tasks, launch, out / "jobs", name="predict")
    for task, res in zip(tasks, gather(run)):
        if res.ok:
            rows.append(res.result)
        else:
            failed[task.stack_id] = f"array task {res.job_id} {res.state}: " \
                                    f"{(res.error or '').strip().splitlines()[-1:]}"


def predict(model: str | Path, src: str | Path, out: str | Path,
            config: PredictConfig | None = None, launch: Any = None) -> PredictSummary:
    """Segment every stack of ``src`` with ``model``; write the outputs under ``out``."""
    cfg = config or PredictConfig()
    model, src, out = Path(model), Path(src), Path(out)
    read_model_info(model)    # refuse a model file without its metadata before any ingest work
    source = open_source(src, out, workers=cfg.workers, max_decoded_mb=cfg.max_decoded_mb)
    if source.kind == "nifti" and cfg.executor == "slurm":
        raise ConfigError("executor slurm: a single NIfTI is one stack; run it locally")
    write_issues(source, out)
    rows: list[dict] = []
    failed: dict[str, str] = {}
    if cfg.executor == "slurm":
        from hpc_seg.launch.config import LaunchConfig

        _predict_slurm(model, source, out, cfg, rows, failed,
                       launch or LaunchConfig(executor="slurm"))
    else:
        _predict_local(model, source, out, cfg, rows, failed)
    if not rows:
        raise InputError(f"{src}: no stack could be predicted: "
                         + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values("stack_id")
    summary_csv = _csv(table, out / "summary.csv")
    if failed:
        _csv(pd.DataFrame({"stack_id": list(failed), "error": list(failed.values())}),
             out / "failed.csv")
    return PredictSummary(out, summary_csv, len(table), failed, int(table["qc_flag"].sum()))


def summary_text(summary_csv: Path) -> str:
    """The summary table as fixed-width text for the console."""
    df = pd.read_csv(summary_csv, dtype={"stack_id": str})
    shown = df[["stack_id", "edv_ml", "esv_ml", "sv_ml", "ef_pct", "lv_mass_g", "qc_reasons"]]
    buf = io.StringIO()
    shown.fillna("").to_string(buf, index=False, float_format=lambda v: f"{v:.1f}")
    return buf.getvalue()
