"""Predict with a trained 2D U-Net: the ``slices`` dataset, or whole stacks of a volume.

``predict_slices`` writes the published predictions table (``file``, ``lv_pixels``, ``my_pixels``
for every image) plus identifiers and per-image metrics against the dataset's masks: accuracy,
Dice LV / MY / foreground, and HD95 LV / MY in mm (``hd95_lv``, ``hd95_my``; MONAI through
:mod:`hpc_seg.metrics.distance`, at the image's pixel size after the fit-longer-side resize; 0
when prediction and mask both lack the structure, the image diagonal when only one has it).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from hpc_seg.storage.shards import atomic_write_bytes, decode_array, shard_files
from hpc_seg.cardiac.slices.stream import binary_column_to_array
from hpc_seg.cardiac.finite import nonfinite_frames
from hpc_seg.cardiac.resize import FitPad, fit_pad, to_uint8, unfit_pad
from hpc_seg.cardiac.slices.build import read_meta
from hpc_seg.errors import InputError
from hpc_seg.cardiac.train.model_file import load_model
from hpc_seg.cardiac.train.metrics import image_metrics
from hpc_seg.metrics.distance import hd95
from hpc_seg.progress import progress_bar
from hpc_seg.runtime.device import autocast, resolve_device

log = logging.getLogger(__name__)

ID_COLUMNS = ["file", "stack_id", "subject_id", "patient_id", "split", "slice", "frame"]
GEOMETRY = ["rows", "cols", "pixel_spacing_mm"]
STRUCTURES = {"lv": 1, "my": 2}


def image_spacing(rows: int, cols: int, pixel_spacing_mm: list[float], size: int) -> list[float]:
    """mm per pixel of a ``size x size`` slice image along (rows, cols), undoing the resize."""
    h, w = FitPad(int(rows), int(cols), size).inner
    return [int(rows) * float(pixel_spacing_mm[0]) / h, int(cols) * float(pixel_spacing_mm[1]) / w]


def hd95_columns(pred: torch.Tensor, masks: torch.Tensor, geometry: pd.DataFrame,
                 size: int) -> dict[str, np.ndarray]:
    """``hd95_lv``, ``hd95_my`` (mm) per image of label maps ``[N, size, size]``."""
    spacing = [image_spacing(r, c, ps, size)
               for r, c, ps in zip(geometry.rows, geometry.cols, geometry.pixel_spacing_mm)]
    return {f"hd95_{name}": hd95(pred == k, masks == k, spacing).numpy()
            for name, k in STRUCTURES.items()}


def predict_images(model: torch.nn.Module, images: torch.Tensor, device: torch.device,
                   amp: bool = True) -> torch.Tensor:
    """Label maps ``[N, H, W]`` (uint8) for uint8 images ``[N, 1, H, W]``."""
    x = images.to(device).float().div_(255.0)
    with autocast(device, amp):
        return model(x).argmax(1).to(torch.uint8).cpu()


def predict_slices(model_path: Path, slices_dir: Path, out: Path, splits: tuple[str, ...] = ("test",),
                   batch_size: int = 64, device: str = "auto") -> Path:
    """Predict every image of ``splits``; write ``out`` (Parquet) and return it."""
    slices_dir, out = Path(slices_dir), Path(out)
    meta = read_meta(slices_dir)
    dev = resolve_device(device)
    model, cfg = load_model(model_path, str(dev))
    if int(meta["image_size"]) != cfg.image_size:
        raise InputError(f"{model_path}: model expects {cfg.image_size} px images but {slices_dir} "
                         f"holds {meta['image_size']} px")
    size = cfg.image_size
    files = [f for f in shard_files(slices_dir) if any(f.name.startswith(f"part-{s}-") for s in splits)]
    frames = []
    with progress_bar(f"predict {Path(model_path).parent.name}", None, "images") as bar:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size,
                                                        columns=ID_COLUMNS + GEOMETRY + ["image", "mask"]):
                tbl = pa.Table.from_batches([batch])
                images = torch.from_numpy(binary_column_to_array(tbl.column("image"), (size, size)).copy())
                masks = torch.from_numpy(binary_column_to_array(tbl.column("mask"), (size, size)).copy())
                pred = predict_images(model, images[:, None], dev)
                df = tbl.select(ID_COLUMNS).to_pandas()
                df["lv_pixels"] = (pred == 1).sum((1, 2)).numpy()
                df["my_pixels"] = (pred == 2).sum((1, 2)).numpy()
                for k, v in image_metrics(pred.long(), masks.long(), cfg.num_classes).items():
                    df[k] = v.numpy()
                geometry = tbl.select(GEOMETRY).to_pandas()
                for k, v in hd95_columns(pred, masks, geometry, size).items():
                    df[k] = v
                frames.append(df)
                bar.advance(len(df))
    if not frames:
        raise InputError(f"{slices_dir}: no images in split(s) {list(splits)}")
    table = pd.concat(frames, ignore_index=True)
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(buf.getvalue(), out)
    return out


class StackPredictor:
    """Segment whole ``[frames, slices, rows, cols]`` stacks at their native matrix."""

    def __init__(self, model_path: Path, device: str = "auto", batch_size: int = 64):
        self.device = resolve_device(device)
        self.model, self.cfg = load_model(model_path, str(self.device))
        self.batch_size = batch_size

    def predict_stack(self, pixels: np.ndarray) -> np.ndarray:
        """Label map ``[frames, slices, rows, cols]``; frames with NaN or infinite pixels are
        left out (label 0 there: callers see them with :func:`nonfinite_frames`) and do not
        enter the intensity scaling of the others."""
        bad = nonfinite_frames(pixels)
        if bad:
            good = np.setdiff1d(np.arange(pixels.shape[0]), bad)
            out = np.zeros(pixels.shape, np.uint8)
            if good.size:
                out[good] = self.predict_stack(pixels[good])
            return out
        frames, slices, rows, cols = pixels.shape
        flat = torch.from_numpy(to_uint8(pixels).reshape(-1, rows, cols))
        out = []
        for i in range(0, flat.shape[0], self.batch_size):
            img = fit_pad(flat[i:i + self.batch_size], self.cfg.image_size, "bilinear")
            img = img.round().clamp(0, 255).to(torch.uint8)[:, None]
            out.append(unfit_pad(predict_images(self.model, img, self.device), rows, cols))
        return torch.cat(out).numpy().reshape(frames, slices, rows, cols).astype(np.uint8)


class ModelMasks:
    """Predictions of a trained hpc-seg model used as labels (e.g. a model labelling new data)."""

    def __init__(self, model_path: Path, device: str = "auto"):
        self.predictor = StackPredictor(Path(model_path), device=device)
        self.name = f"model:{model_path}"

    def mask(self, row: dict) -> np.ndarray | None:
        pixels = decode_array(row["pixels"], row["shape"], row["dtype"])
        return self.predictor.predict_stack(pixels)


def label_source(spec: str) -> str | ModelMasks:
    """A ``labels`` source spec with ``"model:PATH"`` resolved to :class:`ModelMasks`; the other
    specs are returned as they are for :func:`hpc_seg.cardiac.labels.build.make_source`."""
    kind, _, arg = spec.partition(":")
    return ModelMasks(Path(arg)) if kind == "model" and arg else spec
