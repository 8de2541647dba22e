"""Cases for the HAD-Net loops: loading a rank's share, and the epoch order.

Data order is a function of (seed, epoch, global batch) only, never of the number of ranks, so
that a 2-rank DDP run and a 1-process run with 2 accumulated micro-batches see the same samples in
each optimiser step, and a resumed run continues exactly where it stopped.

The global batch ``G = world_size * grad_accum``. Cases are numbered in ``case_id`` order; class
``q`` holds the cases ``i`` with ``i % G == q``. Each epoch every class is shuffled with a generator
seeded from (seed, epoch, q), and step ``s`` takes element ``s`` of every class. Slot ``q`` of a
step is processed by rank ``q % world_size`` as micro-batch ``q // world_size``, so a rank only ever
needs the cases ``i % world_size == rank``: it loads 1/world_size of the cohort. ``floor(N / G)``
steps per epoch; the few cases left over change every epoch (like ``drop_last``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Student input: FLAIR, T1, T2 out of the stored teacher order (FLAIR, T1ce, T1, T2).
STUDENT_CHANNELS = (0, 2, 3)
TEACHER_CHANNELS = (0, 1, 2, 3)


def role_channels(role: str) -> tuple[int, ...]:
    """Input channels of the stored 4-channel image that a ``teacher``/``student`` sees."""
    return TEACHER_CHANNELS if role == "teacher" else STUDENT_CHANNELS


@dataclass
class Case:
    """One preprocessed, padded case as tensors (on CPU until a step moves it)."""

    index: int                      # position in case_id order within its split
    case_id: str
    image: torch.Tensor             # [4, D, H, W] float16/32 in [0, 1] (as stored; cast on device)
    label: torch.Tensor | None      # [D, H, W] uint8 classes 0..3 (int64 on device)
    mask: torch.Tensor              # [D, H, W] bool


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample's randomness (augmentation, dropout) in one epoch."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_steps(n_cases: int, seed: int, epoch: int, global_batch: int) -> list[list[int]]:
    """Case indices of each optimiser step of ``epoch``: ``steps[s][slot]`` (see module doc)."""
    classes = []
    for q in range(global_batch):
        members = np.arange(q, n_cases, global_batch)
        rng = np.random.default_rng([seed, epoch, q, 0x4AD])
        classes.append(rng.permutation(members))
    n_steps = min(len(c) for c in classes) if classes else 0
    return [[int(c[s]) for c in classes] for s in range(n_steps)]


def rank_slots(rank: int, world_size: int, grad_accum: int) -> list[int]:
    """The slots of a step that ``rank`` processes, in micro-batch order."""
    return [j * world_size + rank for j in range(grad_accum)]


# Heavy readers (nibabel, scipy) are imported lazily: the loops import this module at start-up.


def row_tensors(row: dict) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(image [4,D,H,W], label [D,H,W] uint8 | None, mask bool)`` of one row.

    Kept in their compact stored dtypes (a rank holds its share of the cohort in memory: at the
    published size float16 + uint8 is ~40 MB a case); the loops cast on the device.
    """
    from hpc_seg.hadnet.brats.preprocess import case_tensors

    image, label, mask = case_tensors(row, compact=True)
    return (torch.as_tensor(image), None if label is None else torch.as_tensor(label),
            torch.as_tensor(mask))


def load_cases(pre_dir: str | Path, split: str, rank: int = 0, world_size: int = 1) -> list[Case]:
    """This rank's cases of ``split``: indices ``i % world_size == rank`` in ``case_id`` order."""
    from hpc_seg.hadnet.brats.shards import case_index, read_cases

    order = {cid: i for i, cid in enumerate(case_index(Path(pre_dir), split))}
    cases = []
    for row in read_cases(Path(pre_dir), split=split, rank=rank, world_size=world_size):
        image, label, mask = row_tensors(row)
        cases.append(Case(index=order[row["case_id"]], case_id=str(row["case_id"]),
                          image=image, label=label, mask=mask))
    return cases


def toy_cases(n: int, shape: tuple[int, int, int], seed: int = 0, start_index: int = 0
              ) -> list[Case]:
    """Tiny in-memory cases (tests, benchmarks): an ellipsoid brain with one spherical tumour.

    Edema is bright in FLAIR/T2, the enhancing rim bright in T1ce only (so the student sees it
    weakly through T1 texture), the necrotic core dark. Not a substitute for ``synth brats``.
    """
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    brain = (zz ** 2 + yy ** 2 + xx ** 2) < 0.85
    out = []
    for i in range(n):
        c = rng.uniform(-0.3, 0.3, 3)
        r = np.sqrt((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2)
        rad = rng.uniform(0.15, 0.3)
        label = np.zeros(shape, np.int64)
        label[(r < rad * 1.6) & brain] = 2
        label[(r < rad) & brain] = 3
        label[(r < rad * 0.5) & brain] = 1
        base = rng.normal(0.4, 0.05, (4, *shape))
        base[0][label == 2] += 0.4          # FLAIR edema
        base[3][label == 2] += 0.3          # T2 edema
        base[1][label == 3] += 0.5          # T1ce enhancement
        base[2][label == 3] += 0.08         # faint T1 signal
        base[:, label == 1] -= 0.2
        image = np.clip(base, 0, 1) * brain
        out.append(Case(index=start_index + i, case_id=f"toy{start_index + i:03d}",
                        image=torch.as_tensor(image, dtype=torch.float32),
                        label=torch.as_tensor(label.astype(np.uint8)), mask=torch.as_tensor(brain)))
    return out
