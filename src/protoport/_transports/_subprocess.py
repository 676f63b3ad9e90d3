"""A child process and its pipes as an :class:`asyncio.SubprocessTransport`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from anyio import CancelScope

from .._backends import fd_waits
from .._core._host import Host
from ._pipe import ReadPipeTransport, WritePipeTransport


class _PipeProtocol(asyncio.Protocol):
    """The protocol of one of the child's pipes: hands what happens on it to the
    subprocess transport, and the stdin pipe's flow control to its protocol."""

    __slots__ = ("_fd", "_owner")

    def __init__(self, owner: SubprocessTransport, fd: int) -> None:
        self._owner = owner
        self._fd = fd

    def data_received(self, data: bytes) -> None:
        self._owner.pipe_data_received(self._fd, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.pipe_connection_lost(self._fd, exc)

    def pause_writing(self) -> None:
        self._owner.get_protocol().pause_writing()

    def resume_writing(self) -> None:
        self._owner.get_protocol().resume_writing()


PipeTransport = WritePipeTransport | ReadPipeTransport


class SubprocessTransport(asyncio.SubprocessTransport):
    """A child process started with :class:`subprocess.Popen`, driving a
    :class:`asyncio.SubprocessProtocol` as asyncio's subprocess transports do.

    The protocol receives ``connection_made()`` first; then, for each of the
    child's pipes, ``pipe_data_received(fd, data)`` calls and one
    ``pipe_connection_lost(fd, exc)``; ``process_exited()`` once the child has
    exited; and ``connection_lost(None)`` last, once the child has exited and
    every pipe is closed, so that no output the child wrote before it exited is
    lost. These calls are callbacks of the loop, made in that order.

    The child's exit is watched through a pidfd where the platform has one (in
    the loop's reactor, or by a task waiting for it to become readable), and
    otherwise by a worker thread waiting for the child; no ``SIGCHLD`` handler
    is involved. The child is reaped by this transport, so its pid is never
    another process's while :meth:`send_signal` may use it.

    ``start()``, ``abort()``, ``finish()``, ``add_exit_waiter()`` and
    ``wait_exited()`` are for the loop that owns the transport (leaving the loop
    kills a child still running and reaps it, and so does a cancelled call that
    was starting it); ``pipe_data_received()`` and ``pipe_connection_lost()`` are
    called by the transports of the child's pipes.
    """

    __slots__ = (
        "__dict__",
        "__weakref__",
        "_closed",
        "_exit_waiters",
        "_finishing",
        "_flush_scheduled",
        "_host",
        "_loop",
        "_lost_called",
        "_open_pipes",
        "_pending",
        "_pid",
        "_pidfd",
        "_pipes",
        "_popen",
        "_protocol",
        "_returncode",
        "_waits",
        "_watch_scope",
        "_watching",
    )

    def __init__(
        self,
        host: Host,
        protocol: asyncio.BaseProtocol,
        popen: subprocess.Popen[bytes],
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__({**(extra or {}), "subprocess": popen})
        self._host = host
        self._loop = host.loop
        self._protocol = protocol
        self._popen = popen
        self._pid = popen.pid
        self._returncode: int | None = None
        self._closed = False
        self._finishing = False
        self._lost_called = False
        self._exit_waiters: list[asyncio.Future[int]] = []
        #: Protocol calls not made yet, and whether a callback will make them.
        self._pending: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._flush_scheduled = False
        self._waits = fd_waits()
        self._pidfd: int | None = None
        self._watching = False
        self._watch_scope: CancelScope | None = None
        self._pipes: dict[int, PipeTransport] = {}
        if popen.stdin is not None:
            self._pipes[0] = WritePipeTransport(
                host, popen.stdin, _PipeProtocol(self, 0)
            )
        for fd, pipe in ((1, popen.stdout), (2, popen.stderr)):
            if pipe is not None:
                self._pipes[fd] = ReadPipeTransport(host, pipe, _PipeProtocol(self, fd))
        self._open_pipes = set(self._pipes)

    def __repr__(self) -> str:
        parts = [type(self).__name__]
        if self._closed:
            parts.append("closed")
        parts.append(f"pid={self._pid}")
        if self._returncode is not None:
            parts.append(f"returncode={self._returncode}")
        else:
            parts.append("running")
        return f"<{' '.join(parts)}>"

    # -- life cycle ------------------------------------------------------------

    def start(self) -> None:
        """Call ``connection_made()``, then start reading the child's output and
        watching for its exit."""
        self._host.adopt(self)
        self._run_callback(self._protocol.connection_made, self)
        for pipe in self._pipes.values():
            pipe.start(call_connection_made=False)
        self._watch_exit()

    def _run_callback(self, callback: Callable[..., object], *args: Any) -> None:
        handle = asyncio.Handle(callback, args, self._loop)
        self._host.invoke(handle._run)

    def _call(self, callback: Callable[..., object], *args: Any) -> None:
        """Call the protocol back on the loop, after what was asked before."""
        self._pending.append((callback, args))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Make the protocol calls asked for, in order (also what a loop closing
        without running its callbacks has this transport do)."""
        self._flush_scheduled = False
        pending = self._pending
        while pending:
            callback, args = pending.popleft()
            self._run_callback(callback, *args)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        """What the child wrote to pipe *fd* (for the pipe's protocol)."""
        self._call(self._protocol.pipe_data_received, fd, data)  # type: ignore[attr-defined]

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        """Pipe *fd* is closed (for the pipe's protocol)."""
        self._open_pipes.discard(fd)
        self._call(self._protocol.pipe_connection_lost, fd, exc)  # type: ignore[attr-defined]
        self._try_finish()

    def _process_exited(self, returncode: int) -> None:
        if self._returncode is not None:
            return
        self._returncode = returncode
        self._stop_watching()
        for waiter in self._exit_waiters:
            if not waiter.done():
                waiter.set_result(returncode)
        self._exit_waiters.clear()
        self._call(self._protocol.process_exited)  # type: ignore[attr-defined]
        self._try_finish()

    def _try_finish(self) -> None:
        if self._returncode is None or self._open_pipes or self._finishing:
            return
        self._finishing = True
        self._call(self._call_connection_lost)

    def _call_connection_lost(self) -> None:
        if self._lost_called:
            return
        self._lost_called = True
        try:
            self._run_callback(self._protocol.connection_lost, None)
        finally:
            self._host.forget(self)

    # -- the child's exit ------------------------------------------------------

    def _watch_exit(self) -> None:
        if self._returncode is not None:
            return
        try:
            self._pidfd = os.pidfd_open(self._pid)  # type: ignore[attr-defined,unused-ignore]
        except (AttributeError, OSError):
            # No pidfd here: a worker thread waits for the child.
            self._pidfd = None
        self._watching = True
        readers = self._host.readers()
        if self._pidfd is not None and readers is not None:
            readers.add_reader(self._pidfd, self._poll_exit)
        else:
            self._host.spawn(self._wait_exit)

    def _poll_exit(self) -> None:
        returncode = self._popen.poll()
        if returncode is not None:
            self._process_exited(returncode)

    async def _wait_exit(self) -> None:
        with CancelScope() as self._watch_scope:
            if self._pidfd is None:
                returncode = await anyio.to_thread.run_sync(
                    self._popen.wait, abandon_on_cancel=True
                )
                self._host.invoke(self._process_exited, returncode)
                return
            try:
                await self._waits.wait_readable(self._pidfd)
            except self._waits.closed_errors:
                return
            self._host.invoke(self._poll_exit)

    def _stop_watching(self) -> None:
        if not self._watching:
            return
        self._watching = False
        if self._watch_scope is not None:
            self._watch_scope.cancel()
        pidfd = self._pidfd
        if pidfd is not None:
            self._pidfd = None
            readers = self._host.readers()
            if readers is not None:
                readers.remove_reader(pidfd)
            self._waits.notify_closing(pidfd)
            os.close(pidfd)

    async def wait_exited(self) -> int:
        """Wait until the child has exited and is reaped; return its exit status
        (from a task of the loop or from AnyIO code)."""
        waiter: asyncio.Future[int] = self._loop.create_future()
        self.add_exit_waiter(waiter)
        return await waiter

    # asyncio.subprocess.Process.wait() awaits ``transport._wait()`` on whatever
    # transport its loop made: under this name asyncio's own Process (made by
    # asyncio.create_subprocess_exec() while this loop runs) works over this
    # transport.
    _wait = wait_exited

    def add_exit_waiter(self, waiter: asyncio.Future[int]) -> None:
        """Have *waiter* receive the return code once the child has exited (at
        once if it has); a cancelled waiter is left alone."""
        if self._returncode is not None:
            if not waiter.done():
                waiter.set_result(self._returncode)
            return
        self._exit_waiters.append(waiter)

    # -- asyncio's methods -----------------------------------------------------

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The :class:`asyncio.SubprocessProtocol` driven by this transport."""
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Drive *protocol* from now on."""
        self._protocol = protocol

    def get_pid(self) -> int:
        """The child's process id."""
        return self._pid

    def get_returncode(self) -> int | None:
        """The child's exit status, or None while it runs."""
        return self._returncode

    def get_pipe_transport(self, fd: int) -> PipeTransport | None:
        """The transport of the child's pipe *fd* (0, 1 or 2), or None when it is not a
        pipe."""
        return self._pipes.get(fd)

    def send_signal(self, signal: int) -> None:
        """Send *signal* to the child; ``ProcessLookupError`` once it has
        exited."""
        if self._returncode is not None:
            raise ProcessLookupError()
        # Popen reaps nothing here that this transport has not seen: a child
        # that has exited is a zombie until it is reaped, so the pid is its own.
        self._popen.send_signal(signal)

    def terminate(self) -> None:
        """Send ``SIGTERM`` to the child, as :meth:`subprocess.Popen.terminate`."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Send ``SIGKILL`` to the child, as :meth:`subprocess.Popen.kill`."""
        self.send_signal(signal.SIGKILL)

    def is_closing(self) -> bool:
        """Whether :meth:`close` was called or the transport is done."""
        return self._closed

    def close(self) -> None:
        """Close the pipes and kill the child if it still runs; the protocol
        still receives the remaining callbacks, ``connection_lost()`` last."""
        if self._closed:
            return
        self._closed = True
        for pipe in self._pipes.values():
            pipe.close()
        # Asking Popen (not the pid) leaves alone a child that has exited but is
        # not seen by this transport yet, and one that somebody else reaped.
        if self._returncode is None and self._popen.poll() is None:
            try:
                self._popen.kill()
            except ProcessLookupError:
                pass

    def abort(self) -> None:
        """What the loop does when it closes: :meth:`close`."""
        self.close()

    async def finish(self) -> None:
        """Close, reap the child and call ``connection_lost()``, if not done yet
        (for a loop that closes without running its callbacks)."""
        if self._lost_called:
            return
        self.close()
        for pipe in self._pipes.values():
            await pipe.finish()
        if self._returncode is None:
            self._stop_watching()
            returncode = await anyio.to_thread.run_sync(self._popen.wait)
            self._process_exited(returncode)
        self._flush()
        self._call_connection_lost()
