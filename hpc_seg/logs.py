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
    for noisy in ("ray", "optuna", "matplotlib", "PIL", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    _CONFIGURED = True


def _stderr_is_tty() -> bool:
    import sys

    return sys.stderr.isatty()
