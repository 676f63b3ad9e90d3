"""The event loop behind the facade under Trio: one Trio task per loop.

It runs every callback in asyncio's order (ready callbacks first in the order they
were scheduled, timers when their time has come, earliest first, the callbacks
scheduled by a callback on the next round), steps the loop's tasks (which are
callbacks too, as in asyncio, though their wake-ups are queued without a handle),
and serves the reactor: sockets registered for
reading sit in an epoll set of the loop's own, whose descriptor is what the task
waits on. One Trio wake-up thus reads every readable socket and runs everything
that follows from it, as a selector loop's iteration does, without a task switch
per socket or per task.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import select
import socket
from collections import deque
from collections.abc import Callable
from contextvars import Context
from typing import Any

import trio
from sniffio import thread_local as sniffio_names

from ._reporting import failed_callback_context
from ._running import get_running_loop_raw, set_running_loop

#: A task's wake-up as the ready queue holds it: the callback's context, the
#: callback and the future it is called with.
Wakeup = tuple[Context, Callable[[Any], object], Any]

#: How many iterations the loop runs back to back, while there is work, before
#: it lets the run's other tasks have their turn.
_TURNS_PER_CHECKPOINT = 16


class Reactor:
    """Readiness callbacks for many descriptors, kept in an epoll set of their own.

    Nothing waits here: the scheduler waits for the set's descriptor, then
    :meth:`dispatch` calls back every descriptor that is ready. A descriptor has
    at most one reader and one writer; a reader is also called when the
    descriptor fails or hangs up, so that it sees the error or the end.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._callbacks: dict[int, Callable[[], object]] = {}
        self._writers: dict[int, Callable[[], object]] = {}

    def fileno(self) -> int:
        return self._epoll.fileno()

    def add_reader(self, fd: int, callback: Callable[[], object]) -> None:
        new = fd not in self._callbacks
        self._callbacks[fd] = callback
        if new:
            self._update(fd, registered=fd in self._writers)

    def remove_reader(self, fd: int) -> bool:
        if self._callbacks.pop(fd, None) is None:
            return False
        self._update(fd, registered=True)
        return True

    def add_writer(self, fd: int, callback: Callable[[], object]) -> None:
        new = fd not in self._writers
        self._writers[fd] = callback
        if new:
            self._update(fd, registered=fd in self._callbacks)

    def remove_writer(self, fd: int) -> bool:
        if self._writers.pop(fd, None) is None:
            return False
        self._update(fd, registered=True)
        return True

    def _update(self, fd: int, *, registered: bool) -> None:
        mask = (select.EPOLLIN if fd in self._callbacks else 0) | (
            select.EPOLLOUT if fd in self._writers else 0
        )
        try:
            if not registered:
                self._epoll.register(fd, mask)
            elif mask:
                self._epoll.modify(fd, mask)
            else:
                self._epoll.unregister(fd)
        except (OSError, ValueError):
            if not registered:
                raise
            # Closed already: the kernel dropped it from the set.

    def dispatch(self, report: Callable[[dict[str, Any]], object]) -> bool:
        """Call back every ready descriptor; return whether there was one."""
        events = self._epoll.poll(0)
        if self._writers:
            self._dispatch_both(events, report)
            return bool(events)
        # Readers only, the path of every read: any event calls the reader.
        callbacks = self._callbacks
        for fd, _ in events:
            callback = callbacks.get(fd)
            if callback is None:
                continue
            try:
                callback()
            except Exception as exc:
                report({"message": "Exception in a reader", "exception": exc})
        return bool(events)

    def _dispatch_both(
        self,
        events: list[tuple[int, int]],
        report: Callable[[dict[str, Any]], object],
    ) -> None:
        for fd, event in events:
            for callbacks, wanted, kind in (
                (self._callbacks, _READABLE_OR_FAILED, "reader"),
                (self._writers, _WRITABLE_OR_FAILED, "writer"),
            ):
                callback = callbacks.get(fd)
                if callback is None or not event & wanted:
                    continue
                try:
                    callback()
                except Exception as exc:
                    report({"message": f"Exception in a {kind}", "exception": exc})

    def close(self) -> None:
        self._callbacks.clear()
        self._writers.clear()
        self._epoll.close()


if hasattr(select, "epoll"):
    _FAILED = select.EPOLLERR | select.EPOLLHUP
    _READABLE_OR_FAILED = select.EPOLLIN | select.EPOLLRDHUP | _FAILED
    _WRITABLE_OR_FAILED = select.EPOLLOUT | _FAILED


class Scheduler:
    """The callbacks, timers and reactor of one loop under Trio, run by :meth:`run`.

    ``ready`` holds the handles for the next iteration and ``idle`` tells whether
    :meth:`run` waits (new work must then :meth:`wake` it): the loop's
    ``call_soon()`` uses both directly, as it runs for every task wake-up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # The run's clock read in one call (trio.current_time() makes three).
        self._clock = trio.lowlevel.current_clock().current_time
        self.ready: deque[asyncio.Handle | Wakeup] = deque()
        self._timers: list[asyncio.TimerHandle] = []
        self._cancelled_timers = 0
        self.reactor: Reactor | None = None
        self._wake_in: socket.socket | None = None
        self._wake_out: socket.socket | None = None
        self.idle = False
        self._woken = False

    # -- descriptors -------------------------------------------------------------

    def open(self) -> None:
        """Make the loop's descriptors (once): the reactor's epoll set where the
        platform has one, and the socket pair that wakes an idle loop."""
        if self._wake_in is not None:
            return
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        if hasattr(select, "epoll"):
            self.reactor = Reactor()
            self.reactor.add_reader(self._wake_in.fileno(), self._drain_wakeups)

    def close(self) -> None:
        if self.reactor is not None:
            self.reactor.close()
        for sock in (self._wake_in, self._wake_out):
            if sock is not None:
                sock.close()

    def _drain_wakeups(self) -> None:
        assert self._wake_in is not None
        try:
            while self._wake_in.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # -- scheduling --------------------------------------------------------------

    def time(self) -> float:
        return self._clock()

    def schedule(self, handle: asyncio.Handle) -> None:
        """Run *handle* on the next iteration (what ``call_soon()`` does, which
        the loop inlines)."""
        self.ready.append(handle)
        if self.idle:
            self.wake()

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
        if self.idle and self._timers[0] is timer:
            self.wake()
        return timer

    def wake(self) -> None:
        # Only an idle loop needs waking, and once is enough until it wakes.
        if self._woken or self._wake_out is None:
            return
        self._woken = True
        try:
            self._wake_out.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # full of wake-ups already

    def timer_cancelled(self, timer: asyncio.TimerHandle) -> None:
        if timer._scheduled:  # type: ignore[attr-defined]
            self._cancelled_timers += 1

    def cancel_all(self) -> None:
        for handle in self.ready:
            if isinstance(handle, asyncio.Handle):
                handle.cancel()
        for timer in self._timers:
            timer.cancel()
        self.ready.clear()
        self._timers.clear()

    # -- running -----------------------------------------------------------------

    async def run(self, until: Callable[[], bool] | None = None) -> None:
        """Run the loop: forever, or until *until* returns true after an
        iteration."""
        self.open()
        assert self._wake_in is not None
        wait_fd = self.reactor.fileno() if self.reactor is not None else self._wake_in
        loop = self._loop
        reactor = self.reactor
        report = loop.call_exception_handler
        clock = self._clock
        wait_readable = trio.lowlevel.wait_readable
        while True:
            # The waits for the first timer happen in one cancel scope whose
            # deadline follows the timers: a scope per wait would cost more than
            # the rest of a wake-up. Only once its deadline has passed (Trio then
            # cancels it for good) does the next one take its place.
            with trio.CancelScope() as timer_scope:
                scope_deadline = math.inf
                while True:
                    # Iterations back to back, as a selector loop's, while there
                    # is work; this loop is asyncio's running one, and sniffio
                    # names asyncio (for AnyIO code in callbacks and tasks), only
                    # until the task awaits: once per batch, not per callback.
                    previous = get_running_loop_raw()
                    library = sniffio_names.name
                    set_running_loop(loop)
                    sniffio_names.name = "asyncio"
                    try:
                        for _ in range(_TURNS_PER_CHECKPOINT):
                            # Read what is readable, then run what is due.
                            if reactor is not None:
                                busy = reactor.dispatch(report)
                            else:
                                self._drain_wakeups()
                                busy = False
                            self._run_once()
                            if until is not None and until():
                                return
                            if busy or self.ready:
                                continue
                            if not self._timers:
                                deadline = math.inf
                                break
                            deadline = self._timers[0].when()
                            if deadline > clock():
                                break
                        else:
                            deadline = -math.inf
                    finally:
                        sniffio_names.name = library
                        set_running_loop(previous)
                    if deadline == -math.inf:
                        # Still busy: let the run's other tasks have their turn.
                        await trio.lowlevel.checkpoint()
                        continue
                    if deadline != scope_deadline:
                        timer_scope.deadline = scope_deadline = deadline
                    self.idle = True
                    try:
                        await wait_readable(wait_fd)
                    finally:
                        self.idle = False
                        self._woken = False

    def _run_once(self) -> None:
        timers = self._timers
        if timers:
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
                self.ready.append(timer)
        # Handles and task wake-ups, told apart by type as cheaply as can be.
        ready: deque[Any] = self.ready
        for _ in range(len(ready)):
            handle = ready.popleft()
            if type(handle) is tuple:
                # A task's wake-up (see Loop.call_soon()).
                context, callback, future = handle
                try:
                    context.run(callback, future)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._wakeup_failed(handle, exc)
            elif not handle._cancelled:
                handle._run()

    def _wakeup_failed(self, wakeup: Wakeup, exc: BaseException) -> None:
        # Reported as Handle._run() reports a failed callback.
        context, callback, future = wakeup
        self._loop.call_exception_handler(
            failed_callback_context(self._loop, callback, (future,), exc, context)
        )
