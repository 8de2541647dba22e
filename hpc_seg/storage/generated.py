"""One resumable loop for the synthetic cohort generators (cardiac cine, 7T volunteers, BraTS).

A generator writes its cohort unit by unit (a patient, a volunteer, a case): each unit into a
temporary folder renamed when complete, then a small JSON record under ``OUT/<done_dir>/``. The
folder carries a state file naming the settings that shape its bytes (their hash), so that:

- a re-run with the same settings resumes: units with a record are skipped, half-written
  temporary folders of an interrupted run are removed;
- a folder made with other settings, or one the generator did not make, is refused with an
  :class:`~hpc_seg.errors.OutputError` naming it (``overwrite`` replaces only a folder it made);
- ``workers = 0`` means the process's CPU allocation, as everywhere in hpc-seg; the units run
  in a process pool (fork, where the platform has it: workers start at the first submit, and
  callers need no ``if __name__ == "__main__"`` guard as spawn would demand).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from hpc_seg.config import config_hash
from hpc_seg.errors import OutputError, SettingsChangedError
from hpc_seg.progress import progress_bar
from hpc_seg.runtime.threads import default_workers
from hpc_seg.storage.shards import atomic_write_bytes, output_error

log = logging.getLogger(__name__)


@dataclass
class UnitDone:
    """What writing one unit returns: its key, its manifest entry, and a count for the display."""

    key: str
    entry: dict[str, Any]
    files: int = 0


@dataclass(frozen=True)
class GeneratedFolder:
    """Where a generator keeps its bookkeeping inside OUT, and what it calls its cohort."""

    what: str                   # "synthetic cine cohort": for messages
    state_file: str             # e.g. ".synth-cine.json": marks OUT as the generator's
    done_dir: str               # e.g. ".patients": one JSON record per finished unit
    can_overwrite: bool = False   # the command offers --overwrite


def worker_count(workers: int, units: int) -> int:
    """Processes for ``units`` units: ``workers`` (0 = the process's CPU allocation, by the one
    rule of :mod:`hpc_seg.runtime.threads`), at most one per unit."""
    return max(1, min(default_workers(workers), units))


def open_folder(out: Path, kind: GeneratedFolder, settings: dict[str, Any], *,
                overwrite: bool = False,
                adopt: Callable[[Path], dict[str, Any] | None] | None = None,
                later: dict[str, Any] | None = None) -> None:
    """Make OUT ready for a run with ``settings``: new, resumed, or (``overwrite``) replaced.

    ``adopt(out)`` may return the settings of a folder the generator made before it wrote state
    files (None: not such a folder). ``later`` names settings added to the generator after
    folders were made, with the default that leaves its output as it was: at that default they
    are left out of the settings (and their hash), so such an older folder still resumes.
    Raises :class:`OutputError` for a foreign folder or one made with other settings.
    """
    settings = _without_defaults(settings, later or {})
    state = {"generator": settings, "hash": config_hash(settings)}
    state_path = out / kind.state_file
    if out.exists() and any(out.iterdir()):
        if state_path.is_file():
            previous: dict[str, Any] | None = json.loads(state_path.read_text())
        else:
            old = adopt(out) if adopt is not None else None
            old = None if old is None else _without_defaults(old, later or {})
            previous = None if old is None else {"generator": old, "hash": config_hash(old)}
        ours = previous is not None
        same = ours and previous.get("hash") == state["hash"]
        if overwrite and ours:
            shutil.rmtree(out)
        elif overwrite:
            raise OutputError(f"{out}: exists and is not a {kind.what} (no {kind.state_file}); "
                              "refusing to delete it, pick another folder")
        elif not ours:
            raise OutputError(f"{out}: exists, is not empty and is not a {kind.what}; pick "
                              "another folder")
        elif not same:
            changed = _changed(previous.get("generator", {}), settings)  # type: ignore[union-attr]
            raise SettingsChangedError(f"{out}: holds a {kind.what} made with other settings "
                                       f"({changed}); "
                                       "pick another folder"
                                       + (" or pass --overwrite" if kind.can_overwrite else ""))
        else:
            for stale in [*out.glob(".tmp-*"), *out.glob("*/.tmp-*")]:
                shutil.rmtree(stale, ignore_errors=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out, exc) from None
    atomic_write_bytes(json.dumps(state, indent=1).encode(), state_path)


def _without_defaults(settings: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if not (k in later and v == later[k])}


def _changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    shown = ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in keys[:4])
    return shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "") if keys else "?"


def generate_units(out: Path, kind: GeneratedFolder, units: Iterable[Any],
                   write: Callable[[Any], UnitDone], key: Callable[[Any], str], *,
                   workers: int, label: str, unit: str,
                   extra_unit: str | None = None) -> dict[str, dict[str, Any]]:
    """Write every unit that has no record yet with ``write(unit)`` (picklable: it may run in
    another process) and return ``{key: entry}`` of all units, finished earlier or now.

    Call :func:`open_folder` first. ``key(unit)`` names a unit's record.
    """
    units = list(units)
    done_dir = out / kind.done_dir
    entries: dict[str, dict[str, Any]] = {}
    for u in units:
        record = done_dir / f"{key(u)}.json"
        if record.is_file():
            entries[key(u)] = json.loads(record.read_text())
    todo = [u for u in units if key(u) not in entries]
    n = worker_count(workers, len(todo))
    log.info("%s: %d %s (%d to do) into %s with %d worker(s)", label, len(units), unit,
             len(todo), out, n)
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=n, mp_context=get_context(method)) if n > 1 else None
    try:
        futures = [pool.submit(write, u) for u in todo] if pool else []
        with progress_bar(label, total=len(units), unit=unit, extra_unit=extra_unit) as bar:
            bar.advance(len(entries))
            results = (f.result() for f in as_completed(futures)) if pool else (
                write(u) for u in todo)
            for done in results:
                entries[done.key] = done.entry
                atomic_write_bytes(json.dumps(done.entry).encode(),
                                   done_dir / f"{done.key}.json")
                bar.advance(1, extra=done.files)
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    return entries
