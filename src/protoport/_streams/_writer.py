"""StreamReaderProtocol and StreamWriter: asyncio's stream classes, on any loop.

How ``drain()`` waits
---------------------
With the protocol's flow control, as asyncio's does: the transport calls
``pause_writing()``/``resume_writing()`` on the :class:`StreamReaderProtocol`, which
keeps a flag and wakes the futures that ``drain()`` calls wait on.

A protoport transport's :class:`~protoport.WriteBuffer` calls those methods exactly
where asyncio's transports do, so this one mechanism behaves as asyncio's on
protoport's transports (under Trio or asyncio) and on asyncio's own transports.
Waiting on the ``WriteBuffer`` directly would serve protoport's transports only,
and ``connection_lost()`` would still need this path.
"""

from __future__ import annotations

import asyncio
import collections
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._core._errors import logger
from ._reader import (
    StreamReader,
    create_waiter,
    replace_transport,
    resolve_loop,
    source_traceback,
)

if TYPE_CHECKING:
    import ssl as _ssl

#: What ``start_server()`` calls for each connection: a plain function, or a
#: coroutine function whose coroutine becomes a task.
ClientConnectedCallback = Callable[
    [StreamReader, "StreamWriter"], Awaitable[None] | None
]


class FlowControl(asyncio.Protocol):
    """Write flow control for :meth:`StreamWriter.drain`: ``pause_writing()``,
    ``resume_writing()`` and ``connection_lost()`` drive futures of the loop.

    Subclasses that override these methods must call them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = resolve_loop(loop)
        self._paused = False
        self._drain_waiters: collections.deque[asyncio.Future[None]] = (
            collections.deque()
        )
        self._connection_lost = False

    def pause_writing(self) -> None:
        """Called when the transport's write buffer passes its high
        watermark: from now on :meth:`StreamWriter.drain` waits."""
        assert not self._paused
        self._paused = True
        if self._loop.get_debug():
            logger.debug("%r pauses writing", self)

    def resume_writing(self) -> None:
        """Called when the transport's write buffer is down to its low
        watermark: the waiting :meth:`StreamWriter.drain` calls return."""
        assert self._paused
        self._paused = False
        if self._loop.get_debug():
            logger.debug("%r resumes writing", self)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        """End the waiting :meth:`StreamWriter.drain` calls, with *exc* if it
        is not None."""
        self._connection_lost = True
        # Only a paused writer has drain() calls waiting.
        if not self._paused:
            return
        for waiter in self._drain_waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)

    async def _drain_helper(self) -> None:
        if self._connection_lost:
            raise ConnectionResetError("Connection lost")
        if not self._paused:
            return
        waiter: asyncio.Future[None] = create_waiter(self._loop)
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            self._drain_waiters.remove(waiter)

    def _get_close_waiter(self, stream: StreamWriter) -> asyncio.Future[None]:
        raise NotImplementedError


class StreamReaderProtocol(FlowControl):
    """The protocol between a transport and a :class:`StreamReader`, as
    :class:`asyncio.StreamReaderProtocol`.

    It feeds the received bytes and the end of the stream to the reader (which it
    references weakly, as asyncio does: a reader nobody holds is not fed), hands the
    connection's error to it, and gives :meth:`StreamWriter.drain` its flow
    control.

    :param stream_reader: the reader to feed
    :param client_connected_cb: called with ``(reader, writer)`` in
        ``connection_made()``; when it returns a coroutine, that coroutine is run as a
        task of the loop. If the task fails, the exception handler hears of it
        (``Unhandled exception in client_connected_cb``) and the transport is closed;
        if it is cancelled, the transport is closed.
    :param loop: the loop whose futures and tasks are used; by default the
        innermost :func:`protoport.open_loop`, or the run's default loop
    """

    _source_traceback = None

    def __init__(
        self,
        stream_reader: StreamReader | None,
        client_connected_cb: ClientConnectedCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(loop=loop)
        self._stream_reader_wr: weakref.ref[StreamReader] | None
        if stream_reader is not None:
            self._stream_reader_wr = weakref.ref(stream_reader)
            self._source_traceback = source_traceback(stream_reader)
        else:
            self._stream_reader_wr = None
        self._strong_reader: StreamReader | None = None
        if client_connected_cb is not None:
            # A server's protocol: nobody else holds the reader until the
            # connection is made and the callback receives it.
            self._strong_reader = stream_reader
        self._reject_connection = False
        self._task: asyncio.Future[Any] | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._client_connected_cb = client_connected_cb
        self._over_ssl = False
        self._closed: asyncio.Future[None] = self._loop.create_future()

    @property
    def _stream_reader(self) -> StreamReader | None:
        if self._stream_reader_wr is None:
            return None
        return self._stream_reader_wr()

    def _replace_transport(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        reader = self._stream_reader
        if reader is not None:
            # asyncio's TLS layer sits on the old transport, whose pausing still
            # works; protoport's old transport is gone, so the reader's buffer
            # limit must act on the new one.
            replace_transport(reader, transport)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Give *transport* to the reader and, when there is a
        *client_connected_cb*, call it with the reader and a new writer."""
        if self._reject_connection:
            context: dict[str, Any] = {
                "message": (
                    "An open stream was garbage collected prior to "
                    "establishing network connection; "
                    'call "stream.close()" explicitly.'
                )
            }
            if self._source_traceback:
                context["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(context)
            transport.abort()  # type: ignore[attr-defined]
            return
        self._transport = transport
        reader = self._stream_reader
        if reader is not None:
            reader.set_transport(transport)
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        callback = self._client_connected_cb
        if callback is None:
            return
        writer = StreamWriter(transport, self, reader, self._loop)
        result = callback(reader, writer)  # type: ignore[arg-type]
        if asyncio.iscoroutine(result):
            loop = self._loop

            def on_done(task: asyncio.Future[Any]) -> None:
                if task.cancelled():
                    transport.close()
                    return
                exc = task.exception()
                if exc is not None:
                    loop.call_exception_handler(
                        {
                            "message": "Unhandled exception in client_connected_cb",
                            "exception": exc,
                            "transport": transport,
                        }
                    )
                    transport.close()

            self._task = loop.create_task(result)
            self._task.add_done_callback(on_done)
        self._strong_reader = None

    def connection_lost(self, exc: BaseException | None) -> None:
        """Feed the end of the stream to the reader, or set *exc* as its
        exception, and complete :meth:`StreamWriter.wait_closed`."""
        reader = self._stream_reader
        if reader is not None:
            if exc is None:
                reader.feed_eof()
            else:
                reader.set_exception(exc)
        if not self._closed.done():
            if exc is None:
                self._closed.set_result(None)
            else:
                self._closed.set_exception(exc)
        super().connection_lost(exc)
        self._stream_reader_wr = None
        self._task = None
        self._transport = None

    def data_received(self, data: bytes) -> None:
        """Feed *data* to the reader."""
        # The _stream_reader property, inlined: this runs for every read.
        reader_wr = self._stream_reader_wr
        if reader_wr is not None and (reader := reader_wr()) is not None:
            reader.feed_data(data)

    def eof_received(self) -> bool:
        """Feed the end of the stream to the reader; keep the transport open
        for writing (half-closed), except over TLS."""
        reader = self._stream_reader
        if reader is not None:
            reader.feed_eof()
        # Keep the write side open (half-close), except over TLS where it would
        # only earn a warning.
        return not self._over_ssl

    def _get_close_waiter(self, stream: StreamWriter) -> asyncio.Future[None]:
        return self._closed

    def __del__(self) -> None:
        # A connection error stored in the close waiter is not worth a "Future
        # exception was never retrieved" report.
        try:
            closed = self._closed
        except AttributeError:  # the constructor failed
            return
        if closed.done() and not closed.cancelled():
            closed.exception()


class StreamWriter:
    """Writes to a transport, with :meth:`drain` for flow control, as
    :class:`asyncio.StreamWriter`.

    :param transport: the transport to write to
    :param protocol: its :class:`StreamReaderProtocol`
    :param reader: the reader of the same connection, or None; :meth:`drain`
        raises its exception
    :param loop: the protocol's loop
    """

    def __init__(
        self,
        transport: asyncio.BaseTransport,
        protocol: StreamReaderProtocol,
        reader: StreamReader | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._transport: asyncio.Transport = transport  # type: ignore[assignment]
        self._protocol = protocol
        # drain() asks the reader for its exception.
        assert reader is None or isinstance(reader, StreamReader)
        self._reader = reader
        self._loop = loop
        self._plain_drain = self._drains_plainly()

    def _drains_plainly(self) -> bool:
        # Whether drain() may read the state of protoport's own protocol instead
        # of awaiting its _drain_helper().
        return (
            getattr(type(self._protocol), "_drain_helper", None)
            is FlowControl._drain_helper
        )

    def __repr__(self) -> str:
        parts = [type(self).__name__, f"transport={self._transport!r}"]
        if self._reader is not None:
            parts.append(f"reader={self._reader!r}")
        return f"<{' '.join(parts)}>"

    @property
    def transport(self) -> asyncio.Transport:
        """The transport written to."""
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write *data* to the transport; see :meth:`drain`."""
        self._transport.write(data)

    def writelines(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write every item of *data* to the transport."""
        self._transport.writelines(data)

    def write_eof(self) -> None:
        """Close the write side once the buffered bytes are sent."""
        return self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """Whether the transport supports :meth:`write_eof` (not over TLS)."""
        return self._transport.can_write_eof()

    def close(self) -> None:
        """Close the transport (its buffered bytes are sent first)."""
        return self._transport.close()

    def is_closing(self) -> bool:
        """Whether the transport is closing or closed."""
        return self._transport.is_closing()

    async def wait_closed(self) -> None:
        """Return once the connection is closed (``connection_lost()`` ran); raise
        the connection's error if it had one."""
        await self._protocol._get_close_waiter(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Return the transport's information *name* (``peername``, ``socket``,
        ``ssl_object``...), or *default*."""
        return self._transport.get_extra_info(name, default)

    async def drain(self) -> None:
        """Wait until it is appropriate to write more.

        Raises the reader's exception if it has one. When the transport is
        closing, first lets other tasks run once, so that a ``write(); drain()``
        loop sees the connection go. Raises ``ConnectionResetError('Connection
        lost')`` once the connection is lost; while writing is paused (the buffer
        above its high watermark), waits until it resumes. Any number of tasks may
        wait at once.
        """
        reader = self._reader
        if reader is not None and (exc := reader.exception()) is not None:
            raise exc
        protocol = self._protocol
        closing = self._transport.is_closing()
        if self._plain_drain and not (
            closing or protocol._paused or protocol._connection_lost
        ):
            return
        if closing:
            # Let the loop run the callbacks already queued (connection_lost()
            # among them) once, so that the next check sees the connection gone.
            # A plain checkpoint would not promise that under Trio.
            loop = self._loop
            ran = create_waiter(loop)
            loop.call_soon(_set_done, ran)
            await ran
        await protocol._drain_helper()

    async def start_tls(
        self,
        sslcontext: _ssl.SSLContext,
        *,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        """Upgrade the connection to TLS, with the loop's ``start_tls()``.

        The server side of a connection (one made with a ``client_connected_cb``)
        upgrades as the server. The written bytes are drained first; from then on
        the writer, the reader and the protocol use the new transport.
        """
        protocol = self._protocol
        server_side = protocol._client_connected_cb is not None
        await self.drain()
        options: dict[str, Any] = {}
        if ssl_shutdown_timeout is not None:
            # Python 3.10's asyncio loops do not know this argument.
            options["ssl_shutdown_timeout"] = ssl_shutdown_timeout
        new_transport = await self._loop.start_tls(
            self._transport,
            protocol,
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            **options,
        )
        assert new_transport is not None
        self._transport = new_transport
        self._plain_drain = self._drains_plainly()
        protocol._replace_transport(new_transport)

    def __del__(self, warnings: Any = warnings) -> None:
        # As asyncio 3.13: a writer dropped while its transport is open closes it.
        try:
            transport = self._transport
        except AttributeError:  # the constructor failed
            return
        if not transport.is_closing():
            if self._loop.is_closed():
                warnings.warn("loop is closed", ResourceWarning)
            else:
                self.close()
                warnings.warn(f"unclosed {self!r}", ResourceWarning)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def close_waiter(writer: StreamWriter) -> asyncio.Future[None]:
    """The future that *writer*'s connection completes when it is lost."""
    return writer._protocol._get_close_waiter(writer)
