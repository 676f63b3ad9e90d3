"""Connecting a non-blocking socket, and the one round a new connection waits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel

from .._backends import Readers, get_running_loop_raw


async def sock_connect(
    sock: socket.socket,
    address: Any,
    readers: Readers | None,
    make_future: Callable[[], asyncio.Future[None]],
) -> None:
    """Connect the non-blocking *sock* to *address*, waiting for the outcome
    without blocking the runtime.

    Code that a loop steps (a task of a loop, under either runtime) waits as
    asyncio's ``sock_connect()`` does: a writer callback of the loop's reactor,
    *readers*, settles a future made by *make_future*, with no readiness
    registration of the runtime's own and no task switch. Trio code (and a loop
    without a reactor) waits the runtime's way. Cancelling the wait leaves the
    socket registered nowhere; the caller closes it.

    An error reported later through ``SO_ERROR`` becomes
    ``OSError(errno, 'Connect call failed <address>')`` (so ECONNREFUSED gives a
    :class:`ConnectionRefusedError`); an error that ``connect()`` reports at once
    propagates as the OS gave it.
    """
    if begin_connect(sock, address):
        await yield_once()
        return
    if readers is None or get_running_loop_raw() is None:
        while True:
            await anyio.wait_writable(sock)
            if connected(sock, address):
                return
    future = make_future()
    fd = sock.fileno()

    def on_writable() -> None:
        if future.done():
            return
        try:
            if connected(sock, address):
                future.set_result(None)
        except OSError as exc:
            future.set_exception(exc)

    readers.add_writer(fd, on_writable)
    try:
        await future
    finally:
        readers.remove_writer(fd)


def begin_connect(sock: socket.socket, address: Any) -> bool:
    """Start connecting the non-blocking *sock*: True if it connected at once,
    False if the outcome is to be waited for (then :func:`connected` tells it
    once the socket is writable); raises what ``connect()`` raises at once."""
    try:
        sock.connect(address)
    except (BlockingIOError, InterruptedError):
        return False
    return True


def connected(sock: socket.socket, address: Any) -> bool:
    """Whether the connect under way has succeeded (False: not yet known);
    raises its error, as ``OSError(errno, 'Connect call failed <address>')``, if
    it failed."""
    try:
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except (BlockingIOError, InterruptedError):
        return False
    if err != 0:
        raise OSError(err, f"Connect call failed {address}")
    return True


async def yield_once() -> None:
    """Let the loop (or the runtime) run one round: asyncio's way in a task that
    a loop steps, where it costs a callback rather than a task switch; the
    runtime's checkpoint in Trio code."""
    if get_running_loop_raw() is None:
        await anyio.lowlevel.checkpoint()
    else:
        await asyncio.sleep(0)
