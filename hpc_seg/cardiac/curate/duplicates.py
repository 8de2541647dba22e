"""Duplicate images within one slice, found before frames are lined up by trigger time.

A second copy of an image (the same file exported twice, or a copy with a new SOPInstanceUID)
sits at the same position with the same trigger time. Left in, it takes a phase slot of its own:
every later frame shifts by one and the real last frame is cut as surplus. So, within one slice
(one series at one position, :class:`~hpc_seg.cardiac.curate.steps.SliceUnit`), images that share
a trigger time are compared before :mod:`~hpc_seg.cardiac.curate.frames` places them:

- **identical pixels**: copies. One is kept (the one with a label mask, then the lowest
  InstanceNumber, then the shortest file name, as copies get longer ones: ``x (1).dcm``,
  ``x-copy.dcm``) and the others are dropped with a ``duplicate_image`` row naming the kept file.
- **different pixels**, in a slice whose other trigger times tell its phases apart: two versions
  of one phase (an edited or re-exported image). The one with the highest InstanceNumber is kept
  (then the one with a mask, then the first file name): later wins, as the later series wins
  for two slices at one location. The others are dropped with a ``conflicting_image`` row.
- in a slice where every image has the same trigger time (no TriggerTime in the headers, a
  real-time cine), the images are its phases, ordered by InstanceNumber: only a copy with the
  same InstanceNumber and identical pixels is dropped (a real-time series repeats images of
  the same phase across heartbeats; those are not copies).

No real frame is lost: only an image that repeats a phase another image already fills is
dropped, and the slice then has as many frames as phases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container

import numpy as np

from hpc_seg.cardiac.curate.steps import Issue, SliceUnit
from hpc_seg.cardiac.dicom.frame import DicomFrame


def _same_pixels(a: DicomFrame, b: DicomFrame) -> bool:
    if a.pixels is None or b.pixels is None:
        return False
    return a.pixels.shape == b.pixels.shape and bool(np.array_equal(a.pixels, b.pixels))


def drop_duplicate_images(subject: str, units: list[SliceUnit],
                          masks: Container[str] | None = None) -> list[Issue]:
    """Remove duplicate images from each unit's frames in place (see the module docstring);
    returns one issue row per dropped image. ``masks``: the SOPInstanceUIDs that have a mask."""
    have_mask = masks if masks is not None else ()
    issues: list[Issue] = []
    for unit in units:
        informative = len({f.trigger_time_ms for f in unit.frames}) > 1   # they tell phases apart
        by_time: dict[tuple[float, int], list[DicomFrame]] = defaultdict(list)
        for f in unit.frames:
            by_time[(f.trigger_time_ms, 0 if informative else f.instance_number)].append(f)
        if all(len(fs) == 1 for fs in by_time.values()):
            continue
        dropped: set[int] = set()
        for (t, _instance), group in by_time.items():
            if len(group) < 2:
                continue
            # copies first: identical pixels, whatever their UIDs
            remaining: list[DicomFrame] = []
            for f in sorted(group, key=lambda f: (f.sop_uid not in have_mask, f.instance_number,
                                                  len(f.file), f.file)):
                original = next((k for k in remaining if _same_pixels(k, f)), None)
                if original is None:
                    remaining.append(f)
                    continue
                dropped.add(id(f))
                issues.append(Issue(subject, "duplicate_image", f"dropped; kept {original.file}",
                                    f.file, f"series {unit.series_number}, "
                                    f"trigger time {t:g} ms: identical pixels"))
            if not informative or len(remaining) < 2:
                continue
            keep = min(remaining, key=lambda f: (-f.instance_number, f.sop_uid not in have_mask,
                                                 f.file))
            for f in remaining:
                if f is keep:
                    continue
                dropped.add(id(f))
                issues.append(Issue(subject, "conflicting_image",
                                    f"dropped; kept {keep.file} (higher InstanceNumber wins)",
                                    f.file, f"series {unit.series_number}, "
                                    f"trigger time {t:g} ms: two images with different "
                                    f"pixels (InstanceNumber {f.instance_number} vs "
                                    f"{keep.instance_number})"))
        if dropped:
            unit.frames = [f for f in unit.frames if id(f) not in dropped]
    return issues
