"""What a scenario works with: the environment, the deterministic peer, and the
recording protocols."""

from __future__ import annotations

import array
import asyncio
import fcntl
import logging
import os
import re
import shutil
import socket
import ssl
import struct
import tempfile
import termios
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")
_S = TypeVar("_S", bound=socket.socket)

#: How long a scenario waits for something that should happen (seconds).
WAIT_TIMEOUT = 2.0
#: How long the peer waits for bytes before it reports a failure (seconds).
PEER_TIMEOUT = 2.0
#: How long :meth:`Env.settle` lets the loop run when a scenario checks that
#: something does *not* happen (seconds).
SETTLE_TIME = 0.03
#: The polling step of :meth:`Env.wait_until` (seconds).
POLL_STEP = 0.005
#: The send buffer given to a local socket whose kernel buffer is filled.
SMALL_SNDBUF = 4096

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int = 200) -> str:
    """*text* on one line, without memory addresses, at most *limit* characters."""
    text = _SPACES.sub(" ", _ADDRESS.sub("0x…", text)).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def describe(exc: BaseException | None) -> str:
    """``"TypeName: message"`` (or just the type name) for *exc*; ``"None"``."""
    if exc is None:
        return "None"
    message = str(exc)
    name = type(exc).__name__
    return one_line(f"{name}: {message}" if message else name)


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)``, shortened in the middle when long."""
    text = one_line(repr(value), limit=10_000)
    if len(text) > limit:
        keep = (limit - 1) // 2
        text = text[:keep] + "…" + text[-keep:]
    return text


class ScenarioFailure(Exception):
    """The behaviour checked by a scenario did not happen; the message is the
    one-line reason shown in the matrix."""

    def __init__(self, reason: str) -> None:
        super().__init__(one_line(reason))

    @property
    def reason(self) -> str:
        return str(self.args[0])


class Unsupported(Exception):
    """The implementation does not offer what the scenario needs: the row shows
    "—" with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(one_line(reason))

    @property
    def reason(self) -> str:
        return str(self.args[0])


def fail(reason: str) -> NoReturn:
    """Fail the scenario with a one-line *reason*."""
    raise ScenarioFailure(reason)


# -- recording protocols ----------------------------------------------------------

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


# -- the peer -------------------------------------------------------------------


class Peer:
    """The other end of a connection: a blocking socket driven step by step.

    Every method runs its socket calls in a worker thread through
    ``loop.run_in_executor()``, with a timeout, so a byte that never comes fails
    the scenario after :data:`PEER_TIMEOUT` seconds instead of hanging it. Bytes
    that the environment wrote to fill the kernel buffers are skipped: the methods
    return and record only what the transport sent.
    """

    def __init__(self, env: Env, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(PEER_TIMEOUT)
        self.env = env
        self.sock = sock
        #: every byte the transport sent that the peer has received
        self.received = bytearray()
        #: True once the peer read the end of the stream
        self.eof = False
        #: True once a receive failed with ECONNRESET
        self.reset = False
        self._raw = 0
        self._fillers: list[tuple[int, int]] = []

    def _add_filler(self, offset: int, length: int) -> None:
        self._fillers.append((offset, length))

    def _payload(self, chunk: bytes) -> bytes:
        start = self._raw
        self._raw += len(chunk)
        if not self._fillers:
            return chunk
        keep = bytearray()
        position = start
        view = memoryview(chunk)
        while view:
            skip = 0
            for offset, length in self._fillers:
                if offset <= position < offset + length:
                    skip = min(len(view), offset + length - position)
                    break
            if skip:
                view = view[skip:]
                position += skip
                continue
            take = len(view)
            for offset, _ in self._fillers:
                if position < offset < position + take:
                    take = offset - position
            keep += view[:take]
            view = view[take:]
            position += take
        return bytes(keep)

    def _raw_budget(self, payload: int) -> int:
        """How many raw bytes, from the current position, hold the next *payload*
        payload bytes (the filler among them included)."""
        position = self._raw
        left = payload
        while left > 0:
            filler_end = next(
                (
                    offset + length
                    for offset, length in self._fillers
                    if offset <= position < offset + length
                ),
                None,
            )
            if filler_end is not None:
                position = filler_end
                continue
            next_filler = min(
                (offset for offset, _ in self._fillers if offset > position),
                default=None,
            )
            step = left if next_filler is None else min(left, next_filler - position)
            position += step
            left -= step
        return position - self._raw

    def _recv_some(self, timeout: float, limit: int = 65536) -> bytes | None:
        """One receive (thread side) of at most *limit* payload bytes: the payload
        bytes (possibly empty when only filler came, or at EOF: see :attr:`eof`),
        or None on timeout."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(max(1, min(65536, self._raw_budget(limit))))
        except TimeoutError:
            return None
        except ConnectionResetError:
            self.reset = True
            self.eof = True
            return b""
        finally:
            self.sock.settimeout(PEER_TIMEOUT)
        if not chunk:
            self.eof = True
            return b""
        payload = self._payload(chunk)
        self.received += payload
        return payload

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread."""
        return await self.env.loop.run_in_executor(None, fn, *args)

    async def send(self, data: bytes) -> None:
        """Send all of *data*."""
        self.env.mark(f"peer sends {len(data)} bytes")
        await self.run(self.sock.sendall, data)

    async def recv_exactly(self, nbytes: int) -> bytes:
        """Receive exactly *nbytes* payload bytes; fail at EOF or on timeout."""

        def work() -> bytes:
            got = bytearray()
            while len(got) < nbytes:
                if self.eof:
                    how = "reset" if self.reset else "closed"
                    fail(f"peer: connection {how} after {len(got)} of {nbytes} bytes")
                payload = self._recv_some(PEER_TIMEOUT, nbytes - len(got))
                if payload is None:
                    fail(f"peer: timed out after {len(got)} of {nbytes} bytes")
                got += payload
            return bytes(got)

        data = await self.run(work)
        self.env.mark(f"peer received {len(data)} bytes")
        return data

    async def recv_until_eof(self, timeout: float = PEER_TIMEOUT) -> bytes:
        """Receive payload bytes until the end of the stream (or a reset: see
        :attr:`reset`); fail if nothing comes for *timeout* seconds."""

        def work() -> bytes:
            got = bytearray()
            while not self.eof:
                payload = self._recv_some(timeout)
                if payload is None:
                    fail(
                        f"peer: no end of stream after {len(got)} bytes "
                        f"within {timeout:g} s"
                    )
                got += payload
            return bytes(got)

        data = await self.run(work)
        self.env.mark(
            f"peer received {len(data)} bytes, then "
            + ("a reset" if self.reset else "the end of the stream")
        )
        return data

    async def recv_for(self, duration: float = SETTLE_TIME) -> bytes:
        """Receive whatever comes within *duration* seconds (payload bytes; may
        be empty); stops early at the end of the stream."""

        def work() -> bytes:
            got = bytearray()
            deadline = time.monotonic() + duration
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                payload = self._recv_some(left)
                if payload is None:
                    break
                got += payload
            return bytes(got)

        return await self.run(work)

    def pending(self) -> int:
        """Bytes waiting in the peer's receive queue (not yet received)."""
        buf = array.array("i", [0])
        fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, buf)
        return int(buf[0])

    async def shutdown_write(self) -> None:
        """Half-close: send the end of the stream, keep receiving."""
        self.env.mark("peer shuts down writing")
        await self.run(self.sock.shutdown, socket.SHUT_WR)

    async def close(self) -> None:
        """Close the peer socket."""
        self.env.mark("peer closes")
        self.sock.close()

    async def reset_connection(self) -> None:
        """Close with ``SO_LINGER`` 0: a TCP reset (TCP connections only)."""
        if self.sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise Unsupported("a reset needs a TCP connection")
        self.env.mark("peer resets the connection")
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.sock.close()

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Connection:
    """A transport and protocol made by the loop under test, with the peer at the
    other end. Returned by :meth:`Env.connect`."""

    def __init__(
        self, env: Env, transport: Any, protocol: Any, peer: Peer, fd: int
    ) -> None:
        self.env = env
        self.transport = transport
        self.protocol = protocol
        self.peer = peer
        self._fd = fd
        #: the bytes accepted by :meth:`write` (the scenario's own count)
        self.filled = 0

    def fill_kernel_buffer(self) -> int:
        """Fill the kernel's send buffer of the transport's socket, so that the
        transport's next writes stay in its own buffer until the peer reads.

        The filler bytes never show up in what the peer receives. Only for Unix
        sockets, and only while the transport's buffer is empty (else the filler
        would land between buffered bytes). Returns the number of filler bytes.
        """
        transport = self.transport
        if transport.is_closing():
            fail("fill_kernel_buffer() needs an open transport")
        if transport.get_write_buffer_size():
            fail("fill_kernel_buffer() needs an empty write buffer")
        if self.peer.sock.family != socket.AF_UNIX:
            raise Unsupported("refilling the kernel buffer needs a Unix socket")
        offset = self.peer._raw + self.peer.pending()
        count = _fill(self._fd)
        self.peer._add_filler(offset, count)
        self.filled += count
        return count


class StreamConnection(Connection):
    """A ``(reader, writer)`` pair made by the implementation's
    ``open_connection()``, with the peer at the other end. Returned by
    :meth:`Env.open_stream`; :attr:`transport` is ``writer.transport``."""

    def __init__(self, env: Env, reader: Any, writer: Any, peer: Peer, fd: int) -> None:
        super().__init__(
            env, writer.transport, getattr(writer, "_protocol", None), peer, fd
        )
        self.reader = reader
        self.writer = writer


class TLSMaterial:
    """A test CA and a server certificate (``localhost``, ``127.0.0.1``,
    ``::1``), from :meth:`Env.tls`. Each method returns a new context."""

    def __init__(self, ca: Any, cert: Any) -> None:
        self._ca = ca
        self._cert = cert

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting the certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (and checks host names)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self._ca.configure_trust(context)
        return context

    def untrusting_client_context(self) -> ssl.SSLContext:
        """A client context that verifies certificates but does not trust the
        test CA: the handshake fails with ``ssl.SSLCertVerificationError``."""
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


_TLS_MATERIAL: TLSMaterial | None = None


def _tls_material() -> TLSMaterial:
    """The process's :class:`TLSMaterial`, made on first use (key generation
    takes a while: once per worker process)."""
    global _TLS_MATERIAL
    if _TLS_MATERIAL is None:
        try:
            import trustme
        except ImportError:
            raise Unsupported("TLS scenarios need trustme") from None
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
        _TLS_MATERIAL = TLSMaterial(ca, cert)
    return _TLS_MATERIAL


def _fill(fd: int) -> int:
    """Write to the non-blocking socket *fd* until it takes no single byte more."""
    total = 0
    size = 65536
    os.set_blocking(fd, False)
    while size:
        try:
            total += os.write(fd, b"\xee" * size)
        except (BlockingIOError, InterruptedError):
            size //= 2
    return total


# -- the environment --------------------------------------------------------------


class _LogCapture(logging.Handler):
    def __init__(self, env: Env) -> None:
        super().__init__(logging.DEBUG)
        self.env = env

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - a broken log call
            message = str(record.msg)
        self.env.logs.append((record.name, record.levelno, message))
        if record.levelno >= logging.WARNING:
            first = message.splitlines()[0] if message else ""
            self.env.trace.append(f"log {record.levelname}: {one_line(first, 100)}")


#: The loggers whose records :attr:`Env.logs` collects.
CAPTURED_LOGGERS = ("asyncio", "protoport", "trio_asyncio", "uvloop")


class Env:
    """What a scenario gets: the loop under test, a way to connect a deterministic
    peer, a trace, and helpers to check and to wait.

    :attr:`loop` is the loop object of the implementation: asyncio's running loop
    for native asyncio, uvloop and trio-asyncio, the facade of
    ``protoport.open_loop()`` for protoport. The scenario runs as a task of that
    loop, so ``await future``, ``asyncio.sleep()``, ``asyncio.gather()`` and
    ``loop.run_in_executor()`` work; use ``loop.call_later()`` and futures, not
    ``asyncio.wait_for()`` or ``asyncio.timeout()``, which the Trio facade's tasks
    do not support.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        implementation: str = "",
        features: Iterable[str] = (),
        *,
        streams: Any = asyncio,
    ) -> None:
        self.loop = loop
        #: the implementation's stream functions and classes: ``open_connection``,
        #: ``start_server``, ``open_unix_connection``, ``start_unix_server``,
        #: ``StreamReader``, ``StreamWriter``, ``StreamReaderProtocol`` (the
        #: :mod:`asyncio` module for asyncio's loops, :mod:`protoport` for
        #: protoport); stream scenarios use these, never asyncio's directly
        self.streams = streams
        #: the implementation's name, for messages only: scenarios are the same
        #: code for every implementation
        self.implementation = implementation
        self.features = frozenset(features)
        #: what happened, in order, as one-line strings (shown for failures)
        self.trace: list[str] = []
        #: the contexts the loop's exception handler received
        self.errors: list[dict[str, Any]] = []
        #: ``(logger, level, message)`` of the records of :data:`CAPTURED_LOGGERS`
        self.logs: list[tuple[str, int, str]] = []
        self.connections: list[Connection] = []
        self._sockets: list[socket.socket] = []
        self._peers: list[Peer] = []
        self._transports: list[Any] = []
        self._servers: list[Any] = []
        self._tempdir: str | None = None
        self._timed_out = False
        self._log_capture = _LogCapture(self)
        for name in CAPTURED_LOGGERS:
            logging.getLogger(name).addHandler(self._log_capture)
        loop.set_exception_handler(self._exception_handler)

    # -- recording -------------------------------------------------------------

    def mark(self, text: str) -> None:
        """Add a line to the trace (e.g. what the scenario does next)."""
        self.trace.append(one_line(text, 120))

    def _record_event(self, name: str, event: Event) -> None:
        kind = event[0]
        args: list[str] = []
        for arg in event[1:]:
            if isinstance(arg, (bytes, bytearray)):
                args.append(f"{len(arg)} bytes")
            elif isinstance(arg, BaseException):
                args.append(describe(arg))
            else:
                args.append(short_repr(arg, 40))
        self.trace.append(f"{name}.{kind}({', '.join(args)})")

    def _exception_handler(
        self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]
    ) -> None:
        self.errors.append(context)
        exc = context.get("exception")
        suffix = f" [{describe(exc)}]" if isinstance(exc, BaseException) else ""
        self.trace.append(
            f"exception handler: {one_line(str(context.get('message')), 80)}{suffix}"
        )

    def error_messages(self) -> list[str]:
        """The ``'message'`` of each exception-handler call, in order."""
        return [str(context.get("message")) for context in self.errors]

    def warnings(self) -> list[str]:
        """The messages logged at WARNING level or above, in order."""
        return [message for _, level, message in self.logs if level >= logging.WARNING]

    # -- checks ----------------------------------------------------------------

    def fail(self, reason: str) -> NoReturn:
        """Fail the scenario with a one-line *reason*."""
        raise ScenarioFailure(reason)

    def expect(self, condition: object, reason: str) -> None:
        """Fail with *reason* unless *condition* is true."""
        if not condition:
            self.fail(reason)

    def expect_equal(self, what: str, actual: object, expected: object) -> None:
        """Fail with ``"<what>: expected <expected>, got <actual>"`` unless equal."""
        if actual != expected:
            self.fail(
                f"{what}: expected {short_repr(expected, 70)}, "
                f"got {short_repr(actual, 70)}"
            )

    def expect_raises(
        self,
        exc_type: type[BaseException],
        message: str | None,
        fn: Callable[..., object],
        *args: Any,
        **kwargs: Any,
    ) -> BaseException:
        """Call ``fn(*args, **kwargs)``; fail unless it raises *exc_type* with
        exactly *message* (when not None). Returns the exception."""
        label = getattr(fn, "__name__", "call")
        try:
            fn(*args, **kwargs)
        except exc_type as exc:
            if message is not None and str(exc) != message:
                self.fail(
                    f"{label}() raised {exc_type.__name__}({str(exc)!r}), "
                    f"expected message {message!r}"
                )
            return exc
        except Exception as exc:
            self.fail(
                f"{label}() raised {describe(exc)}, expected {exc_type.__name__}"
                + (f"({message!r})" if message is not None else "")
            )
        raise ScenarioFailure(f"{label}() did not raise {exc_type.__name__}")

    async def expect_raises_async(
        self,
        exc_type: type[BaseException],
        message: str | None,
        awaitable: Awaitable[object],
        what: str | None = None,
    ) -> BaseException:
        """Await *awaitable*; fail unless it raises *exc_type* with exactly
        *message* (when not None). Returns the exception. *what* names the call
        in the reason (default: the coroutine's name)."""
        label = what or f"{getattr(awaitable, '__name__', 'call')}()"
        try:
            result = await awaitable
        except exc_type as exc:
            if message is not None and str(exc) != message:
                self.fail(
                    f"{label} raised {exc_type.__name__}({str(exc)!r}), "
                    f"expected message {message!r}"
                )
            return exc
        except Exception as exc:
            self.fail(
                f"{label} raised {describe(exc)}, expected {exc_type.__name__}"
                + (f"({message!r})" if message is not None else "")
            )
        raise ScenarioFailure(
            f"{label} returned {short_repr(result)}, did not raise {exc_type.__name__}"
        )

    async def wait_done(
        self, task: asyncio.Future[T], what: str, timeout: float = WAIT_TIMEOUT
    ) -> T:
        """Wait until *task* (a task or future of the loop) is done; return its
        result (or raise its exception); fail with ``"timed out waiting for
        <what>"`` after *timeout* seconds."""
        await self.wait_until(task.done, what, timeout)
        return task.result()

    # -- waiting ---------------------------------------------------------------

    async def wait_until(
        self,
        predicate: Callable[[], object],
        what: str | Callable[[], str],
        timeout: float = WAIT_TIMEOUT,
    ) -> None:
        """Poll *predicate* every few milliseconds; fail with
        ``"timed out waiting for <what>"`` after *timeout* seconds."""
        loop = self.loop
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                text = what() if callable(what) else what
                self.fail(f"timed out waiting for {text}")
            await asyncio.sleep(POLL_STEP)

    async def settle(self, duration: float = SETTLE_TIME) -> None:
        """Let the loop run for *duration* seconds: for checking that something
        does *not* happen. Prefer :meth:`wait_until` for what must happen."""
        await asyncio.sleep(duration)
        for _ in range(3):
            await asyncio.sleep(0)

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread of the loop."""
        return await self.loop.run_in_executor(None, fn, *args)

    # -- connections -----------------------------------------------------------

    def require(self, *features: str) -> None:
        """Raise :class:`Unsupported` unless the implementation has *features*."""
        missing = sorted(set(features) - self.features)
        if missing:
            raise Unsupported(f"needs {', '.join(missing)}")

    def protocol(self, name: str = "protocol", **kwargs: Any) -> RecordingProtocol:
        """A new :class:`RecordingProtocol` (for use as a protocol factory's
        result)."""
        return RecordingProtocol(self, name, **kwargs)

    async def connect(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol] | None = None,
        *,
        family: str = "unix",
        via: str | None = None,
        fill: bool = False,
        peer_sends: bytes = b"",
    ) -> Connection:
        """Connect a transport of the loop under test to a new :class:`Peer`.

        :param protocol_factory: defaults to a :class:`RecordingProtocol`
        :param family: ``"unix"`` (a socket pair) or ``"tcp"`` (loopback IPv4)
        :param via: the loop method: ``"sock"`` — ``create_connection(sock=)``
            (the default for Unix sockets and when *fill* or *peer_sends* is
            given), ``"address"`` — ``create_connection(host, port)`` (the
            default for TCP), ``"accepted"`` — ``connect_accepted_socket()``,
            ``"unix"`` — ``create_unix_connection(sock=)``
        :param fill: fill the kernel's send buffer first, so that whatever the
            transport writes stays in its own buffer until the peer reads
            (deterministic flow control)
        :param peer_sends: bytes the peer sends before the transport exists
        """
        self.require(family)
        if protocol_factory is None:

            def protocol_factory() -> asyncio.BaseProtocol:
                return self.protocol()

        if via is None:
            via = "sock" if family == "unix" or fill or peer_sends else "address"
        if via not in ("sock", "address", "accepted", "unix"):
            raise ValueError(f"unknown via={via!r}")
        if via == "address" and (fill or peer_sends):
            raise ValueError("fill and peer_sends need via='sock' or 'accepted'")
        if via == "unix" and family != "unix":
            raise ValueError("via='unix' needs family='unix'")

        loop = self.loop
        local: socket.socket | None = None
        filled = 0
        if via == "address":
            listener = self._tcp_listener()
            host, port = listener.getsockname()[:2]
        else:
            local, remote, filled = self._socket_pair(family, fill, peer_sends)

        self.mark(f"connect ({family}, via {via}{', filled' if fill else ''})")
        if via == "sock":
            transport, protocol = await loop.create_connection(
                protocol_factory, sock=local
            )
        elif via == "accepted":
            assert local is not None
            transport, protocol = await loop.connect_accepted_socket(
                protocol_factory, local
            )
        elif via == "unix":
            transport, protocol = await loop.create_unix_connection(
                protocol_factory, sock=local
            )
        else:
            transport, protocol = await loop.create_connection(
                protocol_factory, host, port
            )
            remote = await self._accept(listener)

        peer = Peer(self, remote)
        self._peers.append(peer)
        if filled:
            peer._add_filler(0, filled)
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        connection = Connection(self, transport, protocol, peer, fd)
        connection.filled = filled
        self.connections.append(connection)
        return connection

    def _tcp_listener(self, host: str = "127.0.0.1") -> socket.socket:
        """A listening loopback TCP socket (closed after the scenario)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = self.track(socket.socket(family, socket.SOCK_STREAM))
        listener.bind((host, 0))
        listener.listen(1)
        listener.settimeout(PEER_TIMEOUT)
        return listener

    async def _accept(self, listener: socket.socket) -> socket.socket:
        """Accept one connection on *listener* (in a worker thread), then close
        the listener."""
        remote, _ = await self.to_thread(listener.accept)
        self.track(remote)
        listener.close()
        return remote

    def _socket_pair(
        self, family: str, fill: bool, peer_sends: bytes
    ) -> tuple[socket.socket, socket.socket, int]:
        """``(local, remote, filled)``: two connected sockets, *local* for the
        loop under test (non-blocking), *remote* for the peer; *local*'s kernel
        send buffer filled with *filled* bytes when *fill*, and *peer_sends*
        already sent to it."""
        if family == "unix":
            local, remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sockets += [local, remote]
        elif family == "tcp":
            listener = self._tcp_listener()
            local = self.track(
                socket.create_connection(listener.getsockname(), timeout=PEER_TIMEOUT)
            )
            remote, _ = listener.accept()
            self.track(remote)
            listener.close()
        else:
            raise ValueError(f"unknown family={family!r}")
        filled = 0
        if fill:
            local.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SNDBUF)
            if family == "tcp":
                remote.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_SNDBUF)
            filled = _fill(local.fileno())
        if peer_sends:
            remote.sendall(peer_sends)
        local.setblocking(False)
        return local, remote, filled

    # -- streams ---------------------------------------------------------------

    async def open_stream(
        self,
        *,
        family: str = "unix",
        via: str | None = None,
        limit: int | None = None,
        fill: bool = False,
        peer_sends: bytes = b"",
    ) -> StreamConnection:
        """Open a ``(reader, writer)`` pair with the implementation's
        ``open_connection()`` (:attr:`streams`), connected to a new :class:`Peer`.

        :param family: ``"unix"`` (a socket pair) or ``"tcp"`` (loopback IPv4)
        :param via: ``"sock"`` — ``open_connection(sock=)`` (the default for Unix
            sockets and when *fill* or *peer_sends* is given), ``"address"`` —
            ``open_connection(host, port)`` (the default for TCP)
        :param limit: the reader's limit (``open_connection``'s default if None)
        :param fill: fill the kernel's send buffer first (see :meth:`connect`)
        :param peer_sends: bytes the peer sends before the connection is opened
        """
        self.require("streams", family)
        if via is None:
            via = "sock" if family == "unix" or fill or peer_sends else "address"
        if via not in ("sock", "address"):
            raise ValueError(f"unknown via={via!r}")
        if via == "address" and (fill or peer_sends):
            raise ValueError("fill and peer_sends need via='sock'")
        options: dict[str, Any] = {}
        if limit is not None:
            options["limit"] = limit
        self.mark(f"open_connection ({family}, via {via}{', filled' if fill else ''})")
        filled = 0
        if via == "sock":
            local, remote, filled = self._socket_pair(family, fill, peer_sends)
            reader, writer = await self.streams.open_connection(sock=local, **options)
        else:
            listener = self._tcp_listener()
            host, port = listener.getsockname()[:2]
            reader, writer = await self.streams.open_connection(host, port, **options)
            remote = await self._accept(listener)
        peer = Peer(self, remote)
        self._peers.append(peer)
        if filled:
            peer._add_filler(0, filled)
        sock = writer.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        connection = StreamConnection(self, reader, writer, peer, fd)
        connection.filled = filled
        self.connections.append(connection)
        return connection

    def track_transport(self, transport: Any) -> Any:
        """Abort *transport* after the scenario if it is still open (e.g. a
        server's connection); returns it."""
        self._transports.append(transport)
        return transport

    def track_server(self, server: Any) -> Any:
        """Close *server* after the scenario; returns it."""
        self._servers.append(server)
        return server

    # -- TLS -------------------------------------------------------------------

    def tls(self) -> TLSMaterial:
        """Certificates for TLS scenarios: a test CA and a server certificate for
        ``localhost``, ``127.0.0.1`` and ``::1`` (made once per process with
        trustme; :class:`Unsupported` when trustme is missing)."""
        return _tls_material()

    async def connect_tls(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol] | None = None,
        *,
        context: Any = None,
        server_hostname: str | None = "localhost",
    ) -> Connection:
        """Connect a TLS transport of the loop under test
        (``create_connection(ssl=...)`` to a loopback address) to a :class:`Peer`
        whose socket is a blocking ``ssl.SSLSocket`` serving :meth:`tls`'s
        certificate.

        :param context: the client's context; by default one that trusts the
            test CA
        :param server_hostname: the name the client checks the certificate against
        :raises: what ``create_connection()`` raises (e.g. a failed handshake);
            the peer's side of the handshake is then finished and discarded
        """
        self.require("tls", "tcp")
        material = self.tls()
        if protocol_factory is None:

            def protocol_factory() -> asyncio.BaseProtocol:
                return self.protocol()

        if context is None:
            context = material.client_context()
        server_context = material.server_context()
        listener = self._tcp_listener()
        host, port = listener.getsockname()[:2]

        def accept() -> ssl.SSLSocket:
            conn, _ = listener.accept()
            self.track(conn)
            conn.settimeout(PEER_TIMEOUT)
            wrapped = server_context.wrap_socket(conn, server_side=True)
            return self.track(wrapped)

        self.mark("connect (tls)")
        peer_side = self.loop.run_in_executor(None, accept)
        try:
            transport, protocol = await self.loop.create_connection(
                protocol_factory,
                host,
                port,
                ssl=context,
                server_hostname=server_hostname,
            )
        except BaseException:
            try:
                await peer_side
            except Exception:
                pass
            raise
        finally:
            listener.close()
        remote = await peer_side
        peer = Peer(self, remote)
        self._peers.append(peer)
        connection = Connection(self, transport, protocol, peer, -1)
        self.connections.append(connection)
        return connection

    async def connect_peer(self, address: Any, family: int = socket.AF_INET) -> Peer:
        """A peer that connects to *address* (e.g. a server of the loop under
        test)."""
        sock = socket.socket(family, socket.SOCK_STREAM)
        self._sockets.append(sock)
        sock.settimeout(PEER_TIMEOUT)
        await self.to_thread(sock.connect, address)
        return self.peer(sock)

    def peer(self, sock: socket.socket) -> Peer:
        """A :class:`Peer` driving *sock*, a connected socket (closed after the
        scenario)."""
        self.track(sock)
        peer = Peer(self, sock)
        self._peers.append(peer)
        return peer

    def temp_path(self, name: str) -> str:
        """A path in a temporary directory removed after the scenario (e.g. for a
        Unix socket)."""
        if self._tempdir is None:
            self._tempdir = tempfile.mkdtemp(prefix="protoport-compat-")
        return os.path.join(self._tempdir, name)

    def track(self, sock: _S) -> _S:
        """Close *sock* after the scenario."""
        self._sockets.append(sock)
        return sock

    # -- the end ---------------------------------------------------------------

    def _cleanup(self) -> None:
        """Abort what is still open, close the sockets (synchronous: it also runs
        when the scenario was cancelled)."""
        for name in CAPTURED_LOGGERS:
            logging.getLogger(name).removeHandler(self._log_capture)
        transports = [c.transport for c in self.connections] + self._transports
        for transport in transports:
            try:
                if not transport.is_closing():
                    transport.abort()
            except Exception:
                pass
        for server in self._servers:
            try:
                server.close()
            except Exception:
                pass
        for peer in self._peers:
            peer._shutdown()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:  # pragma: no cover
                pass
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)


def pattern(nbytes: int, seed: int = 0) -> bytes:
    """*nbytes* bytes of a recognisable pattern (different for each *seed*)."""
    block = bytes((i * 7 + seed * 13) % 251 for i in range(251))
    repeats, rest = divmod(nbytes, len(block))
    return block * repeats + block[:rest]
