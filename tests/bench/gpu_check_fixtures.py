"""Check functions for the tests of ``hpc-seg bench gpu``'s runner (run in its child processes)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from hpc_seg.bench.gpu.report import CheckOutcome


def ok_check(profile, workdir: Path) -> CheckOutcome:
    return CheckOutcome(figures={"images_per_s": 12.5, "not_a_number": float("nan"),
                                 "per_worker": {1: 3.0}},
                        target="images_per_s >= 10", met=True, summary="12.5 img/s")


def failing_check(profile, workdir: Path) -> CheckOutcome:
    raise RuntimeError("injected failure: the step returned NaN")


def hanging_check(profile, workdir: Path) -> CheckOutcome:
    # a grandchild too, as a check's spawned ranks or loader workers would be
    child = subprocess.Popen(["sleep", "600"])
    (workdir / "pids").write_text(f"{os.getpid()} {child.pid}")
    time.sleep(600)
    raise AssertionError("not reached")


def dying_check(profile, workdir: Path) -> CheckOutcome:
    os._exit(3)


def wrong_return_check(profile, workdir: Path):
    return {"images_per_s": 1.0}
