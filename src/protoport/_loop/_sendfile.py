"""Sending a file on a transport: ``loop.sendfile()``.

A plain socket transport sends with ``os.sendfile()``: reading is paused, the
bytes written before are flushed, and the kernel copies the file to the socket
while ``write()`` is refused. Any other stream transport (TLS, a stream that is
not protoport's own socket) gets the documented fallback: the file is read in a
worker thread and written to the transport, waiting while the transport's
buffer is above its high watermark. Both leave the file's position after the
last byte sent, and the bytes keep their order with what is written before and
after, as in asyncio.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import anyio.to_thread

from .._backends import fd_waits
from .._core._host import Host
from .._transports._stream import StreamTransport
from ._bridge import trio_side
from ._file_reading import FileReader
from ._sockets import check_sendfile, runtime_waits, sendfile_native

#: What the fallback reads and writes at a time (asyncio's size).
FALLBACK_CHUNK = 16 * 1024


async def sendfile(
    host: Host,
    transport: asyncio.BaseTransport,
    file: Any,
    offset: int,
    count: int | None,
    *,
    fallback: bool,
) -> int:
    """Send *file* on *transport* as :meth:`asyncio.loop.sendfile` does; return
    how many bytes were sent.

    What must happen before the first suspension happens here, in the caller's
    step, as in asyncio: a ``write()`` right after the call already sees the
    sendfile in progress.
    """
    if transport.is_closing():
        raise RuntimeError("Transport is closing")
    if not isinstance(transport, StreamTransport) or not transport.belongs_to(host):
        raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
    sock = transport.sendfile_socket()
    if sock is not None:
        try:
            return await _send_natively(transport, sock, file, offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
    if not fallback:
        raise RuntimeError(
            f"fallback is disabled and native sendfile is not supported for "
            f"transport {transport!r}"
        )
    return await _send_by_writing(transport, file, offset, count)


async def _send_natively(
    transport: StreamTransport,
    sock: socket.socket,
    file: Any,
    offset: int,
    count: int | None,
) -> int:
    resume_reading = transport.is_reading()
    with transport.sending_file():
        transport.pause_reading()
        try:
            return await _flush_and_send(transport, sock, file, offset, count)
        finally:
            if resume_reading:
                transport.resume_reading()


@trio_side
async def _flush_and_send(
    transport: StreamTransport,
    sock: socket.socket,
    file: Any,
    offset: int,
    count: int | None,
) -> int:
    def check_open(fd: int) -> None:
        if transport.is_closing():
            raise ConnectionError("Connection is closed by peer")

    await transport.wait_flushed()
    # asyncio checks the arguments here too, once the buffer is flushed (the
    # socket is never blocking: protoport's socket streams make it so).
    check_sendfile(sock, file, offset, count)
    try:
        return await sendfile_native(
            sock, runtime_waits(check_open), file, offset, count
        )
    except fd_waits().closed_errors:
        # The transport closed the socket under the wait.
        raise ConnectionError("Connection is closed by peer") from None


async def _send_by_writing(
    transport: StreamTransport, file: Any, offset: int, count: int | None
) -> int:
    if offset:
        file.seek(offset)
    stand_in = _StandIn(transport)
    try:
        return await _read_and_write(transport, stand_in, file, offset, count)
    finally:
        stand_in.restore()


@trio_side
async def _read_and_write(
    transport: StreamTransport,
    stand_in: _StandIn,
    file: Any,
    offset: int,
    count: int | None,
) -> int:
    reader = FileReader(file, count, FALLBACK_CHUNK)
    sent = 0
    try:
        while piece := await reader.next(anyio.to_thread.run_sync):
            await stand_in.wait_writable()
            # write() copies what the socket does not take at once.
            transport.write(piece)
            sent += len(piece)
        return sent
    finally:
        if sent > 0 and hasattr(file, "seek"):
            file.seek(offset + sent)


class _StandIn(asyncio.Protocol):
    """The transport's protocol while the fallback writes, as in asyncio: it takes
    the flow-control calls meant for the writer (the user's protocol sees none
    of them), and hands ``connection_lost()`` on. Reading is paused meanwhile.
    """

    def __init__(self, transport: StreamTransport) -> None:
        self._transport = transport
        self._protocol = transport.get_protocol()
        self._resume_reading = transport.is_reading()
        #: What the user's protocol was last told: paused or not.
        self._protocol_paused = transport.is_writing_paused()
        self._paused = self._protocol_paused
        self._resumed: anyio.Event | None = None
        self._lost: BaseException | None = None
        transport.pause_reading()
        transport.set_protocol(self)

    async def wait_writable(self) -> None:
        """Return once the transport's buffer is below its high watermark.

        :raises ConnectionError: once the transport is closing or closed (with
            the error it was lost with, if any)
        """
        while True:
            if self._lost is not None:
                raise self._lost
            if self._transport.is_closing():
                raise ConnectionError("Connection closed by peer")
            if not self._paused:
                return
            if self._resumed is None:
                self._resumed = anyio.Event()
            await self._resumed.wait()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("Connection is closed by peer")
        self._wake()
        self._protocol.connection_lost(exc)

    def _wake(self) -> None:
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None

    def restore(self) -> None:
        """Give the transport back to the user's protocol, tell it where write
        flow control stands now, and resume reading if it was on."""
        transport = self._transport
        transport.set_protocol(self._protocol)
        if self._resume_reading:
            transport.resume_reading()
        if self._lost is not None:
            return
        # asyncio calls resume_writing() here if the protocol was paused at the
        # start, whatever the buffer holds now; protoport tells the protocol
        # the state that holds now, so that pause and resume keep alternating.
        paused = transport.is_writing_paused()
        if paused and not self._protocol_paused:
            self._protocol.pause_writing()
        elif self._protocol_paused and not paused:
            self._protocol.resume_writing()
