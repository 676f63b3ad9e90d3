"""What transports and servers may ask of the loop they belong to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from .._backends import Readers

T = TypeVar("T")


class Member(Protocol):
    """What a host may ask of a transport it holds, when it closes."""

    def is_closing(self) -> bool: ...

    def abort(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...

    async def finish(self) -> None:
        """Close the stream and call ``connection_lost()``, if not done yet."""


class Host(Protocol):
    """A loop as its transports and servers see it.

    Transports and servers receive a host and ask it for nothing else; the loop
    facade makes one for itself. The host's loop is what protocols see: handles
    are bound to it and its exception handler hears of failures.
    """

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run ``fn(*args)`` as a task in the loop's task group."""

    def run_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop's next round, as a step of the
        transport's own rather than a callback of the user's: *fn* reports its
        own failures, and nothing cancels it."""

    def invoke(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` as the loop calls a callback (with the loop as
        asyncio's running one)."""

    def readers(self) -> Readers | None:
        """Where sockets register to be read, or None (then a transport reads in
        a task of its own)."""

    def adopt(self, member: Member) -> None:
        """Hold *member*: the loop closes it when it closes."""

    def forget(self, member: Member) -> None:
        """*member* is finished: ``connection_lost()`` ran and its stream is
        closed."""
