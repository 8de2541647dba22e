"""pydicom's own log records and warnings, kept off the console and handed to the caller.

pydicom logs a decoder plugin's failure at ERROR with a traceback and warns (``UserWarning``,
logged too) about damaged or unusual files. Ingest decides itself what to do with such a file
and reports it in ``issues``; a console full of tracebacks for files that were skipped on
purpose hides the one line that matters. While :func:`captured` is active, the ``pydicom``
logger's records and the warnings raised go into a list of one-line messages instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: longest message kept (pydicom's decoder errors can be long)
MAX_CHARS = 300
_LOGGER = logging.getLogger("pydicom")


class _Collector(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.into.append(_line(record.getMessage()))


def _line(text: str) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 3] + "..."


@contextmanager
def captured() -> Iterator[list[str]]:
    """Collect pydicom's log records (WARNING and up) and any warnings raised inside the block
    as one-line messages, each message once; nothing reaches the console."""
    messages: list[str] = []
    handler = _Collector(messages)
    propagate = _LOGGER.propagate
    _LOGGER.addHandler(handler)
    _LOGGER.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(_line(str(w.message)) for w in caught)
    finally:
        _LOGGER.removeHandler(handler)
        _LOGGER.propagate = propagate
    # pydicom both logs and warns the same text: keep each message once, in order
    messages[:] = list(dict.fromkeys(m for m in messages if m))
