"""The callback scheduler behind ``call_soon``/``call_later`` under Trio.

One task per loop runs every callback, in asyncio's order: ready callbacks first in
the order they were scheduled, timers when their time has come, earliest first, the
callbacks scheduled by a callback on the next round.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import deque
from collections.abc import Callable
from contextvars import Context
from typing import Any

import anyio

from . import _runtime


class Scheduler:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._clock = _runtime.trio_clock()
        self._ready: deque[asyncio.Handle] = deque()
        self._timers: list[asyncio.TimerHandle] = []
        self._cancelled_timers = 0
        self._wakeup: anyio.Event | None = None

    def time(self) -> float:
        return self._clock()

    def call_soon(
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: Context | None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self._loop, context)
        self.schedule(handle)
        return handle

    def schedule(self, handle: asyncio.Handle) -> None:
        self._ready.append(handle)
        if self._wakeup is not None:
            self._wakeup.set()

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: Context | None,
    ) -> asyncio.TimerHandle:
        timer = asyncio.TimerHandle(when, callback, args, self._loop, context)
        heapq.heappush(self._timers, timer)
        timer._scheduled = True  # type: ignore[attr-defined]
        if self._wakeup is not None and self._timers[0] is timer:
            self._wakeup.set()
        return timer

    def timer_cancelled(self, timer: asyncio.TimerHandle) -> None:
        if timer._scheduled:  # type: ignore[attr-defined]
            self._cancelled_timers += 1

    def cancel_all(self) -> None:
        for handle in self._ready:
            handle.cancel()
        for timer in self._timers:
            timer.cancel()
        self._ready.clear()
        self._timers.clear()

    async def run(self) -> None:
        while True:
            self._run_once()
            deadline = self._next_deadline()
            if deadline <= self._clock():
                await anyio.lowlevel.checkpoint()
                continue
            self._wakeup = anyio.Event()
            with anyio.CancelScope(deadline=deadline):
                await self._wakeup.wait()
            self._wakeup = None

    def _next_deadline(self) -> float:
        if self._ready:
            return -math.inf
        if self._timers:
            return self._timers[0].when()
        return math.inf

    def _run_once(self) -> None:
        timers = self._timers
        if self._cancelled_timers > 50 and 2 * self._cancelled_timers > len(timers):
            self._timers = timers = [t for t in timers if not t.cancelled()]
            heapq.heapify(timers)
            self._cancelled_timers = 0
        while timers and timers[0].cancelled():
            self._cancelled_timers -= 1
            heapq.heappop(timers)._scheduled = False  # type: ignore[attr-defined]
        now = self._clock()
        while timers and timers[0].when() <= now:
            timer = heapq.heappop(timers)
            timer._scheduled = False  # type: ignore[attr-defined]
            self._ready.append(timer)
        ready = self._ready
        count = len(ready)
        if not count:
            return
        previous = _runtime.get_running_loop_raw()
        _runtime.set_running_loop(self._loop)
        try:
            for _ in range(count):
                handle = ready.popleft()
                if not handle.cancelled():
                    handle._run()
        finally:
            _runtime.set_running_loop(previous)
