"""Local rank processes: results by rank, and ranks that never finish are killed at a timeout."""

from __future__ import annotations

import os
import time

import pytest

from hpc_seg.launch.spawn import spawn_ranks


def rank_and_world() -> tuple[int, int]:
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def stuck_on_rank_one(path: str) -> int:
    rank = int(os.environ["RANK"])
    with open(f"{path}.{rank}", "w") as fh:
        fh.write(str(os.getpid()))
    if rank == 1:
        time.sleep(600)  # a collective that never completes
    return rank


def test_results_come_back_by_rank():
    assert spawn_ranks(2, rank_and_world) == [(0, 2), (1, 2)]


def test_ranks_still_running_at_the_timeout_are_killed(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"stuck_on_rank_one: 2 rank\(s\) still running after 20 s"):
        spawn_ranks(2, stuck_on_rank_one, str(tmp_path / "pid"), timeout_s=20)
    assert time.monotonic() - t0 < 60
    pid = int((tmp_path / "pid.1").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
