"""One check in its own process: ``python -m hpc_seg.bench.gpu.child --function mod:fn ...``.

A process per check keeps the checks apart: a hang can be killed without losing the others, GPU
memory peaks start from zero, and a check that breaks CUDA or the process group leaves the next
one a clean device. The check function is called as ``fn(profile, workdir) -> CheckOutcome``; the
outcome, or the exception that ended it, is written to ``--result`` as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from pathlib import Path

from hpc_seg.bench.gpu.profile import GpuBenchProfile
from hpc_seg.bench.gpu.report import CheckOutcome, json_safe
from hpc_seg.storage.shards import atomic_write_bytes


def describe_exception(exc: BaseException) -> str:
    """``Type: message (at file:line in function)``: the innermost frame of the traceback."""
    text = f"{type(exc).__name__}: {exc}".strip()
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {last.filename}:{last.lineno} in {last.name})"
    return text


def load_check(spec: str):
    """The function named by ``module:function`` (imported here, in the check's own process)."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"check function {spec!r}: expected 'module:function'")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpc_seg.bench.gpu.child")
    parser.add_argument("--name", required=True)
    parser.add_argument("--function", required=True, help="module:function of the check")
    parser.add_argument("--profile", required=True, help="the run's profile (JSON file)")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)

    from hpc_seg.logs import setup_logging

    setup_logging(args.verbose)
    result = Path(args.result)
    try:
        fn = load_check(args.function)
        profile = GpuBenchProfile.from_json(json.loads(Path(args.profile).read_text()))
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        outcome = fn(profile, workdir)
        if not isinstance(outcome, CheckOutcome):
            raise TypeError(f"check {args.name} returned {type(outcome).__name__}, not a "
                            "CheckOutcome")
        record = {"figures": json_safe(outcome.figures), "target": outcome.target,
                  "met": outcome.met, "summary": outcome.summary}
        code = 0
    except BaseException as exc:  # noqa: BLE001 - the parent records whatever ended the check
        traceback.print_exc()
        record = {"error": describe_exception(exc)}
        code = 1
    sys.stdout.flush()
    atomic_write_bytes(json.dumps(record, allow_nan=False).encode(), result)
    return code


if __name__ == "__main__":
    sys.exit(main())
