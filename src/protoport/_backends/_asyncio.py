"""The loop facade under asyncio: scheduling is the running asyncio loop's.

Callbacks are the facade's own handles (so that a failing one reaches the
facade's exception handler, and closing the facade cancels them), run by the
asyncio loop; futures and tasks are the asyncio loop's, the tasks also the
facade's current ones while they run (:mod:`._asyncio_tasks`).
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar, cast

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ._asyncio_tasks import FacadeStep
from ._handles import run_handle
from ._interface import FdWaits, Readers, TaskFactory
from ._running import declared_asyncio

T = TypeVar("T")


class AsyncioBackend:
    """The :class:`~._interface.Backend` of a loop under asyncio."""

    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._aio = aio = asyncio.get_running_loop()
        self._handles: weakref.WeakSet[asyncio.Handle] = weakref.WeakSet()
        self._closed = False
        self.time = aio.time
        self.create_future = aio.create_future
        self.create_waiter = aio.create_future
        self.runtime_exception_handler: Callable[[dict[str, Any]], object] | None = (
            aio.call_exception_handler
        )

    # -- scheduling --------------------------------------------------------------

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = asyncio.Handle(callback, args, self._loop, context)
        self._aio.call_soon(run_handle, handle)
        self._handles.add(handle)
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
        timer = asyncio.TimerHandle(when, callback, args, self._loop, context)
        self._aio.call_at(when, run_handle, timer)
        self._handles.add(timer)
        return timer

    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: Context | None = None,
    ) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = asyncio.Handle(callback, args, self._loop, context)
        self._aio.call_soon_threadsafe(run_handle, handle)
        return handle

    def run_soon(self, fn: Callable[..., object], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        # One handle of the asyncio loop, instead of one of the facade run by one
        # of the asyncio loop.
        self._aio.call_soon(fn, *args)

    def run_threadsafe(self, fn: Callable[[], object]) -> None:
        self._aio.call_soon_threadsafe(fn)

    def timer_cancelled(self, timer: asyncio.TimerHandle) -> None:
        # The asyncio loop runs the timer's wrapper, which sees it cancelled.
        pass

    def create_task(
        self, coro: Coroutine[Any, Any, T], name: str | None, context: Context | None
    ) -> asyncio.Task[T]:
        # What is not a coroutine goes as it is, for asyncio's own TypeError.
        stepped = FacadeStep(coro, self._loop) if asyncio.iscoroutine(coro) else coro
        if context is None:
            return self._aio.create_task(stepped, name=name)
        if sys.version_info >= (3, 11):
            return self._aio.create_task(stepped, name=name, context=context)
        # 3.10 has no context argument: the task copies the current one.
        return context.run(self._aio.create_task, stepped, name=name)

    def set_task_factory(self, factory: TaskFactory | None) -> None:
        self._aio.set_task_factory(factory)

    def get_task_factory(self) -> TaskFactory | None:
        return cast("TaskFactory | None", self._aio.get_task_factory())

    # -- callbacks and readers -------------------------------------------------------

    def invoke(self, fn: Callable[..., T], *args: Any) -> T:
        # asyncio's running loop is the asyncio loop itself, as everywhere else.
        return fn(*args)

    def readers(self) -> Readers | None:
        aio = self._aio
        # uvloop's loop is not a SelectorEventLoop but has a working add_reader().
        if isinstance(aio, asyncio.SelectorEventLoop) or type(
            aio
        ).__module__.startswith("uvloop"):
            return cast(Readers, aio)
        return None

    # -- signals ---------------------------------------------------------------

    def add_signal_handler(self, sig: int, callback: Callable[[], object]) -> None:
        self._aio.add_signal_handler(sig, callback)

    def remove_signal_handler(self, sig: int) -> None:
        self._aio.remove_signal_handler(sig)

    # -- life cycle --------------------------------------------------------------

    def start(self, task_group: TaskGroup) -> None:
        # The asyncio loop runs everything already.
        pass

    def start_soon(
        self,
        task_group: TaskGroup,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
    ) -> None:
        task_group.start_soon(fn, *args)

    async def wait_tasks(self, tasks: list[asyncio.Task[Any]]) -> None:
        if tasks:
            await asyncio.wait(tasks)

    def close(self) -> None:
        self._closed = True
        for handle in list(self._handles):
            handle.cancel()


def _notify_closing(obj: Any) -> None:
    """``anyio.notify_closing()``, from a callback of the loop too (where AnyIO
    would otherwise raise instead of waking the waits)."""
    with declared_asyncio():
        anyio.notify_closing(obj)


FD_WAITS = FdWaits(
    wait_readable=anyio.wait_readable,
    wait_writable=anyio.wait_writable,
    notify_closing=_notify_closing,
    checkpoint_if_cancelled=anyio.lowlevel.checkpoint_if_cancelled,
    cancel_shielded_checkpoint=anyio.lowlevel.cancel_shielded_checkpoint,
    closed_errors=(anyio.ClosedResourceError,),
)


_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
    weakref.WeakKeyDictionary()
)
_background: set[asyncio.Task[Any]] = set()

L = TypeVar("L", bound=asyncio.AbstractEventLoop)


def default_loop(make: Callable[[], L], host: Callable[[L], Any]) -> L:
    """The running asyncio loop's default facade: made with *make* on first use
    (or once the previous one is closed), *host(loop)* run as a task, which
    ``asyncio.run()`` cancels when the main task returns."""
    running = asyncio.get_running_loop()
    loop: L | None = _defaults.get(running)
    if loop is None or loop.is_closed():
        loop = make()
        _defaults[running] = loop
        task = running.create_task(host(loop))
        _background.add(task)
        task.add_done_callback(_background.discard)
    return loop
