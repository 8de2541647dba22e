"""Curation steps 1-6 as pure functions on headers (no files), as published."""

from __future__ import annotations

import numpy as np

from hpc_seg.cardiac.curate.steps import (choose_target, dedupe_positions, group_slice_units,
                                 mode_largest, modal_normal, regularise_positions,
                                 set_positions, split_complete_repeats)
from hpc_seg.cardiac.curate.stack import curate_patient, frame_slots, reference_frame_times
from hpc_seg.cardiac.dicom.frame import DicomFrame

IOP = np.array([1.0, 0, 0, 0, 1, 0])


def frame(series: int, pos: float, t: int, *, time_s: float = 36000.0, rows: int = 4,
          cols: int = 4, spacing=(1.5, 1.5), iop=IOP, uid: str | None = None,
          trigger: float | None = None) -> DicomFrame:
    px = np.full((rows, cols), 100 * series + t, np.uint16)
    return DicomFrame(file=f"s{series}/f{t}.dcm", series_uid=uid or f"uid{series}",
                      series_number=series, series_time_s=time_s, instance_number=t + 1,
                      sop_uid=f"sop{series}.{t}", ipp=np.array([0.0, 0.0, pos]),
                      iop=np.asarray(iop, float), pixel_spacing=tuple(spacing), rows=rows,
                      cols=cols, trigger_time_ms=30.0 * t if trigger is None else trigger,
                      slice_thickness=8.0, pixels=px)


def series_stack(first_series: int, positions, n_frames: int = 3, **kw) -> list[DicomFrame]:
    return [frame(first_series + k, p, t, **kw) for k, p in enumerate(positions) for t in range(n_frames)]


def units_of(frames):
    units = group_slice_units(frames)
    set_positions(units, modal_normal(units))
    return units


def test_mode_ties_go_to_the_largest_value():
    assert mode_largest([1, 2, 2, 3, 3]) == 3
    assert mode_largest([(1.5, 1.5), (1.4, 1.4)]) == (1.5, 1.5)
    assert mode_largest([30, 30, 25]) == 30


def test_complete_repeat_is_split_by_series_time():
    pos = [0.0, 8.0, 16.0, 24.0]
    frames = series_stack(1, pos, time_s=36000.0) + series_stack(20, pos, time_s=37000.0)
    subjects, issues = split_complete_repeats("7", units_of(frames))
    assert sorted(subjects) == ["7_a", "7_b"]
    assert {u.series_number for u in subjects["7_a"]} == {1, 2, 3, 4}
    assert {u.series_number for u in subjects["7_b"]} == {20, 21, 22, 23}
    assert issues[0].problem == "complete_repeat"


def test_one_repeated_location_is_not_a_complete_repeat():
    frames = series_stack(1, [0.0, 8.0, 16.0, 24.0]) + series_stack(9, [8.3], time_s=36500.0)
    subjects, issues = split_complete_repeats("7", units_of(frames))
    assert list(subjects) == ["7"] and issues == []


def test_duplicate_location_keeps_the_higher_series_number():
    frames = series_stack(1, [0.0, 8.0, 16.0]) + series_stack(9, [8.4])
    kept, issues = dedupe_positions("7", units_of(frames))
    assert [u.series_number for u in kept] == [1, 9, 3]
    assert issues[0].problem == "duplicate_location" and "kept series 9" in issues[0].resolution


def test_gap_of_two_spacings_is_filled_from_the_lower_neighbour():
    frames = series_stack(1, [0.0, 8.0, 24.0, 32.0])
    slices, d, issues = regularise_positions("7", units_of(frames))
    assert d == 8.0
    assert [p for _, p, _ in slices] == [0.0, 8.0, 16.0, 24.0, 32.0]
    assert [u.series_number for u, _, _ in slices] == [1, 2, 2, 3, 4]
    assert [f for _, _, f in slices] == [False, False, True, False, False]
    assert [i.problem for i in issues] == ["missing_slice"]


def test_outlying_and_interspersed_slices_are_removed():
    frames = series_stack(1, [0.0, 8.0, 16.0, 24.0, 60.0]) + series_stack(10, [12.0])
    slices, d, issues = regularise_positions("7", units_of(frames))
    assert [p for _, p, _ in slices] == [0.0, 8.0, 16.0, 24.0]
    assert sorted(i.problem for i in issues) == ["interspersed_slice", "outlier_slice"]


def test_missing_frames_are_filled_from_the_previous_frame():
    full = [frame(1, 0.0, t) for t in range(5)]
    short = [frame(2, 8.0, t) for t in (0, 1, 3)]          # frames 2 and 4 missing
    units = units_of(full + short)
    target = choose_target(units, modal_normal(units))
    target.frame_times_ms = reference_frame_times(units, target.n_frames)
    assert target.n_frames == 5 and target.frame_times_ms == [0, 30, 60, 90, 120]
    unit = next(u for u in units if u.series_number == 2)
    slots, copies, issues = frame_slots("7", unit, target)
    assert slots == [0, 1, 1, 2, 2] and copies == [2, 4]
    assert issues[0].problem == "missing_frames" and "[2, 4]" in issues[0].detail


def test_surplus_frames_are_cut_to_the_target_count():
    frames = series_stack(1, [0.0, 8.0], n_frames=4) + [frame(3, 16.0, t) for t in range(6)]
    units = units_of(frames)
    target = choose_target(units, modal_normal(units))
    unit = next(u for u in units if u.series_number == 3)
    slots, copies, issues = frame_slots("7", unit, target)
    assert slots == [0, 1, 2, 3] and copies == [] and issues[0].problem == "surplus_frames"


def test_target_geometry_downscales_large_matrices():
    frames = [frame(k + 1, 8.0 * k, 0, rows=300, cols=240, spacing=(1.0, 1.0)) for k in range(3)]
    units = units_of(frames)
    target = choose_target(units, modal_normal(units))
    assert (target.grid.rows, target.grid.cols) == (256, 205)
    assert np.isclose(target.scale_factor, 256 / 300)
    assert np.allclose(target.grid.spacing, (300 / 256, 300 / 256))


def test_slice_with_another_normal_is_dropped():
    tilted = np.array([1.0, 0, 0, 0, 0.8, 0.6])
    frames = series_stack(1, [0.0, 8.0, 16.0]) + [frame(9, 4.0, t, iop=tilted) for t in range(3)]
    stacks, issues = curate_patient("7", frames, None)
    assert len(stacks) == 1 and stacks[0].pixels.shape == (3, 3, 4, 4)
    assert "other_normal" in {i.problem for i in issues}


def test_curate_patient_pixels_follow_slice_and_frame_order():
    frames = series_stack(1, [16.0, 0.0, 8.0])       # series 1 is the highest slice
    stacks, _ = curate_patient("7", frames, None)
    px = stacks[0].pixels
    assert stacks[0].series_numbers == [2, 3, 1]
    assert stacks[0].slice_positions_mm == [0.0, 8.0, 16.0]
    assert [int(px[t, k, 0, 0]) for k in range(3) for t in range(3)] == \
        [200, 201, 202, 300, 301, 302, 100, 101, 102]


def test_resampling_in_frame_batches_equals_one_pass(monkeypatch):
    """A downscaled stack (and its masks) is the same whether its frames are resampled one at a
    time or all together (the batch size only keeps the work in cache)."""
    rng = np.random.default_rng(3)
    frames = [frame(k + 1, 8.0 * k, t, rows=300, cols=240, spacing=(1.0, 1.0))
              for k in range(2) for t in range(5)]
    for f in frames:
        f.pixels = rng.integers(0, 4000, (300, 240), dtype=np.uint16)
    masks = {f.sop_uid: rng.integers(0, 4, (300, 240), dtype=np.uint8) for f in frames}
    monkeypatch.setattr("hpc_seg.cardiac.curate.stack.RESAMPLE_BATCH_BYTES", 1)
    one_at_a_time, _ = curate_patient("7", frames, masks)
    monkeypatch.setattr("hpc_seg.cardiac.curate.stack.RESAMPLE_BATCH_BYTES", 1 << 40)
    together, _ = curate_patient("7", frames, masks)
    assert one_at_a_time[0].pixels.shape == (5, 2, 256, 205)
    assert np.array_equal(one_at_a_time[0].pixels, together[0].pixels)
    assert np.array_equal(one_at_a_time[0].mask, together[0].mask)
    # frame t of slice k really is frame t's own resampled image, not a neighbour's
    assert not np.array_equal(together[0].pixels[0, 0], together[0].pixels[1, 0])
