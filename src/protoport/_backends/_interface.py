"""The interface a loop facade sees of the runtime under it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import Context
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from anyio.abc import TaskGroup

T = TypeVar("T")

#: What a loop calls with ``(loop, coro)`` (and ``context=`` when one is given)
#: to make a task, as asyncio's ``set_task_factory()`` takes it.
TaskFactory = Callable[..., "asyncio.Task[Any]"]

#: A socket's non-blocking ``send``: how many bytes the kernel took, or
#: ``BlockingIOError`` when it took none.
Sender = Callable[[bytes | bytearray | memoryview], int]


@dataclass(frozen=True, slots=True)
class FdWaits:
    """Readiness waits on file descriptors, as one runtime does them."""

    wait_readable: Callable[[Any], Awaitable[None]]
    wait_writable: Callable[[Any], Awaitable[None]]
    #: Wakes the waits on a descriptor about to be closed.
    notify_closing: Callable[[Any], None]
    #: Raises the cancellation if the caller is cancelled; else returns at once.
    checkpoint_if_cancelled: Callable[[], Awaitable[None]]
    #: Lets other tasks run; never raises the cancellation.
    cancel_shielded_checkpoint: Callable[[], Awaitable[None]]
    #: What a wait raises when its descriptor is closed under it.
    closed_errors: tuple[type[BaseException], ...]


class Readers(Protocol):
    """A registry of readiness callbacks, as a selector loop's ``add_reader``
    and ``add_writer``; removing says whether there was one."""

    def add_reader(self, fd: int, callback: Callable[[], object]) -> None: ...

    def remove_reader(self, fd: int) -> bool: ...

    def add_writer(self, fd: int, callback: Callable[[], object]) -> None: ...

    def remove_writer(self, fd: int) -> bool: ...


class Backend(Protocol):
    """What one loop facade asks of the runtime it runs on.

    A loop makes its backend once, when it is made, for the runtime that is
    running then; everything that differs between Trio and asyncio is behind
    these members. The scheduling methods have the signatures of the loop's own,
    so that the loop can hand calls straight through.
    """

    #: ``"trio"`` or ``"asyncio"``.
    name: str
    #: How the loop's default exception handler reports, where the runtime has
    #: a handler of its own (asyncio's loop); None to log as asyncio would.
    runtime_exception_handler: Callable[[dict[str, Any]], object] | None

    def time(self) -> float: ...

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.Handle: ...

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.TimerHandle: ...

    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.Handle: ...

    def run_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` on the loop's next round, as ``call_soon()`` does,
        for protoport's own steps: no handle of the facade is needed (*fn*
        reports its own failures, and closing the loop need not cancel it)."""

    def timer_cancelled(self, timer: asyncio.TimerHandle) -> None:
        """A timer of this loop was cancelled (asyncio's loops are told so)."""

    def run_threadsafe(self, fn: Callable[[], object]) -> None:
        """From any thread, have *fn* called soon in this run."""

    def create_future(self) -> asyncio.Future[Any]: ...

    def create_waiter(self) -> asyncio.Future[Any]:
        """A future for the calling coroutine to await itself."""

    def create_task(
        self, coro: Coroutine[Any, Any, T], name: str | None, context: Context | None
    ) -> asyncio.Task[T]: ...

    def set_task_factory(self, factory: TaskFactory | None) -> None: ...

    def get_task_factory(self) -> TaskFactory | None: ...

    def invoke(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` as the loop calls a callback: with the facade as
        asyncio's running loop."""

    def readers(self) -> Readers | None:
        """Where sockets register to be read (made on first use), or None when
        the runtime offers no such registry."""

    def start(self, task_group: TaskGroup) -> None:
        """Start what runs the loop, in *task_group*."""

    def start_soon(
        self,
        task_group: TaskGroup,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
    ) -> None:
        """``task_group.start_soon(fn, *args)``, from the loop's callbacks too
        (where sniffio names asyncio even when Trio runs)."""

    async def wait_tasks(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Run the loop until every one of *tasks* is done (the loop's own task
        group has ended by then)."""

    def add_signal_handler(self, sig: int, callback: Callable[[], object]) -> None:
        """Have *callback* run as a callback of the loop when *sig* arrives (main
        thread only; ``RuntimeError`` elsewhere, or when *sig* cannot be
        caught)."""

    def remove_signal_handler(self, sig: int) -> None:
        """Stop handling *sig*, which :meth:`add_signal_handler` handles."""

    def close(self) -> None:
        """Drop every pending callback and release the loop's descriptors; from
        then on scheduling raises ``RuntimeError('Event loop is closed')``."""
