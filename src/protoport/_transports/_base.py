"""The life cycle every protoport transport shares."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from contextvars import copy_context
from typing import Any

from .._backends import failed_callback_context
from .._core._connection_set import ConnectionSet
from .._core._errors import logger
from .._core._host import Host
from .._core._write_buffer import WriteBuffer

#: From this many writes after the connection was lost on, each one is logged.
LOG_THRESHOLD_FOR_LOST_WRITES = 5


class Life(enum.Enum):
    """Where a transport is in its life; ``is_closing()`` is true past OPEN."""

    OPEN = "open"
    #: ``close()`` was called: what is buffered is sent, then the connection ends.
    CLOSING = "closing"
    #: ``abort()`` or a fatal error: nothing more is sent.
    ABORTED = "aborted"
    #: ``start_tls()`` took the stream over: this transport is done, without
    #: ``connection_lost()``.
    HANDED_OVER = "handed over"


class TransportBase(asyncio.BaseTransport):
    """Closing, aborting and failing, as asyncio's transports do them.

    ``connection_lost()`` is called exactly once, as a callback of the loop; a
    fatal error that is not an :class:`OSError` is reported to the exception
    handler first. Subclasses say how their I/O stops (:meth:`_close_io`,
    :meth:`_abort_io`) and what they release once the protocol has been told
    (:meth:`_release`).
    """

    # Slots: attributes read on every read and write are found at a fixed
    # place (asyncio's slotted base rules out CPython's faster instance dicts).
    # A __dict__ is kept for what users or libraries attach to a transport.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_clients",
        "_exc",
        "_finished",
        "_handing_over",
        "_host",
        "_life",
        "_loop",
        "_lost_called",
        "_lost_writes",
        "_protocol",
    )

    #: What is logged for writes after the connection was lost.
    _lost_write_warning = "socket.send() raised exception."

    def __init__(
        self,
        host: Host,
        protocol: asyncio.BaseProtocol,
        extra: dict[str, Any] | None,
        clients: ConnectionSet | None,
    ) -> None:
        super().__init__(extra)
        self._host = host
        self._loop = host.loop
        self._protocol = protocol
        self._life = Life.OPEN
        #: What ``connection_lost()`` receives.
        self._exc: BaseException | None = None
        #: Whether the end has begun: the stream is being closed.
        self._finished = False
        self._lost_called = False
        self._lost_writes = 0
        #: Whether ``start_tls()`` is taking the transport over: an abort
        #: meanwhile ends the hand-over, which then ends the connection.
        self._handing_over = False
        self._clients = clients
        if clients is not None:
            clients.add(self)

    def __repr__(self) -> str:
        state = "closed" if self._finished else self._life.value
        return f"<{type(self).__name__} {state}>"

    def belongs_to(self, host: Host) -> bool:
        """Whether this transport is one of *host*'s."""
        return self._host is host

    # -- protocol --------------------------------------------------------------

    def get_protocol(self) -> asyncio.BaseProtocol:
        """Return the protocol the transport calls."""
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Make the transport call *protocol* from now on."""
        self._protocol = protocol

    def _run_callback(self, callback: Callable[..., object], *args: Any) -> None:
        """Run a protocol callback as asyncio's loop runs it: an exception goes to
        the exception handler as ``Exception in callback ...`` with the handle."""
        run_callback(self._host, callback, args)

    # -- closing ---------------------------------------------------------------

    def is_closing(self) -> bool:
        """Whether the transport is closing or closed."""
        return self._life is not _OPEN

    def close(self) -> None:
        """Close the transport: buffered bytes are still sent, nothing more is
        received, then ``connection_lost(None)`` is called. Idempotent."""
        if self._life is not Life.OPEN:
            return
        self._life = Life.CLOSING
        self._lost_writes = 1
        self._close_io()

    def abort(self) -> None:
        """Close the transport at once: buffered bytes are dropped, and
        ``connection_lost(None)`` is called on the loop's next round."""
        self._force_close(None)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._finished or self._life in (Life.ABORTED, Life.HANDED_OVER):
            return
        self._life = Life.ABORTED
        self._exc = exc
        self._lost_writes = 1
        self._abort_io()
        if not self._handing_over:
            self._host.run_soon(self._call_connection_lost)

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        self._report_error(exc, message)
        self._force_close(exc)

    def _report_error(self, exc: BaseException, message: str) -> None:
        """Tell the exception handler of *exc*, unless it is the peer's or the
        OS's (an :class:`OSError`), which only ``connection_lost()`` receives."""
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    def _call_connection_lost(self) -> None:
        """Call ``connection_lost()``, once, then release what the transport
        holds."""
        if self._lost_called:
            return
        self._lost_called = True
        try:
            run_protocol_callback(
                self._host, self._protocol, "connection_lost", self._exc
            )
        finally:
            self._release()
            self._leave_connection_set()

    def _leave_connection_set(self) -> None:
        if self._clients is not None:
            self._clients.discard(self)
            self._clients = None

    def _count_lost_write(self) -> None:
        if self._lost_writes >= LOG_THRESHOLD_FOR_LOST_WRITES:
            logger.warning(self._lost_write_warning)
        self._lost_writes += 1

    # -- what subclasses do ----------------------------------------------------

    def _close_io(self) -> None:
        """``close()`` was called: stop reading, send what is buffered, then end."""
        raise NotImplementedError

    def _abort_io(self) -> None:
        """The transport is aborted: stop reading and writing at once."""
        raise NotImplementedError

    def _release(self) -> None:
        """``connection_lost()`` has run: release what is left."""


def run_protocol_callback(host: Host, protocol: object, name: str, *args: Any) -> None:
    """Run ``protocol.<name>(*args)`` as asyncio's loop runs a callback: an
    exception goes to the exception handler as ``Exception in callback ...`` with
    the handle. A protocol without the method (``set_protocol(None)``, a
    duck-typed protocol) is reported the same way, as asyncio does, whose handle
    looks the method up: the loop and the other connections carry on."""
    try:
        callback: Callable[..., object] = getattr(protocol, name)
    except Exception:
        callback = _LookedUpWhenRun(protocol, name)
    run_callback(host, callback, args)


def run_callback(
    host: Host, callback: Callable[..., object], args: tuple[Any, ...]
) -> None:
    """Run ``callback(*args)`` now, as asyncio's loop runs a handle: in a copy of
    the current context, an exception reported to the exception handler as
    ``Exception in callback ...`` with a handle of the call (made only then: a
    handle per callback is most of what running one costs)."""
    try:
        host.invoke(copy_context().run, callback, *args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        loop = host.loop
        loop.call_exception_handler(failed_callback_context(loop, callback, args, exc))


class _LookedUpWhenRun:
    """A callback that looks ``protocol.<name>`` up and calls it; a report shows
    it as ``Exception in callback NoneType.connection_lost()``, as it shows a
    method."""

    def __init__(self, protocol: object, name: str) -> None:
        self.protocol = protocol
        self.name = name
        self.__qualname__ = f"{type(protocol).__name__}.{name}"

    def __call__(self, *args: Any) -> None:
        getattr(self.protocol, self.name)(*args)


_OPEN = Life.OPEN


class BufferedWriting:
    """Write flow control as asyncio's write transports offer it, for a transport
    whose ``_buffer`` is a :class:`~protoport.WriteBuffer`."""

    __slots__ = ()

    _buffer: WriteBuffer
    _host: Host

    def get_write_buffer_size(self) -> int:
        """Bytes accepted for writing and not yet handed to the kernel."""
        return self._buffer.size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """Return the watermarks of write flow control as ``(low, high)``."""
        return self._buffer.get_write_buffer_limits()

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None
    ) -> None:
        """Set the watermarks of write flow control, with asyncio's defaults
        (*high* 64 KiB, or ``4 * low``; *low* ``high // 4``) and checks."""
        # pause_writing() may follow, and must see this loop as the running one.
        self._host.invoke(self._buffer.set_write_buffer_limits, high, low)
