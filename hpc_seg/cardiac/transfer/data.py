"""The transfer study's data: split, ingest of DICOM + ``.con`` (or PNG), labels, slices, subsets.

Everything goes through the cardiac study's own stages (ingest, labels, slices), so training and
evaluation read the same ``volumes`` and ``slices`` tables as the Kaggle-like study. Observer 2's
contours go through a second ingest of the test volunteers: its masks then sit in exactly the
curated geometry and image ids of observer 1's.

Outputs under ``out``: ``split.csv``, ``stage/`` + ``ingest/`` + ``labels/`` + ``slices/`` (observer
1), ``observer2/{stage,ingest,labels,slices}`` (test volunteers), ``subsets/`` (``image_subsets``,
``esed_frames``) and ``views/<subset>/`` (a slices dataset holding only the subset's training images
plus the full validation set, which the unchanged training loop reads).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hpc_seg.cardiac.ingest.con_layout import con_files, find_volunteers, stage_con_cohort
from hpc_seg.cardiac.ingest.tables import ISSUES
from hpc_seg.cardiac.transfer.config import DataConfig, SubsetConfig
from hpc_seg.cardiac.transfer.subsets import make_subsets, split_volunteers
from hpc_seg.errors import ConfigError, InputError
from hpc_seg.storage.shards import atomic_write_bytes, atomic_write_table, shard_files

log = logging.getLogger(__name__)


def choose_split(src: Path, cfg: DataConfig) -> dict[str, str]:
    """Volunteer -> split: the override, else test = volunteers with a second observer."""
    if cfg.split:
        return {str(v): name for name, ids in cfg.split.items() for v in ids}
    ids = find_volunteers(src)
    test = [v for v in ids if con_files(src / v)[1] is not None]
    if not test:
        raise InputError(f"{src}: no volunteer has a second observer's contours "
                         "(*_observer2.con); give [transfer_data] split = {...} instead")
    return split_volunteers(ids, test, cfg.n_validate, cfg.split_seed)


def _cohort(stage: Path, out: Path, size: int, workers: int, issues: list[dict]) -> Path:
    """ingest -> labels -> slices of one staged cohort; returns the slices dir."""
    from hpc_seg.cardiac.ingest.run import IngestConfig, ingest
    from hpc_seg.cardiac.labels.build import build_labels
    from hpc_seg.cardiac.slices.build import build_slices

    summary = ingest(stage, out / "ingest", IngestConfig(engine="local", workers=workers,
                                                         progress=False))
    if issues:   # contour problems join the ingest's own issues table
        table = pa.Table.from_pylist(issues, schema=ISSUES)
        atomic_write_table(table, out / "ingest" / "issues" / "part-contours.parquet")
    volumes = Path(summary.tables["volumes"])
    build_labels(volumes, out / "labels", stage / "truth.csv", source="shipped")
    return build_slices(volumes, out / "labels", out / "slices", size)


def _png_cohort(cfg: DataConfig, out: Path, splits: dict[str, str]) -> Path:
    from hpc_seg.cardiac.ingest.png_layout import ingest_png_layout
    from hpc_seg.cardiac.labels.build import build_labels
    from hpc_seg.cardiac.slices.build import build_slices

    volumes = ingest_png_layout(cfg.src, out / "ingest", splits,
                                pixel_spacing_mm=cfg.png_pixel_spacing_mm,
                                slice_spacing_mm=cfg.png_slice_spacing_mm)
    build_labels(volumes, out / "labels", out / "ingest" / "truth.csv", source="shipped")
    return build_slices(volumes, out / "labels", out / "slices", cfg.image_size)


def prepare_data(cfg: DataConfig, out: Path) -> dict[str, str]:
    """Split, ingest, labels and slices for observer 1 (and 2); returns the output paths."""
    if cfg.src is None:
        raise ConfigError("transfer_data: src (the volunteers' folder) is required")
    out = Path(out)
    splits = choose_split(cfg.src, cfg)
    buf = io.StringIO()
    pd.DataFrame(sorted(splits.items()), columns=["Id", "split"]).to_csv(buf, index=False)
    atomic_write_bytes(buf.getvalue().encode(), out / "split.csv")
    result = {"split": str(out / "split.csv")}
    if cfg.layout == "png":
        result["slices"] = str(_png_cohort(cfg, out, splits))
        return result
    issues = stage_con_cohort(cfg.src, out / "stage", splits, slice_order=cfg.con_slice_order)
    result["slices"] = str(_cohort(out / "stage", out, cfg.image_size, cfg.ingest_workers, issues))
    test = {v: s for v, s in splits.items() if s == "test"}
    issues2 = stage_con_cohort(cfg.src, out / "observer2" / "stage", test, observer="observer2",
                               slice_order=cfg.con_slice_order)
    if any((out / "observer2" / "stage" / "test").glob("*")):
        result["observer2_slices"] = str(_cohort(out / "observer2" / "stage", out / "observer2",
                                                 cfg.image_size, cfg.ingest_workers, issues2))
    result["contour_issues"] = len(issues) + len(issues2)
    return result


IMAGE_COLUMNS = ["file", "patient_id", "frame", "slice", "lv_pixels_true", "rotated_90", "split"]


def slice_images(slices_dir: Path, split: str) -> pd.DataFrame:
    """One row per image of ``split`` (unrotated stacks only: the curation's rotated copies of
    Rows < Columns stacks would count every such image twice)."""
    files = [f for f in shard_files(slices_dir) if f.name.startswith(f"part-{split}-")]
    if not files:
        raise InputError(f"{slices_dir}: no {split} images")
    df = pd.concat([pq.read_table(f, columns=IMAGE_COLUMNS).to_pandas() for f in files],
                   ignore_index=True)
    return df[~df.rotated_90].reset_index(drop=True)


def build_subsets(slices_dir: Path, out: Path, cfg: SubsetConfig) -> dict[str, str]:
    """``image_subsets`` and ``esed_frames`` (CSV) for the training images of ``slices_dir``."""
    train = slice_images(slices_dir, "train").rename(columns={"patient_id": "Id",
                                                              "lv_pixels_true": "lv_pixels"})
    subsets, frames = make_subsets(train, cfg)
    for name, df in (("image_subsets", subsets), ("esed_frames", frames)):
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        atomic_write_bytes(buf.getvalue().encode(), out / f"{name}.csv")
    return {"image_subsets": str(out / "image_subsets.csv"), "esed_frames": str(out / "esed_frames.csv")}


def subset_view(slices_dir: Path, files: set[str], out: Path) -> Path:
    """A slices dataset with only ``files`` in its train split and every unrotated validation image.

    Written once per subset (the rows are copied, the view stays valid if the source moves);
    ``_meta.json`` records the subset's size, so a changed subset rebuilds it.
    """
    slices_dir, out = Path(slices_dir), Path(out)
    meta = json.loads((slices_dir / "_meta.json").read_text())
    want = {**meta, "view_of": str(slices_dir), "n_train": len(files)}
    meta_path = out / "_meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()) == want:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for old in shard_files(out):
        old.unlink()
    keep = pa.array(sorted(files))
    n = 0
    for f in shard_files(slices_dir):
        split = f.name.split("-")[1]
        if split not in ("train", "validate"):
            continue
        table = pq.read_table(f)
        mask = pc.invert(table.column("rotated_90"))
        if split == "train":
            mask = pc.and_(mask, pc.is_in(table.column("file"), value_set=keep))
        table = table.filter(mask)
        if table.num_rows:
            atomic_write_table(table, out / f.name, row_group_size=256)
            n += table.num_rows if split == "train" else 0
    if n != len(files):
        raise InputError(f"{slices_dir}: subset names {len(files)} training images, found {n}")
    atomic_write_bytes(json.dumps(want, indent=1).encode(), meta_path)
    return out

