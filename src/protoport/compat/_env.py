"""What a scenario works with: :class:`Env`, the environment of one scenario run."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import shutil
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, BinaryIO, NoReturn, TypeVar

from ._connections import Connection, StreamConnection
from ._failures import ScenarioFailure, Unsupported, describe, one_line, short_repr
from ._kernel_buffers import SMALL_SNDBUF, fill_send_buffer
from ._log_capture import CAPTURED_LOGGERS, LogCapture
from ._peer import Peer
from ._recording import (
    Event,
    RecordingDatagramProtocol,
    RecordingProtocol,
    RecordingSubprocessProtocol,
)
from ._timing import PEER_TIMEOUT, POLL_STEP, SETTLE_TIME, WAIT_TIMEOUT
from ._tls_material import TLSMaterial, tls_material

T = TypeVar("T")
_S = TypeVar("_S", bound=socket.socket)


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
        self._files: list[BinaryIO] = []
        self._subprocesses: list[Any] = []
        self._processes: list[Any] = []
        self._tempdir: str | None = None
        self._timed_out = False
        self._log_capture = LogCapture(self)
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
        exactly *message* (when not None). Returns the exception.
        :class:`Unsupported` goes through: the row is "—", not "✗"."""
        label = getattr(fn, "__name__", "call")
        try:
            fn(*args, **kwargs)
        except Unsupported:
            # What the scenario needs is missing: "—", not a wrong exception.
            raise
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
        in the reason (default: the coroutine's name). :class:`Unsupported` goes
        through, as with :meth:`expect_raises`."""
        label = what or f"{getattr(awaitable, '__name__', 'call')}()"
        try:
            result = await awaitable
        except Unsupported:
            raise
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
            filled = fill_send_buffer(local.fileno())
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

    # -- datagrams -------------------------------------------------------------

    def datagram_protocol(self, name: str = "endpoint") -> RecordingDatagramProtocol:
        """A new :class:`RecordingDatagramProtocol` (for use as a protocol
        factory's result)."""
        return RecordingDatagramProtocol(self, name)

    async def datagram_endpoint(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """``loop.create_datagram_endpoint(protocol_factory, **kwargs)``, the
        transport aborted after the scenario if still open; the factory defaults
        to a :class:`RecordingDatagramProtocol`."""
        self.require("datagram")
        if protocol_factory is None:
            protocol_factory = self.datagram_protocol
        self.mark(f"create_datagram_endpoint({short_repr(kwargs, 80)})")
        transport, protocol = await self.loop.create_datagram_endpoint(
            protocol_factory, **kwargs
        )
        self.track_transport(transport)
        return transport, protocol

    def udp_socket(self, host: str = "127.0.0.1") -> socket.socket:
        """A blocking UDP socket bound to *host* on a free port, which gives up
        after :data:`PEER_TIMEOUT` seconds (closed after the scenario); use it
        through :meth:`to_thread`."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self.track(socket.socket(family, socket.SOCK_DGRAM))
        sock.bind((host, 0))
        sock.settimeout(PEER_TIMEOUT)
        return sock

    # -- TLS -------------------------------------------------------------------

    def tls(self) -> TLSMaterial:
        """Certificates for TLS scenarios: a test CA and a server certificate for
        ``localhost``, ``127.0.0.1`` and ``::1`` (made once per process with
        trustme; :class:`Unsupported` when trustme is missing)."""
        return tls_material()

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

    # -- pipes and child processes ----------------------------------------------

    def pipe(self, *, fill: bool = False) -> tuple[BinaryIO, BinaryIO, int]:
        """``(read_end, write_end, filled)``: a new pipe as unbuffered file objects
        (closed after the scenario unless a transport closed them first). With
        *fill*, the pipe is shrunk to one page and filled with *filled* bytes
        (:meth:`read_from` skips them), so that what a transport then writes to
        it stays in the transport's buffer until the other end reads."""
        read_fd, write_fd = os.pipe()
        read_end = self.track_file(open(read_fd, "rb", buffering=0))  # noqa: SIM115
        write_end = self.track_file(open(write_fd, "wb", buffering=0))  # noqa: SIM115
        filled = 0
        if fill:
            import fcntl  # not on every platform: only the pipe scenarios need it

            fcntl.fcntl(write_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
            os.set_blocking(write_fd, False)
            try:
                while True:
                    filled += os.write(write_fd, b"\0" * 4096)
            except BlockingIOError:
                pass
            os.set_blocking(write_fd, True)
        return read_end, write_end, filled

    def track_file(self, file: Any) -> Any:
        """Close *file* after the scenario (closing it again does no harm, so a
        transport may close it first); returns it."""
        self._files.append(file)
        return file

    async def read_from(
        self, end: BinaryIO, nbytes: int | None = None, *, skip: int = 0
    ) -> bytes:
        """Read from *end* (the other end of a pipe the loop writes to) in a worker
        thread until its end of file, or until *nbytes* bytes; the first *skip*
        bytes (filler) are not returned. Fails when nothing comes for
        :data:`PEER_TIMEOUT` seconds."""

        def read() -> bytes:
            data = bytearray()
            while nbytes is None or len(data) < skip + nbytes:
                ready, _, _ = select.select([end], [], [], PEER_TIMEOUT)
                if not ready:
                    raise ScenarioFailure(
                        f"nothing more to read from the pipe after {len(data) - skip}"
                        " bytes"
                    )
                chunk = os.read(end.fileno(), 1 << 20)
                if not chunk:
                    break
                data += chunk
            return bytes(data[skip:])

        return await self.to_thread(read)

    async def write_to(self, end: BinaryIO, data: bytes) -> None:
        """Write *data* to *end* (the other end of a pipe the loop reads) in a
        worker thread."""
        await self.to_thread(end.write, data)

    def track_subprocess(self, transport: Any) -> Any:
        """Close the subprocess transport *transport* after the scenario (which
        kills its child if it still runs); returns it."""
        if transport is not None and transport not in self._subprocesses:
            self._subprocesses.append(transport)
        return transport

    def subprocess_protocol(
        self, name: str = "protocol"
    ) -> RecordingSubprocessProtocol:
        """A new :class:`RecordingSubprocessProtocol` (for use as a protocol
        factory's result)."""
        return RecordingSubprocessProtocol(self, name)

    async def subprocess_exec(
        self,
        *args: Any,
        protocol_factory: Callable[[], asyncio.BaseProtocol] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """``loop.subprocess_exec(protocol_factory, *args, **kwargs)``, with a
        :class:`RecordingSubprocessProtocol` by default (stdin, stdout and stderr
        are pipes unless *kwargs* say otherwise). Returns ``(transport,
        protocol)``."""
        self.require("subprocess")
        self.mark(f"subprocess_exec{args}")
        transport, protocol = await self.loop.subprocess_exec(
            protocol_factory or self.subprocess_protocol, *args, **kwargs
        )
        self.track_subprocess(transport)
        return transport, protocol

    async def subprocess_shell(
        self,
        command: Any,
        protocol_factory: Callable[[], asyncio.BaseProtocol] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """``loop.subprocess_shell()``, as :meth:`subprocess_exec`."""
        self.require("subprocess")
        self.mark(f"subprocess_shell({command!r})")
        transport, protocol = await self.loop.subprocess_shell(
            protocol_factory or self.subprocess_protocol, command, **kwargs
        )
        self.track_subprocess(transport)
        return transport, protocol

    async def create_subprocess_exec(self, *args: Any, **kwargs: Any) -> Any:
        """The implementation's ``create_subprocess_exec()`` (:attr:`streams`);
        the child is killed after the scenario if it still runs."""
        self.require("subprocess")
        self.mark(f"create_subprocess_exec{args}")
        process = await self.streams.create_subprocess_exec(*args, **kwargs)
        self._processes.append(process)
        return process

    async def create_subprocess_shell(self, command: str, **kwargs: Any) -> Any:
        """The implementation's ``create_subprocess_shell()``, as
        :meth:`create_subprocess_exec`."""
        self.require("subprocess")
        self.mark(f"create_subprocess_shell({command!r})")
        process = await self.streams.create_subprocess_shell(command, **kwargs)
        self._processes.append(process)
        return process

    # -- the end ---------------------------------------------------------------

    def _cleanup(self) -> None:
        """Abort what is still open, close the sockets (synchronous: it also runs
        when the scenario was cancelled)."""
        for name in CAPTURED_LOGGERS:
            logging.getLogger(name).removeHandler(self._log_capture)
        transports = [c.transport for c in self.connections] + self._transports
        for transport in transports:
            # Closing ones too: the sockets under them are closed below, so what
            # they still hold would never leave, and a loop that waits for
            # closing transports when it ends would wait for nothing.
            try:
                transport.abort()
            except Exception:
                pass
        for server in self._servers:
            try:
                server.close()
            except Exception:
                pass
        for process in self._processes:
            if process.returncode is None:
                try:
                    process.kill()
                except Exception:
                    pass
        for subprocess_transport in self._subprocesses:
            try:
                subprocess_transport.close()
            except Exception:
                pass
        for file in self._files:
            try:
                file.close()
            except OSError:  # pragma: no cover
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
