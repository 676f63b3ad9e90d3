"""Futures and tasks of the loop facade under Trio.

Both are asyncio's own classes, bound to the facade: a task is stepped by the
loop as asyncio steps it (so cancellation, ``asyncio.timeout()``,
``asyncio.current_task()`` and the rest behave as in asyncio), and a future is
awaited the asyncio way from such a task. What the subclasses add is that plain
Trio code can await them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, TypeVar

import anyio

from ._running import get_running_loop_raw
from ._waiting import wait_done

T = TypeVar("T")


class Future(asyncio.Future[T]):
    """An :class:`asyncio.Future` that Trio tasks can await.

    Trio tasks awaiting it are woken as it completes, not by a done callback on
    the loop's next round, so a wake-up costs one task switch.
    """

    _done_event: anyio.Event | None = None

    def __await__(self) -> Generator[Any, None, T]:
        if not self.done():
            if get_running_loop_raw() is not None:
                # Stepped by a task of the loop: wait as asyncio does.
                return (yield from super().__await__())
            if self._done_event is None:
                self._done_event = anyio.Event()
            try:
                yield from self._done_event.wait().__await__()
            except BaseException:
                # As in asyncio: cancelling what awaits a future cancels it.
                self.cancel()
                raise
        return self.result()

    __iter__ = __await__

    def set_result(self, result: T) -> None:
        super().set_result(result)
        self._wake()

    def set_exception(self, exception: type | BaseException) -> None:
        super().set_exception(exception)
        self._wake()

    def cancel(self, msg: Any | None = None) -> bool:
        if not super().cancel(msg):
            return False
        self._wake()
        return True

    def _wake(self) -> None:
        if self._done_event is not None:
            self._done_event.set()


class Task(asyncio.Task[T]):
    """An :class:`asyncio.Task` of the facade that Trio tasks can await."""

    def __await__(self) -> Generator[Any, None, T]:
        if not self.done() and get_running_loop_raw() is None:
            yield from wait_done(self).__await__()
            return self.result()
        return (yield from super().__await__())

    __iter__ = __await__
