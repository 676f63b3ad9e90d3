"""The loop facade under Trio: one Trio task of the loop runs everything.

Callbacks, timers and task steps go through the loop's :class:`Scheduler`;
futures and tasks are asyncio's own classes, made awaitable from Trio code too
(:mod:`._trio_futures`).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar

import trio
from anyio.abc import ByteStream, SocketAttribute, TaskGroup
from anyio.abc import SocketStream as AnyIOSocketStream

from ._interface import FdWaits, Readers, Sender, TaskFactory
from ._running import (
    call_as_callback,
    get_running_loop_raw,
    register_trio_loop,
    trio_named,
)
from ._trio_futures import Future, Task
from ._trio_scheduler import Scheduler

T = TypeVar("T")

#: The type of built-in functions and methods.
_BuiltinMethod: type[Any] = type(len)
_AsyncioFuture = asyncio.Future


class TrioBackend:
    """The :class:`~._interface.Backend` of a loop under Trio."""

    name = "trio"
    runtime_exception_handler: Callable[[dict[str, Any]], object] | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        register_trio_loop(loop)
        self._scheduler = scheduler = Scheduler(loop)
        self._token = trio.lowlevel.current_trio_token()
        self._task_factory: TaskFactory | None = None
        self._closed = False
        #: Each handled signal's handler, and the one it replaced.
        self._signal_handlers: dict[int, tuple[Any, Any]] = {}
        self.time = scheduler.time

    # -- scheduling --------------------------------------------------------------

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        scheduler = self._scheduler
        if (
            context is not None
            and type(callback) is _BuiltinMethod
            and callback.__name__ == "task_wakeup"
        ):
            # asyncio's C task resuming once the future it awaits is done: that
            # future drops the handle, so the call is queued without making one.
            # This runs for every wake-up of a task.
            scheduler.ready.append((context, callback, args[0]))
            if scheduler.idle:
                scheduler.wake()
            return None  # type: ignore[return-value]
        handle = asyncio.Handle(callback, args, self._loop, context)
        # Scheduler.schedule(), inlined.
        scheduler.ready.append(handle)
        if scheduler.idle:
            scheduler.wake()
        return handle

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        return self._scheduler.call_at(when, callback, args, context)

    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = asyncio.Handle(callback, args, self._loop, context)
        self.run_threadsafe(functools.partial(self._scheduler.schedule, handle))
        return handle

    def run_soon(self, fn: Callable[..., object], *args: Any) -> None:
        # The scheduler's handles cost no more than the call itself.
        self.call_soon(fn, *args)

    def timer_cancelled(self, timer: asyncio.TimerHandle) -> None:
        self._scheduler.timer_cancelled(timer)

    def run_threadsafe(self, fn: Callable[[], object]) -> None:
        self._token.run_sync_soon(fn)

    # -- futures and tasks ---------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        return Future(loop=self._loop)

    def create_waiter(self) -> asyncio.Future[Any]:
        # A task of this loop awaits asyncio's plain future as asyncio does; Trio
        # code needs the kind it can await.
        if get_running_loop_raw() is self._loop:
            return _AsyncioFuture(loop=self._loop)
        return Future(loop=self._loop)

    def create_task(
        self, coro: Coroutine[Any, Any, T], name: str | None, context: Context | None
    ) -> asyncio.Task[T]:
        task: asyncio.Task[T]
        factory = self._task_factory
        if factory is not None:
            # As asyncio's loops call a task factory.
            if context is None:
                task = factory(self._loop, coro)
            else:
                task = factory(self._loop, coro, context=context)
            if name is not None:
                task.set_name(name)
            return task
        if context is None:
            return Task(coro, loop=self._loop, name=name)
        if sys.version_info >= (3, 11):
            return Task(coro, loop=self._loop, name=name, context=context)
        # 3.10 has no context argument: the task copies the current one.
        return context.run(Task, coro, loop=self._loop, name=name)

    def set_task_factory(self, factory: TaskFactory | None) -> None:
        self._task_factory = factory

    def get_task_factory(self) -> TaskFactory | None:
        return self._task_factory

    # -- callbacks and readers -------------------------------------------------------

    def invoke(self, fn: Callable[..., T], *args: Any) -> T:
        if get_running_loop_raw() is self._loop:
            return fn(*args)
        return call_as_callback(self._loop, fn, *args)

    def readers(self) -> Readers | None:
        self._scheduler.open()
        return self._scheduler.reactor

    # -- signals ---------------------------------------------------------------

    def add_signal_handler(self, sig: int, callback: Callable[[], object]) -> None:
        # Installed at once, as asyncio's loops do, so that no signal is lost to
        # the default action while a task would be starting; Trio's token is the
        # way in from a signal handler.
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "set_wakeup_fd only works in main thread of the main interpreter"
            )
        previous = self._signal_handlers.get(sig, (None, None))[1]
        if previous is None:
            previous = signal.getsignal(sig)

        def on_signal(signum: int, frame: object) -> None:
            self._token.run_sync_soon(callback)

        try:
            signal.signal(sig, on_signal)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        self._signal_handlers[sig] = (on_signal, previous)

    def remove_signal_handler(self, sig: int) -> None:
        # The handler found before is put back: under Trio that is Trio's own
        # (which turns SIGINT into KeyboardInterrupt), not the default.
        _, previous = self._signal_handlers.pop(sig)
        signal.signal(sig, previous)

    # -- life cycle --------------------------------------------------------------

    def start(self, task_group: TaskGroup) -> None:
        # The loop's descriptors are all made from the start.
        self._scheduler.open()
        task_group.start_soon(self._scheduler.run)

    def start_soon(
        self,
        task_group: TaskGroup,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
    ) -> None:
        # AnyIO makes the new task's cancel scope for the library sniffio names.
        with trio_named():
            task_group.start_soon(fn, *args)

    async def wait_tasks(self, tasks: list[asyncio.Task[Any]]) -> None:
        await self._scheduler.run(until=lambda: all(task.done() for task in tasks))

    def close(self) -> None:
        self._closed = True
        self._scheduler.cancel_all()
        self._scheduler.close()


def raw_sender(
    stream: ByteStream,
) -> Sender | None:
    """The ``send`` of the socket under one of AnyIO's socket streams.

    Under Trio AnyIO's socket stream keeps no buffer, so while no ``send()`` is in
    progress a non-blocking ``socket.send`` writes the same bytes in the same order
    without a task switch.
    """
    if not isinstance(stream, AnyIOSocketStream):
        return None
    send: Sender = stream.extra(SocketAttribute.raw_socket).send
    return send


#: Trio's own readiness waits (AnyIO's add a layer to each).
FD_WAITS = FdWaits(
    wait_readable=trio.lowlevel.wait_readable,
    wait_writable=trio.lowlevel.wait_writable,
    notify_closing=trio.lowlevel.notify_closing,
    checkpoint_if_cancelled=trio.lowlevel.checkpoint_if_cancelled,
    cancel_shielded_checkpoint=trio.lowlevel.cancel_shielded_checkpoint,
    closed_errors=(trio.ClosedResourceError,),
)


_default: trio.lowlevel.RunVar[Any] = trio.lowlevel.RunVar("protoport_default_loop")

L = TypeVar("L", bound=asyncio.AbstractEventLoop)


def default_loop(make: Callable[[], L], host: Callable[[L], Any]) -> L:
    """This run's default loop: made with *make* on first use, *host(loop)* run
    as a system task, which Trio cancels when the main task returns."""
    try:
        loop: L = _default.get()
    except LookupError:
        loop = make()
        _default.set(loop)
        trio.lowlevel.spawn_system_task(host, loop, name="protoport default loop")
    return loop
