"""The recording protocols: protocols that note every callback the transport
makes, for scenarios to compare whole traces."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._timing import WAIT_TIMEOUT

if TYPE_CHECKING:
    from ._env import Env

Event = tuple[Any, ...]


class _Recorder:
    """The recording shared by :class:`RecordingProtocol` and
    :class:`RecordingBufferedProtocol`."""

    def __init__(self, env: Env, name: str, eof_result: bool | None) -> None:
        self.env = env
        self.name = name
        #: every callback in order: ``("connection_made",)``,
        #: ``("data_received", bytes)``, ``("get_buffer", sizehint)``,
        #: ``("buffer_updated", n)``, ``("eof_received",)``,
        #: ``("pause_writing", size)``, ``("resume_writing", size)``,
        #: ``("connection_lost", exc)``
        self.events: list[Event] = []
        #: what ``eof_received()`` returns
        self.eof_result = eof_result
        self.transport: Any = None
        #: the bytes received, in order
        self.data = bytearray()
        self.lost_exc: BaseException | None = None

    def record(self, *event: Any) -> None:
        self.events.append(event)
        self.env._record_event(self.name, event)

    # the callbacks every protocol shares

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        # Closed after the scenario if still open (e.g. a server's connection).
        tracked = getattr(self.env, "_transports", None)
        if tracked is not None and transport is not None:
            tracked.append(transport)
        self.record("connection_made")

    def eof_received(self) -> bool | None:
        self.record("eof_received")
        return self.eof_result

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_exc = exc
        self.record("connection_lost", exc)

    def pause_writing(self) -> None:
        self.record("pause_writing", self._buffer_size())

    def resume_writing(self) -> None:
        self.record("resume_writing", self._buffer_size())

    def _buffer_size(self) -> int | None:
        try:
            return int(self.transport.get_write_buffer_size())
        except Exception:
            return None

    # views of the record

    def names(self) -> list[str]:
        """The callback names, in order."""
        return [str(event[0]) for event in self.events]

    def summary(self) -> list[Any]:
        """The callbacks, compacted so that implementations can be compared:
        ``"made"``, ``("data", bytes)`` (consecutive deliveries merged, buffered
        ones included), ``"eof"``, ``"pause"``, ``"resume"``,
        ``("lost", None | "ExceptionType")``."""
        out: list[Any] = []
        pending = bytearray()
        for event in self.events:
            kind = event[0]
            if kind == "data_received":
                pending += event[1]
                continue
            if kind == "buffer_updated":
                pending += event[2]
                continue
            if kind == "get_buffer":
                continue
            if pending:
                out.append(("data", bytes(pending)))
                pending = bytearray()
            if kind == "connection_made":
                out.append("made")
            elif kind == "eof_received":
                out.append("eof")
            elif kind == "pause_writing":
                out.append("pause")
            elif kind == "resume_writing":
                out.append("resume")
            elif kind == "connection_lost":
                exc = event[1]
                out.append(("lost", None if exc is None else type(exc).__name__))
            else:  # pragma: no cover - subclasses may record their own events
                out.append(event)
        if pending:
            out.append(("data", bytes(pending)))
        return out

    def count(self, name: str) -> int:
        """How many times the callback *name* ran."""
        return sum(1 for event in self.events if event[0] == name)

    @property
    def made(self) -> bool:
        return self.count("connection_made") > 0

    @property
    def lost(self) -> bool:
        return self.count("connection_lost") > 0

    @property
    def eof(self) -> bool:
        return self.count("eof_received") > 0

    async def wait_for_data(self, nbytes: int, timeout: float = WAIT_TIMEOUT) -> bytes:
        """Wait until at least *nbytes* bytes were received; return them all."""
        await self.env.wait_until(
            lambda: len(self.data) >= nbytes,
            lambda: f"{self.name} to receive {nbytes} bytes (got {len(self.data)})",
            timeout,
        )
        return bytes(self.data)

    async def wait_for(self, name: str, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until the callback *name* has run."""
        await self.env.wait_until(
            lambda: self.count(name) > 0, f"{self.name}.{name}()", timeout
        )

    async def wait_lost(self, timeout: float = WAIT_TIMEOUT) -> BaseException | None:
        """Wait for ``connection_lost()``; return its argument."""
        await self.wait_for("connection_lost", timeout)
        return self.lost_exc


class RecordingProtocol(_Recorder, asyncio.Protocol):
    """An :class:`asyncio.Protocol` that records its callbacks.

    Subclass it and call ``super()`` to act inside a callback.
    """

    def __init__(
        self, env: Env, name: str = "protocol", *, eof_result: bool | None = None
    ) -> None:
        _Recorder.__init__(self, env, name, eof_result)

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.record("data_received", data)


class RecordingBufferedProtocol(_Recorder, asyncio.BufferedProtocol):
    """An :class:`asyncio.BufferedProtocol` that records its callbacks; its
    ``get_buffer()`` returns a buffer of *buffer_size* bytes."""

    def __init__(
        self,
        env: Env,
        name: str = "protocol",
        *,
        buffer_size: int = 65536,
        eof_result: bool | None = None,
    ) -> None:
        _Recorder.__init__(self, env, name, eof_result)
        self.buffer_size = buffer_size
        self._buf = bytearray(buffer_size)

    def get_buffer(self, sizehint: int) -> memoryview:
        self.record("get_buffer", sizehint)
        return memoryview(self._buf)

    def buffer_updated(self, nbytes: int) -> None:
        chunk = bytes(self._buf[:nbytes])
        self.data += chunk
        self.record("buffer_updated", nbytes, chunk)


class RecordingDatagramProtocol(_Recorder, asyncio.DatagramProtocol):
    """An :class:`asyncio.DatagramProtocol` that records its callbacks:
    ``("datagram_received", bytes, addr)`` and ``("error_received", exc)``
    besides the shared ones."""

    def __init__(self, env: Env, name: str = "endpoint") -> None:
        _Recorder.__init__(self, env, name, None)
        #: ``(data, addr)`` of each datagram, in order
        self.datagrams: list[tuple[bytes, Any]] = []
        #: what ``error_received()`` got, in order
        self.errors: list[Exception] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append((data, addr))
        self.record("datagram_received", data, addr)

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.record("error_received", exc)

    def payloads(self) -> list[bytes]:
        """The datagrams received, without their addresses."""
        return [data for data, _ in self.datagrams]

    async def wait_for_datagrams(
        self, count: int, timeout: float = WAIT_TIMEOUT
    ) -> list[bytes]:
        """Wait until at least *count* datagrams were received; return them all."""
        await self.env.wait_until(
            lambda: len(self.datagrams) >= count,
            lambda: (
                f"{self.name} to receive {count} datagrams (got {len(self.datagrams)})"
            ),
            timeout,
        )
        return self.payloads()


class RecordingSubprocessProtocol(_Recorder, asyncio.SubprocessProtocol):
    """An :class:`asyncio.SubprocessProtocol` that records its callbacks:
    ``("pipe_data_received", fd, bytes)``, ``("pipe_connection_lost", fd, exc)``
    and ``("process_exited", returncode)`` besides the shared ones; the bytes of
    each pipe are in :attr:`output`."""

    def __init__(self, env: Env, name: str = "protocol") -> None:
        _Recorder.__init__(self, env, name, None)
        #: the bytes received from each of the child's pipes, by fd
        self.output: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        # Closed (which kills the child if it still runs) after the scenario.
        self.env.track_subprocess(transport)
        self.record("connection_made")

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.output.setdefault(fd, bytearray()).extend(data)
        self.record("pipe_data_received", fd, data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.record("pipe_connection_lost", fd, exc)

    def process_exited(self) -> None:
        self.record("process_exited", self.transport.get_returncode())

    def order(self) -> list[Any]:
        """The callbacks without the data: ``"made"``, ``("pipe_lost", fd,
        None | "ExceptionType")``, ``("exited", returncode)``, ``("lost", None |
        "ExceptionType")``."""
        out: list[Any] = []
        for event in self.events:
            kind = event[0]
            if kind == "connection_made":
                out.append("made")
            elif kind == "pipe_connection_lost":
                exc = event[2]
                out.append(
                    ("pipe_lost", event[1], None if exc is None else type(exc).__name__)
                )
            elif kind == "process_exited":
                out.append(("exited", event[1]))
            elif kind == "connection_lost":
                exc = event[1]
                out.append(("lost", None if exc is None else type(exc).__name__))
        return out
