"""Watching file descriptors: ``loop.add_reader()``/``add_writer()`` and the
waits of the ``sock_*()`` calls.

As in asyncio's selector loop, a descriptor has at most one reader and one
writer, whoever registered them: a new registration replaces the one before and
cancels its handle. A ``sock_recv()`` that must wait thus takes the place of a
reader added with ``add_reader()`` (which is gone for good once the call ends),
and an ``add_reader()`` takes the place of a waiting call's registration. The
registrations live in the loop's reactor (the backend's ``Readers``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from .._backends import Readers, run_handle

#: The two directions a descriptor is watched in.
READ = "reader"
WRITE = "writer"


class Watches:
    """The readiness callbacks of one loop, by descriptor and direction."""

    __slots__ = ("_closed", "_handles", "_loop", "_make_future", "_registry", "_waits")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        registry: Callable[[], Readers | None],
        make_future: Callable[[], asyncio.Future[Any]],
    ) -> None:
        self._loop = loop
        #: The loop's reactor, made on first use; None where it has none.
        self._registry = registry
        #: Makes the futures that waiting calls await.
        self._make_future = make_future
        self._handles: dict[tuple[int, str], asyncio.Handle] = {}
        #: The futures of the waits in progress.
        self._waits: set[asyncio.Future[None]] = set()
        self._closed = False

    def add(
        self, fileno: int, kind: str, callback: Callable[..., object], args: Any
    ) -> asyncio.Handle:
        """Call ``callback(*args)`` as a callback of the loop whenever *fileno*
        is ready in the direction *kind*, instead of what was registered for it
        before; return the handle that does it.

        :raises RuntimeError: once the loop is closed
        :raises NotImplementedError: where the loop has no reactor
        """
        if self._closed:
            raise RuntimeError("Event loop is closed")
        registry = self._registry()
        if registry is None:
            raise NotImplementedError(
                "add_reader() and add_writer() need a loop with a reactor, which "
                "protoport has under Trio only where Linux's epoll exists"
            )
        handle = asyncio.Handle(callback, args, self._loop, None)
        previous = self._handles.pop((fileno, kind), None)
        if previous is not None:
            previous.cancel()
        self._handles[(fileno, kind)] = handle
        add = registry.add_reader if kind == READ else registry.add_writer
        add(fileno, functools.partial(run_handle, handle))
        return handle

    def remove(self, fileno: int, kind: str) -> bool:
        """Stop watching *fileno* in the direction *kind*; return whether it was
        watched."""
        handle = self._handles.pop((fileno, kind), None)
        if handle is None:
            return False
        handle.cancel()
        registry = self._registry()
        assert registry is not None
        remove = registry.remove_reader if kind == READ else registry.remove_writer
        return remove(fileno)

    def ready(self, fileno: int, kind: str) -> asyncio.Future[None]:
        """A future of the loop that is done once *fileno* is ready in the
        direction *kind*, as :meth:`add` registers it.

        Once the future is done (or cancelled) the registration is removed on the
        loop's next round, unless another one has replaced it meanwhile; one that
        replaces it leaves the future pending.
        """
        future: asyncio.Future[None] = self._make_future()
        handle = self.add(fileno, kind, _set_ready, (future,))
        self._waits.add(future)
        future.add_done_callback(
            functools.partial(self._wait_over, fileno, kind, handle)
        )
        return future

    def _wait_over(
        self,
        fileno: int,
        kind: str,
        handle: asyncio.Handle,
        future: asyncio.Future[None],
    ) -> None:
        self._waits.discard(future)
        # A handle is cancelled when its registration is replaced or removed.
        if not handle.cancelled():
            self.remove(fileno, kind)

    def close(self) -> None:
        """Remove every registration (under asyncio they are the asyncio loop's,
        which goes on after this one), and fail the waits still in progress with
        the error a call that must wait on a closed loop gets."""
        self._closed = True
        for fileno, kind in list(self._handles):
            try:
                self.remove(fileno, kind)
            except (OSError, ValueError):  # the descriptor is closed already
                pass
        for future in list(self._waits):
            if not future.done():
                future.set_exception(RuntimeError("Event loop is closed"))


def _set_ready(future: asyncio.Future[None]) -> None:
    # Called again and again while the descriptor stays ready, until the
    # registration is removed.
    if not future.done():
        future.set_result(None)
