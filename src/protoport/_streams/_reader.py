"""StreamReader: asyncio's buffered byte reader, on any loop.

The reader waits with futures made by its loop (:func:`create_waiter`), as
asyncio's does. A protoport loop makes futures that Trio tasks can await (and real
asyncio futures under asyncio), and a plain asyncio loop makes its own: the one
class serves a protoport transport on either runtime and asyncio's own transports.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from asyncio import IncompleteReadError, LimitOverrunError
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .._loop._loop import get_running_loop, waiter_maker

if TYPE_CHECKING:
    from typing_extensions import Self

#: Default buffer limit of readers and of the stream functions (64 KiB), as asyncio's.
DEFAULT_LIMIT = 2**16

_Separator = bytes | bytearray | memoryview


class _ReadingTransport(Protocol):
    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def create_waiter(loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    """A future for the calling coroutine to await itself on *loop*."""
    return waiter_maker(loop)()


def resolve_loop(loop: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop:
    """The loop a reader or protocol uses when none is given.

    Inside a Trio or asyncio run: :func:`protoport.get_running_loop` (the innermost
    ``open_loop()``, or the run's default loop). Outside any run: whatever
    :func:`asyncio.get_event_loop` says, as asyncio's classes do (the loop set with
    ``asyncio.set_event_loop()``, or asyncio's ``RuntimeError``).
    """
    if loop is not None:
        return loop
    try:
        return get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()


class StreamReader:
    """A buffer of received bytes with coroutine methods to read it, as
    :class:`asyncio.StreamReader`.

    A :class:`~protoport.StreamReaderProtocol` feeds it from a transport with
    :meth:`feed_data` and :meth:`feed_eof`, or its owner feeds it by hand.
    When more than twice *limit* bytes are buffered, the transport's reading is
    paused; it is resumed once a read brings the buffer down to *limit* or less (or
    when a read has to wait for more bytes). *limit* also bounds the line that
    :meth:`readline` and :meth:`readuntil` return, separator not counted.

    The buffer is a :class:`bytearray` that gives up bytes at its front in constant
    time, so reading a stream in small pieces costs time linear in its size.

    :param limit: the buffer limit in bytes (64 KiB by default)
    :param loop: the loop whose futures the reader waits on; by default the
        innermost :func:`protoport.open_loop`, or the run's default loop
    :raises ValueError: ``Limit cannot be <= 0``
    """

    _source_traceback: traceback.StackSummary | None = None

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # The limit bounds a line, and half the buffer before reading pauses.
        if limit <= 0:
            raise ValueError("Limit cannot be <= 0")
        self._limit = limit
        self._loop = resolve_loop(loop)
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._exception: BaseException | None = None
        self._transport: _ReadingTransport | None = None
        self._paused = False
        self._make_waiter = waiter_maker(self._loop)
        if self._loop.get_debug():
            self._source_traceback = traceback.extract_stack(sys._getframe(1))

    def __repr__(self) -> str:
        parts = ["StreamReader"]
        if self._buffer:
            parts.append(f"{len(self._buffer)} bytes")
        if self._eof:
            parts.append("eof")
        if self._limit != DEFAULT_LIMIT:
            parts.append(f"limit={self._limit}")
        if self._waiter:
            parts.append(f"waiter={self._waiter!r}")
        if self._exception:
            parts.append(f"exception={self._exception!r}")
        if self._transport:
            parts.append(f"transport={self._transport!r}")
        if self._paused:
            parts.append("paused")
        return f"<{' '.join(parts)}>"

    # -- feeding -----------------------------------------------------------------

    def exception(self) -> BaseException | None:
        """The exception set with :meth:`set_exception`, or None."""
        return self._exception

    def set_exception(self, exc: BaseException) -> None:
        """Store *exc*: every read from now on raises it, before any buffered
        data; a read waiting for data raises it at once."""
        self._exception = exc
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_exception(exc)

    def _wakeup_waiter(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)

    def set_transport(self, transport: asyncio.BaseTransport) -> None:
        """Set the transport whose reading the buffer limit pauses and resumes
        (once only)."""
        assert self._transport is None, "Transport already set"
        self._transport = transport  # type: ignore[assignment]

    def _replace_transport(self, transport: asyncio.BaseTransport) -> None:
        """Act on *transport* from now on (after ``start_tls()``), paused if the
        old one was paused by the buffer limit."""
        reading: _ReadingTransport = transport  # type: ignore[assignment]
        self._transport = reading
        if self._paused:
            try:
                reading.pause_reading()
            except NotImplementedError:
                self._transport = None
                self._paused = False

    def _maybe_resume_transport(self) -> None:
        if self._paused and len(self._buffer) <= self._limit:
            self._paused = False
            assert self._transport is not None
            self._transport.resume_reading()

    def feed_eof(self) -> None:
        """Mark the end of the stream; reads waiting for data return."""
        self._eof = True
        self._wakeup_waiter()

    def at_eof(self) -> bool:
        """Whether :meth:`feed_eof` was called and the buffer is empty."""
        return self._eof and not self._buffer

    def feed_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append *data* to the buffer and wake a waiting read; pause the
        transport's reading when the buffer holds more than twice the limit."""
        assert not self._eof, "feed_data after feed_eof"
        if not data:
            return
        buffer = self._buffer
        try:
            buffer += data
        except TypeError:
            # What asyncio's extend() takes (any iterable of ints), and its error.
            buffer.extend(data)
        # _wakeup_waiter(), inlined: this runs for every read of the transport.
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)
        if (
            len(buffer) > 2 * self._limit
            and (transport := self._transport) is not None
            and not self._paused
        ):
            try:
                transport.pause_reading()
            except NotImplementedError:
                # A transport that cannot pause: keep buffering, and stop asking.
                self._transport = None
            else:
                self._paused = True

    def _new_waiter(self, func_name: str) -> asyncio.Future[None]:
        """The future that :meth:`feed_data`, :meth:`feed_eof` or
        :meth:`set_exception` completes, for *func_name* to await; the transport is
        resumed first if it is paused."""
        # Two readers waiting at once could not know which one gets the bytes.
        if self._waiter is not None:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is "
                f"already waiting for incoming data"
            )
        assert not self._eof, "_wait_for_data after EOF"
        # Waiting for data while paused would never end (readexactly(n) with n
        # above the limit needs more than the pause threshold may allow).
        if self._paused:
            self._paused = False
            assert self._transport is not None
            self._transport.resume_reading()
        waiter = self._waiter = self._make_waiter()
        return waiter

    async def _wait_for_data(self, func_name: str) -> None:
        """Wait until :meth:`feed_data`, :meth:`feed_eof` or :meth:`set_exception`
        is called."""
        waiter = self._new_waiter(func_name)
        try:
            await waiter
        finally:
            self._waiter = None

    # -- reading -----------------------------------------------------------------

    async def read(self, n: int = -1) -> bytes:
        """Read up to *n* bytes; with *n* = -1 (or any negative), read until EOF.

        Waits until at least one byte is buffered or EOF is reached; returns
        ``b""`` at EOF, or at once when *n* is 0. Not bounded by the limit.
        """
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        if n < 0:
            # Read in pieces of the limit, so that a paused transport is resumed
            # as the buffer empties.
            blocks = []
            while True:
                block = await self.read(self._limit)
                if not block:
                    break
                blocks.append(block)
            return b"".join(blocks)
        if not self._buffer and not self._eof:
            # _wait_for_data() without its coroutine, nor _new_waiter()'s checks
            # when nothing needs checking: read() is the hot path.
            if self._waiter is None and not self._paused:
                waiter = self._waiter = self._make_waiter()
            else:
                waiter = self._new_waiter("read")
            try:
                await waiter
            finally:
                self._waiter = None
        buffer = self._buffer
        if n >= len(buffer):
            # All of it: _take()'s first case, without the call.
            data = bytes(buffer)
            buffer.clear()
        else:
            data = self._take(n)
        if self._paused:
            self._maybe_resume_transport()
        return data

    def _take(self, n: int) -> bytes:
        """Remove and return the first *n* buffered bytes (fewer if there are not
        that many)."""
        buffer = self._buffer
        if n >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
            return data
        # One copy, through a view that is gone before the buffer is resized.
        data = bytes(memoryview(buffer)[:n])
        # Deleting at the front of a bytearray moves its start, not its bytes.
        del buffer[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        """Read exactly *n* bytes.

        :raises ValueError: ``readexactly size can not be less than zero``
        :raises asyncio.IncompleteReadError: EOF came first; ``partial`` holds the
            bytes that were buffered (they are consumed)
        """
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        while len(self._buffer) < n:
            if self._eof:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise IncompleteReadError(partial, n)
            await self._wait_for_data("readexactly")
        data = self._take(n)
        self._maybe_resume_transport()
        return data

    async def readline(self) -> bytes:
        """Read one line, ending with ``b"\\n"``.

        At EOF, return the partial line (``b""`` when nothing is left). When the
        line is longer than the limit, drop it (up to and including its newline, or
        the whole buffer when no newline is there) and raise ``ValueError`` with
        :meth:`readuntil`'s message.
        """
        line = self._buffered_line()
        if line is not None:
            return line
        separator = b"\n"
        try:
            return await self.readuntil(separator)
        except IncompleteReadError as exc:
            return exc.partial
        except LimitOverrunError as exc:
            if self._buffer.startswith(separator, exc.consumed):
                del self._buffer[: exc.consumed + len(separator)]
            else:
                self._buffer.clear()
            self._maybe_resume_transport()
            raise ValueError(exc.args[0])  # noqa: B904 - as asyncio, chained

    def _buffered_line(self) -> bytes | None:
        """Take the next line if it is all buffered and within the limit (what
        :meth:`readline` returns at once), else leave the buffer be and return
        None: the common case of reading lines, without the general search."""
        # Only a newline within the limit makes such a line: search no further.
        found = self._buffer.find(b"\n", 0, self._limit + 1)
        if found < 0 or self._exception is not None:
            return None
        line = self._take(found + 1)
        if self._paused:
            self._maybe_resume_transport()
        return line

    async def readuntil(
        self, separator: _Separator | tuple[_Separator, ...] = b"\n"
    ) -> bytes:
        """Read until *separator* is found, and return the bytes with the
        separator at their end.

        *separator* may be a tuple of separators: the result is then the shortest
        one that ends with any of them.

        :raises ValueError: ``Separator should contain at least one element``
            (empty tuple), ``Separator should be at least one-byte string``
        :raises asyncio.LimitOverrunError: more than *limit* bytes come before the
            separator (or no separator within the limit); the bytes stay buffered
        :raises asyncio.IncompleteReadError: EOF before a separator; the buffered
            bytes are consumed and given as ``partial``, ``expected`` is None
        """
        separators: Sequence[_Separator]
        if isinstance(separator, tuple):
            # Shortest first; ties keep their order.
            separators = sorted(separator, key=len)
        else:
            separators = [separator]
        if not separators:
            raise ValueError("Separator should contain at least one element")
        min_seplen = len(separators[0])
        max_seplen = len(separators[-1])
        if min_seplen == 0:
            raise ValueError("Separator should be at least one-byte string")
        if self._exception is not None:
            raise self._exception

        buffer = self._buffer
        # No separator ends before ``searched + max_seplen - 1``: later searches
        # start at ``searched``, so bytes already searched are not searched again.
        searched = 0
        while True:
            buflen = len(buffer)
            if buflen - searched >= min_seplen:
                match_start = -1
                match_end = -1
                for sep in separators:
                    found = buffer.find(sep, searched)
                    if found != -1:
                        end = found + len(sep)
                        if match_end == -1 or end < match_end:
                            match_start, match_end = found, end
                if match_end != -1:
                    break
                searched = max(0, buflen + 1 - max_seplen)
                if searched > self._limit:
                    raise LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit",
                        searched,
                    )
            # The last bytes fed before EOF may complete a separator: check the
            # buffer before the EOF.
            if self._eof:
                partial = bytes(buffer)
                buffer.clear()
                raise IncompleteReadError(partial, None)
            await self._wait_for_data("readuntil")

        if match_start > self._limit:
            raise LimitOverrunError(
                "Separator is found, but chunk is longer than limit", match_start
            )
        data = self._take(match_end)
        self._maybe_resume_transport()
        return data

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        line = self._buffered_line()
        if line is not None:
            return line
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line


# What the other stream classes ask of a reader beyond its asyncio API.


def source_traceback(reader: StreamReader) -> traceback.StackSummary | None:
    """Where *reader* was made, recorded in debug mode."""
    return reader._source_traceback


def replace_transport(reader: StreamReader, transport: asyncio.BaseTransport) -> None:
    """Have *reader* act on *transport* from now on (after ``start_tls()``)."""
    reader._replace_transport(transport)


def is_waiting(reader: StreamReader) -> bool:
    """Whether a coroutine is waiting for data from *reader*."""
    return reader._waiter is not None
