"""Tasks of the loop facade under asyncio, known as the facade's current tasks.

Under asyncio a task that the facade makes is a task of the running asyncio loop:
asyncio makes the futures of that loop (``asyncio.sleep()``, the futures of
libraries that hold asyncio's loop, AnyIO's asyncio backend), and a task may await
only futures of its own loop, so it must be that loop's. ``asyncio.current_task()``
in it is then the task itself, as asyncio code expects.

A library given ``loop=facade`` asks ``asyncio.current_task(loop=facade)``, which
asyncio answers from its table of the task each loop is stepping (Python
3.10-3.13 keep it in one dict, keyed by loop, that ``_enter_task()`` fills when a
task's step begins). The task's coroutine is therefore stepped through
:class:`FacadeStep`, which makes the task the facade's current task too for the
length of each step, as asyncio's own step makes it the asyncio loop's.

Limits: ``asyncio.all_tasks(loop=facade)`` does not list these tasks (asyncio
selects by ``task.get_loop()``, which must stay the asyncio loop: ``gather()``
and the check that a task awaits only its own loop's futures use it too), and
``task.get_coro()`` is the wrapper.
"""

from __future__ import annotations

import asyncio
import collections.abc
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")

#: asyncio's current task of each loop (what asyncio.current_task(loop) reads;
#: the same dict in asyncio's C and Python code).
_current_tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] = (
    asyncio.tasks._current_tasks  # type: ignore[attr-defined]
)


class FacadeStep(collections.abc.Coroutine[Any, Any, T]):
    """*coro*, stepped as the current task of *facade* as well."""

    __slots__ = ("_coro", "_facade", "_task")

    def __init__(
        self, coro: Coroutine[Any, Any, T], facade: asyncio.AbstractEventLoop
    ) -> None:
        self._coro = coro
        self._facade = facade
        self._task: asyncio.Task[Any] | None = None

    def send(self, value: Any) -> Any:
        return self._step(self._coro.send, value)

    def throw(self, *exc_info: Any) -> Any:
        return self._step(self._coro.throw, *exc_info)

    def _step(self, step: Callable[..., Any], *args: Any) -> Any:
        facade = self._facade
        task = self._task
        if task is None:
            # Known from the first step on (which an eager task factory runs
            # before create_task() has returned).
            task = self._task = asyncio.current_task()
        # Saved and put back, not cleared: an eager task's first step runs
        # inside the step of the task that made it.
        previous = _current_tasks.get(facade)
        _current_tasks[facade] = task  # type: ignore[assignment]
        try:
            return step(*args)
        finally:
            if previous is None:
                del _current_tasks[facade]
            else:
                _current_tasks[facade] = previous

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, T]:
        return self._coro.__await__()

    def __getattr__(self, name: str) -> Any:
        # The coroutine's name, code and frame, for the task's repr and stack.
        return getattr(self._coro, name)
