"""An asyncio datagram transport over a non-blocking datagram socket."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from anyio import CancelScope

from .._backends import FdWaits, Readers, failed_callback_context, fd_waits
from .._core._extra_info import socket_extra_info
from .._core._host import Host
from .._core._write_buffer import WriteBuffer, check_bytes_like
from ._base import BufferedWriting, Life, TransportBase

#: How much one read asks for on sockets of other families, as asyncio's
#: transports (a Unix datagram may be larger than 64 KiB).
MAX_READ_SIZE = 256 * 1024
#: How much one read asks for on UDP sockets: no UDP datagram is larger, and
#: the bytes object, allocated at this size before it shrinks to the datagram,
#: stays below the size the allocator would map fresh memory for.
UDP_READ_SIZE = 64 * 1024
#: How many datagrams one readable event delivers at most: what is queued is
#: read without asking the reactor again, and a flood on one endpoint cannot
#: hold the loop.
MAX_DATAGRAMS_PER_EVENT = 32
#: What each queued datagram adds to the write buffer's size besides its bytes,
#: as asyncio counts it.
DATAGRAM_OVERHEAD = 8

_Address = Any


class DatagramTransport(BufferedWriting, TransportBase, asyncio.DatagramTransport):
    """An :class:`asyncio.DatagramTransport` over a datagram socket (UDP over
    IPv4 or IPv6, or a Unix datagram socket), made by
    :meth:`protoport.Loop.create_datagram_endpoint`.

    The loop's reactor calls the transport when the socket is readable, and it
    delivers what is queued there, datagram by datagram, without a task of its
    own (where the runtime has no reactor, one task waits for readability).
    ``sendto()`` gives a datagram to the kernel at once; only while the kernel
    refuses are datagrams queued, counted in a :class:`~protoport.WriteBuffer`
    with asyncio's overhead per datagram (which pauses and resumes the
    protocol), and sent by a writer task that exists only until the queue is
    empty.

    An :class:`OSError` from the socket goes to ``protocol.error_received()``
    and the endpoint keeps serving; an exception raised by
    ``datagram_received()`` or ``error_received()`` goes to the loop's exception
    handler, and the endpoint keeps serving too.

    :meth:`start` and :meth:`finish` are for the loop that owns the transport.

    ``start()``, ``finish()`` and ``belongs_to()`` serve the loop that owns
    the transport."""

    __slots__ = (
        "_address",
        "_buffer",
        "_connected",
        "_fd",
        "_queue",
        "_read_scope",
        "_read_size",
        "_readers",
        "_registered",
        "_sock",
        "_waits",
        "_write_scope",
        "_writing",
    )

    _lost_write_warning = "socket.send() raised exception."

    def __init__(
        self,
        host: Host,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        address: _Address = None,
    ) -> None:
        sock.setblocking(False)
        info = socket_extra_info(sock)
        super().__init__(host, protocol, info, None)
        self._sock = sock
        self._fd = sock.fileno()
        #: The address sendto() sends to when given none (``remote_addr``).
        self._address = address
        #: Whether the socket is connected: it sends with send() then. asyncio
        #: asks whether the peer's address is true, which an unnamed peer's
        #: (a socketpair()'s) is not; it has a peer all the same.
        self._connected = info["peername"] is not None
        self._read_size = (
            UDP_READ_SIZE
            if sock.family in (socket.AF_INET, socket.AF_INET6)
            else MAX_READ_SIZE
        )
        self._buffer = WriteBuffer(
            protocol,
            transport=self,
            exception_handler=self._loop.call_exception_handler,
        )
        #: Datagrams the kernel refused, with their addresses, oldest first.
        self._queue: deque[tuple[bytes, _Address]] = deque()
        self._waits: FdWaits = fd_waits()
        self._readers: Readers | None = None
        self._registered = False
        self._read_scope: CancelScope | None = None
        #: Whether a writer task was started and has not ended.
        self._writing = False
        #: The writer task's scope, while it runs.
        self._write_scope: CancelScope | None = None

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} fd={self._fd}>"

    # -- life cycle ------------------------------------------------------------

    def start(self) -> None:
        """Call ``connection_made()``, then start reading (through the loop's
        reactor, or in a reader task where there is none)."""
        host = self._host
        host.adopt(self)
        self._run_callback(self._protocol.connection_made, self)
        if self._life is not _OPEN:
            return
        self._readers = readers = host.readers()
        if readers is None:
            host.spawn(self._run_reader)
        else:
            readers.add_reader(self._fd, self._on_readable)
            self._registered = True

    async def finish(self) -> None:
        """Stop at once and call ``connection_lost()``, if not done yet: what the
        loop does for a transport still open when its tasks have ended."""
        if self._lost_called:
            return
        if self._life is _OPEN or self._life is Life.CLOSING:
            self._life = Life.ABORTED
        self._abort_io()
        self._call_connection_lost()

    def _close_io(self) -> None:
        self._stop_reading()
        if not self._queue:
            self._host.run_soon(self._call_connection_lost)

    def _abort_io(self) -> None:
        self._stop_reading()
        self._queue.clear()
        self._buffer.clear()
        if self._write_scope is not None:
            self._write_scope.cancel()

    def _stop_reading(self) -> None:
        if self._registered:
            assert self._readers is not None
            self._readers.remove_reader(self._fd)
            self._registered = False
        if self._read_scope is not None:
            self._read_scope.cancel()

    def _release(self) -> None:
        self._finished = True
        self._stop_reading()
        self._buffer.close()
        if self._sock.fileno() >= 0:
            # Wakes a reader or writer task still waiting on the socket.
            self._waits.notify_closing(self._sock)
            self._sock.close()
        self._host.forget(self)

    # -- reading ---------------------------------------------------------------

    def _on_readable(self) -> None:
        """Deliver the datagrams queued on the socket, as many as there are up to
        :data:`MAX_DATAGRAMS_PER_EVENT`."""
        recvfrom = self._sock.recvfrom
        size = self._read_size
        for _ in range(MAX_DATAGRAMS_PER_EVENT):
            if self._life is not _OPEN:
                return
            try:
                data, addr = recvfrom(size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._call_protocol(self._protocol.error_received, exc)  # type: ignore[attr-defined]
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            # _call_protocol() inlined: this is the path of every datagram.
            try:
                self._protocol.datagram_received(data, addr)  # type: ignore[attr-defined]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._report_callback(
                    self._protocol.datagram_received,  # type: ignore[attr-defined]
                    (data, addr),
                    exc,
                )

    async def _run_reader(self) -> None:
        """Wait for readability in a task, where the loop has no reactor."""
        sock = self._sock
        invoke = self._host.invoke
        try:
            with CancelScope() as self._read_scope:
                while self._life is _OPEN:
                    await self._waits.wait_readable(sock)
                    invoke(self._on_readable)
        except self._waits.closed_errors:
            pass
        finally:
            self._read_scope = None

    def _call_protocol(self, callback: Callable[..., object], *args: Any) -> None:
        """Call a protocol callback as the loop would; what it raises goes to
        the exception handler."""
        try:
            self._host.invoke(callback, *args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._report_callback(callback, args, exc)

    def _report_callback(
        self, callback: Callable[..., object], args: tuple[Any, ...], exc: BaseException
    ) -> None:
        self._loop.call_exception_handler(
            failed_callback_context(self._loop, callback, args, exc)
        )

    # -- writing ---------------------------------------------------------------

    def sendto(
        self, data: bytes | bytearray | memoryview, addr: _Address = None
    ) -> None:
        """Send *data* as one datagram to *addr* (None: the connected peer), as
        :meth:`asyncio.DatagramTransport.sendto`; what the kernel refuses now is
        queued."""
        if type(data) is not bytes:
            check_bytes_like(data)
        address = self._address
        if address:
            if addr is not None and addr != address:
                raise ValueError(f"Invalid address: must be None or {address}")
            addr = address
        queue = self._queue
        life = self._life
        if life is not _OPEN and not (life is Life.CLOSING and queue):
            # As asyncio: what is sent while close() still flushes goes out too.
            self._count_lost_write()
            return
        if not queue:
            try:
                if self._connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._call_protocol(self._protocol.error_received, exc)  # type: ignore[attr-defined]
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
            if not self._writing:
                self._writing = True
                self._host.spawn(self._run_writer)
        # A copy: later changes to a bytearray must not change what is sent.
        queue.append((bytes(data), addr))
        # Under Trio, pause_writing() must see this loop as the running one.
        self._host.invoke(self._buffer.hold, len(data) + DATAGRAM_OVERHEAD)

    async def _run_writer(self) -> None:
        try:
            with CancelScope() as self._write_scope:
                await self._write_loop()
        except self._waits.closed_errors:
            pass
        finally:
            self._write_scope = None
            self._writing = False

    async def _write_loop(self) -> None:
        """Send the queued datagrams, oldest first, as the kernel takes them."""
        queue = self._queue
        sock = self._sock
        while queue:
            await self._waits.wait_writable(sock)
            while queue:
                data, addr = queue[0]
                try:
                    if self._connected:
                        sock.send(data)
                    else:
                        sock.sendto(data, addr)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    # As asyncio: this datagram is dropped, the rest are sent.
                    self._dequeue()
                    self._call_protocol(self._protocol.error_received, exc)  # type: ignore[attr-defined]
                    continue
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._fatal_error(exc, "Fatal write error on datagram transport")
                    return
                self._dequeue()
        if self._life is Life.CLOSING:
            self._call_connection_lost()

    def _dequeue(self) -> None:
        data, _ = self._queue.popleft()
        self._host.invoke(self._buffer.release, len(data) + DATAGRAM_OVERHEAD)

    def abort(self) -> None:
        """Close at once: queued datagrams are dropped; ``connection_lost(None)``
        follows."""
        self._force_close(None)

    # -- protocol --------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Deliver to *protocol* from now on."""
        super().set_protocol(protocol)
        self._buffer.protocol = protocol


_OPEN = Life.OPEN
