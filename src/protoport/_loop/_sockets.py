"""Working with socket objects directly: ``loop.sock_recv()`` and its kin.

Each call tries the socket at once, in the caller's own step, and waits only when
the kernel has nothing to give or take, as asyncio's selector loop does. How it
waits is a :class:`Waits`. A caller that awaits the loop's futures as asyncio
does (a task of the loop under Trio, any task under asyncio) registers the socket
with the loop's reactor, in the place of any other reader or writer of that
socket as in asyncio, and awaits a future of the loop: the call is registered
before the task's next step and costs no other task, and cancelling it removes
the registration. Any other caller (a Trio task, a task of another loop, every
caller where the loop has no reactor) waits the runtime's way. Either way,
cancelling a call leaves the socket as it was: nothing is taken from or given to
the kernel after the cancellation.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import io
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread

from .._backends import fd_waits
from .._core._connect import begin_connect, connected
from ._bridge import trio_side
from ._descriptors import READ, WRITE, Watches
from ._dns import AddrInfo, resolve
from ._file_reading import FileReader
from ._tls_arguments import check_not_ssl_socket

T = TypeVar("T")

#: What ``sock_sendfile()`` reads at a time when it falls back to sending.
SENDFILE_FALLBACK_CHUNK = 256 * 1024

#: Raises RuntimeError when the descriptor is used by one of the loop's
#: transports.
FdCheck = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Waits:
    """How a call waits. A wait for a socket first refuses one that a transport
    of the loop uses, as asyncio does once a call must wait."""

    #: Returns once the socket is readable (or may be).
    readable: Callable[[socket.socket], Awaitable[None]]
    #: Returns once the socket is writable (or may be).
    writable: Callable[[socket.socket], Awaitable[None]]
    #: ``run_in_thread(fn, *args)``: the outcome of ``fn(*args)``, called in a
    #: worker thread.
    run_in_thread: Callable[..., Awaitable[Any]]


def reactor_waits(
    watches: Watches,
    check: FdCheck,
    run_in_thread: Callable[..., Awaitable[Any]],
) -> Waits:
    """Waits through the loop's reactor, for callers that await the loop's
    futures."""
    return Waits(
        functools.partial(_registered, watches, check, READ),
        functools.partial(_registered, watches, check, WRITE),
        run_in_thread,
    )


def _registered(
    watches: Watches, check: FdCheck, kind: str, sock: socket.socket
) -> asyncio.Future[None]:
    fileno = sock.fileno()
    check(fileno)
    return watches.ready(fileno, kind)


def runtime_waits(check: FdCheck) -> Waits:
    """Waits the runtime's way (in a Trio task of the loop, for a task of a loop
    under Trio)."""
    return Waits(
        functools.partial(_wait_readable, check),
        functools.partial(_wait_writable, check),
        _run_in_thread,
    )


@trio_side
async def _wait_readable(check: FdCheck, sock: socket.socket) -> None:
    check(sock.fileno())
    await fd_waits().wait_readable(sock)


@trio_side
async def _wait_writable(check: FdCheck, sock: socket.socket) -> None:
    check(sock.fileno())
    await fd_waits().wait_writable(sock)


@trio_side
async def _run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


def check_socket(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """asyncio's checks: no TLS socket; a non-blocking one (in debug mode)."""
    check_not_ssl_socket(sock)
    if loop.get_debug() and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


async def recv(sock: socket.socket, waits: Waits, receive: Callable[[], T]) -> T:
    """``receive()`` (one of the socket's receiving calls) once it gives
    something."""
    while True:
        try:
            return receive()
        except (BlockingIOError, InterruptedError):
            await waits.readable(sock)


async def sendall(sock: socket.socket, waits: Waits, data: Any) -> None:
    # The first attempt hands *data* to the socket as given, so that data it
    # refuses gets the socket's own TypeError, as in asyncio.
    try:
        sent = sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    view = memoryview(data).cast("B")[sent:]
    while view:
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            await waits.writable(sock)
            continue
        view = view[sent:]


async def sendto(sock: socket.socket, waits: Waits, data: Any, address: Any) -> int:
    while True:
        try:
            sent: int = sock.sendto(data, 0, address)
            return sent
        except (BlockingIOError, InterruptedError):
            await waits.writable(sock)


async def connect(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, waits: Waits, address: Any
) -> None:
    """Connect as ``loop.sock_connect()``: an IP address is resolved first (a
    host name through ``loop.getaddrinfo()``); an error that shows only once the
    attempt is over becomes ``OSError(errno, 'Connect call failed <address>')``."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        infos: list[AddrInfo] = await resolve(
            loop,
            address,
            family=sock.family,
            type=sock.type,
            proto=sock.proto,
        )
        if not infos:
            raise OSError(f"getaddrinfo({address[0]!r}) returned empty list")
        address = infos[0][4]
    if begin_connect(sock, address):
        return
    while True:
        await waits.writable(sock)
        if connected(sock, address):
            return


async def accept(sock: socket.socket, waits: Waits) -> tuple[socket.socket, Any]:
    while True:
        try:
            conn, address = sock.accept()
        except (BlockingIOError, InterruptedError):
            await waits.readable(sock)
            continue
        conn.setblocking(False)
        return conn, address


def check_sendfile(
    sock: socket.socket, file: Any, offset: int, count: int | None
) -> None:
    """asyncio's checks of ``sock_sendfile()``'s arguments, in its order."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


async def sendfile(
    sock: socket.socket,
    waits: Waits,
    file: Any,
    offset: int,
    count: int | None,
    *,
    fallback: bool,
) -> int:
    """Send *count* bytes of *file* from *offset* (to its end when None) as
    ``sock_sendfile()`` does: with ``os.sendfile()``, or where that cannot be
    used and *fallback* allows, by reading and sending. Return how many bytes
    were sent."""
    try:
        return await sendfile_native(sock, waits, file, offset, count)
    except asyncio.SendfileNotAvailableError:
        if not fallback:
            raise
    return await _sendfile_by_reading(sock, waits, file, offset, count)


async def sendfile_native(
    sock: socket.socket, waits: Waits, file: Any, offset: int, count: int | None
) -> int:
    """Send with ``os.sendfile()`` as asyncio's Unix loops do, and leave the
    file's position after the last byte sent (also when failing part way).

    :raises asyncio.SendfileNotAvailableError: when ``os.sendfile()`` does not
        exist, *file* is no regular file with a descriptor, or the first call
        fails (the caller may then send by other means)
    :raises ConnectionError: when the connection ends part way
    """
    if not hasattr(os, "sendfile"):
        raise asyncio.SendfileNotAvailableError("os.sendfile() is not available")
    try:
        fileno = file.fileno()
    except (AttributeError, io.UnsupportedOperation):
        raise asyncio.SendfileNotAvailableError("not a regular file") from None
    try:
        size = os.fstat(fileno).st_size
    except OSError:
        raise asyncio.SendfileNotAvailableError("not a regular file") from None
    blocksize = count if count else size
    if not blocksize:
        return 0
    sent = 0
    first = True
    try:
        while True:
            if count:
                blocksize = count - sent
                if blocksize <= 0:
                    break
            # os.sendfile() takes at most this much on 32-bit systems.
            blocksize = min(blocksize, sys.maxsize // 2 + 1)
            try:
                n = os.sendfile(sock.fileno(), fileno, offset + sent, blocksize)
            except (BlockingIOError, InterruptedError):
                first = False
                await waits.writable(sock)
                continue
            except OSError as exc:
                if sent == 0:
                    raise asyncio.SendfileNotAvailableError(
                        "os.sendfile call failed"
                    ) from exc
                if (
                    not first
                    and exc.errno == errno.ENOTCONN
                    and type(exc) is not ConnectionError
                ):
                    # Closed part way: the same error on every system, as asyncio
                    # makes it.
                    raise ConnectionError(
                        errno.ENOTCONN, "socket is not connected"
                    ) from exc
                raise
            first = False
            if n == 0:
                break  # the end of the file
            sent += n
    finally:
        if sent > 0:
            file.seek(offset + sent)
    return sent


async def _sendfile_by_reading(
    sock: socket.socket, waits: Waits, file: Any, offset: int, count: int | None
) -> int:
    if offset:
        file.seek(offset)
    reader = FileReader(file, count, SENDFILE_FALLBACK_CHUNK)
    sent = 0
    try:
        while piece := await reader.next(waits.run_in_thread):
            await sendall(sock, waits, piece)
            sent += len(piece)
    finally:
        if sent > 0 and hasattr(file, "seek"):
            file.seek(offset + sent)
    return sent
