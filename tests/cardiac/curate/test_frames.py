"""Step 6 (frames): frames are aligned across slices by trigger time, gaps filled in place.

Each slice of a stack is its own breath-hold with its own heart rate, so the trigger times of
phase k differ a little from slice to slice; the ``phase`` of every test frame is its nominal
phase, and frame k of the curated stack must be nominal phase k on every slice.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpc_seg.cardiac.curate.frames import phase_slots, target_frame_count
from hpc_seg.cardiac.curate.stack import curate_patient
from hpc_seg.cardiac.dicom.frame import DicomFrame

IOP = np.array([1.0, 0, 0, 0, 1, 0])
N_PHASES, N_SLICES = 30, 14


def cine(missing: dict[int, set[int]], *, header: int = N_PHASES, trigger: bool = True,
         ) -> list[DicomFrame]:
    """14 slices x 30 phases; ``missing`` maps a slice to the phases it lost. The RR interval
    varies by up to +-6 % between slices (breath-holds), like real cine."""
    rr = np.linspace(0.94, 1.06, N_SLICES) * 900.0
    frames = []
    for k in range(N_SLICES):
        for phase in range(N_PHASES):
            if phase in missing.get(k, set()):
                continue
            frames.append(DicomFrame(
                file=f"sax_{k}/IM-{phase + 1:04d}.dcm", series_uid=f"uid{k}", series_number=k + 1,
                series_time_s=36000.0 + k, instance_number=phase + 1, sop_uid=f"{k}.{phase}",
                ipp=np.array([0.0, 0.0, 8.0 * k]), iop=IOP, pixel_spacing=(1.5, 1.5), rows=4,
                cols=4, trigger_time_ms=phase * rr[k] / N_PHASES if trigger else 0.0,
                slice_thickness=8.0, pixels=np.full((4, 4), 100 * k + phase, np.uint16),
                cardiac_images=header))
    return frames


def nominal_phase(file: str) -> int:
    return int(file.rsplit("-", 1)[1].split(".")[0]) - 1


def assert_phase_aligned(stack, missing: dict[int, set[int]]) -> None:
    """Frame t of every slice holds nominal phase t, except filled gaps (the previous phase)."""
    assert stack.pixels.shape[0] == N_PHASES
    for use in stack.files:
        lost = missing.get(use.slice, set())
        if min(lost, default=1) == 0:
            continue                          # a leading gap: checked by its own test
        if use.frame in lost:
            assert use.filled and nominal_phase(use.file) == max(p for p in range(use.frame)
                                                                 if p not in lost)
        else:
            assert not use.filled and nominal_phase(use.file) == use.frame, use
        assert stack.pixels[use.frame, use.slice, 0, 0] == 100 * use.slice + nominal_phase(use.file)


@pytest.mark.parametrize("damaged", [range(8, 14), range(6, 14), range(0, 14)],
                         ids=["six_of_14", "majority_8_of_14", "all_14"])
def test_a_phase_lost_by_many_slices_is_filled_in_place(damaged):
    missing = {k: {19} for k in damaged}
    stacks, issues = curate_patient("1", cine(missing), None)
    assert_phase_aligned(stacks[0], missing)
    assert np.allclose(np.diff(stacks[0].frame_times_ms), 30.0, atol=2.0)
    gaps = [i for i in issues if i.problem == "missing_frames"]
    assert len(gaps) == len(damaged) and all("filled frames [19]" in i.detail for i in gaps)
    assert "surplus_frames" not in {i.problem for i in issues}


def test_scattered_and_leading_gaps_and_no_trigger_times():
    missing = {2: {0, 1}, 5: {7, 8, 9}, 9: {29}, 11: {3, 17, 25}}
    stacks, _ = curate_patient("1", cine(missing), None)
    assert_phase_aligned(stacks[0], missing)
    lead = [(u.frame, nominal_phase(u.file), u.filled) for u in stacks[0].files if u.slice == 2][:3]
    assert lead == [(0, 2, True), (1, 2, True), (2, 2, False)]     # leading gap: the first phase kept
    # without TriggerTime, InstanceNumber numbers the phases
    stacks, _ = curate_patient("1", cine({4: {12}}, trigger=False), None)
    assert nominal_phase(next(u.file for u in stacks[0].files if u.slice == 4 and u.frame == 13)) == 13


def test_phase_count_comes_from_the_header_and_the_majority():
    def units(counts, header):
        class F:
            cardiac_images, trigger_time_ms = header, 0.0     # no usable trigger times
        class U:
            def __init__(self, n):
                self.frames = [F()] * n
        return [U(n) for n in counts]
    assert target_frame_count(units([29] * 8 + [30] * 6, 30)) == 30     # header wins over a gap
    assert target_frame_count(units([29] * 8 + [30] * 6, 0)) == 29      # no header, no times
    # no header, but the trigger times show the gap most slices have: still 30 phases
    lost = {k: {19} for k in range(8)}
    assert target_frame_count(_units_of(cine(lost, header=0))) == 30
    assert target_frame_count(units([30] * 14, 25)) == 30               # header below the data
    assert target_frame_count(units([30] * 14, 90)) == 30               # implausible header


def _units_of(frames):
    from hpc_seg.cardiac.curate.steps import group_slice_units

    return group_slice_units(frames)


def test_slots_stay_ordered_and_in_range():
    class F:
        def __init__(self, t):
            self.trigger_time_ms, self.instance_number = t, 0
    class U:
        frames = [F(t) for t in (0.0, 1.0, 2.0, 500.0)]
    assert phase_slots(U(), [0.0, 100.0, 200.0, 300.0, 400.0]) == [0, 1, 2, 4]
