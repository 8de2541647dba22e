"""Names from values nobody checked (DICOM headers, file and folder names, TOML values), made
into one safe path component, and proof that a path built from them stays under its root.

A PatientID of ``..`` or ``a/b``, a 5,000-character SeriesDescription or a file name that is not
UTF-8 must neither write outside the output folder nor fail with an OS error. :func:`safe_name`
is the one function every such value goes through before it becomes part of a path:

- a value that is already a plain name (letters, digits, ``.``, ``_``, ``-``; not starting with a
  dot or a dash; at most :data:`MAX_NAME` characters) is returned unchanged, so ordinary ids keep
  their names;
- anything else is rewritten (other characters become ``_``, a leading dot or dash is replaced,
  the length is bounded) and gets a short hash of the original value appended, so two values
  that differ never share a name (``a/b`` and ``a_b`` stay apart).

:func:`under` joins such names to a root and checks, after resolving symlinks, that the result
is still inside the root; :func:`printable` shows a name that is not valid UTF-8 with escapes
(how it appears in tables and messages).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from hpc_seg.errors import OutputError

#: longest name returned (file systems allow 255 bytes; room is left for suffixes such as
#: ``_rot90``, ``_a`` or ``.nii.gz``)
MAX_NAME = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_HASH_CHARS = 10


def printable(text: str) -> str:
    """``text`` with characters that cannot be written as UTF-8 (the surrogate escapes Python uses
    for undecodable bytes in file names) shown as ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_plain(value: str, max_len: int = MAX_NAME) -> bool:
    """True when ``value`` is returned by :func:`safe_name` unchanged."""
    return (0 < len(value) <= max_len and _UNSAFE.search(value) is None
            and not value.startswith((".", "-")))


def safe_name(value: object, *, max_len: int = MAX_NAME, empty: str = "unnamed") -> str:
    """One path component for ``value`` (see the module docstring); never empty, ``.`` or ``..``,
    never longer than ``max_len``, distinct for distinct values."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if is_plain(text, max_len):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:_HASH_CHARS]
    # no leading dot or dash (hidden files, '.', '..', options), no padding underscores
    cleaned = _UNSAFE.sub("_", text).lstrip("._-").rstrip("_") or empty
    return f"{cleaned[:max(1, max_len - _HASH_CHARS - 1)]}-{digest}"


def under(root: str | Path, *names: str) -> Path:
    """``root / names...``, refused with :class:`OutputError` unless it resolves inside ``root``
    (a name that is a path, ``..``, or an existing symlink pointing out of the tree)."""
    root = Path(root)
    path = root.joinpath(*names)
    base = root.resolve()
    try:
        inside = path.resolve().is_relative_to(base) and path.resolve() != base
    except (OSError, RuntimeError) as exc:       # a symlink loop, a name too long
        raise OutputError(f"{printable(str(path))}: cannot be used as an output path "
                          f"({getattr(exc, 'strerror', None) or exc})") from None
    if not inside:
        raise OutputError(f"{printable(str(path))}: would be written outside {root}; refused")
    return path


def child(root: str | Path, value: object, *, suffix: str = "", max_len: int = MAX_NAME) -> Path:
    """``root / (safe_name(value) + suffix)``, checked by :func:`under`."""
    return under(root, safe_name(value, max_len=max_len) + suffix)
