"""User-facing errors.

Anything a user can fix (a bad path, a malformed config, no SLURM where one was asked for) raises
:class:`HpcSegError`. The CLI prints it as one line and exits non-zero; it never shows a traceback
for these, because the message already names the file and the reason.
"""

from __future__ import annotations


class HpcSegError(Exception):
    """An error the user can act on; its message names the path or key and the cause."""

    exit_code: int = 2


class ConfigError(HpcSegError):
    """A job definition (TOML) is invalid: unknown key, wrong type, out-of-range value."""


class InputError(HpcSegError):
    """Input data is missing, unreadable, or contains nothing usable."""


class CorruptShardError(InputError):
    """A Parquet shard that cannot be read (truncated, overwritten, not Parquet at all)."""


class MissingTableError(InputError, FileNotFoundError):
    """A table directory has no finished shard (wrong path, or its stage has not run).

    Also a ``FileNotFoundError`` so that callers that treat "not there yet" as a normal case keep
    catching it, while the CLI prints it as one line.
    """


class OutputError(HpcSegError):
    """The output location cannot be written (permission, disk full, read-only file system)."""


class SettingsChangedError(ConfigError, OutputError):
    """A folder holds work made with other settings (a generated cohort, a training run, its
    checkpoints): resuming would mix the two. Both a config and an output problem, so callers
    that catch either keep catching it."""


class LaunchError(HpcSegError):
    """A job could not be submitted, or the requested executor is not available."""


class WorkerDiedError(HpcSegError):
    """A worker process was killed (out of memory, a signal) in the middle of its work."""
