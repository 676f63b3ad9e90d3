"""The bridge between Trio code and asyncio code of one loop, both ways.

*asyncio code* runs as a callback or a task of the loop, *Trio code* everywhere
else (under asyncio, "Trio code" is AnyIO code in the run's other tasks). There is
one event loop: Trio work that asyncio code starts runs in a task of the loop's
task group, and asyncio work that Trio code starts runs as a task of the loop.

Under Trio a task of the loop is stepped as asyncio steps it, so what it awaits
must be one of the loop's futures: a coroutine that waits the Trio way (Trio's
calls, or AnyIO's on its Trio backend) runs in a Trio task instead, and the loop
task awaits a future of its outcome. Under asyncio a task of the loop is an
asyncio task, where AnyIO code runs as it is.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import anyio

from .._backends import get_running_loop_raw, wait_done

if TYPE_CHECKING:
    from typing_extensions import TypeVarTuple, Unpack

    _Ts = TypeVarTuple("_Ts")

T = TypeVar("T")
P = ParamSpec("P")


class _TrioWork(Generic[T]):
    """Trio work started for asyncio code: its outcome goes to *future* once the
    work has ended, and :meth:`cancel` cancels it, whether or not it has started."""

    __slots__ = ("_cancelled", "_scope", "future")

    def __init__(self, future: asyncio.Future[T]) -> None:
        self.future = future
        self._scope: anyio.CancelScope | None = None
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, call: Callable[[], Awaitable[T]]) -> None:
        future = self.future
        if self._cancelled or future.done():
            # Cancelled before it started: nothing is run.
            future.cancel()
            return
        # Made here, in the Trio task: in the loop's callbacks AnyIO is on its
        # asyncio side.
        with anyio.CancelScope() as self._scope:
            try:
                result = await call()
            except anyio.get_cancelled_exc_class():
                if not future.done():
                    future.cancel()
                raise
            except BaseException as exc:
                if not future.done():
                    if isinstance(exc, StopIteration):
                        # As an asyncio task says it: a future cannot hold one.
                        future.set_exception(
                            RuntimeError("coroutine raised StopIteration")
                        )
                    else:
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            if not future.done():
                future.set_result(result)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


class TrioBridge(asyncio.AbstractEventLoop):
    """The part of the loop facade that carries calls between Trio code and
    asyncio code."""

    @abc.abstractmethod
    def _spawn(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any
    ) -> None: ...

    def start_trio(
        self,
        async_fn: Callable[[Unpack[_Ts]], Awaitable[T]],
        *args: Unpack[_Ts],
    ) -> asyncio.Future[T]:
        """Start ``await async_fn(*args)`` as Trio code, in a task of this loop's
        task group, and return a future of its outcome: how a protocol callback,
        or any asyncio code, starts Trio work.

        The future gets the work's result, or its exception with its own type
        (an exception that is not an :exc:`Exception`, such as
        :exc:`KeyboardInterrupt`, also goes on up through the task group).
        Cancelling the future cancels the work; the work cancelled from the Trio
        side (leaving the loop's block) cancels the future. Under asyncio the
        work is AnyIO code in a task of the loop's AnyIO task group.
        """
        future: asyncio.Future[T] = self.create_future()
        work = _TrioWork(future)
        future.add_done_callback(lambda f: work.cancel() if f.cancelled() else None)
        self._spawn(work.run, functools.partial(async_fn, *args))
        return future

    async def run_trio(
        self,
        async_fn: Callable[[Unpack[_Ts]], Awaitable[T]],
        *args: Unpack[_Ts],
    ) -> T:
        """Return ``await async_fn(*args)``, run as Trio code: how a task of the
        loop awaits Trio (or AnyIO) code.

        Under Trio, from a task of the loop, the call runs in a Trio task of the
        loop's task group: its exception is raised here with its own type, and
        cancelling the loop task cancels the call and waits until it has ended,
        as when the call runs in the task itself. Anywhere else (Trio code, and
        everywhere under asyncio, where AnyIO code runs in a loop task as it is)
        this is ``await async_fn(*args)``.
        """
        running = get_running_loop_raw()
        if isinstance(running, TrioBridge):
            return await running._await_trio(functools.partial(async_fn, *args))
        return await async_fn(*args)

    async def _await_trio(
        self,
        call: Callable[[], Awaitable[T]],
        discard: Callable[[T], Awaitable[object]] | None = None,
    ) -> T:
        """Await ``call()`` from a task of this loop, by running it in a Trio task
        (see :meth:`run_trio`).

        A call that got to its end before it saw the loop task's cancellation has
        its result awaited with *discard* (when given) before the cancellation
        goes on: what it made would be nobody's otherwise.
        """
        future: asyncio.Future[T] = self.create_future()
        work = _TrioWork(future)
        self._spawn(work.run, call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            work.cancel()
            await _outlast(future)
            if (
                discard is not None
                and not future.cancelled()
                and future.exception() is None
            ):
                await _outlast(self.start_trio(discard, future.result()))
            raise

    async def run_asyncio(
        self,
        async_fn: Callable[[Unpack[_Ts]], Awaitable[T]],
        *args: Unpack[_Ts],
    ) -> T:
        """Return ``await async_fn(*args)``, run as asyncio code in a task of this
        loop: how Trio code awaits an asyncio coroutine function (the loop's
        futures and tasks it can await directly).

        The task's exception is raised here with its own type, and
        :exc:`asyncio.CancelledError` if the task was cancelled from the asyncio
        side. Cancelling the caller (a Trio cancel scope) cancels the task and
        waits until it has ended. *async_fn* may return any awaitable.
        """
        awaitable = async_fn(*args)
        coro = (
            awaitable
            if asyncio.iscoroutine(awaitable)
            else _awaited(awaitable)  # a future, or another awaitable
        )
        task = self.create_task(coro)
        try:
            await wait_done(task, cancel=False)
        except anyio.get_cancelled_exc_class():
            task.cancel()
            with anyio.CancelScope(shield=True):
                await wait_done(task, cancel=False)
            raise
        return task.result()


async def _outlast(future: asyncio.Future[Any]) -> None:
    """Wait until *future* is done, whatever cancels the waiting task meanwhile."""
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            pass


@overload
def trio_side(
    fn: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, T]]: ...


@overload
def trio_side(
    *,
    discard: Callable[[Any], Awaitable[object]] | None = None,
    direct: Callable[..., bool] | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]: ...


def trio_side(
    fn: Callable[P, Awaitable[T]] | None = None,
    *,
    discard: Callable[[Any], Awaitable[object]] | None = None,
    direct: Callable[..., bool] | None = None,
) -> Any:
    """Make a coroutine function that waits the AnyIO way awaitable from a task
    of a facade too: there it runs as :meth:`TrioBridge.run_trio` runs code (under
    asyncio the running loop is never a facade, so the call runs where it is).

    With *discard*, for a method that makes something its caller must own (a
    child process): when a facade's task is cancelled while the call runs in a
    Trio task that still gets to its end, ``await discard(result)`` undoes it.
    (A call that runs where it is sees the cancellation itself.)

    With *direct*, for a method whose call, given some arguments, awaits
    nothing but the loop's futures (and methods of the loop that bridge
    themselves): when ``direct(*args, **kwargs)`` is true, a task of the method's
    own loop (``args[0]``) runs the call itself, without the task switches of a
    Trio task.
    """

    def bridged(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            loop = get_running_loop_raw()
            if isinstance(loop, TrioBridge) and not (
                direct is not None and args[0] is loop and direct(*args, **kwargs)
            ):
                return await loop._await_trio(
                    functools.partial(fn, *args, **kwargs), discard
                )
            return await fn(*args, **kwargs)

        return call

    return bridged if fn is None else bridged(fn)
