"""Frames with NaN or infinite pixels: found before they are scaled, segmented or measured.

One NaN frame poisons a whole stack: intensity scaling takes a percentile over the stack, which
is then NaN, so every frame is scaled to garbage and the volumes read as plausible numbers.
``predict`` leaves such frames out (no mask, NaN volumes, not ED or ES, a QC reason), ``labels``
skips the stack, ``slices`` leaves their images out.
"""

from __future__ import annotations

import numpy as np


def nonfinite_frames(pixels: np.ndarray) -> list[int]:
    """Indices along the first axis whose values are not all finite (integer data: none)."""
    if pixels.dtype.kind not in "fc" or pixels.size == 0:
        return []
    ok = np.isfinite(pixels.reshape(pixels.shape[0], -1)).all(axis=1)
    return np.flatnonzero(~ok).tolist()


def frames_text(frames: list[int], limit: int = 10) -> str:
    """``[3, 4]`` or ``[0, 1, ... 40 frames]`` for messages."""
    shown = ", ".join(str(f) for f in frames[:limit])
    return f"[{shown}{', ...' if len(frames) > limit else ''}]" + \
        (f" ({len(frames)} frames)" if len(frames) > limit else "")
