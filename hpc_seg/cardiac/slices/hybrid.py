"""A ``slices`` dataset with both the images and the label maps of each 2D slice (hybrid training).

``appearance = "hybrid"`` trains on a mixture: per sample, the stored image or an image rendered
from the slice's label map with random appearance. That needs both in one row. This module joins a
label-map slices dataset (``hpc-seg label-maps``: ``structures`` and ``mask``) with an image slices
dataset of the same cases (``hpc-seg labels``: ``image`` and ``mask``) by their ``file`` key
(``<case>/slice<kk>_frame<tt>``), and refuses a row whose two masks differ: then the label map is
not the image's (another slice order, another fit), and mixing them would teach wrong labels.

Output: the label-map dataset's rows with the ``image`` column added; ``_meta.json`` says
``"images": true`` and names both inputs. A re-run with the same inputs is skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from hpc_seg.cardiac.slices.build import ROW_GROUP, done_or_cleared, mark_complete, read_meta
from hpc_seg.errors import InputError
from hpc_seg.progress import progress_bar
from hpc_seg.storage.shards import atomic_write_table, open_shard, shard_files

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _inputs(directory: Path) -> list[list]:
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in shard_files(directory)]


def build_hybrid_slices(label_slices: Path, image_slices: Path, out_dir: Path) -> Path:
    """Write ``label_slices``' rows plus the matching ``image`` of ``image_slices``; returns
    ``out_dir``. Every label-map row needs an image row with the same ``file`` and mask."""
    label_slices, image_slices, out_dir = Path(label_slices), Path(image_slices), Path(out_dir)
    label_meta, image_meta = read_meta(label_slices), read_meta(image_slices)
    if "structures" not in label_meta:
        raise InputError(f"{label_slices}: not a slices dataset from label maps (no structure "
                         "names in its _meta.json); build one with `hpc-seg label-maps`")
    if not image_meta.get("images", True):
        raise InputError(f"{image_slices}: holds no images (built from label maps alone)")
    if int(label_meta["image_size"]) != int(image_meta["image_size"]):
        raise InputError(f"{image_slices}: image size {image_meta['image_size']} differs from "
                         f"{label_slices}' {label_meta['image_size']}")
    meta = {**{k: v for k, v in label_meta.items() if k not in ("complete", "inputs")},
            "format": FORMAT_VERSION, "images": True, "label_source": "label maps + images",
            "label_slices": [str(label_slices), _inputs(label_slices)],
            "image_slices": [str(image_slices), _inputs(image_slices)]}
    if done_or_cleared(out_dir, meta, "hybrid slices"):
        return out_dir
    images = pads.dataset([str(f) for f in shard_files(image_slices)], format="parquet")
    shards = shard_files(label_slices)
    with progress_bar("hybrid slices", len(shards), "shards") as bar:
        for shard in shards:
            table = open_shard(shard).read()
            files = table.column("file")
            found = images.to_table(columns=["file", "image", "mask"],
                                    filter=pc.field("file").isin(files))
            by_file = {f: i for i, f in enumerate(found.column("file").to_pylist())}
            wanted = files.to_pylist()
            missing = [f for f in wanted if f not in by_file]
            if missing:
                raise InputError(f"{image_slices}: no image for {len(missing)} slices of "
                                 f"{shard.name}, e.g. {missing[0]}; build both from one cohort")
            picked = found.take(pa.array([by_file[f] for f in wanted]))
            differ = pc.invert(pc.equal(picked.column("mask"), table.column("mask")))
            if pc.any(differ).as_py():
                first = files[pc.index(differ, True).as_py()].as_py()
                raise InputError(f"{image_slices}: the image's mask of {first} differs from its "
                                 f"label map's ({label_slices}); they are not the same slices")
            atomic_write_table(table.append_column("image", picked.column("image")),
                               out_dir / shard.name, row_group_size=ROW_GROUP)
            bar.advance()
    mark_complete(out_dir, meta)
    log.info("hybrid slices: %d shards into %s", len(shards), out_dir)
    return out_dir
