"""A bidirectional asyncio transport over any AnyIO byte stream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from anyio import (
    BrokenResourceError,
    CancelScope,
    ClosedResourceError,
    EndOfStream,
)
from anyio.abc import ByteStream

from .._backends import Sender, raw_sender
from .._core._connection_set import ConnectionSet
from .._core._extra_info import socket_extra_info, stream_extra_info
from .._core._flag import Flag
from .._core._host import Host
from .._core._socket_stream import SocketStream
from .._core._write_buffer import WriteBuffer, check_bytes_like
from ._base import BufferedWriting, Life, TransportBase

#: How much one ``receive()`` asks for, as asyncio's socket transports.
MAX_READ_SIZE = 256 * 1024
#: How much one read of the reactor asks for: the bytes object is allocated at
#: this size before it shrinks to the read, and beyond 128 KiB the allocator
#: would map fresh memory for it (three system calls per read).
REACTOR_READ_SIZE = 64 * 1024
#: How long a graceful close may take (e.g. a TLS shutdown) before it is forced.
CLOSE_TIMEOUT = 30.0


@dataclass
class Handover:
    """What :meth:`StreamTransport.hand_over` gives up: the stream, the bytes read
    from it and not delivered, and the connection set the transport was in."""

    stream: ByteStream
    unread: bytes
    clients: ConnectionSet | None


def _peer_error(exc: BaseException) -> BaseException:
    """The exception ``connection_lost()`` receives for a broken stream (AnyIO's
    TLS stream raises ``EndOfStream`` from ``send()`` once the peer has closed)."""
    if isinstance(exc, (BrokenResourceError, EndOfStream)):
        cause = exc.__cause__
        if isinstance(cause, OSError):
            return cause
        return ConnectionResetError("Connection lost")
    return exc


def _decline_asyncio_sendfile(transport: StreamTransport) -> object:
    """Raise :exc:`NotImplementedError`: asyncio's own ``loop.sendfile()`` cannot
    send on protoport's transports; ``protoport.get_running_loop().sendfile()``
    can."""
    # asyncio's loop.sendfile() looks this attribute up to choose how to send.
    # Its two ways write through asyncio's selector-transport internals (the
    # socket and its registration, the flow-control mixin), which protoport's
    # transports do not have; without the attribute it raises RuntimeError, which
    # ends a caller such as aiohttp's FileResponse. NotImplementedError is what
    # an event loop without sendfile support raises (uvloop's does), and what
    # such callers catch to send the file with write() instead.
    raise NotImplementedError(
        f"asyncio's loop.sendfile() does not support {transport!r}: use "
        "protoport.get_running_loop().sendfile(), or write() the file's bytes"
    )


class StreamTransport(BufferedWriting, TransportBase, asyncio.Transport):
    """An :class:`asyncio.Transport` that drives a protocol over an AnyIO
    :class:`~anyio.abc.ByteStream`.

    The loop makes one for every connection: :meth:`protoport.Loop.connect_stream`,
    ``create_connection()``, the connections a server accepts. ``write()`` never
    blocks: the bytes go to the socket at once when it takes them without waiting,
    and otherwise into a :class:`~protoport.WriteBuffer`.

    On protoport's own sockets the transport runs no task at all, as a selector
    loop's transport: the loop's reactor calls it when the socket is readable (one
    read, delivered at once) and, only while the buffer holds bytes for a slow
    peer, when it is writable. On any other stream a reader task feeds
    ``data_received()`` (or ``get_buffer()``/``buffer_updated()``) and ends the
    connection once it is closed; a writer task runs only while the buffer holds
    bytes the stream has not taken yet. A TLS connection's transport is a
    subclass that cannot half-close: its ``can_write_eof()`` is False.

    ``start()``, ``run()``, ``finish()``, ``hand_over()``, ``belongs_to()``,
    ``sendfile_socket()``, ``sending_file()``, ``is_writing_paused()`` and
    ``wait_flushed()`` serve the loop that owns the transport; they are not part
    of the transport's API.
    """

    __slots__ = (
        "_buffer",
        "_buffered",
        "_close_scope",
        "_drained",
        "_eof_requested",
        "_eof_seen",
        "_eof_sent",
        "_fd",
        "_held",
        "_in_sendfile",
        "_read_scope",
        "_reader_done",
        "_readers",
        "_reading_paused",
        "_registered",
        "_resumed",
        "_sending",
        "_sock",
        "_stream",
        "_sync_send",
        "_write_scope",
        "_writer_done",
        "_writing",
    )

    _write_buffer_type = WriteBuffer
    _close_timeout = CLOSE_TIMEOUT
    #: Whether close() with nothing left to send calls connection_lost() on the
    #: next round, as asyncio's socket transports do (TLS must first exchange
    #: close_notify).
    _lost_at_close = True
    #: The exception handler's message for a failing data callback, when the
    #: transport kind has one message for them all (TLS: asyncio's SSL protocol).
    _callback_error_message: str | None = None

    def __init__(
        self,
        host: Host,
        stream: ByteStream,
        protocol: asyncio.BaseProtocol,
        extra: dict[str, Any] | None = None,
        *,
        clients: ConnectionSet | None = None,
    ) -> None:
        sock = stream.socket if isinstance(stream, SocketStream) else None
        if sock is not None:
            info = socket_extra_info(sock, extra)
        else:
            info = stream_extra_info(stream, extra)
        super().__init__(host, protocol, info, clients)
        self._stream = stream
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
        self._buffer = self._write_buffer_type(
            protocol,
            transport=self,
            exception_handler=self._loop.call_exception_handler,
        )
        # A socket of protoport's own is served by the loop's reactor, with a
        # synchronous callback per ready socket instead of reader and writer
        # tasks, and bytes go straight to the kernel where nothing buffers them
        # on the way.
        self._sock: Any = sock
        self._readers = None
        self._fd = -1
        self._sync_send: Sender | None
        if sock is not None:
            self._readers = host.readers()
            self._fd = sock.fileno()
            self._sync_send = sock.send
        else:
            self._sync_send = raw_sender(stream)
        self._registered = False
        self._eof_seen = False
        self._eof_requested = False
        #: Whether the writer task has shut the stream's sending side down.
        self._eof_sent = False
        self._reading_paused = False
        #: Set by resume_reading() for a reader task waiting while paused.
        self._resumed: anyio.Event | None = None
        #: Whether the writer task is sending (what it took is still counted).
        self._sending = False
        #: Whether the reactor calls _on_writable() (bytes wait for the peer).
        self._writing = False
        #: Set once the reactor's writer stops, for a hand-over waiting on it.
        self._drained: anyio.Event | None = None
        self._read_scope: CancelScope | None = None
        self._write_scope: CancelScope | None = None
        #: Set when the reader's loop ends; made when the reader is started (a
        #: hand-over must wait for a reader that has not started yet), None once
        #: it ended or when there is none.
        self._reader_done: Flag | None = None
        #: Set when the writer task ends; made when it is spawned, None once it
        #: ended or while none runs.
        self._writer_done: Flag | None = None
        #: Bytes read while paused, held until reading resumes.
        self._held: bytes | memoryview | None = None
        #: The scope of a graceful end under way (a TLS shutdown, a stream's
        #: aclose()), which abort() cuts short.
        self._close_scope: CancelScope | None = None
        #: Whether loop.sendfile() is sending on the socket itself: write() is
        #: refused meanwhile, as asyncio refuses it.
        self._in_sendfile = False

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} stream={self._stream!r}>"

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """AnyIO's typed attributes of the stream underneath."""
        return self._stream.extra_attributes

    # -- life cycle ------------------------------------------------------------

    def start(
        self, *, call_connection_made: bool = True, reader_task: bool = True
    ) -> None:
        """Call ``connection_made()`` and start reading once it has returned
        (through the reactor, or with a reader task over a stream that is not a
        socket of protoport's own).

        With *reader_task* false, no reader task is spawned for such a stream:
        the caller awaits :meth:`run` instead, in a task of the loop's.

        A protocol without ``connection_made()`` (a factory that returned None)
        raises here, as asyncio's transports raise when they are made, before
        anything is started: the transport leaves its connection set, and the
        caller closes the stream.
        """
        host = self._host
        if call_connection_made:
            try:
                connection_made = self._protocol.connection_made
            except BaseException:
                self._leave_connection_set()
                raise
        host.adopt(self)
        if self._readers is None:
            # Made here, perhaps in a callback of the loop; waited for by Trio code.
            self._reader_done = Flag()
            if reader_task:
                host.spawn(self.run)
        if call_connection_made:
            self._run_callback(connection_made, self)
        self._update_registration()

    async def run(self) -> None:
        """Read until reading ends; then, if the transport is closing, end the
        connection once the writer task (if any) is done: what the reader task
        runs over a stream that is not a socket of protoport's own.

        After an end of stream that leaves the transport half-open, it returns
        at once: the writer task that ``close()`` then spawns ends the
        connection.
        """
        done = self._reader_done
        assert done is not None
        try:
            if self._life is _OPEN and not self._handing_over:
                with CancelScope() as self._read_scope:
                    await self._read_loop()
        finally:
            self._read_scope = None
            self._reader_done = None
            done.set()
            if self._life is not _OPEN and not self._handing_over:
                with CancelScope(shield=True):
                    if self._writer_done is not None:
                        await self._writer_done.wait()
                    await self.finish()

    async def _run_writer(self) -> None:
        done = self._writer_done
        assert done is not None
        try:
            with CancelScope() as self._write_scope:
                await self._write_loop()
        finally:
            self._write_scope = None
            self._writer_done = None
            done.set()
            # With a reader still running, the reader ends the connection.
            if (
                self._life is not _OPEN
                and self._reader_done is None
                and not self._handing_over
            ):
                with CancelScope(shield=True):
                    await self.finish()

    def _spawn_writer(self) -> None:
        self._writer_done = Flag()
        self._host.spawn(self._run_writer)

    def _end_in_task(self) -> None:
        """Over a stream that is not a socket of protoport's own: have a task end
        the connection now that it is closing. The reader task does once its
        loop ends, a writer task once the buffer is sent; with neither running,
        a writer task is spawned to do it."""
        if (
            self._readers is None
            and self._reader_done is None
            and self._writer_done is None
            and not self._finished
        ):
            self._spawn_writer()

    async def finish(self) -> None:
        """Close the stream and call ``connection_lost()`` exactly once: what the
        reader task (or a writer task, without one) does once the transport is
        closing, and what the loop does for a transport it still holds when it
        closes."""
        if self._finished:
            return
        self._finished = True
        graceful = self._life is not Life.ABORTED
        if self._life is Life.OPEN:
            self._life = Life.CLOSING
        self._update_registration()
        await self._stop_reader()
        if not isinstance(self._stream, SocketStream):
            # A socket of protoport's own is closed after connection_lost(), as
            # asyncio closes its sockets; other streams may need to say goodbye.
            await self._close_stream(graceful)
        self._buffer.clear()
        self._buffer.close()
        try:
            self._call_connection_lost()
        finally:
            self._host.forget(self)

    async def _stop_reader(self) -> None:
        if self._read_scope is not None:
            self._read_scope.cancel()
        if self._reader_done is not None:
            await self._reader_done.wait()

    def _release(self) -> None:
        stream = self._stream
        if not isinstance(stream, SocketStream):
            return
        if self._readers is not None:
            # No task will finish this transport: it is done now.
            self._finished = True
            self._update_registration()
            self._stop_writing()
            self._buffer.clear()
            self._buffer.close()
            self._host.forget(self)
        stream.close_now()

    async def _close_stream(self, graceful: bool) -> None:
        """Close a stream that is not a socket of protoport's own: unless the
        transport was aborted, first with its ``aclose()`` (cut short by the
        close timeout or by ``abort()``), then forcefully."""
        if graceful:
            with anyio.move_on_after(self._close_timeout) as self._close_scope:
                try:
                    await self._stream.aclose()
                except (OSError, BrokenResourceError, ClosedResourceError):
                    pass
            self._close_scope = None
        await anyio.aclose_forcefully(self._stream)

    async def hand_over(self) -> Handover:
        """Give the stream up (for ``start_tls()``): stop reading, let the writer
        send what is buffered, stop both tasks without closing the stream, and
        return it with the bytes read from it and not yet delivered.

        The transport is closed from then on, without ``connection_lost()``; it
        stays in its connection set, which the caller takes over.

        :raises ConnectionResetError: when the transport is already closing or
            aborted, or is closed, aborted or fails before the writer is done
            (or the error it failed with); it then ends as any other would, its
            protocol getting ``connection_lost()`` once, and nothing is handed
            over. A cancellation meanwhile aborts it the same way.
        """
        if self._life is not _OPEN or self._finished:
            # close() or abort() came first: that end goes on as it began.
            raise self._exc or ConnectionResetError("Connection lost")
        self._handing_over = True
        self._reading_paused = True
        self._update_registration()
        try:
            await self._stop_reader()
            await self._wait_writer_idle()
        except BaseException:
            self._handing_over = False
            self.abort()
            with CancelScope(shield=True):
                await self.finish()
            raise
        if self._life is not _OPEN or self._finished or self._lost_called:
            self._handing_over = False
            await self.finish()
            raise self._exc or ConnectionResetError("Connection lost")
        self._life = Life.HANDED_OVER
        self._finished = True
        self._buffer.close()
        self._host.forget(self)
        held = bytes(self._held) if self._held is not None else b""
        self._held = None
        clients, self._clients = self._clients, None
        return Handover(self._stream, held, clients)

    # -- reading ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        receive = self._stream.receive
        while True:
            if self._reading_paused:
                await self._wait_while_paused()
            if self._life is not _OPEN:
                return
            try:
                data = await receive(MAX_READ_SIZE)
            except EndOfStream:
                # The end of the stream waits for resume_reading() as data does.
                if self._reading_paused:
                    await self._wait_while_paused()
                if not self.is_closing():
                    self._eof_received()
                return
            except ClosedResourceError:
                return
            except (BrokenResourceError, OSError) as exc:
                self._fatal_error(
                    _peer_error(exc), "Fatal read error on socket transport"
                )
                return
            if self._reading_paused:
                self._held = data
                await self._wait_while_paused()
                self._held = None
            if self.is_closing():
                return
            if self._buffered:
                await self._deliver_buffered(data)
                continue
            self._read_callback("data_received", data)

    async def _deliver_buffered(self, data: bytes) -> None:
        """Copy *data* into the buffers the protocol hands out, one
        ``get_buffer()``/``buffer_updated()`` pair at a time; a pause, a close or a
        protocol switch made by a callback applies to the rest at once."""
        view = memoryview(data)
        while view:
            if self._reading_paused:
                self._held = view
                await self._wait_while_paused()
                self._held = None
            if self.is_closing():
                return
            if not self._buffered:
                self._read_callback("data_received", bytes(view))
                return
            buf = self._get_buffer()
            if buf is None:
                return
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            view = view[n:]
            if not self._read_callback("buffer_updated", n):
                return

    def _read_callback(self, name: str, arg: object) -> bool:
        """Call ``protocol.<name>(arg)``; a failure is fatal to the transport, as
        in asyncio. Return whether it succeeded."""
        try:
            self._host.invoke(getattr(self._protocol, name), arg)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._callback_failed(name, exc)
            return False
        return True

    def _callback_failed(self, name: str, exc: BaseException) -> None:
        self._fatal_error(
            exc,
            self._callback_error_message
            or f"Fatal error: protocol.{name}() call failed.",
        )

    def _get_buffer(self) -> memoryview | None:
        """``protocol.get_buffer(-1)`` as a byte view; None (and the transport
        failed) if it raised or returned an empty buffer."""
        try:
            buf = memoryview(
                self._host.invoke(self._protocol.get_buffer, -1)  # type: ignore[attr-defined]
            ).cast("B")
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(
                exc,
                self._callback_error_message
                or "Fatal error: protocol.get_buffer() call failed.",
            )
            return None
        return buf

    def _eof_received(self) -> None:
        try:
            keep_open = self._host.invoke(self._protocol.eof_received)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not self._keep_open_after_eof(keep_open):
            self.close()

    def _keep_open_after_eof(self, keep_open: object) -> bool:
        """Whether ``eof_received()``'s result keeps the transport half-open."""
        return bool(keep_open)

    async def _wait_while_paused(self) -> None:
        while self._reading_paused and self._life is _OPEN:
            if self._resumed is None:
                self._resumed = anyio.Event()
            await self._resumed.wait()

    def is_reading(self) -> bool:
        """Whether the transport is receiving: open and not paused."""
        return not self._reading_paused and self._life is _OPEN

    def pause_reading(self) -> None:
        """Stop calling ``data_received()`` until :meth:`resume_reading`; the
        peer is held back by the kernel's buffers. Does nothing when paused or
        closing."""
        if self._life is not _OPEN or self._reading_paused:
            return
        self._reading_paused = True
        self._update_registration()

    def resume_reading(self) -> None:
        """Deliver received bytes again after :meth:`pause_reading`."""
        if self._life is not _OPEN or not self._reading_paused:
            return
        self._reading_paused = False
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None
        self._update_registration()

    # -- reading through the reactor -------------------------------------------

    def _update_registration(self) -> None:
        """Be registered with the reactor exactly while reading should go on."""
        readers = self._readers
        if readers is None:
            return
        wanted = self._life is _OPEN and not (
            self._reading_paused or self._eof_seen or self._handing_over
        )
        if wanted and not self._registered:
            readers.add_reader(self._fd, self._on_readable)
            self._registered = True
        elif not wanted and self._registered:
            readers.remove_reader(self._fd)
            self._registered = False

    def _on_readable(self) -> None:
        """One read, delivered at once, as a selector loop's transport does."""
        if self._life is not _OPEN or self._reading_paused:
            self._update_registration()
            return
        sock = self._sock
        if self._buffered:
            self._read_into_buffer(sock)
            return
        try:
            data = sock.recv(REACTOR_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._end_of_stream()
            return
        # _read_callback() inlined: the reactor already runs this loop as the
        # running one, and this is the path of every read.
        try:
            self._protocol.data_received(data)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._callback_failed("data_received", exc)

    def _read_into_buffer(self, sock: Any) -> None:
        buf = self._get_buffer()
        if buf is None:
            return
        try:
            nbytes = sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._end_of_stream()
            return
        self._read_callback("buffer_updated", nbytes)

    def _end_of_stream(self) -> None:
        self._eof_seen = True
        self._update_registration()
        self._eof_received()

    # -- writing ---------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send *data* without blocking: what the stream does not take at once
        is buffered, and the protocol's ``pause_writing()`` is called when the
        buffer passes the high watermark."""
        if type(data) is not bytes:
            data = self._writable_bytes(data)
        elif self._eof_requested:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._in_sendfile:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return
        life = self._life
        if life is not _OPEN and not (life is Life.CLOSING and self._buffer):
            # As CPython: bytes written while close() still flushes are sent too.
            self._count_lost_write()
            return
        # The buffer's size read without a call: this is the path of every write.
        if self._sync_send is not None and not self._sending and not self._buffer.size:
            try:
                sent = self._sync_send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal_error(exc, "Fatal write error on socket transport")
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        # Under Trio, pause_writing() must see this loop as the running one.
        self._host.invoke(self._buffer.append, data)
        self._want_writing()

    def _writable_bytes(
        self, data: bytes | bytearray | memoryview
    ) -> bytes | bytearray | memoryview:
        """*data*, checked as ``write()`` checks what is not :class:`bytes`; a
        memoryview the socket could not take as it is comes back as bytes."""
        check_bytes_like(data)
        if self._eof_requested:
            raise RuntimeError("Cannot call write() after write_eof()")
        if type(data) is memoryview and (
            data.itemsize != 1 or data.ndim != 1 or not data.c_contiguous
        ):
            return data.tobytes()
        return data

    def writelines(
        self, list_of_data: Iterable[bytes | bytearray | memoryview]
    ) -> None:
        """Write every item of *list_of_data*, as one ``write()``.

        As asyncio's socket transports (Python 3.12 on): any bytes-like item is
        taken, one that is not raises ``memoryview()``'s :exc:`TypeError` and
        nothing is written, and a false *list_of_data* (``None``, empty) writes
        nothing.
        """
        if self._eof_requested:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self._in_sendfile:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        if not list_of_data:
            return
        items = [
            data if type(data) is bytes else memoryview(data) for data in list_of_data
        ]
        if not items:
            return
        try:
            joined = b"".join(items)
        except TypeError:  # a memoryview that is not contiguous
            joined = b"".join(bytes(item) for item in items)
        self.write(joined)

    def _want_writing(self) -> None:
        """Have what is buffered (and an end of file asked for) sent: the
        reactor calls :meth:`_on_writable` until it is, or the writer task wakes."""
        if self._readers is None:
            # A writer task runs only while there is something to send.
            if self._writer_done is None:
                self._spawn_writer()
        elif not self._writing:
            self._writing = True
            self._readers.add_writer(self._fd, self._on_writable)

    def _stop_writing(self) -> None:
        """The reactor's writer is done: nothing is left to send, or nothing more
        may be sent."""
        if self._writing:
            self._writing = False
            self._readers.remove_writer(self._fd)  # type: ignore[union-attr]
        if self._drained is not None:
            self._drained.set()
            self._drained = None

    async def _wait_writer_idle(self) -> None:
        """Return once the writer has sent what is buffered, or stopped."""
        if self._readers is None:
            if self._writer_done is not None:
                await self._writer_done.wait()
        elif self._writing:
            self._drained = drained = anyio.Event()
            await drained.wait()

    def _on_writable(self) -> None:
        """Send what the socket takes, as a selector loop's transport does; once
        the buffer is empty, stop watching the socket and go on with what waited
        for it: a hand-over, the end of a close, a ``write_eof()``."""
        buffer = self._buffer
        if buffer:
            try:
                sent = self._sock.send(buffer.peek())
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fatal_error(exc, "Fatal write error on socket transport")
                return
            # The reactor runs this loop as the running one, as resume_writing()
            # must see it.
            buffer.consume(sent)
            if buffer or self._life is Life.ABORTED:
                return
        self._stop_writing()
        if self._handing_over:
            return
        if self._life is Life.CLOSING:
            self._call_connection_lost()
        elif self._eof_requested:
            self._shut_down_writing()

    def _shut_down_writing(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")

    async def _write_loop(self) -> None:
        """Send what is buffered, then the end of file if one is asked for;
        return once nothing is left to send (the task ends then)."""
        buffer = self._buffer
        stream = self._stream
        send_some = stream.send_some if isinstance(stream, SocketStream) else None
        while True:
            if buffer:
                chunk = buffer.peek()
                self._sending = True
                try:
                    if send_some is not None:
                        sent = await send_some(chunk)
                    else:
                        await stream.send(chunk)  # type: ignore[arg-type]
                        sent = len(chunk)
                except (BrokenResourceError, EndOfStream, OSError) as exc:
                    self._fatal_error(
                        _peer_error(exc), "Fatal write error on socket transport"
                    )
                    return
                except ClosedResourceError:
                    return
                finally:
                    self._sending = False
                self._host.invoke(buffer.consume, sent)
                continue
            if self._life is not _OPEN or self._handing_over:
                return
            if self._eof_requested and not self._eof_sent:
                self._eof_sent = True
                try:
                    await self._stream.send_eof()
                except (BrokenResourceError, EndOfStream, OSError) as exc:
                    self._fatal_error(
                        _peer_error(exc), "Fatal write error on socket transport"
                    )
                    return
                continue
            return

    # -- sendfile --------------------------------------------------------------

    def sendfile_socket(self) -> socket.socket | None:
        """The socket ``loop.sendfile()`` may hand to ``os.sendfile()``: the one
        under protoport's own :class:`~protoport.SocketStream`; None for TLS and
        any other stream, whose bytes only the stream may send."""
        sock: socket.socket | None = self._sock
        return sock

    @contextmanager
    def sending_file(self) -> Iterator[None]:
        """Hold the transport for ``loop.sendfile()``'s own sending on
        :meth:`sendfile_socket`: ``write()`` and ``writelines()`` raise meanwhile.

        :raises RuntimeError: if a sendfile is in progress already
        """
        if self._in_sendfile:
            # asyncio's message for the same mistake.
            raise RuntimeError("Empty waiter is already set")
        self._in_sendfile = True
        try:
            yield
        finally:
            self._in_sendfile = False

    def is_writing_paused(self) -> bool:
        """Whether the protocol was told to pause writing and not yet to resume
        (what ``loop.sendfile()`` must know when it stands in for the protocol)."""
        return self._buffer.paused

    async def wait_flushed(self) -> None:
        """Return once the stream has taken every byte ``write()`` accepted.

        :raises ConnectionError: if the transport closes or fails first (with its
            error, when it has one)
        """
        await self._buffer.wait_empty()
        if self._life is not _OPEN:
            raise self._exc or ConnectionError("Connection is closed by peer")

    _sendfile_compatible = property(
        _decline_asyncio_sendfile, doc=_decline_asyncio_sendfile.__doc__
    )

    def can_write_eof(self) -> bool:
        """True: :meth:`write_eof` is supported (not by the TLS transport)."""
        return True

    def write_eof(self) -> None:
        """Close the write side once the buffered bytes are sent; receiving goes
        on."""
        if self._life is not _OPEN or self._eof_requested:
            return
        self._eof_requested = True
        if self._readers is not None and not self._writing:
            self._shut_down_writing()
        else:
            self._want_writing()

    # -- closing ---------------------------------------------------------------

    def _close_io(self) -> None:
        self._stop_reading()
        # Bytes still buffered keep the reactor's writer (or the writer task) on
        # until they are sent; then the connection ends.
        self._end_in_task()
        if (
            self._lost_at_close
            and not self._buffer
            and not self._sending
            and not self._handing_over
        ):
            self._host.run_soon(self._call_connection_lost)

    def abort(self) -> None:
        """Close at once: what is buffered is dropped, and a graceful end under
        way (a TLS shutdown) is cut short, as asyncio's transports abort."""
        scope = self._close_scope
        if scope is not None:
            scope.cancel()
        super().abort()

    def _abort_io(self) -> None:
        self._buffer.clear()
        self._stop_reading()
        if self._write_scope is not None:
            self._write_scope.cancel()
        self._end_in_task()
        self._stop_writing()

    def _stop_reading(self) -> None:
        self._update_registration()
        if self._read_scope is not None:
            self._read_scope.cancel()
        if self._resumed is not None:
            self._resumed.set()

    # -- protocol ----------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Make the transport call *protocol* from now on (as a
        :class:`asyncio.BufferedProtocol` if it is one)."""
        super().set_protocol(protocol)
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)
        self._buffer.protocol = protocol


_OPEN = Life.OPEN
