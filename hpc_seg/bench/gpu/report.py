"""The results of a ``hpc-seg bench gpu`` run: one record per check, the JSON file and the log.

``gpu_checks.json`` is rewritten (atomically) after every check, so a run killed from outside
still leaves the checks it finished. Its schema (:func:`check_document`)::

    {"schema": 1, "dry_run": bool, "profile": str, "started": ISO time, "finished": ISO time | null,
     "environment": {...}, "checks": [{"name": str, "figures": {...}, "target": str | null,
     "met": true | false | null, "error": str | null, "seconds": float, "summary": str,
     "note": str}]}

``met`` is null where nothing was judged: a check that failed, a check without a target, and every
check of a dry run (toy sizes say nothing about the targets). ``error`` holds the check's
exception (type and message) or why it was stopped, and is null when the check finished.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hpc_seg.storage.shards import atomic_write_bytes

SCHEMA_VERSION = 1
JSON_NAME = "gpu_checks.json"
LOG_NAME = "gpu_checks.log"


@dataclass(kw_only=True)
class CheckOutcome:
    """What a check function returns: its figures, and its target judged on them."""

    figures: dict[str, Any]
    target: str | None = None
    met: bool | None = None
    summary: str = ""
    """one line for the log: the headline figures"""


@dataclass(kw_only=True)
class CheckResult:
    """One check's record in ``gpu_checks.json``."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    met: bool | None = None
    error: str | None = None
    seconds: float = 0.0
    summary: str = ""
    note: str = ""

    @classmethod
    def from_outcome(cls, name: str, outcome: CheckOutcome, seconds: float,
                     dry_run: bool) -> CheckResult:
        met, note = outcome.met, ""
        if dry_run and met is not None:
            # The judging code ran; its verdict on toy sizes is kept out of "met".
            note = f"dry run at toy sizes: target not judged (it would read {str(met).lower()})"
            met = None
        return cls(name=name, figures=json_safe(outcome.figures), target=outcome.target, met=met,
                   seconds=seconds, summary=outcome.summary, note=note)


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as None, tuples as lists and other objects as strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def new_document(*, dry_run: bool, profile: str, started: str,
                 environment: dict[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "dry_run": dry_run, "profile": profile, "started": started,
            "finished": None, "environment": json_safe(environment), "checks": []}


def write_document(doc: dict[str, Any], out_dir: Path) -> Path:
    check_document(doc)
    return atomic_write_bytes(json.dumps(doc, indent=2, allow_nan=False).encode() + b"\n",
                              out_dir / JSON_NAME)


_TOP = {"schema": int, "dry_run": bool, "profile": str, "started": str, "finished": (str, type(None)),
        "environment": dict, "checks": list}
_CHECK = {"name": str, "figures": dict, "target": (str, type(None)), "met": (bool, type(None)),
          "error": (str, type(None)), "seconds": (int, float), "summary": str, "note": str}


def check_document(doc: Any) -> None:
    """Raise ``ValueError`` listing every way ``doc`` departs from the schema above."""
    problems: list[str] = []

    def keys(obj: Any, spec: dict[str, Any], where: str) -> None:
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected an object, got {type(obj).__name__}")
            return
        for key, kind in spec.items():
            if key not in obj:
                problems.append(f"{where}: missing {key!r}")
            elif not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
                problems.append(f"{where}.{key}: {type(obj[key]).__name__} {obj[key]!r}")
        extra = sorted(set(obj) - set(spec))
        if extra:
            problems.append(f"{where}: unexpected {extra}")

    keys(doc, _TOP, "document")
    if isinstance(doc, dict):
        if doc.get("schema") != SCHEMA_VERSION:
            problems.append(f"document.schema: {doc.get('schema')!r}, expected {SCHEMA_VERSION}")
        names = []
        for i, check in enumerate(doc.get("checks") or []):
            keys(check, _CHECK, f"checks[{i}]")
            if not isinstance(check, dict):
                continue
            names.append(check.get("name"))
            if check.get("error") is not None and check.get("met") is not None:
                problems.append(f"checks[{i}]: a failed check cannot have met a target")
            if doc.get("dry_run") and check.get("met") is not None:
                problems.append(f"checks[{i}]: a dry run judges no target (met must be null)")
            if isinstance(check.get("seconds"), (int, float)) and check["seconds"] < 0:
                problems.append(f"checks[{i}].seconds: negative")
        if len(set(names)) != len(names):
            problems.append(f"document.checks: duplicate names {names}")
    try:
        json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as exc:
        problems.append(f"document: not plain JSON ({exc})")
    if problems:
        raise ValueError("gpu_checks.json schema: " + "; ".join(problems))


def log_line(result: CheckResult) -> str:
    """``[ok]   name   12.3 s  met: yes  <summary>`` or ``[ERROR] name ... <error>``."""
    if result.error is not None:
        status, tail = "ERROR", result.error.splitlines()[0] if result.error else ""
    else:
        status = "ok"
        verdict = {True: "met", False: "NOT met", None: "not judged"}[result.met]
        tail = f"target {verdict}" + (f" ({result.target})" if result.target else "")
        tail = f"{result.summary}  [{tail}]" if result.summary else f"[{tail}]"
    return f"[{status:5s}] {result.name:7s} {result.seconds:7.1f} s  {tail}"


def append_log(out_dir: Path, text: str) -> None:
    with open(out_dir / LOG_NAME, "a", encoding="utf-8") as fh:
        fh.write(text.rstrip("\n") + "\n")


def as_dict(result: CheckResult) -> dict[str, Any]:
    return json_safe(asdict(result))
