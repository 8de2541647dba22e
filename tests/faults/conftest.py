"""Fault injection: run `hpc-seg` as a user would, break it on purpose, and check the re-run.

Every run is a subprocess in its own session (``start_new_session``), so a test can send a signal
to exactly that process group, and list what is left of it afterwards (orphans) without touching
anybody else's processes. Each test gets its own registry of Ray sessions (``XDG_CACHE_HOME``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HPC_SEG = [sys.executable, "-m", "hpc_seg.cli"]


def fault_env(tmp_path: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
            "RAY_AUTH_MODE": "disabled", "HPC_SEG_PLAIN_LOGS": "1",
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
            # A run that hangs is sent SIGABRT (Run.finish): Python then prints every thread's
            # stack into the run's log, so a failed test says where it hung.
            "PYTHONFAULTHANDLER": "1"}


def session_processes(sid: int) -> list[int]:
    """Live processes of session ``sid`` (zombies excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


def _interactive_sigint() -> None:
    """Ctrl-C as in a terminal: a test run started in the background (``cmd &`` in a script,
    ``nohup``) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt, so the
    Ctrl-C tests would test nothing but the shell that started pytest."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Run:
    """One `hpc-seg` subprocess in its own session."""

    def __init__(self, args: list[str], tmp_path: Path, name: str):
        self.log = tmp_path / f"{name}.log"
        self._fh = self.log.open("w")
        self.proc = subprocess.Popen([*HPC_SEG, *args], env=fault_env(tmp_path), cwd=tmp_path,
                                     stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_interactive_sigint)
        self.sid = self.proc.pid

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                pytest.fail(f"exited ({self.proc.returncode}) before {what}:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        pytest.fail(f"no {what} within {timeout} s:\n{self.output()[-3000:]}")

    def signal(self, sig: int, group: bool = True) -> None:
        (os.killpg if group else os.kill)(self.proc.pid, sig)

    def finish(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)       # the stacks, into the log (fault_env)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            pytest.fail(f"still running after {timeout} s; its stacks (SIGABRT) and log:\n"
                        f"{self.output()[-12000:]}")
        finally:
            self._fh.close()

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def cleanup(self) -> None:
        """Kill whatever is left of the session (after the assertions on orphans)."""
        for pid in session_processes(self.sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def runs(tmp_path):
    """Start `hpc-seg` runs; whatever is left of them is killed at the end of the test."""
    started: list[Run] = []

    def start(args: list[str], name: str) -> Run:
        run = Run([str(a) for a in args], tmp_path, name)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
        run.cleanup()
        if not run._fh.closed:
            run._fh.close()


def temporaries(root: Path) -> list[Path]:
    """Temporary files (``.tmp-*``) and spool folders left anywhere under ``root``."""
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-") or p.name == ".spool"]


def pytest_terminal_summary(terminalreporter) -> None:
    """How many examples the hostile-input fuzz tests tried, by outcome."""
    fuzz = sys.modules.get("tests.faults.test_fuzz_hostile")
    for name, outcomes in sorted(getattr(fuzz, "REPORT", {}).items()):
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
        terminalreporter.write_line(f"fuzz {name}: {sum(outcomes.values())} examples tried ({shown})")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A debug-preset cardiac model file (seed 0), for the tests that feed predict."""
    import torch

    from hpc_seg.cardiac.train.config import PRESETS, TrainConfig
    from hpc_seg.cardiac.train.model_file import build_model, model_state

    path = tmp_path_factory.mktemp("model") / "model.pt"
    cfg = TrainConfig(**PRESETS["debug"], device="cpu")
    torch.manual_seed(0)
    torch.save(model_state(build_model(cfg), cfg), path)
    return path
