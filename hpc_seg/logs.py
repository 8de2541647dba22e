"""Logging set-up shared by every command: rich console output on stderr, plain text in files."""

from __future__ import annotations

import logging
import os

_CONFIGURED = False


def setup_logging(verbosity: int = 0) -> None:
    """Configure the root logger once. ``verbosity`` 0 = INFO, 1+ = DEBUG, -1 = WARNING."""
    global _CONFIGURED
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    if _CONFIGURED:
        logging.getLogger().setLevel(level)
        return
    if os.environ.get("HPC_SEG_PLAIN_LOGS") or not _stderr_is_tty():
        # Batch jobs write to SLURM log files: keep them greppable, one line per record.
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        from rich.logging import RichHandler

        logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                            handlers=[RichHandler(rich_tracebacks=False, show_path=False)])
    # Third-party libraries are chatty at INFO; users care about ours.
    for noisy in ("ray", "optuna", "matplotlib", "PIL", "urllib3", "filelock", "highdicom"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    quiet_pydicom(verbosity)
    _CONFIGURED = True


def quiet_pydicom(verbosity: int = 0) -> None:
    """Keep pydicom's own reports off the console unless ``-v``: it logs an ERROR with a full
    traceback for every plugin that fails to decode a file, and warns about each odd value,
    while ingest already writes one line (and an ``issues`` row) per skipped file."""
    import warnings

    if verbosity > 0:
        return
    # A filter on the handlers, not a logger level: pydicom sets its logger's level itself
    # when it is imported, which happens after this.
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _NotPydicom) for f in handler.filters):
            handler.addFilter(_NotPydicom())
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")


class _NotPydicom(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "pydicom" or record.name.startswith("pydicom."))


#: the loggers a multi-stage run keeps at INFO by default: one line per stage (pipeline), per
#: search trial and the search's set-up incl. the dashboard address (hpo), and progress lines
CONSOLE_LOGGERS = ("hpc_seg.pipeline", "hpc_seg.progress", "hpc_seg.hpo.optuna_searcher",
                   "hpc_seg.hpo.tuner")


def quiet_console(verbosity: int) -> None:
    """For commands that chain many steps (``hpc-seg run``): at the default verbosity only
    :data:`CONSOLE_LOGGERS` speak at INFO and every other hpc-seg logger shows warnings and
    errors, so the summary is not lost among the stages' details; ``-v`` shows everything."""
    if verbosity != 0:
        return
    logging.getLogger("hpc_seg").setLevel(logging.WARNING)
    for name in CONSOLE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def verbose_enabled() -> bool:
    """True under ``-v``: third-party progress tables (Ray Tune's) are shown only then."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def _stderr_is_tty() -> bool:
    import sys

    return sys.stderr.isatty()
