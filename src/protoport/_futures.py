"""Futures and tasks of the loop facade under Trio.

They are real :class:`asyncio.Future` instances (so ``isinstance``, ``isfuture``,
callbacks, messages and exceptions are asyncio's own), bound to the facade, whose
``await`` waits the Trio way instead of yielding to an asyncio task.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

import anyio

from . import _runtime

T = TypeVar("T")


class Future(asyncio.Future[T]):
    """An :class:`asyncio.Future` that Trio tasks can await.

    Tasks awaiting it are woken as it completes, not by a done callback on the
    loop's next round, so a wake-up costs one task switch.
    """

    _done_event: anyio.Event | None = None

    def __await__(self) -> Generator[Any, None, T]:
        if not self.done():
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


class Task(Future[T]):
    """A coroutine run by the facade's task group, with :class:`asyncio.Task`'s API.

    ``cancel()`` cancels the task's own cancel scope; the coroutine sees the runtime's
    cancellation at its next checkpoint.
    """

    def __init__(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        loop: asyncio.AbstractEventLoop,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> None:
        super().__init__(loop=loop)
        self._coro = coro
        self._name = name if name is not None else f"Task-{id(self):x}"
        self._context = context if context is not None else contextvars.copy_context()
        self._scope: anyio.CancelScope | None = None
        self._cancel_requests = 0
        self._cancel_msg: str | None = None

    def __repr__(self) -> str:
        state = "pending" if not self.done() else self._state.lower()
        return f"<Task {state} name={self._name!r} coro={self._coro!r}>"

    def get_coro(self) -> Coroutine[Any, Any, T]:
        return self._coro

    def get_context(self) -> contextvars.Context:
        return self._context

    def get_name(self) -> str:
        return self._name

    def set_name(self, value: object) -> None:
        self._name = str(value)

    def get_stack(self, *, limit: int | None = None) -> list[Any]:
        frame = getattr(self._coro, "cr_frame", None)
        return [] if frame is None else [frame]

    def print_stack(self, *, limit: int | None = None, file: Any = None) -> None:
        for frame in self.get_stack(limit=limit):
            print(frame, file=file if file is not None else sys.stderr)

    def cancel(self, msg: Any | None = None) -> bool:
        if self.done():
            return False
        self._cancel_requests += 1
        self._cancel_msg = msg
        if self._scope is not None:
            self._scope.cancel()
        return True

    def cancelling(self) -> int:
        return self._cancel_requests

    def uncancel(self) -> int:
        if self._cancel_requests > 0:
            self._cancel_requests -= 1
        return self._cancel_requests

    def set_result(self, result: Any) -> None:
        raise RuntimeError("Task does not support set_result operation")

    def set_exception(self, exception: Any) -> None:
        raise RuntimeError("Task does not support set_exception operation")

    async def _run(self) -> None:
        if self._cancel_requests:
            # Cancelled before its first step: like asyncio, never run the body.
            self._coro.close()
            self._finish_cancelled()
            return
        cancelled = anyio.get_cancelled_exc_class()
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                result = await _runtime.drive(
                    self._coro, self.get_loop(), self._context
                )
        except asyncio.CancelledError:
            self._finish_cancelled()
            return
        except cancelled:
            self._finish_cancelled()
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            asyncio.Future.set_exception(self, exc)
            self._wake()
            raise
        except BaseException as exc:
            asyncio.Future.set_exception(self, exc)
            self._wake()
            return
        if scope.cancelled_caught:
            self._finish_cancelled()
        else:
            asyncio.Future.set_result(self, result)
            self._wake()

    def _finish_cancelled(self) -> None:
        if not self.done():
            asyncio.Future.cancel(self, self._cancel_msg)
            self._wake()
