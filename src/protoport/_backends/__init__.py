"""Everything that differs between Trio and asyncio, behind one interface.

A loop facade makes its :class:`Backend` once, with :func:`make_backend`, for the
runtime running then. The rest of protoport speaks AnyIO and asks this package
the few things AnyIO does not answer. ``trio`` is imported here and nowhere else
in the library, and only when Trio is the runtime.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from anyio.abc import ByteStream

from ._handles import run_handle as run_handle
from ._interface import Backend as Backend
from ._interface import FdWaits as FdWaits
from ._interface import Readers as Readers
from ._interface import Sender as Sender
from ._interface import TaskFactory as TaskFactory
from ._reporting import failed_callback_context as failed_callback_context
from ._running import current_runtime as current_runtime
from ._running import get_running_loop_raw as get_running_loop_raw
from ._waiting import wait_done as wait_done

L = TypeVar("L", bound=asyncio.AbstractEventLoop)


def make_backend(loop: asyncio.AbstractEventLoop) -> Backend:
    """The backend of *loop*, for the runtime running now."""
    if current_runtime() == "trio":
        from ._trio import TrioBackend

        return TrioBackend(loop)
    from ._asyncio import AsyncioBackend

    return AsyncioBackend(loop)


def default_loop(make: Callable[[], L], host: Callable[[L], Any]) -> L:
    """This run's default loop, made with *make* on first use; *host(loop)* then
    runs in the background until the run ends."""
    if current_runtime() == "trio":
        from . import _trio

        return _trio.default_loop(make, host)
    from . import _asyncio

    return _asyncio.default_loop(make, host)


def raw_sender(
    stream: ByteStream,
) -> Sender | None:
    """The non-blocking ``send`` of the socket under one of AnyIO's own socket
    streams, when writing to it directly keeps the order of bytes; else None."""
    if current_runtime() == "trio":
        from . import _trio

        return _trio.raw_sender(stream)
    return None


def fd_waits() -> FdWaits:
    """The readiness waits of the running runtime."""
    if current_runtime() == "trio":
        from . import _trio

        return _trio.FD_WAITS
    from . import _asyncio

    return _asyncio.FD_WAITS
