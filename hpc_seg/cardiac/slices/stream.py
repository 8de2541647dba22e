"""Stream batches from the ``slices`` dataset without loading it into memory.

:class:`SliceStream` is a torch ``IterableDataset`` over Parquet row groups. At construction it
reads only the small selection columns (split, confidence flags) to know which rows of which row
group it will use; each epoch it shuffles the row-group order, shards row groups across DataLoader
workers, decodes one row group at a time (the pixel bytes go straight from the Arrow buffer into a
numpy array) and mixes rows through a shuffle buffer. It yields ready batches as uint8 tensors
(``image [B,1,H,W]``, ``mask [B,H,W]``), so a DataLoader runs with ``batch_size=None`` and the
float conversion and augmentation happen on the training device. A dataset built from label maps
alone has a ``structures`` column instead of ``image``; ask for it with ``columns``
(``structures [B,H,W]``).

Everything random derives from ``(seed, epoch, worker)``: an epoch's order is the same in a run
and in the run resumed after a pre-emption.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from hpc_seg.storage.shards import open_shard, shard_files
from hpc_seg.cardiac.slices.build import read_meta
from hpc_seg.errors import InputError


def binary_column_to_array(column: pa.ChunkedArray | pa.Array, shape: tuple[int, ...]) -> np.ndarray:
    """Equal-length binary values -> ``[N, *shape]`` uint8 without a Python loop."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    if n == 0:
        return np.zeros((0, *shape), np.uint8)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32 if arr.type == pa.binary() else np.int64,
                            count=n + 1 + arr.offset)[arr.offset:]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    item = int(np.prod(shape))
    if not np.all(np.diff(offsets) == item):
        raise InputError(f"slices: image bytes are not all {shape}")
    return data[offsets[0]:offsets[0] + n * item].reshape(n, *shape)


class SliceStream(IterableDataset):
    """Batches of (image, mask) from one split of a slices dataset."""

    def __init__(self, slices_dir: Path, split: str, *, confidence_set: str = "all",
                 batch_size: int = 32, shuffle: bool = True, seed: int = 0,
                 shuffle_buffer: int = 2048, max_images: int = 0, with_ids: bool = False,
                 columns: tuple[str, ...] = ("image", "mask")):
        self.slices_dir = Path(slices_dir)
        meta = read_meta(self.slices_dir)
        self.size = int(meta["image_size"])
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.seed, self.buffer, self.max_images, self.with_ids = seed, shuffle_buffer, max_images, with_ids
        self.columns = tuple(columns)
        if "mask" not in self.columns:
            raise ValueError(f"SliceStream columns must include 'mask', got {self.columns}")
        self.epoch = 0
        flag = None if confidence_set == "all" else f"in_{confidence_set}"
        self.units: list[tuple[str, int, np.ndarray]] = []
        for f in shard_files(self.slices_dir):
            if not f.name.startswith(f"part-{split}-"):
                continue
            pf = open_shard(f)     # a damaged shard is one line naming it, up front
            for g in range(pf.num_row_groups):
                cols = pf.read_row_group(g, columns=["split"] + ([flag] if flag else []))
                keep = np.asarray(cols.column("split").to_numpy(zero_copy_only=False) == split)
                if flag:
                    keep &= np.asarray(cols.column(flag).to_numpy(zero_copy_only=False), dtype=bool)
                rows = np.flatnonzero(keep)
                if rows.size:
                    self.units.append((str(f), g, rows))
        self.n_rows = int(sum(u[2].size for u in self.units))
        if not shuffle and max_images and self.n_rows > max_images:
            self._subsample(max_images)  # a fixed validation subset, the same every epoch

    def _subsample(self, n: int) -> None:
        rng = np.random.default_rng(self.seed)
        ids = np.concatenate([np.stack([np.full(u[2].size, i), u[2]], 1) for i, u in enumerate(self.units)])
        pick = ids[np.sort(rng.choice(len(ids), n, replace=False))]
        self.units = [(f, g, pick[pick[:, 0] == i, 1]) for i, (f, g, _) in enumerate(self.units)
                      if (pick[:, 0] == i).any()]
        self.n_rows, self.max_images = n, 0

    @property
    def images_per_epoch(self) -> int:
        return min(self.n_rows, self.max_images) if self.max_images else self.n_rows

    def batches_per_epoch(self) -> int:
        return math.ceil(self.images_per_epoch / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        wid, nworkers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.seed, self.epoch, wid])
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.units)) \
            if self.shuffle else np.arange(len(self.units))
        limit = -(-self.max_images // nworkers) if self.max_images else None
        # Shuffle buffer: once it holds `buffer` images, mix them once and hand out batches until
        # half is left, so each image is copied about twice rather than once per batch.
        threshold = max(self.buffer, self.batch_size) if self.shuffle else self.batch_size
        keep = threshold // 2 if self.shuffle else 0
        pending: list[dict[str, np.ndarray]] = []
        produced = 0
        units = [self.units[u] for u in order[wid::nworkers]]
        for i, unit in enumerate(units):
            pending.append(self._read(*unit))
            last = i == len(units) - 1
            if sum(len(c["mask"]) for c in pending) < threshold and not last:
                continue
            merged = self._merge(pending, rng)
            n, pos = len(merged["mask"]), 0
            while n - pos >= self.batch_size + (0 if last else keep) or (last and pos < n):
                batch = {k: v[pos:pos + self.batch_size] for k, v in merged.items()}
                pos += len(batch["mask"])
                produced += len(batch["mask"])
                yield self._tensors(batch)
                if limit is not None and produced >= limit:
                    return
            pending = [{k: v[pos:] for k, v in merged.items()}] if pos < n else []

    def _read(self, path: str, group: int, rows: np.ndarray) -> dict:
        pf = pq.ParquetFile(path)
        missing = [c for c in self.columns if c not in pf.schema_arrow.names]
        if missing:
            raise InputError(f"{path}: slices shard has no {', '.join(missing)} column "
                             f"(columns: {', '.join(pf.schema_arrow.names)})")
        table = pf.read_row_group(group, columns=list(self.columns) + (["file"] if self.with_ids
                                                                       else []))
        if rows.size != table.num_rows:
            table = table.take(pa.array(rows))
        chunk = {c: binary_column_to_array(table.column(c), (self.size, self.size))
                 for c in self.columns}
        if self.with_ids:
            chunk["file"] = np.asarray(table.column("file").to_pylist(), dtype=object)
        return chunk

    def _merge(self, pending: list[dict], rng: np.random.Generator) -> dict:
        merged = pending[0] if len(pending) == 1 else \
            {k: np.concatenate([c[k] for c in pending]) for k in pending[0]}
        if self.shuffle:
            perm = rng.permutation(len(merged["mask"]))
            merged = {k: v[perm] for k, v in merged.items()}
        return merged

    @staticmethod
    def _tensors(batch: dict) -> dict:
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()
               if k != "file"}
        if "image" in out:
            out["image"] = out["image"][:, None]
        if "file" in batch:
            out["file"] = list(batch["file"])
        return out
