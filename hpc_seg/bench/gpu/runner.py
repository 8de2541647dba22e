"""Run the checks one after another, each in a child process under its own time limit.

A check that raises is recorded with its exception; one that outlives its limit is killed with
its whole process group (spawned ranks, DataLoader workers, Ray's driver) and recorded as timed
out; either way the next check runs. ``gpu_checks.json`` and the log are written after every
check. With a ``budget`` the run as a whole ends in time: a check's limit shrinks to what is left,
and a check that would start with too little left is recorded as not run.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_seg.bench.gpu.profile import CHECK_NAMES, GpuBenchProfile
from hpc_seg.bench.gpu.report import (LOG_NAME, CheckResult, append_log, as_dict, log_line,
                                      new_document, write_document)
from hpc_seg.storage.shards import atomic_write_bytes

BUILTIN_CHECKS = {name: f"hpc_seg.bench.gpu.check_{name}:run_check" for name in CHECK_NAMES}
"""check name -> ``module:function``"""

DEFAULT_LIMIT_S = 120.0
"""time limit of a check the profile names no limit for (one added with ``--extra-check``)"""
MIN_START_S = 10.0
"""a check is not started with less of the run's budget left than this"""
KILL_GRACE_S = 10.0
"""after SIGTERM, seconds before SIGKILL"""
TAIL_LINES = 60
"""lines of a failed check's own output copied into the short log (its traceback, the lines before)"""


@dataclass(frozen=True)
class CheckSpec:
    name: str
    function: str
    """``module:function`` called as ``function(profile, workdir) -> CheckOutcome``"""


def builtin_specs(names: list[str] | None = None) -> list[CheckSpec]:
    return [CheckSpec(n, BUILTIN_CHECKS[n]) for n in (names or list(CHECK_NAMES))]


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def environment() -> dict[str, Any]:
    """Where the run happened. The parent never touches CUDA (each check's process does)."""
    import torch

    from hpc_seg import __version__
    from hpc_seg.runtime.device import detect_cpu_features

    repo = Path(__file__).resolve().parents[3]
    return {
        "host": platform.node(), "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "hpc_seg": __version__,
        "git_commit": _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]),
        "gpu": _first_line(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                            "--format=csv,noheader"]),
        "cpu": detect_cpu_features().describe(), "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }


def _tail(path: Path, n: int = TAIL_LINES) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()][-n:]


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the check's process group, SIGKILL after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            # the leader is gone; members of its group may not be
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
        return


def run_one(spec: CheckSpec, profile: GpuBenchProfile, profile_path: Path, workdir: Path,
            limit_s: float, verbose: int = 0) -> CheckResult:
    """Run one check in a child process; its output goes to ``workdir/logs/<name>.log``."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path, result_path = logs / f"{spec.name}.log", workdir / f"{spec.name}.result.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "hpc_seg.bench.gpu.child", "--name", spec.name,
           "--function", spec.function, "--profile", str(profile_path),
           "--workdir", str(workdir / spec.name), "--result", str(result_path)]
    cmd += ["-v"] * verbose
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **profile.check_env(spec.name)}
    t0 = time.perf_counter()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=limit_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code, timed_out = proc.returncode, True
        except BaseException:  # Ctrl-C of the run: take the check down with it
            _kill_group(proc)
            raise
    seconds = time.perf_counter() - t0
    if not timed_out:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what the check left behind (orphaned workers)
        except ProcessLookupError:
            pass
    record: dict[str, Any] = {}
    if result_path.is_file():
        record = json.loads(result_path.read_text())
    if timed_out:
        tail = _tail(log_path, 1)
        error = f"timed out after {limit_s:.0f} s and was killed" + \
            (f" (last output: {tail[-1][:300]})" if tail else "")
    elif "error" in record:
        error = record["error"]
    elif code != 0 or not record:
        tail = _tail(log_path, 1)
        error = f"the check's process exited with code {code} without a result" + \
            (f" (last output: {tail[-1][:300]})" if tail else "")
    else:
        error = None
    if error is not None:
        return CheckResult(name=spec.name, error=error, seconds=seconds,
                           note=f"output: {log_path}")
    from hpc_seg.bench.gpu.report import CheckOutcome

    outcome = CheckOutcome(figures=record.get("figures", {}), target=record.get("target"),
                           met=record.get("met"), summary=record.get("summary", ""))
    return CheckResult.from_outcome(spec.name, outcome, seconds, profile.dry_run)


def run_checks(profile: GpuBenchProfile, specs: list[CheckSpec], out_dir: Path, workdir: Path,
               budget_s: float | None = None, echo: Callable[[str], None] = print,
               verbose: int = 0) -> dict[str, Any]:
    """Run ``specs`` in order; returns the document also written to ``out_dir/gpu_checks.json``."""
    out_dir, workdir = Path(out_dir), Path(workdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (out_dir / LOG_NAME).unlink(missing_ok=True)
    profile_path = atomic_write_bytes(json.dumps(profile.to_json(), indent=2).encode(),
                                      workdir / "profile.json")
    env = environment()
    doc = new_document(dry_run=profile.dry_run, profile=profile.name, started=now_iso(),
                       environment=env)
    write_document(doc, out_dir)
    head = (f"hpc-seg bench gpu, profile {profile.name}{' (dry run: toy sizes on CPU)' if profile.dry_run else ''}, "
            f"{doc['started']}, {env['host']}\n  device: {env['gpu'] or 'no NVIDIA GPU'}; torch "
            f"{env['torch']} (CUDA {env['torch_cuda']}); CPU: {env['cpu']}; load "
            f"{' '.join(f'{x:.1f}' for x in env['load_average'])}")
    append_log(out_dir, head)
    echo(head)
    start = time.perf_counter()
    for spec in specs:
        limit = float(profile.limits.get(spec.name, DEFAULT_LIMIT_S))
        if budget_s is not None:
            left = budget_s - (time.perf_counter() - start)
            if left < MIN_START_S:
                result = CheckResult(name=spec.name, error=f"not run: {left:.0f} s of the run's "
                                     f"{budget_s:.0f} s budget were left")
                _record(doc, result, out_dir, echo)
                continue
            limit = min(limit, left)
        echo(f"  running {spec.name} (limit {limit:.0f} s) ...")
        result = run_one(spec, profile, profile_path, workdir, limit, verbose)
        _record(doc, result, out_dir, echo, workdir / "logs" / f"{spec.name}.log")
    doc["finished"] = now_iso()
    write_document(doc, out_dir)
    errors = [c["name"] for c in doc["checks"] if c["error"] is not None]
    tail = (f"{len(doc['checks'])} checks, {len(errors)} with errors"
            + (f" ({', '.join(errors)})" if errors else "")
            + f", {time.perf_counter() - start:.0f} s; results in {out_dir / 'gpu_checks.json'}")
    append_log(out_dir, tail)
    echo(tail)
    return doc


def _record(doc: dict[str, Any], result: CheckResult, out_dir: Path,
            echo: Callable[[str], None], log_path: Path | None = None) -> None:
    doc["checks"].append(as_dict(result))
    write_document(doc, out_dir)
    line = log_line(result)
    if result.error is not None and log_path is not None:
        # the end of the check's own output, where the traceback is
        line += "\n" + "\n".join(f"      | {t}" for t in _tail(log_path))
    append_log(out_dir, line)
    echo(line)
