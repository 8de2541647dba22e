"""Lazy, cheap access to a patient's label masks (``SRC/masks/<pid>.npz``, keyed by SOPInstanceUID).

``np.load`` parses every member's ``.npy`` header with ``ast.literal_eval`` (~0.1 ms each, as much
as decompressing a 256x256 mask). All members of a mask file share a few headers, so this reader
parses each distinct header once and decompresses only the entries that are asked for.
"""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import numpy as np

_MAGIC = b"\x93NUMPY"


class MaskArchive:
    """Mapping-like read-only view of an ``.npz``: ``get(key)`` → array or None."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._zip = zipfile.ZipFile(self.path)
        self._names = {n[:-4]: n for n in self._zip.namelist() if n.endswith(".npy")}
        self._headers: dict[bytes, tuple[np.dtype, tuple[int, ...], bool]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._names

    def __len__(self) -> int:
        return len(self._names)

    def get(self, key: str, default: np.ndarray | None = None) -> np.ndarray | None:
        """The array stored under ``key`` (decompressed now), or ``default``."""
        name = self._names.get(key)
        if name is None:
            return default
        data = self._zip.read(name)
        if not data.startswith(_MAGIC):
            raise ValueError(f"{self.path}: member {name} is not a .npy array")
        major = data[6]
        hlen_size = 2 if major == 1 else 4
        hlen = int.from_bytes(data[8:8 + hlen_size], "little")
        start = 8 + hlen_size
        header = data[start:start + hlen]
        parsed = self._headers.get(header)
        if parsed is None:
            d = ast.literal_eval(header.decode("latin1"))
            parsed = self._headers[header] = (np.dtype(d["descr"]), tuple(d["shape"]),
                                              bool(d["fortran_order"]))
        dtype, shape, fortran = parsed
        arr = np.frombuffer(data, dtype=dtype, offset=start + hlen,
                            count=int(np.prod(shape, dtype=np.int64)))
        return arr.reshape(shape, order="F" if fortran else "C")

    def close(self) -> None:
        """Close the underlying zip file."""
        self._zip.close()
