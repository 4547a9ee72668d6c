"""On-disk line spools for Message Batch items and result lines.

A batch may hold 100,000 requests and 256 MB of JSON. Keeping every request as a
parsed dict would cost several times its size in Python objects, and keeping every
result as well would double that again. So each batch keeps its items and its
results as newline-terminated JSON lines in temporary files, with only an array of
byte offsets in memory: an item is read back (and parsed) when it is processed, and
the results are streamed to the client straight from the file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import weakref
from array import array
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["LineSpool", "SpoolDir"]

#: How much of a results file one read hands to the HTTP layer.
CHUNK_BYTES = 256 * 1024


class SpoolDir:
    """A private temporary directory, removed on :meth:`close` or at interpreter exit."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="llm-policy-batches-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)

    def close(self) -> None:
        self._finalizer()


class LineSpool:
    """An append-only file of JSON lines with random access by line number.

    Lines are appended without their newline; the spool adds it, so a reader never
    sees a blank line (the SDK's JSONL decoder would choke on one).
    """

    def __init__(self, directory: SpoolDir, prefix: str) -> None:
        fd, self.path = tempfile.mkstemp(dir=directory.path, prefix=prefix, suffix=".jsonl")
        self._file = os.fdopen(fd, "w+b")
        self._offsets = array("Q", [0])
        self._closed = False
        self._reading = False  # the file position is not at the end

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._offsets[-1]

    def append(self, line: bytes) -> None:
        if self._reading:
            self._file.seek(self._offsets[-1])
            self._reading = False
        self._file.write(line)
        self._file.write(b"\n")
        self._offsets.append(self._offsets[-1] + len(line) + 1)

    def read(self, index: int) -> bytes:
        """Line ``index`` without its newline."""
        start, end = self._offsets[index], self._offsets[index + 1]
        self._reading = True
        self._file.seek(start)
        return self._file.read(end - start - 1)

    def flush(self) -> None:
        if not self._closed:
            self._file.flush()

    def iter_chunks(self) -> Iterator[bytes]:
        """The whole file in chunks, through a handle of its own.

        The handle is opened before the first chunk is asked for, so a spool that is
        discarded (reset, retention) while a client is still reading stays readable
        to that client: an unlinked file lives on while a handle is open.
        """
        self.flush()
        handle = open(self.path, "rb")  # noqa: SIM115 - closed by the generator below
        return _read_chunks(handle)

    def close(self) -> None:
        """Close and delete the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()
