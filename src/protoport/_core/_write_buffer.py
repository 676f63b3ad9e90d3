"""The watermark write buffer behind every protoport transport."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from ._errors import log_exception_context

DEFAULT_HIGH_WATER = 64 * 1024

ExceptionReporter = Callable[[dict[str, Any]], object]


def check_bytes_like(data: object, method: str = "data") -> None:
    """Raise asyncio's ``TypeError`` unless *data* is bytes, bytearray or memoryview."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"{method} argument must be a bytes-like object, "
            f"not {type(data).__name__!r}"
        )


def resolve_limits(
    high: int | None, low: int | None, default_high: int = DEFAULT_HIGH_WATER
) -> tuple[int, int]:
    """Apply asyncio's defaults and validation; return ``(high, low)``."""
    if high is None:
        high = default_high if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low


class WriteBuffer:
    """Bytes accepted by ``write()`` and not yet taken by the stream.

    The buffer is pure and synchronous: it does no I/O. Whoever drains it (usually a
    transport's writer task) takes chunks with :meth:`peek`, sends them, and reports
    the bytes sent with :meth:`consume`. A writer that keeps what it sends itself
    (whole datagrams, with their addresses) only has it counted, with :meth:`hold`
    and :meth:`release`.

    It owns asyncio's write flow control. When :meth:`append`, :meth:`hold` or
    :meth:`set_write_buffer_limits` makes the size strictly greater than the high
    watermark, ``protocol.pause_writing()`` is called at once; when :meth:`consume`
    or :meth:`release` brings the size down to the low watermark or below while paused,
    ``protocol.resume_writing()`` is called. An exception from either callback is
    passed to *exception_handler* (a loop's ``call_exception_handler``, or a logger
    of asyncio's format when omitted) with asyncio's message, never raised into the
    caller; the paused flag keeps its new value.

    :param protocol: the protocol whose ``pause_writing()``/``resume_writing()`` are
        called (may be changed later through :attr:`protocol`)
    :param high: high watermark in bytes (default 64 KiB, or ``4 * low``)
    :param low: low watermark in bytes (default ``high // 4``)
    :param transport: included in the exception handler's context when given
    :param exception_handler: receives asyncio-style context dicts
    :raises ValueError: unless ``high >= low >= 0``

    :ivar protocol: the *protocol* argument; assign to change it
    :ivar transport: the *transport* argument
    :ivar exception_handler: the *exception_handler* argument
    :cvar default_high: the high watermark when neither limit is given (64 KiB);
        a subclass may change it
    :cvar pause_at_high: False; a subclass that sets it True pauses the protocol
        when the size reaches the high watermark instead of exceeding it (what
        asyncio's TLS transports do)
    """

    #: The high watermark when neither limit is given.
    default_high = DEFAULT_HIGH_WATER
    #: Pause when the size reaches the high watermark rather than exceeds it (what
    #: asyncio's TLS transports do).
    pause_at_high = False

    __slots__ = (
        "_chunks",
        "_closed",
        "_drained",
        "_high",
        "_low",
        "_pause_above",
        "_paused",
        "_size",
        "exception_handler",
        "protocol",
        "transport",
    )

    def __init__(
        self,
        protocol: asyncio.BaseProtocol | None = None,
        *,
        high: int | None = None,
        low: int | None = None,
        transport: asyncio.BaseTransport | None = None,
        exception_handler: ExceptionReporter | None = None,
    ) -> None:
        self._high, self._low = resolve_limits(high, low, self.default_high)
        self._pause_above = self._high - 1 if self.pause_at_high else self._high
        # Made on the first append: most connections never buffer a byte, and
        # an empty deque takes 760 bytes.
        self._chunks: deque[bytes | memoryview] | None = None
        self._size = 0
        self._paused = False
        self._closed = False
        self._drained: anyio.Event | None = None
        self.protocol = protocol
        self.transport = transport
        self.exception_handler = exception_handler

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __repr__(self) -> str:
        state = "paused" if self._paused else "writing"
        return (
            f"<WriteBuffer size={self._size} low={self._low} high={self._high} {state}>"
        )

    @property
    def size(self) -> int:
        """Bytes accepted and not yet consumed."""
        return self._size

    @property
    def paused(self) -> bool:
        """Whether the protocol was told to pause writing and not yet to resume."""
        return self._paused

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """Return ``(low, high)``, as asyncio's transports do."""
        return self._low, self._high

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None
    ) -> None:
        """Set the watermarks with asyncio's defaults and checks.

        May pause the protocol if the buffer is already above the new high
        watermark, unless the buffer is closed (its transport is gone, so its
        protocol gets no more callbacks); never resumes it.
        """
        self._high, self._low = resolve_limits(high, low, self.default_high)
        self._pause_above = self._high - 1 if self.pause_at_high else self._high
        if not self._closed:
            self._maybe_pause()

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Take *data* (a mutable buffer is copied); may pause the protocol."""
        if type(data) is not bytes:
            check_bytes_like(data)
            data = bytes(data)
        if not data:
            return
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.append(data)
        self._size += len(data)
        if self._size > self._pause_above and not self._paused:
            self._pause()

    def peek(self, max_size: int = 256 * 1024) -> bytes | memoryview:
        """Return the oldest pending bytes, at most *max_size* of them (``b""`` if
        empty), without removing them.

        Small chunks are joined, so that one send carries many writes.
        """
        if max_size < 1:
            raise ValueError("max_size must be a positive integer")
        chunks = self._chunks
        if not chunks:
            return b""
        first = chunks[0]
        if len(first) >= max_size:
            return first[:max_size] if len(first) > max_size else first
        if len(chunks) == 1:
            return first
        parts = []
        total = 0
        while chunks and total + len(chunks[0]) <= max_size:
            chunk = chunks.popleft()
            parts.append(chunk)
            total += len(chunk)
        if len(parts) == 1:
            chunks.appendleft(first)
            return first
        joined = b"".join(parts)
        chunks.appendleft(joined)
        return joined

    def consume(self, nbytes: int) -> None:
        """Drop the *nbytes* oldest bytes (they were sent); may resume the protocol."""
        if nbytes > self._size or nbytes < 0:
            raise ValueError(f"cannot consume {nbytes} of {self._size} bytes")
        self._size -= nbytes
        chunks = self._chunks
        # Bytes to consume were appended, so the deque exists when nbytes > 0.
        while nbytes and chunks is not None:
            first = chunks[0]
            if len(first) <= nbytes:
                chunks.popleft()
                nbytes -= len(first)
            else:
                chunks[0] = memoryview(first)[nbytes:]
                nbytes = 0
        if self._paused and self._size <= self._low:
            self._resume()
        elif not self._size and self._drained is not None:
            self._wake()

    def hold(self, nbytes: int) -> None:
        """Count *nbytes* that the caller keeps itself (a queue of datagrams,
        each counted with its header); may pause the protocol.

        :meth:`peek` never returns them: the caller sends them and reports each
        with :meth:`release`.
        """
        self._size += nbytes
        if self._size > self._pause_above and not self._paused:
            self._pause()

    def release(self, nbytes: int) -> None:
        """Stop counting *nbytes* counted by :meth:`hold` (they were sent); may
        resume the protocol."""
        if nbytes > self._size or nbytes < 0:
            raise ValueError(f"cannot release {nbytes} of {self._size} bytes")
        self._size -= nbytes
        if self._paused and self._size <= self._low:
            self._resume()
        elif not self._size and self._drained is not None:
            self._wake()

    def clear(self) -> None:
        """Drop every pending byte without resuming the protocol (``abort()``)."""
        if self._chunks is not None:
            self._chunks.clear()
        self._size = 0

    def close(self) -> None:
        """Mark the buffer closed: waiters in :meth:`wait_resumed` return."""
        self._closed = True
        self._wake()

    async def wait_resumed(self) -> None:
        """Return once writing is not paused (at once if it is not), or the buffer
        is closed.
        """
        if not self._paused or self._closed:
            await anyio.lowlevel.checkpoint()
            return
        if self._drained is None:
            self._drained = anyio.Event()
        await self._drained.wait()

    async def wait_empty(self) -> None:
        """Return once every byte taken has been consumed or released (at once
        if none is pending), or the buffer is closed."""
        await anyio.lowlevel.checkpoint()
        while self._size and not self._closed:
            if self._drained is None:
                self._drained = anyio.Event()
            await self._drained.wait()

    def _maybe_pause(self) -> None:
        if self._size > self._pause_above and not self._paused:
            self._pause()

    def _pause(self) -> None:
        self._paused = True
        protocol = self.protocol
        if protocol is None:
            return
        try:
            protocol.pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._report("protocol.pause_writing() failed", exc)

    def _resume(self) -> None:
        self._paused = False
        self._wake()
        protocol = self.protocol
        if protocol is None:
            return
        try:
            protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._report("protocol.resume_writing() failed", exc)

    def _wake(self) -> None:
        if self._drained is not None:
            self._drained.set()
            self._drained = None

    def _report(self, message: str, exc: BaseException) -> None:
        context: dict[str, Any] = {"message": message, "exception": exc}
        if self.transport is not None:
            context["transport"] = self.transport
        context["protocol"] = self.protocol
        if self.exception_handler is None:
            log_exception_context(context)
        else:
            self.exception_handler(context)
