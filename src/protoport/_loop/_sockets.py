"""Working with socket objects directly: ``loop.sock_recv()`` and its kin.

Each call tries the socket at once and waits for readiness only when the kernel
has nothing to give or take, as asyncio's selector loop does; the waits are the
runtime's own (through AnyIO under asyncio), so the calls run under Trio and
asyncio alike. Cancelling a call leaves the socket as it was: nothing is taken
from or given to the kernel after the cancellation.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from .._backends import fd_waits
from ._dns import AddrInfo, resolve
from ._tls_arguments import check_not_ssl_socket

#: What ``sock_sendfile()`` reads at a time when it falls back to sending.
SENDFILE_FALLBACK_CHUNK = 256 * 1024

#: Raises RuntimeError when the descriptor is used by one of the loop's
#: transports.
FdCheck = Callable[[int], None]


def check_socket(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """asyncio's checks: no TLS socket; a non-blocking one (in debug mode)."""
    check_not_ssl_socket(sock)
    if loop.get_debug() and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


async def _wait_readable(sock: socket.socket, check: FdCheck) -> None:
    check(sock.fileno())
    await fd_waits().wait_readable(sock)


async def _wait_writable(sock: socket.socket, check: FdCheck) -> None:
    check(sock.fileno())
    await fd_waits().wait_writable(sock)


async def recv(sock: socket.socket, check: FdCheck, receive: Callable[[], Any]) -> Any:
    """``receive()`` (one of the socket's receiving calls) once it gives
    something."""
    while True:
        try:
            return receive()
        except (BlockingIOError, InterruptedError):
            await _wait_readable(sock, check)


async def sendall(sock: socket.socket, check: FdCheck, data: Any) -> None:
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
            await _wait_writable(sock, check)
            continue
        view = view[sent:]


async def sendto(sock: socket.socket, check: FdCheck, data: Any, address: Any) -> int:
    while True:
        try:
            sent: int = sock.sendto(data, 0, address)
            return sent
        except (BlockingIOError, InterruptedError):
            await _wait_writable(sock, check)


async def connect(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, check: FdCheck, address: Any
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
    try:
        sock.connect(address)
    except (BlockingIOError, InterruptedError):
        pass
    else:
        return
    while True:
        await _wait_writable(sock, check)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, f"Connect call failed {address}")
        return


async def accept(sock: socket.socket, check: FdCheck) -> tuple[socket.socket, Any]:
    while True:
        try:
            conn, address = sock.accept()
        except (BlockingIOError, InterruptedError):
            await _wait_readable(sock, check)
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
    check: FdCheck,
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
        return await sendfile_native(sock, check, file, offset, count)
    except asyncio.SendfileNotAvailableError:
        if not fallback:
            raise
    return await _sendfile_by_reading(sock, check, file, offset, count)


async def sendfile_native(
    sock: socket.socket, check: FdCheck, file: Any, offset: int, count: int | None
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
                await _wait_writable(sock, check)
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
    sock: socket.socket, check: FdCheck, file: Any, offset: int, count: int | None
) -> int:
    if offset:
        file.seek(offset)
    blocksize = (
        min(count, SENDFILE_FALLBACK_CHUNK) if count else SENDFILE_FALLBACK_CHUNK
    )
    buf = bytearray(blocksize)
    sent = 0
    try:
        while True:
            if count:
                blocksize = min(count - sent, blocksize)
                if blocksize <= 0:
                    break
            view = memoryview(buf)[:blocksize]
            read = await anyio.to_thread.run_sync(file.readinto, view)
            if not read:
                break
            await sendall(sock, check, view[:read])
            sent += read
    finally:
        if sent > 0 and hasattr(file, "seek"):
            file.seek(offset + sent)
    return sent
