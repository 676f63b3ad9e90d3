"""Reading a file in pieces for the sendfile fallbacks, which write what they
read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

#: How a piece is read: ``await run_in_thread(file.readinto, view)``, so that a
#: slow disk does not stop the loop.
RunInThread = Callable[..., Awaitable[Any]]


class FileReader:
    """*file* read from its current position in pieces of at most *chunk* bytes,
    *count* bytes in all (to its end when *count* is None or 0), each piece read
    into the one buffer the reader keeps: a piece is only valid until the next."""

    __slots__ = ("_buffer", "_count", "_file", "_taken")

    def __init__(self, file: Any, count: int | None, chunk: int) -> None:
        self._file = file
        self._count = count
        self._taken = 0
        self._buffer = bytearray(min(count, chunk) if count else chunk)

    async def next(self, run_in_thread: RunInThread) -> memoryview:
        """The next piece; an empty one at the end of the file or of *count*."""
        size = len(self._buffer)
        if self._count:
            size = min(self._count - self._taken, size)
            if size <= 0:
                return memoryview(b"")
        view = memoryview(self._buffer)[:size]
        read = await run_in_thread(self._file.readinto, view)
        self._taken += read
        return view[:read]
