"""The cross-generator test cohort of ``bench generalise``: the held-out patients, re-rendered.

Each held-out stack's multi-structure label map (the generator's ``label_maps/``) is rendered by
the independently written k-space renderer (:mod:`hpc_seg.cardiac.synth.kspace_render`: signal
equations, coils, k-space cut, ghosts), and its pixels replace the stack's in a copy of the
``volumes`` table. Masks, geometry, labels and truth stay the held-out cohort's, so the within- and
the cross-generator scores are of the same anatomy and differ only in how the images were made.
Before a stack is rendered, its label map's LV, myocardium and RV must equal the stack's mask
pixel for pixel (the map belongs to the stack, in the same slice and frame order).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from hpc_seg.errors import InputError
from hpc_seg.progress import progress_bar
from hpc_seg.storage.shards import (atomic_write_bytes, atomic_write_table, decode_array,
                                    encode_array, iter_rows, shard_files)

if TYPE_CHECKING:
    from hpc_seg.cardiac.synth.kspace_render import Protocol

log = logging.getLogger(__name__)

DONE = "_complete.json"
STREAM = 7      # the renderer's random stream per patient: [seed, pid, STREAM]


def patient_protocol(seed: int, patient_id: int) -> tuple[Protocol, np.random.Generator]:
    """A cross patient's k-space protocol and the random stream that renders its images after it.
    The render and :func:`protocol_table` both draw it here, so the table names the protocol each
    patient's images were made with."""
    from hpc_seg.cardiac.synth.kspace_render import draw_protocol

    rng = np.random.default_rng([seed, int(patient_id), STREAM])
    return draw_protocol(rng), rng


def protocol_table(patient_ids: list[str], seed: int) -> pd.DataFrame:
    """Per patient, what the k-space renderer made its images with: sequence, flip angle, SNR,
    phase-encoding resolution, window, ghost amplitude and off-resonance band depth (``kspace_*``
    columns): which kinds of scan a model fails on, in the per-patient rows."""
    rows = []
    for pid in patient_ids:
        p, _ = patient_protocol(seed, int(pid))
        rows.append({"patient_id": str(pid), "kspace_sequence": p.sequence,
                     "kspace_flip_deg": round(p.flip_deg, 1), "kspace_snr": round(p.snr, 1),
                     "kspace_pe_fraction": round(p.pe_fraction, 2),
                     "kspace_window": round(p.window, 2), "kspace_ghost": round(p.ghost[0], 3),
                     "kspace_band_depth": round(p.band[3], 2)})
    return pd.DataFrame(rows)


def render_cross_volumes(volumes_dir: Path, cohort: Path, out_dir: Path, seed: int,
                         adjust: Callable[[Protocol], Protocol] | None = None,
                         variant: str | None = None) -> Path:
    """A ``volumes`` table under ``out_dir`` with every stack re-rendered from its label map.

    ``adjust`` changes each patient's drawn protocol before it renders (``variant`` names the
    change, kept with the output so that a re-run with another change renders again): the
    ablation of :mod:`hpc_seg.bench.cross_ablation`. The random stream is the unchanged draw's.
    """
    if (adjust is None) != (variant is None):
        raise ValueError("render_cross_volumes: adjust and variant go together")
    from hpc_seg.cardiac.slices.label_maps import class_mask, load_label_map
    from hpc_seg.cardiac.synth.kspace_render import render_stack

    out_dir = Path(out_dir)
    done = {"volumes": str(volumes_dir), "cohort": str(cohort), "seed": seed, "version": 1,
            **({"variant": variant} if variant else {})}
    if (out_dir / DONE).is_file() and json.loads((out_dir / DONE).read_text()) == done:
        return out_dir
    for f in shard_files(out_dir):
        f.unlink()
    maps = Path(cohort) / "label_maps"
    if not (maps / "structures.json").is_file():
        raise InputError(f"{cohort}: no label_maps/ (generated before label maps existed?); "
                         "use a fresh --workdir")
    doc = json.loads((maps / "structures.json").read_text())
    names = {int(k): v for k, v in doc["structures"].items()}
    rows = list(iter_rows(volumes_dir))
    with progress_bar("k-space renderer", len(rows), "stacks") as bar:
        for row in rows:
            path = maps / row["split"] / f"{row['patient_id']}.nii.gz"
            if not path.is_file():
                raise InputError(f"{path}: no label map for stack {row['stack_id']}")
            labels, _, _ = load_label_map(path)
            mask = decode_array(row["mask"], row["shape"], "|u1")
            if list(labels.shape) != list(row["shape"]) or not np.array_equal(
                    class_mask(labels, doc["classes"]), mask):
                raise InputError(f"{path}: label map does not match stack {row['stack_id']} "
                                 f"(shape {labels.shape} vs {tuple(row['shape'])}, or its classes "
                                 "differ from the stack's mask)")
            protocol, rng = patient_protocol(seed, int(row["patient_id"]))
            if adjust is not None:
                protocol = adjust(protocol)
            pixels = render_stack(labels, names, rng, protocol)
            row["pixels"], _, row["dtype"] = encode_array(pixels)
            bar.advance()
    atomic_write_table(pa.Table.from_pylist(rows), out_dir / "part-00000.parquet")
    atomic_write_bytes(json.dumps(done).encode(), out_dir / DONE)
    log.info("cross-generator volumes: %d stacks in %s", len(rows), out_dir)
    return out_dir
