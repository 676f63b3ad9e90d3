"""A byte stream straight over a non-blocking socket, on both runtimes."""

from __future__ import annotations

import socket

import anyio
from anyio import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    EndOfStream,
)
from anyio.abc import SocketStream as AnyIOSocketStream

from .._backends import FdWaits, fd_waits


class SocketStream(AnyIOSocketStream):
    """An AnyIO socket stream that owns a connected stream socket.

    It keeps no buffer of its own, so while no :meth:`send_some` is in progress
    the socket (``extra(SocketAttribute.raw_socket)``) may be written to
    directly, without waiting. protoport's transports use it for every socket
    they make; AnyIO's typed attributes (:class:`anyio.abc.SocketAttribute`) work
    as on AnyIO's own socket streams.

    Make one with ``SocketStream(sock)``: ``from_socket()``, inherited from
    AnyIO, makes AnyIO's own socket stream instead.
    """

    __slots__ = ("_closed", "_receiving", "_sending", "_sock", "_waits")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        # The runtime's waits are looked up when first needed: a socket that
        # the loop's reactor serves never waits here.
        self._waits: FdWaits | None = None
        self._closed = False
        self._receiving = False
        self._sending = False

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    @property
    def socket(self) -> socket.socket:
        """The socket: what ``extra(SocketAttribute.raw_socket)`` returns, without
        the mapping of every attribute (and the system calls) that ``extra()``
        makes first."""
        return self._sock

    def _fd_waits(self) -> FdWaits:
        if self._waits is None:
            self._waits = fd_waits()
        return self._waits

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Wait for bytes and return at most *max_bytes* of them; raise
        :exc:`anyio.EndOfStream` once the peer has closed its side."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        if self._receiving:
            raise BusyResourceError("reading from")
        self._receiving = True
        waits = self._fd_waits()
        try:
            # Cancellation is taken before the socket is read, or while waiting,
            # never after: bytes taken from the kernel are always returned.
            await waits.checkpoint_if_cancelled()
            waited = False
            while True:
                self._check_open()
                try:
                    data = self._sock.recv(max_bytes)
                except (BlockingIOError, InterruptedError):
                    await waits.wait_readable(self._sock)
                    waited = True
                    continue
                except OSError as exc:
                    self._raise_for(exc)
                if not waited:
                    # Every receive lets other tasks run, so that a peer that
                    # always has data ready cannot starve them.
                    await waits.cancel_shielded_checkpoint()
                if not data:
                    raise EndOfStream
                return data
        except waits.closed_errors:
            raise ClosedResourceError from None
        finally:
            self._receiving = False

    async def send(self, item: bytes | bytearray | memoryview) -> None:
        """Send all of *item*, waiting while the socket's buffer is full."""
        view = memoryview(item).cast("B")
        while view:
            sent = await self.send_some(view)
            view = view[sent:]

    async def send_some(self, data: bytes | bytearray | memoryview) -> int:
        """Send what the kernel takes once it takes anything; return how many
        bytes that was. A writer that consumes its buffer by this much sees the
        buffer shrink as the peer reads, as asyncio's socket transports do."""
        if self._sending:
            raise BusyResourceError("writing to")
        self._sending = True
        waits = self._fd_waits()
        try:
            # As for receive(): what the kernel took is always reported.
            await waits.checkpoint_if_cancelled()
            waited = False
            while True:
                self._check_open()
                try:
                    sent = self._sock.send(data)
                except (BlockingIOError, InterruptedError):
                    await waits.wait_writable(self._sock)
                    waited = True
                    continue
                except OSError as exc:
                    self._raise_for(exc)
                if not waited:
                    await waits.cancel_shielded_checkpoint()
                return sent
        except waits.closed_errors:
            raise ClosedResourceError from None
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        """Shut the sending side down; receiving goes on."""
        self._check_open()
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._raise_for(exc)
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close the socket (see :meth:`close_now`)."""
        self.close_now()
        await anyio.lowlevel.checkpoint()

    def close_now(self) -> None:
        """Close the socket at once (tasks waiting on it get
        ``ClosedResourceError``)."""
        if not self._closed:
            self._closed = True
            # Only this stream's own waits may be waiting on the socket.
            if self._waits is not None and self._sock.fileno() >= 0:
                self._waits.notify_closing(self._sock)
            self._sock.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError

    def _raise_for(self, exc: OSError) -> None:
        if self._closed:
            raise ClosedResourceError from None
        raise BrokenResourceError from exc
