"""Quirk injection into a patient's acquisition plan, and what a correct curation must output.

The expectations (`expected_stacks`) follow the published curation rules applied to
the headers exactly as written, so the manifest is a test oracle for the ingest stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hpc_seg.cardiac.curate.gaps import GAP_FILL_MAX, GAP_FILL_MIN
from hpc_seg.cardiac.curate.modal import mode_largest
from hpc_seg.cardiac.synth.config import GUARANTEED, QUIRKS, CineSynthConfig
from hpc_seg.cardiac.synth.plan import QUIRK_CHOICE, PatientPlan, SeriesPlan, sax_plane, stream
from hpc_seg.cardiac.synth.render import Plane

TARGET_MAX_SIDE = 256         # curation downscales larger matrices to this
DUPLICATE_MM = 1.0            # positions closer than this are the same slice


def choose_quirks(seed: int, pid: int, cfg: CineSynthConfig) -> list[str]:
    """The quirks patient ``pid`` gets: random per rates, the guarantee rotation, forced ones."""
    draws = stream(seed, pid, QUIRK_CHOICE).random(len(QUIRKS))   # always drawn: stable streams
    chosen = set()
    if not cfg.no_random_quirks:
        chosen |= {q for q, u in zip(QUIRKS, draws) if u < cfg.rate(q)}
        if cfg.guarantee_quirks and cfg.domain == "kaggle" and pid % 2 == 0:
            chosen.add(GUARANTEED[(pid // 2 - 1) % len(GUARANTEED)])
    chosen |= {q for q, pids in cfg.force_quirks.items() if pid in pids}
    return [q for q in QUIRKS if q in chosen]


def _next_sn(plan: PatientPlan) -> int:
    return max(s.series_number for s in plan.series) + 1


def _clone(sp: SeriesPlan, sn: int, **changes) -> SeriesPlan:
    changes.setdefault("frames", list(sp.frames))
    return replace(sp, series_number=sn, corrupt={}, **changes)


def apply_quirks(plan: PatientPlan, quirks: list[str], seed: int, cfg: CineSynthConfig) -> None:
    """Modify ``plan`` in place to show ``quirks``, then fix every series' header geometry."""
    rng = stream(seed, plan.pid, QUIRK_CHOICE, 1)
    plan.quirks = list(quirks)
    stack0 = sorted(plan.sax(0), key=lambda s: s.slice_index)
    if "rows_lt_cols" in quirks:
        for sp in stack0:
            if sp.plane.rows == sp.plane.cols:   # a square matrix cannot show it: narrow the FOV
                sp.plane = _resized(sp.plane, sp.plane.rows, int(round(sp.plane.cols * 0.8125)),
                                    sp.plane.ps_row, sp.plane.ps_col)
            sp.rotate = True
    if "complete_repeat" in quirks:          # a clean second stack in the same folders
        sn = _next_sn(plan)
        for i, sp in enumerate(stack0):
            plan.series.append(_clone(sp, sn + i, stack=1))
    gap = _drop_gap_slice(plan, stack0) if "nonuniform_spacing" in quirks else -1
    picks = _slice_quirks(plan, stack0, quirks, gap, rng)
    _extra_series(plan, stack0, quirks, picks, rng)
    _corrupt_files(plan, stack0, quirks, picks.get("repeated_location"), rng)
    for sp in plan.series + plan.dropped:
        sp.finalize(plan.base_lps, plan.axes_lps)


def _resized(p: Plane, rows: int, cols: int, ps_row: float, ps_col: float) -> Plane:
    """``p`` with another matrix and spacing, centred on the same point."""
    centre = (p.origin[0] + (p.cols - 1) / 2 * p.ps_col, p.origin[1] + (p.rows - 1) / 2 * p.ps_row)
    return sax_plane(rows, cols, ps_row, ps_col, centre, p.origin[2], p.thickness)


def _drop_gap_slice(plan: PatientPlan, stack0: list[SeriesPlan]) -> int:
    """Leave out a mid-ventricular slice (a 2x gap); return its index.

    There neighbouring slices are alike, so a curated copy of a neighbour keeps the LV volume
    within ~1 % of the truth.
    """
    mid_z = -0.45 * plan.anat.c_ed
    gap = min(range(1, len(stack0) - 1), key=lambda i: abs(plan.z_positions[i] - mid_z))
    plan.series.remove(stack0[gap])
    plan.dropped.append(stack0[gap])
    return gap


def _slice_quirks(plan: PatientPlan, stack0: list[SeriesPlan], quirks: list[str], gap: int,
                  rng: np.random.Generator) -> dict[str, SeriesPlan]:
    """Give each slice-level quirk its own slice; return quirk -> the slice it changed."""
    n, n_frames = len(stack0), plan.n_frames
    wanted = [q for q in ("repeated_location", "fewer_phases", "other_geometry",
                          "inplane_rotated") if q in quirks]
    # Slices next to a gap come last, so a filled gap rarely neighbours another quirk.
    far = [i for i in range(n) if gap < 0 or abs(i - gap) > 1]
    near = [i for i in range(n) if gap >= 0 and abs(i - gap) == 1]
    order = [int(i) for i in rng.permutation(far)] + [int(i) for i in rng.permutation(near)]
    picks = {q: stack0[order[j % len(order)]] for j, q in enumerate(wanted)}
    if "fewer_phases" in picks:   # the last 10-25 % of the cycle is missing (never ED or ES)
        missing = max(1, int(round(n_frames * rng.uniform(0.1, 0.25))))
        picks["fewer_phases"].frames = list(range(n_frames - missing))
    if "other_geometry" in picks:  # same field of view, another matrix and so another spacing
        p = picks["other_geometry"].plane
        f = 0.75 if rng.random() < 0.5 else 1.25
        rows, cols = max(8, int(round(p.rows * f))), max(8, int(round(p.cols * f)))
        picks["other_geometry"].plane = _resized(p, rows, cols, round(p.rows * p.ps_row / rows, 5),
                                                 round(p.cols * p.ps_col / cols, 5))
    if "inplane_rotated" in picks:
        picks["inplane_rotated"].rotate = not picks["inplane_rotated"].rotate
    return picks


def _extra_series(plan: PatientPlan, stack0: list[SeriesPlan], quirks: list[str],
                  picks: dict[str, SeriesPlan], rng: np.random.Generator) -> None:
    """Later series: a repeat of one slice position, and an outlier beyond the apex."""
    later = _next_sn(plan)
    every = list(range(plan.n_frames))
    rotate = "rows_lt_cols" in quirks
    if "repeated_location" in picks:
        sp = picks["repeated_location"]
        o = sp.plane.origin
        plane = replace(sp.plane, origin=(o[0], o[1], o[2] + float(rng.uniform(0.2, 0.7))))
        plan.series.append(_clone(sp, later, role="repeat", folder=f"sax_{later}", plane=plane,
                                  frames=every, rotate=rotate))
        later += 1
    if "outlier_slice" in quirks:
        last = stack0[-1]
        z = plan.z_positions[-1] - 3.0 * plan.spacing
        plane = replace(last.plane, origin=(*last.plane.origin[:2], z))
        plan.series.append(_clone(last, later, role="outlier", folder=f"sax_{later}",
                                  slice_index=-1, plane=plane, frames=every, rotate=rotate))


def _corrupt_files(plan: PatientPlan, stack0: list[SeriesPlan], quirks: list[str],
                   superseded: SeriesPlan | None, rng: np.random.Generator) -> None:
    """Truncate / strip the pixels of late-diastolic frames; add a junk ``.dcm`` file."""
    n_frames = plan.n_frames
    victims = [sp for sp in stack0 if sp.role == "sax" and len(sp.frames) == n_frames
               and sp is not superseded and sp in plan.series]
    order = [int(i) for i in rng.permutation(len(victims))]
    # Late diastole: filling the frame from the previous one changes neither ED nor ES.
    first_late = max(1, math.ceil(0.7 * n_frames))
    for j, q in enumerate(q for q in ("truncated_file", "no_pixel_data") if q in quirks):
        sp = victims[order[j % len(order)]]
        frame = int(rng.integers(first_late, n_frames)) if first_late < n_frames else n_frames - 1
        while frame in sp.corrupt and frame > 1:
            frame -= 1
        sp.corrupt[frame] = "truncated" if q == "truncated_file" else "no_pixel_data"
    if "not_dicom" in quirks:
        written = [sp for sp in stack0 if sp in plan.series]
        sp = written[int(rng.integers(len(written)))]
        plan.not_dicom.append(f"{sp.folder}/IM-{sp.series_number:04d}-{n_frames + 1:04d}.dcm")


@dataclass
class ExpectedSlice:
    """One slice of a curated stack: its position, the series whose pixels fill it, and (for a
    filled gap) the planned series that was not written, whose masks hold the true anatomy."""

    position: float
    series: SeriesPlan
    filled: bool = False
    actual: SeriesPlan | None = None

    @property
    def truth_series(self) -> SeriesPlan:
        return self.actual if self.actual is not None else self.series


def curated_slices(plan: PatientPlan, stack: int) -> tuple[list[ExpectedSlice], float]:
    """Positions of the curated stack after dedup, outlier removal and gap filling."""
    items = sorted(((sp.geom.position, sp) for sp in plan.sax(stack)), key=lambda t: t[0])
    kept: list[tuple[float, SeriesPlan]] = []
    for pos, sp in items:
        if kept and pos - kept[-1][0] < DUPLICATE_MM:
            if sp.series_number > kept[-1][1].series_number:   # keep the later series
                kept[-1] = (pos, sp)
        else:
            kept.append((pos, sp))
    spacing = float(mode_largest([round(b[0] - a[0], 2) for a, b in zip(kept, kept[1:])]))
    while len(kept) > 2 and kept[1][0] - kept[0][0] > GAP_FILL_MAX * spacing:
        kept.pop(0)
    while len(kept) > 2 and kept[-1][0] - kept[-2][0] > GAP_FILL_MAX * spacing:
        kept.pop()
    out: list[ExpectedSlice] = []
    for pos, sp in kept:
        if out and (pos - out[-1].position) >= GAP_FILL_MIN * spacing:
            fill_pos = out[-1].position + spacing
            actual = min(plan.dropped, key=lambda d: abs(d.geom.position - fill_pos),
                         default=None)
            out.append(ExpectedSlice(fill_pos, out[-1].series, filled=True, actual=actual))
        out.append(ExpectedSlice(pos, sp))
    return out, spacing


def expected_stacks(plan: PatientPlan) -> list[dict]:
    """The manifest's ``expected_stacks`` for this patient: the stacks a correct curation outputs."""
    stacks = sorted({sp.stack for sp in plan.sax()})
    result = []
    for s in stacks:
        slices, spacing = curated_slices(plan, s)
        kept = [e.series for e in slices if not e.filled]
        ps = mode_largest([(e.geom.ps_row, e.geom.ps_col) for e in kept])
        rows, cols = mode_largest([(k.geom.rows, k.geom.cols) for k in kept])
        frames = mode_largest([len(k.frames) for k in kept])
        scale = 1.0
        if max(rows, cols) > TARGET_MAX_SIDE:
            scale = TARGET_MAX_SIDE / max(rows, cols)
            rows, cols = int(round(rows * scale)), int(round(cols * scale))
        spacing_rc = [round(ps[0] / scale, 5), round(ps[1] / scale, 5)]
        subject = str(plan.pid) if len(stacks) == 1 else f"{plan.pid}_{'ab'[s]}"
        base = {"subject_id": subject, "rotated_90": False,
                "shape": [frames, len(slices), rows, cols], "pixel_spacing_mm": spacing_rc,
                "scale_factor": round(scale, 6), "slice_spacing_mm": spacing,
                "slice_positions_mm": [round(e.position, 4) for e in slices],
                "kept_series_by_position": [e.series.series_number for e in slices]}
        result.append(base)
        if rows < cols:
            result.append({**base, "rotated_90": True, "shape": [frames, len(slices), cols, rows],
                           "pixel_spacing_mm": spacing_rc[::-1]})
    return result


def skipped_files(plan: PatientPlan) -> list[dict]:
    """Files a correct curation must log and skip, relative to the cohort root."""
    root = f"{plan.split}/{plan.pid}/study"
    out = [{"file": f"{root}/{sp.folder}/{sp.file_name(f)}", "reason": reason}
           for sp in plan.series for f, reason in sorted(sp.corrupt.items())]
    out += [{"file": f"{root}/{rel}", "reason": "not_dicom"} for rel in plan.not_dicom]
    return sorted(out, key=lambda d: d["file"])
