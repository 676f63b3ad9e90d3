"""Transports over one end of a pipe: asyncio's read and write pipe transports.

Both take a file object whose descriptor is a pipe, a FIFO, a socket or a
character device, make it non-blocking and own it from then on (it is closed after
``connection_lost()``). Where the loop has a reactor, readiness comes from it and
an idle pipe costs no task; elsewhere a task waits with the runtime's own
readiness waits.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from typing import Any

import anyio
from anyio import CancelScope

from .._backends import Readers, fd_waits
from .._core._host import Host
from .._core._write_buffer import WriteBuffer, check_bytes_like
from ._base import BufferedWriting, Life, TransportBase

#: How much one read asks for, as asyncio's pipe transports.
MAX_READ_SIZE = 256 * 1024


def _mode_of(pipe: Any) -> int:
    return os.fstat(pipe.fileno()).st_mode


def check_read_pipe(pipe: Any) -> None:
    """Raise asyncio's ``ValueError`` unless *pipe* is a pipe, FIFO, socket or
    character device."""
    mode = _mode_of(pipe)
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        raise ValueError("Pipe transport is for pipes/sockets only.")


def check_write_pipe(pipe: Any) -> None:
    """Raise asyncio's ``ValueError`` unless *pipe* is a pipe, FIFO, socket or
    character device."""
    mode = _mode_of(pipe)
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        raise ValueError(
            "Pipe transport is only for pipes, sockets and character devices"
        )


class _PipeTransport(TransportBase):
    """What both pipe transports share: the file object and its descriptor, the
    reactor, registration for readability, and the end of their life (the loop
    holds them until ``connection_lost()`` has run and the pipe is closed)."""

    __slots__ = ("_fd", "_pipe", "_readers", "_registered", "_task_scope", "_waits")

    def __init__(
        self,
        host: Host,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        extra: dict[str, Any] | None,
    ) -> None:
        info = {"pipe": pipe}
        if extra:
            info.update(extra)
        super().__init__(host, protocol, info, None)
        self._pipe = pipe
        self._fd: int = pipe.fileno()
        os.set_blocking(self._fd, False)
        self._readers: Readers | None = host.readers()
        # Taken now: a callback of the loop runs with asyncio's marks under Trio.
        self._waits = fd_waits()
        self._registered = False
        #: The scope of the task that waits for readability, without a reactor.
        self._task_scope: CancelScope | None = None

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} fd={self._fd}>"

    def start(self, *, call_connection_made: bool = True) -> None:
        """Call ``connection_made()``, then start watching the pipe: nothing is
        read (or noticed) before it has returned."""
        self._host.adopt(self)
        if call_connection_made:
            self._run_callback(self._protocol.connection_made, self)
        self._update_registration()

    def _wants_readability(self) -> bool:
        """Whether the pipe should be watched for readability now."""
        raise NotImplementedError

    def _on_readable(self) -> None:
        raise NotImplementedError

    def _update_registration(self) -> None:
        """Be registered (or have a waiting task) exactly while
        :meth:`_wants_readability`."""
        wanted = self._wants_readability()
        if wanted == self._registered:
            return
        self._registered = wanted
        readers = self._readers
        if readers is None:
            if wanted:
                self._host.spawn(self._wait_readable)
            elif self._task_scope is not None:
                self._task_scope.cancel()
            return
        if not wanted:
            readers.remove_reader(self._fd)
            return
        try:
            readers.add_reader(self._fd, self._on_readable)
        except OSError as exc:
            # A character device the reactor cannot watch (e.g. /dev/null).
            self._registered = False
            self._fatal_error(exc, "Fatal error on pipe transport")

    async def _wait_readable(self) -> None:
        waits = self._waits
        with CancelScope() as scope:
            self._task_scope = scope
            try:
                while self._registered:
                    await waits.wait_readable(self._fd)
                    if self._registered:
                        self._on_readable()
            except waits.closed_errors:
                pass
            except OSError as exc:
                self._fatal_error(exc, "Fatal error on pipe transport")
            finally:
                self._task_scope = None

    async def finish(self) -> None:
        """Stop at once and call ``connection_lost()``, if not done yet (for a
        loop that closes without running its callbacks)."""
        if not self._lost_called:
            if self._life is Life.OPEN:
                self._life = Life.ABORTED
                self._abort_io()
            self._call_connection_lost()
        await anyio.lowlevel.checkpoint()

    def _release(self) -> None:
        self._finished = True
        if self._registered:
            self._registered = False
            if self._readers is not None:
                self._readers.remove_reader(self._fd)
        # A task may still wait on the descriptor: it must hear first.
        self._waits.notify_closing(self._fd)
        self._pipe.close()
        self._host.forget(self)


class ReadPipeTransport(_PipeTransport, asyncio.ReadTransport):
    """The read end of a pipe as an :class:`asyncio.ReadTransport`, as
    :meth:`asyncio.loop.connect_read_pipe` makes it.

    Each read is delivered to ``data_received()`` at once. At the end of the pipe
    the protocol receives ``eof_received()`` and then ``connection_lost(None)``,
    whatever ``eof_received()`` returns: a pipe has no side left to keep open.

    ``start()``, ``finish()`` and ``belongs_to()`` serve the loop that owns
    the transport."""

    __slots__ = ("_reading_paused",)

    def __init__(
        self,
        host: Host,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        extra: dict[str, Any] | None = None,
    ) -> None:
        check_read_pipe(pipe)
        super().__init__(host, pipe, protocol, extra)
        self._reading_paused = False

    def _wants_readability(self) -> bool:
        return self._life is Life.OPEN and not self._reading_paused

    def _on_readable(self) -> None:
        if not self._wants_readability():
            self._update_registration()
            return
        try:
            data = os.read(self._fd, MAX_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if not data:
            self._life = Life.CLOSING
            self._update_registration()
            self._loop.call_soon(self._protocol.eof_received)  # type: ignore[attr-defined]
            self._host.run_soon(self._call_connection_lost)
            return
        try:
            self._host.invoke(self._protocol.data_received, data)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def is_reading(self) -> bool:
        """Whether the pipe is being read (not paused, not closing)."""
        return self._wants_readability()

    def pause_reading(self) -> None:
        """Stop delivering data until :meth:`resume_reading`."""
        if not self.is_reading():
            return
        self._reading_paused = True
        self._update_registration()

    def resume_reading(self) -> None:
        """Deliver data again after :meth:`pause_reading`."""
        if self._life is not Life.OPEN or not self._reading_paused:
            return
        self._reading_paused = False
        self._update_registration()

    def _close_io(self) -> None:
        self._update_registration()
        self._host.run_soon(self._call_connection_lost)

    def _abort_io(self) -> None:
        self._update_registration()


class WritePipeTransport(BufferedWriting, _PipeTransport, asyncio.WriteTransport):
    """The write end of a pipe as an :class:`asyncio.WriteTransport`, as
    :meth:`asyncio.loop.connect_write_pipe` makes it.

    ``write()`` hands the bytes to the kernel at once when it takes them; the rest
    waits in a :class:`~protoport.WriteBuffer` that a writer task, started only
    then, drains as the pipe becomes writable. ``close()`` is ``write_eof()``: the
    buffered bytes are written, then the pipe is closed and the protocol receives
    ``connection_lost(None)``.

    When the reading end goes away, a pipe or socket becomes readable (a write
    end never has anything to read): the transport watches for that, and the
    protocol receives ``connection_lost(BrokenPipeError())`` if bytes were still
    buffered, ``connection_lost(None)`` if not.

    ``start()``, ``finish()`` and ``belongs_to()`` serve the loop that owns
    the transport."""

    __slots__ = ("_buffer", "_watch_peer", "_write_scope", "_writing")

    _lost_write_warning = (
        "pipe closed by peer or os.write(pipe, data) raised exception."
    )

    def __init__(
        self,
        host: Host,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        extra: dict[str, Any] | None = None,
    ) -> None:
        check_write_pipe(pipe)
        mode = _mode_of(pipe)
        super().__init__(host, pipe, protocol, extra)
        # On AIX a pipe's write end does not become readable when the reader
        # goes; a socket's does everywhere.
        self._watch_peer = stat.S_ISSOCK(mode) or (
            stat.S_ISFIFO(mode) and not sys.platform.startswith("aix")
        )
        self._buffer = WriteBuffer(
            protocol,
            transport=self,
            exception_handler=self._loop.call_exception_handler,
        )
        #: Whether the writer task runs (it owns the buffer's front meanwhile).
        self._writing = False
        self._write_scope: CancelScope | None = None

    def _wants_readability(self) -> bool:
        # Until the end: close() still writes what is buffered.
        return (
            self._watch_peer
            and not self._lost_called
            and not self._finished
            and (self._life is Life.OPEN or self._life is Life.CLOSING)
        )

    def _on_readable(self) -> None:
        """The reader went away."""
        if self._buffer:
            self._force_close(BrokenPipeError())
        else:
            self._force_close(None)

    # -- writing ---------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write *data* to the pipe; it never blocks (see the class)."""
        if type(data) is not bytes:
            check_bytes_like(data)
        if not data:
            return
        if self._life is not Life.OPEN:
            self._count_lost_write()
            return
        if not self._writing:
            try:
                sent = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._start_writing()
        # pause_writing() must see this loop as the running one.
        self._host.invoke(self._buffer.append, data)

    def writelines(self, list_of_data: Any) -> None:
        """Write every item of *list_of_data*, as one write."""
        items = list(list_of_data)
        for item in items:
            check_bytes_like(item)
        if items:
            self.write(b"".join(items))

    def _start_writing(self) -> None:
        """Drain the buffer as the pipe becomes writable: through the reactor's
        writer side where the loop has one (no task, and no registration per
        wait), else in a task."""
        self._writing = True
        if self._readers is None:
            self._host.spawn(self._write_loop)
        else:
            self._readers.add_writer(self._fd, self._on_writable)

    def _stop_writing(self) -> None:
        if not self._writing:
            return
        self._writing = False
        if self._readers is not None:
            self._readers.remove_writer(self._fd)
        elif self._write_scope is not None:
            self._write_scope.cancel()

    def _write_some(self) -> bool:
        """Write what the pipe takes of the buffer now; False when it failed
        (and the transport is being closed with the error)."""
        buffer = self._buffer
        try:
            sent = os.write(self._fd, buffer.peek())
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as exc:
            buffer.clear()
            self._stop_writing()
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return False
        # May resume the protocol, which may write more.
        self._host.invoke(buffer.consume, sent)
        return True

    def _drained(self) -> None:
        self._stop_writing()
        if self._life is Life.CLOSING:
            self._call_connection_lost()

    def _on_writable(self) -> None:
        if self._write_some() and not self._buffer and self._writing:
            self._drained()

    async def _write_loop(self) -> None:
        buffer = self._buffer
        waits = self._waits
        with CancelScope() as self._write_scope:
            try:
                while buffer:
                    await waits.wait_writable(self._fd)
                    if not self._write_some():
                        return
            except waits.closed_errors:
                return
            finally:
                self._write_scope = None
        if self._writing:
            self._drained()

    def can_write_eof(self) -> bool:
        """True: a pipe can be closed for writing."""
        return True

    def write_eof(self) -> None:
        """Close the pipe once the buffered bytes are written."""
        self.close()

    # -- closing ---------------------------------------------------------------

    def _close_io(self) -> None:
        if not self._writing:
            self._host.run_soon(self._call_connection_lost)

    def _abort_io(self) -> None:
        self._buffer.clear()
        self._stop_writing()
        self._update_registration()

    def _release(self) -> None:
        self._stop_writing()
        self._buffer.clear()
        self._buffer.close()
        super()._release()
