"""Child processes with stream objects: asyncio.subprocess's API on any loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, cast

from .._loop._loop import get_running_loop
from .._transports._subprocess import SubprocessTransport
from ._reader import DEFAULT_LIMIT, StreamReader, create_waiter
from ._writer import FlowControl, StreamReaderProtocol, StreamWriter


class SubprocessStreamProtocol(FlowControl, asyncio.SubprocessProtocol):
    """The protocol behind a :class:`Process`: feeds the child's stdout and stderr
    to :class:`StreamReader` objects and gives its stdin's
    :class:`StreamWriter` flow control, as asyncio's does."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._limit = limit
        self.stdin: StreamWriter | None = None
        self.stdout: StreamReader | None = None
        self.stderr: StreamReader | None = None
        self._transport: SubprocessTransport | None = None
        self._process_exited = False
        self._pipe_fds: list[int] = []
        self._stdin_closed: asyncio.Future[None] = self._loop.create_future()

    def __repr__(self) -> str:
        parts = [type(self).__name__]
        for name in ("stdin", "stdout", "stderr"):
            stream = getattr(self, name)
            if stream is not None:
                parts.append(f"{name}={stream!r}")
        return f"<{' '.join(parts)}>"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(SubprocessTransport, transport)
        for fd in (1, 2):
            pipe = self._transport.get_pipe_transport(fd)
            if pipe is None:
                continue
            reader = StreamReader(limit=self._limit, loop=self._loop)
            reader.set_transport(pipe)
            setattr(self, "stdout" if fd == 1 else "stderr", reader)
            self._pipe_fds.append(fd)
        stdin = self._transport.get_pipe_transport(0)
        if stdin is not None:
            self.stdin = StreamWriter(
                stdin, cast(StreamReaderProtocol, self), None, self._loop
            )

    def _reader_of(self, fd: int) -> StreamReader | None:
        return self.stdout if fd == 1 else self.stderr if fd == 2 else None

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        reader = self._reader_of(fd)
        if reader is not None:
            reader.feed_data(data)

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        if fd == 0:
            if self.stdin is not None:
                self.stdin.close()
            self.connection_lost(exc)
            if exc is None:
                self._stdin_closed.set_result(None)
            else:
                self._stdin_closed.set_exception(exc)
                # Awaiting wait_closed() is optional: nobody need see the error.
                self._stdin_closed._log_traceback = False
            return
        reader = self._reader_of(fd)
        if reader is not None:
            if exc is None:
                reader.feed_eof()
            else:
                reader.set_exception(exc)
        if fd in self._pipe_fds:
            self._pipe_fds.remove(fd)
        self._maybe_close_transport()

    def process_exited(self) -> None:
        self._process_exited = True
        self._maybe_close_transport()

    def _maybe_close_transport(self) -> None:
        if not self._pipe_fds and self._process_exited and self._transport:
            self._transport.close()
            self._transport = None

    def _get_close_waiter(self, stream: StreamWriter) -> asyncio.Future[None]:
        assert stream is self.stdin
        return self._stdin_closed


class Process:
    """A child process, as :class:`asyncio.subprocess.Process`: made by
    :func:`create_subprocess_exec` and :func:`create_subprocess_shell`.

    :attr:`stdin` is a :class:`StreamWriter`, :attr:`stdout` and :attr:`stderr`
    are :class:`StreamReader` objects (each None unless it is a pipe).
    :meth:`wait` returns as soon as the child has exited; :meth:`communicate`
    once its output is read to the end as well.
    """

    def __init__(
        self,
        transport: SubprocessTransport,
        protocol: SubprocessStreamProtocol,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = loop
        self.stdin = protocol.stdin
        self.stdout = protocol.stdout
        self.stderr = protocol.stderr
        self.pid = transport.get_pid()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pid}>"

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has exited (``-N`` for signal N), else
        None."""
        return self._transport.get_returncode()

    async def wait(self) -> int:
        """Wait until the child has exited and return its :attr:`returncode`.

        With ``stdout=PIPE`` or ``stderr=PIPE``, a child that writes more than
        the pipe holds waits for the output to be read: read it, or use
        :meth:`communicate`.
        """
        waiter: asyncio.Future[int] = create_waiter(self._loop)
        self._transport.add_exit_waiter(waiter)
        return await waiter

    def send_signal(self, signal: int) -> None:
        """Send *signal*; ``ProcessLookupError`` once the child has exited."""
        self._transport.send_signal(signal)

    def terminate(self) -> None:
        """Send ``SIGTERM`` to the child (:exc:`ProcessLookupError` once it
        has exited)."""
        self._transport.terminate()

    def kill(self) -> None:
        """Send ``SIGKILL`` to the child (:exc:`ProcessLookupError` once it
        has exited)."""
        self._transport.kill()

    async def _feed_stdin(self, input: bytes | None) -> None:
        assert self.stdin is not None
        try:
            if input is not None:
                self.stdin.write(input)
            await self.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            # The child stopped reading: what it did read is all it gets.
            pass
        self.stdin.close()

    async def _read_stream(self, fd: int) -> bytes:
        stream = self.stdout if fd == 1 else self.stderr
        assert stream is not None
        output = await stream.read()
        pipe = self._transport.get_pipe_transport(fd)
        if pipe is not None:
            pipe.close()
        return output

    async def communicate(
        self, input: bytes | None = None
    ) -> tuple[bytes | None, bytes | None]:
        """Write *input* to stdin and close it, read stdout and stderr to their
        end, wait for the child to exit; return ``(stdout_data, stderr_data)``.

        The three go on at once, so a child that writes much while it reads
        much never blocks on a full pipe. A child that stops reading its input
        early is not an error. Cancelling the call cancels the reading and
        writing; the child keeps running.
        """
        loop = self._loop
        parts: list[Coroutine[Any, Any, Any] | None] = [
            self._feed_stdin(input) if self.stdin is not None else None,
            self._read_stream(1) if self.stdout is not None else None,
            self._read_stream(2) if self.stderr is not None else None,
        ]
        tasks = [loop.create_task(part) if part else None for part in parts]
        results: list[Any] = []
        try:
            for task in tasks:
                results.append(await task if task is not None else None)
        finally:
            for task in tasks:
                if task is not None and not task.done():
                    task.cancel()
        await self.wait()
        return results[1], results[2]


async def create_subprocess_exec(
    program: Any,
    *args: Any,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> Process:
    """Run *program* with *args* in a child process, as
    :func:`asyncio.create_subprocess_exec`; the other keyword arguments go to
    :meth:`protoport.Loop.subprocess_exec`. *limit* is the buffer limit of the
    stdout and stderr readers."""
    loop = get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: SubprocessStreamProtocol(limit=limit, loop=loop),
        program,
        *args,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        **kwds,
    )
    return Process(transport, protocol, loop)


async def create_subprocess_shell(
    cmd: str | bytes,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> Process:
    """Run *cmd* with the platform's shell in a child process, as
    :func:`asyncio.create_subprocess_shell`; the other keyword arguments go to
    :meth:`protoport.Loop.subprocess_shell`. *limit* is the buffer limit of the
    stdout and stderr readers."""
    loop = get_running_loop()
    transport, protocol = await loop.subprocess_shell(
        lambda: SubprocessStreamProtocol(limit=limit, loop=loop),
        cmd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        **kwds,
    )
    return Process(transport, protocol, loop)
