"""Which part of the k-space renderer's image formation costs a model what (``bench generalise
--cross-ablation``).

The cross-generator score mixes several differences from the training sources at once: the tissue
contrast of the signal equations, the coil array, the phase-encoding cut and window, ghosts,
off-resonance bands and noise. Here the held-out patients are rendered again with one part switched
off at a time (:data:`PARTS`), and with all of them off (``contrast only``: the signal equations'
grey values, sampled at the acquired matrix without noise), and the model is scored on each. The
drop in error when a part is switched off is what that part costs the model; ``contrast only``
against the within-generator score is what the tissue contrast alone costs.

Each variant draws the same protocols and random streams as the full cross cohort (only the
switched-off part differs), and keeps its own rendered volumes and slices under
``workdir/held_out_kspace_without_<part>``; re-runs skip finished renders and evaluations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from hpc_seg.bench.volume_scores import grouped_scores, scan_kind

if TYPE_CHECKING:
    from hpc_seg.cardiac.synth.kspace_render import Protocol

#: one receive coil of uniform sensitivity: (row, col) centre, width (>> the image), phase
UNIFORM_COIL = (0.5, 0.5, 1e3, 0.0)

#: The switchable parts: protocol -> the same protocol with that part off.
PARTS: dict[str, Callable[["Protocol"], "Protocol"]] = {
    "bands": lambda p: dataclasses.replace(p, band=(*p.band[:3], 0.0)),
    "ghosts": lambda p: dataclasses.replace(p, ghost=(0.0, p.ghost[1])),
    "pe_cut": lambda p: dataclasses.replace(p, pe_fraction=1.0, window=0.0),
    "coils": lambda p: dataclasses.replace(p, coils=(UNIFORM_COIL,)),
    "noise": lambda p: dataclasses.replace(p, snr=math.inf),
}
ALL_OFF = "contrast_only"


def switch_off(parts: tuple[str, ...]) -> Callable[["Protocol"], "Protocol"]:
    """The protocol change that switches off every part of ``parts`` (names of :data:`PARTS`)."""
    def adjust(p: "Protocol") -> "Protocol":
        for name in parts:
            p = PARTS[name](p)
        return p
    return adjust


def variants() -> dict[str, tuple[str, ...]]:
    """Variant name -> the parts it switches off: each part alone, then all of them."""
    return {**{f"without_{name}": (name,) for name in PARTS}, ALL_OFF: tuple(PARTS)}


def scan_errors(per_patient: pd.DataFrame, protocols: pd.DataFrame) -> pd.DataFrame:
    """Model errors (EF points, |EDV| and |ESV| % of the truth; a missing prediction counts as in
    the headline scores) over all patients and per kind of scan (bssfp, bssfp with a band, gre):
    rows ``scan``, ``ef_err``, ``edv_err_pct``, ``esv_err_pct``, ``n``. ``protocols`` is
    :func:`~hpc_seg.bench.cross_generator.protocol_table`."""
    df = per_patient[per_patient.method == "model"].assign(
        patient_id=lambda d: d.patient_id.astype(str)).merge(protocols, on="patient_id")
    df = df.assign(scan=scan_kind(df))
    table = pd.concat([grouped_scores(df.assign(scan="all"), "scan"),
                       grouped_scores(df, "scan")], ignore_index=True)
    return table[["scan", "ef_err", "edv_err_pct", "esv_err_pct", "n"]]


#: ``evaluate(data, out_dir)``: the model's per-patient rows on ``data`` (slices and labels paths),
#: as the benchmark evaluates every cohort (passed in, so this module does not import the bench)
Evaluate = Callable[[dict[str, Path], Path], pd.DataFrame]


def run_ablation(workdir: Path, evaluate: Evaluate, held: dict[str, Path], image_size: int,
                 test_seed: int, out: Path, full: pd.DataFrame, within: pd.DataFrame
                 ) -> pd.DataFrame:
    """Score the model (through ``evaluate``) on every variant (:func:`variants`) of the cross
    cohort.

    ``held`` is the held-out cohort's paths (volumes, cohort, labels); ``full`` and ``within`` are
    the model's per-patient rows on the full cross cohort and the held-out cohort, which head the
    table. Returns rows ``variant``, ``off``, ``scan``, errors and ``n``; also written as
    ``out/cross_ablation.csv``.
    """
    from hpc_seg.bench.cross_generator import protocol_table, render_cross_volumes
    from hpc_seg.cardiac.slices.build import build_slices
    from hpc_seg.storage.shards import atomic_write_bytes

    protocols = protocol_table(sorted(set(full.patient_id.astype(str))), test_seed)
    tables = [scan_errors(within, protocols).assign(variant="within", off="(generator's images)"),
              scan_errors(full, protocols).assign(variant="cross", off="")]
    for name, parts in variants().items():
        root = Path(workdir) / f"held_out_kspace_{name}"
        volumes = render_cross_volumes(held["volumes"], held["cohort"], root / "volumes",
                                       test_seed, adjust=switch_off(parts), variant=name)
        slices = build_slices(volumes, held["labels"], root / f"slices_{image_size}", image_size)
        rows = evaluate({"slices": slices, "labels": held["labels"]},
                        Path(out) / f"eval_cross_{name}")
        tables.append(scan_errors(rows, protocols).assign(variant=name, off=", ".join(parts)))
    table = pd.concat(tables, ignore_index=True)[["variant", "off", "scan", "ef_err",
                                                  "edv_err_pct", "esv_err_pct", "n"]]
    atomic_write_bytes(table.to_csv(index=False).encode(), Path(out) / "cross_ablation.csv")
    return table


def format_ablation(table: pd.DataFrame) -> str:
    """The printed table: per variant, EF / EDV % / ESV % errors over all patients and per scan."""
    scans = [s for s in ("all", "bssfp", "bssfp with a band", "gre") if s in set(table.scan)]
    lines = ["cross-generator errors with parts of the k-space renderer switched off "
             "(EF / EDV % / ESV %):",
             f"  {'variant':<22}" + "".join(f"{s:>22}" for s in scans)]
    for variant, g in table.groupby("variant", sort=False):
        by = g.set_index("scan")
        cells = [f"{by.ef_err[s]:.2f} / {by.edv_err_pct[s]:.1f} / {by.esv_err_pct[s]:.1f}"
                 if s in by.index else "-" for s in scans]
        lines.append(f"  {variant:<22}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)
