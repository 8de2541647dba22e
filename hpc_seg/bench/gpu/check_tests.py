"""The tests marked ``gpu``: pytest in a child process, counted from its JUnit XML.

Without CUDA such tests are skipped (tests/conftest.py); the dry run runs them on CPU instead
(``HPC_SEG_GPU_TESTS_DEVICE=cpu``). A failing test makes the check an error, with the ids of the
failed tests; the target is that they ran at all (not skipped for want of a GPU).
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from hpc_seg.bench.gpu.profile import GpuBenchProfile
from hpc_seg.bench.gpu.report import CheckOutcome
from hpc_seg.errors import InputError

REPO = Path(__file__).resolve().parents[3]


def junit_counts(path: Path) -> dict[str, object]:
    """Totals of a JUnit XML report and the ids of the failed tests."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")}
    failed = [f"{case.get('classname')}::{case.get('name')}" for s in suites
              for case in s.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {"passed": passed, "failed": counts["failures"] + counts["errors"],
            "skipped": counts["skipped"], "failed_ids": failed}


def run_check(profile: GpuBenchProfile, workdir: Path) -> CheckOutcome:
    cfg = profile.tests
    paths = [REPO / p for p in cfg.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"test folder(s) {missing} not found: the tests ship with the "
                         "repository, not with an installed package; run from a clone")
    report = workdir / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", cfg.marker, "-q", "-p", "no:cacheprovider",
           f"--junitxml={report}", *map(str, paths)]
    print("$", " ".join(cmd), flush=True)
    code = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL).returncode
    if not report.is_file():
        raise RuntimeError(f"pytest exited with code {code} and wrote no report")
    counts = junit_counts(report)
    # 0: all passed; 1: some failed (counted below); 5: nothing selected, which means the marker
    # lost its tests. Anything else is pytest itself failing (usage, internal error).
    if code not in (0, 1, 5):
        raise RuntimeError(f"pytest exited with code {code} (counts {counts})")
    if code == 5:
        raise RuntimeError(f"no test is marked {cfg.marker!r} under {list(cfg.paths)}")
    summary = f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
    if counts["failed"]:
        # a failing test is a broken code path, in the dry run as on the GPU: an error of the run
        raise RuntimeError(f"{summary}: {', '.join(counts['failed_ids'])} (see the check's "
                           "output for the tracebacks)")
    return CheckOutcome(figures={**counts, "pytest_exit_code": code},
                        target=f"the tests marked {cfg.marker} run (not skipped) and pass",
                        met=counts["passed"] > 0, summary=summary)
