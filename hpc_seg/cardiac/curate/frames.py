"""Step 6 (frames): which source frame fills each cardiac phase of a stack.

Frames are aligned across slices by their trigger time, never by their position in a slice's
list: a slice that lost phase 20 keeps phase 21 in slot 21 and gets slot 20 filled in place
from the previous phase (the published curation's last step). The target phase count comes from the
headers (``CardiacNumberOfImages``) and the majority of slices, so a phase that most slices
lost is still a slot of the stack.

Slices of one stack are acquired in different breath-holds, so their RR intervals (and with them
the trigger-time spacing) differ by several per cent: a slice's frames are therefore placed on
the slot grid with the slice's own frame interval, not matched to the nearest reference time
(which drifts by a whole slot within 30 phases at a 4 % heart-rate difference).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from hpc_seg.cardiac.curate.modal import mode_largest

#: a header phase count above this many times the majority's is not trusted (a wrong header
#: must not turn every slice into mostly copied frames)
HEADER_MAX_RATIO = 2.0


class _Frame(Protocol):
    file: str
    trigger_time_ms: float
    instance_number: int
    cardiac_images: int


class _Unit(Protocol):
    frames: list
    series_number: int
    position: float


def target_frame_count(units: Sequence[_Unit]) -> int:
    """The stack's phase count: the header's ``CardiacNumberOfImages`` when it is at least the
    majority's phase count (a phase most slices lost is still a phase), else the majority.

    A slice's phase count is its frame count, or more where its trigger times leave a gap of a
    whole frame interval (without a header, a phase that most slices lost is still counted)."""
    majority = mode_largest([_implied_phases(u, _median_step(units)) for u in units])
    declared = [f.cardiac_images for u in units for f in u.frames[:1] if f.cardiac_images > 0]
    header = mode_largest(declared) if declared else 0
    if majority <= header <= HEADER_MAX_RATIO * majority:
        return header
    return majority


def _median_step(units: Sequence[_Unit]) -> float:
    diffs = np.concatenate([np.diff([f.trigger_time_ms for f in u.frames]) for u in units
                            if len(u.frames) > 1] or [np.zeros(0)])
    diffs = diffs[diffs > 0]
    return float(np.median(diffs)) if diffs.size else 0.0


def _implied_phases(unit: _Unit, reference: float) -> int:
    """Frames of the slice plus the whole-interval gaps between its trigger times."""
    times = np.array([f.trigger_time_ms for f in unit.frames], dtype=float)
    diffs = np.diff(times)
    if len(times) < 2 or (diffs <= 0).any() or reference <= 0:
        return len(times)
    step = _interval(diffs, reference)
    return max(len(times), int(round((times[-1] - times[0]) / step)) + 1)


def reference_frame_times(units: Sequence[_Unit], n_frames: int) -> list[float]:
    """Nominal trigger time of each of the ``n_frames`` slots.

    The per-slot median over the slices that hold exactly ``n_frames`` frames; when no slice is
    complete, a regular grid from the median first trigger time and the median frame interval.
    """
    full = [u for u in units if len(u.frames) == n_frames]
    if full:
        times = np.array([[f.trigger_time_ms for f in u.frames] for u in full], dtype=float)
        return np.median(times, axis=0).round(3).tolist()
    firsts = [u.frames[0].trigger_time_ms for u in units if u.frames]
    diffs = np.concatenate([np.diff([f.trigger_time_ms for f in u.frames]) for u in units
                            if len(u.frames) > 1] or [np.zeros(0)])
    diffs = diffs[diffs > 0]
    step = _interval(diffs, float(np.median(diffs)) if diffs.size else 0.0)
    t0 = float(np.median(firsts)) if firsts else 0.0
    return (t0 + step * np.arange(n_frames)).round(3).tolist()


def _interval(diffs: np.ndarray, reference: float) -> float:
    """A slice's frame interval from its trigger-time differences: each difference counts as
    the whole number of ``reference`` intervals nearest to it (a gap of one lost phase is two
    intervals), so a few gaps do not bias the estimate."""
    if diffs.size == 0:
        return reference
    if reference <= 0:
        return float(np.median(diffs))
    multiples = np.maximum(1, np.round(diffs / reference))
    return float(np.median(diffs / multiples))


def phase_slots(unit: _Unit, ref_times: Sequence[float]) -> list[int]:
    """Slot (0-based phase) of each of ``unit.frames`` (sorted by trigger time) for a slice
    with fewer frames than slots; strictly increasing, within the slot range."""
    n, frames = len(ref_times), unit.frames
    times = np.array([f.trigger_time_ms for f in frames], dtype=float)
    ref = np.asarray(ref_times, dtype=float)
    ref_step = float(np.median(np.diff(ref))) if n > 1 else 0.0
    diffs = np.diff(times)
    if len(frames) > 1 and (diffs <= 0).any() or ref_step <= 0:
        estimate = _slots_from_instance_numbers(frames, n)
    else:
        step = _interval(diffs, ref_step)
        estimate = np.round((times - ref[0]) / step).astype(int).tolist()
    # Keep the order and the range: slot i in [previous + 1, n - frames left].
    slots, low = [], 0
    for i, s in enumerate(estimate):
        s = min(max(int(s), low), n - (len(frames) - i))
        slots.append(s)
        low = s + 1
    return slots


def _slots_from_instance_numbers(frames: list, n: int) -> list[int]:
    """Without usable trigger times: InstanceNumber counts phases within a cine series (1..n);
    anything else keeps the list order."""
    numbers = [f.instance_number for f in frames]
    if numbers and min(numbers) >= 1 and max(numbers) <= n and len(set(numbers)) == len(numbers):
        return [k - 1 for k in numbers]
    return list(range(len(frames)))


def fill_slots(unit: _Unit, ref_times: Sequence[float]) -> tuple[list[int], list[int]]:
    """(index into ``unit.frames`` for every slot, the slots that were filled). An empty slot
    copies the previous phase (the first available one for leading gaps)."""
    placed = dict(zip(phase_slots(unit, ref_times), range(len(unit.frames))))
    first = placed[min(placed)]
    out, missing, prev = [], [], first
    for t in range(len(ref_times)):
        if t in placed:
            prev = placed[t]
        else:
            missing.append(t)
        out.append(prev)
    return out, missing
