"""Helpers shared by the test modules: stream pairs by kind, bounded reads and
waits, recording protocols and exception handlers, loopback sockets, the
subprocess runner of the examples, and small builders for the write buffer and
compatibility-suite tests."""

from __future__ import annotations

import array
import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import ByteStream

import protoport
from _streams import memory_stream_pair, socket_stream_pair
from protoport import WriteBuffer
from protoport._core._flag import Flag as Flag
from protoport.compat import Env, Scenario, sections

# -- stream pairs -------------------------------------------------------------------

# The kinds of byte stream a transport runs over (see the ``kind`` fixture).
KINDS = ["memory", "unix", "tcp"]
SOCKET_KINDS = ["unix", "tcp"]


async def open_pair(
    kind: str, capacity: int = 1 << 30
) -> tuple[ByteStream, ByteStream]:
    """``(local, peer)`` of the given kind: the transport gets *local*, the test
    drives *peer*. *capacity* bounds the unread bytes of a memory pair (ignored
    for sockets)."""
    if kind == "memory":
        return memory_stream_pair(capacity)
    family = {"unix": socket.AF_UNIX, "tcp": socket.AF_INET}[kind]
    return await socket_stream_pair(family)


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(
    not HAS_IPV6, reason="this machine has no IPv6 loopback address"
)
# The IP families, for a parametrize: IPv6 skipped where it is missing.
IP_FAMILIES = [socket.AF_INET, pytest.param(socket.AF_INET6, marks=needs_ipv6)]


# -- reading and waiting, bounded by a timeout -----------------------------------------


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    """Read until at least *n* bytes have come. Each ``receive()`` takes what is
    there, so bytes beyond the *n* that have already arrived are returned too and
    make the caller's comparison fail."""
    return await _read_at_least(stream, n, stop_at_n=False)


async def receive_exactly(stream: ByteStream, n: int) -> bytes:
    """Read *n* bytes and not one more: what follows stays in *stream*."""
    return await _read_at_least(stream, n, stop_at_n=True)


async def _read_at_least(stream: ByteStream, n: int, *, stop_at_n: bool) -> bytes:
    buf = bytearray()
    with anyio.fail_after(5):
        while len(buf) < n:
            max_bytes = min(65536, n - len(buf)) if stop_at_n else 65536
            buf += await stream.receive(max_bytes)
    return bytes(buf)


async def read_to_eof(stream: ByteStream) -> bytes:
    """Everything until the peer's EOF (a reset is an error)."""
    return await _read_to_end(stream, (anyio.EndOfStream,))


async def read_until_closed(stream: ByteStream) -> bytes:
    """Everything until the stream ends, by EOF or by a reset."""
    return await _read_to_end(stream, (anyio.EndOfStream, anyio.BrokenResourceError))


async def _read_to_end(stream: ByteStream, ends: tuple[type[Exception], ...]) -> bytes:
    buf = bytearray()
    with anyio.fail_after(5):
        while True:
            try:
                buf += await stream.receive()
            except ends:
                return bytes(buf)


async def wait_until(predicate: Callable[[], object], timeout: float = 5) -> None:
    """Poll *predicate* until it holds; fail after *timeout* seconds."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.001)


async def settle() -> None:
    """Run until nothing moves any more, so that a callback that has not happened
    by then is held back. The short sleep first lets asyncio poll its sockets:
    its variant of wait_all_tasks_blocked() does not see pending readiness."""
    await anyio.sleep(0.02)
    await anyio.wait_all_tasks_blocked()


async def run_soon_callbacks(loop: protoport.Loop) -> None:
    """Return once every callback scheduled before the call has run.

    Callbacks run in FIFO order, so a future completed by a callback scheduled
    last is done only after the earlier ones ran.
    """
    marker = loop.create_future()
    loop.call_soon(marker.set_result, None)
    with anyio.fail_after(5):
        await marker


# -- traces, errors and messages -----------------------------------------------------


def squash(trace: list[Any]) -> list[Any]:
    """Join adjacent ``("data", bytes)`` entries: how bytes are split into
    ``data_received()`` calls is not part of the contract."""
    out: list[Any] = []
    for entry in trace:
        if (
            isinstance(entry, tuple)
            and entry[0] == "data"
            and out
            and isinstance(out[-1], tuple)
            and out[-1][0] == "data"
        ):
            out[-1] = ("data", out[-1][1] + entry[1])
        else:
            out.append(entry)
    return out


def collect_errors(loop: Any) -> list[dict[str, Any]]:
    """Make *loop*'s exception handler append each context to the list returned."""
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: contexts.append(context))
    return contexts


def exactly(message: str) -> str:
    """A ``match=`` pattern for exactly *message*."""
    return f"^{re.escape(message)}$"


# -- writelines(), as asyncio's socket transports have it since Python 3.12 ------------


def _not_bytes_like(type_name: str) -> tuple[type[Exception], str]:
    return TypeError, f"memoryview: a bytes-like object is required, not {type_name!r}"


# (what is passed, a factory of it for one-shot iterators), then what asyncio
# 3.13 does: the bytes written, or the exception type and message.
_Outcome = bytes | tuple[type[Exception], str]
WRITELINES_CASES: list[tuple[Callable[[], Any], _Outcome]] = [
    (lambda: None, b""),
    (list, b""),
    (lambda: [b""], b""),
    (lambda: [b"one,", bytearray(b"two,"), memoryview(b"three,")], b"one,two,three,"),
    (lambda: (f"{n};".encode() for n in range(3)), b"0;1;2;"),
    (lambda: [array.array("B", b"array,")], b"array,"),
    (lambda: [None], _not_bytes_like("NoneType")),
    (lambda: [b"good", 1], _not_bytes_like("int")),
    (lambda: [b"good", "text"], _not_bytes_like("str")),
    (lambda: b"bytes", _not_bytes_like("int")),
    (lambda: (x for x in [b"good", 2]), _not_bytes_like("int")),
    (lambda: 5, (TypeError, "'int' object is not iterable")),
]


def check_writelines(writelines: Callable[[Any], object]) -> bytes:
    """Call *writelines* with each of ``WRITELINES_CASES``, checking that it
    raises what asyncio raises; return the bytes it must have written (nothing
    from a call that raised)."""
    written = b""
    for make, outcome in WRITELINES_CASES:
        argument = make()
        if isinstance(outcome, bytes):
            writelines(argument)
            written += outcome
        else:
            error, message = outcome
            with pytest.raises(error, match=exactly(message)):
                writelines(argument)
    return written


# -- recording protocols -------------------------------------------------------------


class Recorder(asyncio.Protocol):
    """Records every callback in ``trace``, each ``data_received()`` call as an
    entry of its own; ``eof_received()`` returns ``keep_open``; ``lost`` is set
    by ``connection_lost()``."""

    keep_open: Any = None

    def __init__(self) -> None:
        self.trace: list[Any] = []
        self.transport: Any = None
        self.lost = Flag()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.trace.append("made")

    def data_received(self, data: bytes) -> None:
        self.trace.append(("data", data))

    def eof_received(self) -> Any:
        self.trace.append("eof")
        return self.keep_open

    def connection_lost(self, exc: BaseException | None) -> None:
        self.trace.append(("lost", exc))
        self.lost.set()

    def received(self) -> bytes:
        return b"".join(
            e[1] for e in self.trace if isinstance(e, tuple) and e[0] == "data"
        )

    async def wait_lost(self) -> None:
        with anyio.fail_after(5):
            await self.lost.wait()


class JoiningRecorder(Recorder):
    """A :class:`Recorder` for sockets: consecutive data is joined into one entry
    (how the bytes are split into calls is not specified), ``pause_writing()``
    and ``resume_writing()`` are recorded too, and with *echo* the data is
    written back."""

    def __init__(self, *, keep_open: bool = False, echo: bool = False) -> None:
        super().__init__()
        self.keep_open = keep_open
        self.echo = echo

    def data_received(self, data: bytes) -> None:
        last = self.trace[-1] if self.trace else None
        if isinstance(last, tuple) and last[0] == "data":
            self.trace[-1] = ("data", last[1] + data)
        else:
            self.trace.append(("data", data))
        if self.echo:
            self.transport.write(data)

    def pause_writing(self) -> None:
        self.trace.append("pause")

    def resume_writing(self) -> None:
        self.trace.append("resume")


class Factory:
    """A protocol factory that keeps every protocol it made, in ``made``."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make
        self.made: list[Any] = []

    def __call__(self) -> Any:
        protocol = self.make()
        self.made.append(protocol)
        return protocol

    def lost_count(self) -> int:
        return sum(1 for p in self.made if p.lost.is_set())


class RecordingProtocol(asyncio.Protocol):
    """For a bare write buffer: records pause/resume calls, and what the buffer
    reported as its size and paused flag during each; optionally raises from
    them."""

    def __init__(
        self,
        pause_exc: BaseException | None = None,
        resume_exc: BaseException | None = None,
    ) -> None:
        self.events: list[str] = []
        self.pause_exc = pause_exc
        self.resume_exc = resume_exc
        self.seen: list[tuple[str, int, bool]] = []
        self.buffer: WriteBuffer | None = None

    def pause_writing(self) -> None:
        self._called("pause", self.pause_exc)

    def resume_writing(self) -> None:
        self._called("resume", self.resume_exc)

    def _called(self, event: str, exc: BaseException | None) -> None:
        self.events.append(event)
        if self.buffer is not None:
            self.seen.append((event, self.buffer.size, self.buffer.paused))
        if exc is not None:
            raise exc


# -- loopback sockets ----------------------------------------------------------------


def listener(host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket on *host* with a free port; accept() times out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(8)
    sock.settimeout(5)
    return sock


def port_of(where: Any, index: int = 0) -> int:
    """The port of a socket, or of a server's *index*-th listening socket."""
    sock = where.sockets[index] if hasattr(where, "sockets") else where
    return int(sock.getsockname()[1])


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


# -- the examples, run as scripts ----------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BACKENDS = ["trio", "asyncio"]


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the example *name* to its end and return how it went."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def run_example(name: str, *args: str) -> str:
    """Run the example *name*, which must succeed printing nothing to stderr, and
    return its stdout."""
    result = run_script(name, *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def start_example(name: str, *args: str) -> subprocess.Popen[str]:
    """Start the example *name* (a server) with its output on pipes; end it with
    :func:`stop_example`."""
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_example(process: subprocess.Popen[str]) -> str:
    """Terminate *process* and return what it printed to stderr."""
    process.terminate()
    _, errors = process.communicate(timeout=10)
    return errors


def wait_for_line(process: subprocess.Popen[str], prefix: str) -> str:
    """The next line of *process*'s stdout that starts with *prefix*."""
    assert process.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no line starting with {prefix!r}")


# -- the compatibility suite ---------------------------------------------------------


def make_scenario(
    func: Callable[[Env], Awaitable[None]],
    *,
    section: str = sections.BASE_TRANSPORT,
    requires: frozenset[str] = frozenset(),
    since: tuple[int, int] | None = None,
) -> Scenario:
    """A scenario for *func* alone, outside the registry."""
    return Scenario(
        id=f"test.{func.__name__}",
        section=section,
        behaviour="a test",
        func=func,
        requires=requires,
        reference_deviation=None,
        order=0,
        since=since,
    )
