"""Awaiting Trio-side coroutines from the facade's own tasks.

Under Trio a task of the facade is stepped as asyncio steps it, so what it awaits
must be one of the loop's futures; a coroutine that waits the Trio way (AnyIO's
calls) runs in a Trio task of the loop instead, and the task awaits its outcome.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

import anyio

from .._backends import get_running_loop_raw

T = TypeVar("T")
P = ParamSpec("P")


class TrioBridge(asyncio.AbstractEventLoop):
    """The part of the loop facade that runs AnyIO calls in its task group."""

    @abc.abstractmethod
    def _spawn(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any
    ) -> None: ...

    def _start_in_trio_task(
        self, call: Callable[[], Awaitable[T]]
    ) -> tuple[asyncio.Future[T], anyio.CancelScope]:
        """Run ``await call()`` in a task of the loop's task group; return a future
        of its outcome and the scope that cancels it."""
        future: asyncio.Future[T] = self.create_future()
        scope = anyio.CancelScope()
        self._spawn(self._settle, future, scope, call)
        return future, scope

    async def _settle(
        self,
        future: asyncio.Future[T],
        scope: anyio.CancelScope,
        call: Callable[[], Awaitable[T]],
    ) -> None:
        with scope:
            try:
                result = await call()
            except anyio.get_cancelled_exc_class():
                if not future.done():
                    future.cancel()
                raise
            except BaseException as exc:
                if not future.done():
                    future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            if not future.done():
                future.set_result(result)

    async def _await_in_trio_task(
        self,
        call: Callable[[], Awaitable[T]],
        discard: Callable[[T], Awaitable[object]] | None = None,
    ) -> T:
        """Await ``call()`` from a task of this loop, by running it in a Trio task.

        Cancelling the loop task cancels the call and, as when the call runs in
        the task itself under asyncio, waits until it has ended. A call that got
        to its end before it saw the cancellation has its result awaited with
        *discard* (when given) before the cancellation goes on: what it made
        would be nobody's otherwise.
        """
        future, scope = self._start_in_trio_task(call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            scope.cancel()
            await _outlast(future)
            if (
                discard is not None
                and not future.cancelled()
                and future.exception() is None
            ):
                made = future.result()
                undone, _ = self._start_in_trio_task(lambda: discard(made))
                await _outlast(undone)
            raise


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
    of a facade too (under asyncio the running loop is never a facade, so the
    call runs where it is).

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
                return await loop._await_in_trio_task(
                    functools.partial(fn, *args, **kwargs), discard
                )
            return await fn(*args, **kwargs)

        return call

    return bridged if fn is None else bridged(fn)
