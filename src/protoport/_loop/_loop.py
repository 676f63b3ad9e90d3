"""The loop facade: asyncio's loop methods, owned by an AnyIO task group."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import os
import signal
import socket
import ssl as _ssl_module
import subprocess
import warnings
import weakref
from collections.abc import Callable, Coroutine, Sequence
from contextvars import Context
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio.abc import ByteStream, TaskGroup

from .._backends import (
    Readers,
    TaskFactory,
    default_loop,
    get_running_loop_raw,
    make_backend,
    run_handle,
)
from .._core._errors import log_exception_context, logger
from .._core._host import Member
from .._transports import _pipeline
from .._transports._datagram import DatagramTransport
from .._transports._pipe import ReadPipeTransport, WritePipeTransport
from .._transports._stream import StreamTransport
from .._transports._subprocess import SubprocessTransport
from .._transports._tls import TLSOptions, check_timeouts
from . import _connections, _datagrams, _dns, _pipes, _sendfile, _servers, _sockets
from ._bridge import TrioBridge, trio_side
from ._descriptors import READ, WRITE, Watches
from ._servers import Server
from ._subprocesses import (
    check_common_arguments,
    discard_subprocess,
    runs_in_a_loop_task,
    start_subprocess,
)

T = TypeVar("T")
if TYPE_CHECKING:
    import ssl as _ssl

    from typing_extensions import TypeVarTuple, Unpack

    _Ts = TypeVarTuple("_Ts")
_P = TypeVar("_P", bound=asyncio.BaseProtocol)

ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def _fileno(fd: Any) -> int:
    """A descriptor from an int or an object with ``fileno()``, with asyncio's
    errors."""
    fileno = fd
    if not isinstance(fileno, int):
        try:
            fileno = int(fileno.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fd!r}") from None
    if fileno < 0:
        raise ValueError(f"Invalid file descriptor: {fileno}")
    return fileno


def _check_signal(sig: object) -> None:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


def _refuse_coroutine(callback: object, method: str) -> None:
    if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
        raise TypeError(f"coroutines cannot be used with {method}()")


def _check_callback(callback: object, method: str) -> None:
    """asyncio's check of a callback, made in debug mode only (it costs time on
    every call)."""
    _refuse_coroutine(callback, method)
    if not callable(callback):
        raise TypeError(
            f"a callable object was expected by {method}(), got {callback!r}"
        )


#: How long a normal exit of ``open_loop()`` lets closing transports send what
#: they hold before it aborts them (seconds).
EXIT_TIMEOUT = 30.0

_innermost: contextvars.ContextVar[Loop | None] = contextvars.ContextVar(
    "protoport_innermost_loop", default=None
)


class Loop(TrioBridge):
    """A loop-like object with asyncio's networking and scheduling methods.

    Obtain one with ``async with protoport.open_loop() as loop`` or
    :func:`protoport.get_running_loop`. Every transport and task it makes lives in
    its task group: leaving the ``async with`` block closes them all, each protocol
    receiving ``connection_lost()`` exactly once (see :func:`protoport.open_loop`
    for *exit_timeout*).

    Under asyncio, ``call_soon``/``call_later``/``call_at``/``time``/
    ``create_future``/``create_task`` delegate to the running asyncio loop. Under
    Trio, one Trio task runs the loop: it reads the sockets, runs the callbacks and
    steps the tasks (real :class:`asyncio.Task` objects), futures are
    :class:`asyncio.Future` objects that Trio tasks can await, and
    ``asyncio.get_running_loop()`` returns this object (and sniffio names
    asyncio, so AnyIO code works there) while a protocol or scheduled callback,
    or a task created here, runs. :meth:`start_trio`, :meth:`run_trio` and
    :meth:`run_asyncio` carry calls between such asyncio code and Trio code.
    """

    def __init__(self, *, exit_timeout: float | None = EXIT_TIMEOUT) -> None:
        if exit_timeout is not None and not exit_timeout >= 0:
            raise ValueError(
                f"exit_timeout must be None or a number >= 0, got {exit_timeout!r}"
            )
        self._exit_timeout = exit_timeout
        self._backend = backend = make_backend(self)
        # The scheduling calls go straight to the backend: call_soon() runs for
        # every task wake-up, and asyncio's Handle and Future ask for get_debug()
        # every time one is made.
        self.call_soon = backend.call_soon  # type: ignore[method-assign,assignment]
        self.time = backend.time  # type: ignore[method-assign]
        self.create_future = backend.create_future  # type: ignore[method-assign]
        self.get_debug = functools.partial(getattr, self, "_debug")  # type: ignore[method-assign]
        self._invoke = backend.invoke
        self._task_group: TaskGroup | None = None
        self._pending_spawns: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._host = _LoopHost(self)
        self._transports: set[Member] = set()
        # A server stays alive while it listens: its accept tasks hold it.
        self._servers: weakref.WeakSet[Server] = weakref.WeakSet()
        self._readers: Readers | None = None
        #: The handles of add_signal_handler(), by signal.
        self._signals: dict[int, asyncio.Handle] = {}
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._readers_made = False
        #: What add_reader()/add_writer() and the waiting sock_*() calls
        #: registered.
        self._watches = Watches(self, self._reader_registry, backend.create_waiter)
        self._reactor_waits = _sockets.reactor_waits(
            self._watches, self._check_fd, functools.partial(self.run_in_executor, None)
        )
        self._runtime_waits = _sockets.runtime_waits(self._check_fd)
        self._on_asyncio = backend.name == "asyncio"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cancelled_at_exit: set[asyncio.Task[Any]] = set()
        self._exception_handler: ExceptionHandler | None = None
        self._debug = False
        self._running = False
        self._exiting = False
        self._closed = False
        self._token: contextvars.Token[Loop | None] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._running else "idle"
        return f"<protoport.Loop {state} on {self._backend.name}>"

    # -- life cycle ------------------------------------------------------------

    async def __aenter__(self) -> Loop:
        if self._task_group is not None or self._closed:
            raise RuntimeError("a protoport loop can be entered only once")
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._running = True
        self._token = _innermost.set(self)
        self._backend.start(self._task_group)
        for fn, args in self._pending_spawns:
            self._task_group.start_soon(fn, *args)
        self._pending_spawns.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        if self._token is not None:
            try:
                _innermost.reset(self._token)
            except ValueError:  # exited in another context than it was entered
                pass
        self._exiting = True
        graceful = exc_type is None
        # On a normal exit, closing transports may send what they hold, for
        # exit_timeout seconds at most.
        flush = graceful and self._exit_timeout != 0
        for server in list(self._servers):
            server.close()
        for transport in list(self._transports):
            if not (flush and transport.is_closing()):
                transport.abort()
        self._cancelled_at_exit = set(self._tasks)
        for task in self._cancelled_at_exit:
            task.cancel()
        if not graceful or not self._transports:
            self._task_group.cancel_scope.cancel()
        else:
            # Transports may run no task while they flush: this one keeps the
            # group open until the last is forgotten (which cancels it).
            self._task_group.start_soon(self._abort_after, self._exit_timeout)
        try:
            if exc is None or isinstance(exc, anyio.get_cancelled_exc_class()):
                return await self._task_group.__aexit__(exc_type, exc, tb)
            # The block's own exception goes on unchanged, not wrapped in a group
            # by the task group (whose children never raise).
            await self._task_group.__aexit__(None, None, None)
            return None
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish_leftovers()
            self._closed = True
            self._watches.close()
            for sig in list(self._signals):
                self.remove_signal_handler(sig)
            self._backend.close()
            self._running = False

    async def _abort_after(self, delay: float | None) -> None:
        """Abort the transports still flushing *delay* seconds (None: never)
        into a normal exit (the task group's cancellation ends this once the
        last one is gone)."""
        if delay is None:
            await anyio.sleep_forever()
        else:
            await anyio.sleep(delay)
        for transport in list(self._transports):
            transport.abort()

    async def _finish_leftovers(self) -> None:
        # Tasks that a cancelled task group never started still owe their
        # connection_lost() calls and their results.
        for transport in list(self._transports):
            await transport.finish()
        # Wait for the cancelled tasks to finish, as asyncio.run() does (tasks
        # made while closing are cancelled too).
        pending = [task for task in self._tasks if not task.done()]
        for task in pending:
            if task not in self._cancelled_at_exit:
                task.cancel()
        if pending:
            # With a new group for the calls the tasks make while they finish.
            async with anyio.create_task_group() as self._task_group:
                await self._backend.wait_tasks(pending)
                self._task_group.cancel_scope.cancel()
        self._tasks.clear()

    async def _host_until_run_ends(self) -> None:
        async with self:
            await anyio.sleep_forever()

    def _spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        if self._task_group is None:
            self._pending_spawns.append((fn, args))
        else:
            self._backend.start_soon(self._task_group, fn, *args)

    def _reader_registry(self) -> Readers | None:
        """Where socket transports register for readability (made on first use)."""
        if not self._readers_made:
            self._readers_made = True
            self._readers = self._backend.readers()
        return self._readers

    def _forget(self, transport: Member) -> None:
        self._transports.discard(transport)
        if self._exiting and not self._transports and self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    def is_running(self) -> bool:
        """Whether the loop is running: inside its ``open_loop()`` block."""
        return self._running

    def is_closed(self) -> bool:
        """Whether the loop is closed: its ``open_loop()`` block has ended."""
        return self._closed

    # -- transports ------------------------------------------------------------

    @trio_side
    async def connect_stream(
        self,
        protocol_factory: Callable[[], _P],
        stream: ByteStream,
        *,
        extra: dict[str, Any] | None = None,
    ) -> tuple[StreamTransport, _P]:
        """Run a protocol over any AnyIO byte stream.

        Calls *protocol_factory*, wraps *stream* in a :class:`StreamTransport`, and
        returns ``(transport, protocol)`` once ``connection_made()`` has run. The
        transport owns the stream from then on. If the factory raises, the stream is
        closed and the exception propagates.

        :param extra: additional ``get_extra_info()`` keys
        """
        return await _pipeline.connect(
            self._host, protocol_factory, stream, extra=extra
        )

    @trio_side
    async def start_tls(
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: _ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> StreamTransport:
        """Upgrade *transport* to TLS, as :meth:`asyncio.loop.start_tls`.

        Bytes written before the call are sent first, in clear; bytes received and
        not yet delivered are handed to the TLS layer. *protocol* is not told
        ``connection_made()`` again. Returns the new transport; the old one must
        not be used any more.
        """
        if not isinstance(sslcontext, _ssl_module.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of ssl.SSLContext, "
                f"got {sslcontext!r}"
            )
        if type(transport) is not StreamTransport or not transport.belongs_to(
            self._host
        ):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        check_timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)
        tls = TLSOptions(
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            handshake_timeout=ssl_handshake_timeout,
            shutdown_timeout=ssl_shutdown_timeout,
        )
        return await _pipeline.upgrade(self._host, transport, protocol, tls)

    @trio_side(direct=_connections.awaits_loop_futures)
    async def create_connection(
        self,
        protocol_factory: Callable[[], _P],
        host: str | None = None,
        port: int | str | None = None,
        *,
        ssl: bool | _ssl.SSLContext | None = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: tuple[str, int] | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[StreamTransport, _P]:
        """Open a TCP connection and run a protocol over it, as
        :meth:`asyncio.loop.create_connection`."""
        return await _connections.create_connection(
            self._host,
            protocol_factory,
            host,
            port,
            ssl=ssl,
            family=family,
            proto=proto,
            flags=flags,
            sock=sock,
            local_addr=local_addr,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            happy_eyeballs_delay=happy_eyeballs_delay,
            interleave=interleave,
            all_errors=all_errors,
        )

    @trio_side(direct=_connections.awaits_loop_futures)
    async def create_unix_connection(
        self,
        protocol_factory: Callable[[], _P],
        path: str | bytes | os.PathLike[str] | None = None,
        *,
        ssl: bool | _ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[StreamTransport, _P]:
        """Open a Unix socket connection, as
        :meth:`asyncio.loop.create_unix_connection`."""
        return await _connections.create_unix_connection(
            self._host,
            protocol_factory,
            path,
            ssl=ssl,
            sock=sock,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    @trio_side
    async def connect_accepted_socket(
        self,
        protocol_factory: Callable[[], _P],
        sock: socket.socket,
        *,
        ssl: bool | _ssl.SSLContext | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[StreamTransport, _P]:
        """Run a protocol over an already connected socket, as
        :meth:`asyncio.loop.connect_accepted_socket`."""
        return await _connections.connect_accepted_socket(
            self._host,
            protocol_factory,
            sock,
            ssl=ssl,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )

    @trio_side
    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | Sequence[str] | None = None,
        port: int | str | None = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: _ssl.SSLContext | None = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> Server:
        """Listen on TCP sockets, as :meth:`asyncio.loop.create_server`."""
        server = await _servers.create_server(
            self._host,
            protocol_factory,
            host,
            port,
            family=family,
            flags=flags,
            sock=sock,
            backlog=backlog,
            ssl=ssl,
            reuse_address=reuse_address,
            reuse_port=reuse_port,
            keep_alive=keep_alive,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            start_serving=start_serving,
        )
        self._servers.add(server)
        return server

    @trio_side
    async def create_unix_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        path: str | bytes | os.PathLike[str] | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: _ssl.SSLContext | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = True,
    ) -> Server:
        """Listen on a Unix socket, as :meth:`asyncio.loop.create_unix_server`."""
        server = await _servers.create_unix_server(
            self._host,
            protocol_factory,
            path,
            sock=sock,
            backlog=backlog,
            ssl=ssl,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            start_serving=start_serving,
            cleanup_socket=cleanup_socket,
        )
        self._servers.add(server)
        return server

    @trio_side
    async def connect_read_pipe(
        self, protocol_factory: Callable[[], _P], pipe: Any
    ) -> tuple[ReadPipeTransport, _P]:
        """Read a pipe, FIFO, socket or character device (a file object) with a
        new protocol, as :meth:`asyncio.loop.connect_read_pipe`; the transport
        owns *pipe* from then on."""
        return _pipes.connect_read_pipe(self._host, protocol_factory, pipe)

    @trio_side
    async def connect_write_pipe(
        self, protocol_factory: Callable[[], _P], pipe: Any
    ) -> tuple[WritePipeTransport, _P]:
        """Write to a pipe, FIFO, socket or character device (a file object) from
        a new protocol, as :meth:`asyncio.loop.connect_write_pipe`; the transport
        owns *pipe* from then on."""
        return _pipes.connect_write_pipe(self._host, protocol_factory, pipe)

    @trio_side(discard=discard_subprocess, direct=runs_in_a_loop_task)
    async def subprocess_exec(
        self,
        protocol_factory: Callable[[], _P],
        program: Any,
        *args: Any,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: str | None = None,
        errors: str | None = None,
        text: bool | None = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, _P]:
        """Run *program* with *args* in a child process, as
        :meth:`asyncio.loop.subprocess_exec`; the other keyword arguments go to
        :class:`subprocess.Popen`."""
        check_common_arguments(universal_newlines, bufsize, text, encoding, errors)
        if shell:
            raise ValueError("shell must be False")
        return await start_subprocess(
            self._host,
            protocol_factory,
            (program, *args),
            shell=False,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            kwargs=kwargs,
        )

    @trio_side(discard=discard_subprocess, direct=runs_in_a_loop_task)
    async def subprocess_shell(
        self,
        protocol_factory: Callable[[], _P],
        cmd: str | bytes,
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: str | None = None,
        errors: str | None = None,
        text: bool | None = None,
        **kwargs: Any,
    ) -> tuple[SubprocessTransport, _P]:
        """Run *cmd* with the platform's shell in a child process, as
        :meth:`asyncio.loop.subprocess_shell`; the other keyword arguments go to
        :class:`subprocess.Popen`."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        check_common_arguments(False, bufsize, text, encoding, errors)
        return await start_subprocess(
            self._host,
            protocol_factory,
            cmd,
            shell=True,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            kwargs=kwargs,
        )

    @trio_side
    async def create_datagram_endpoint(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], _P],
        local_addr: tuple[str, int] | str | None = None,
        remote_addr: tuple[str, int] | str | None = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[DatagramTransport, _P]:
        """Open a datagram endpoint (UDP over IPv4 or IPv6, or a Unix datagram
        socket) and run a protocol over it, as
        :meth:`asyncio.loop.create_datagram_endpoint`."""
        return await _datagrams.create_datagram_endpoint(
            self._host,
            protocol_factory,
            local_addr,
            remote_addr,
            family=family,
            proto=proto,
            flags=flags,
            reuse_port=reuse_port,
            allow_broadcast=allow_broadcast,
            sock=sock,
        )

    @trio_side
    async def getaddrinfo(  # type: ignore[override]
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[
        tuple[
            socket.AddressFamily,
            socket.SocketKind,
            int,
            str,
            tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
        ]
    ]:
        """Resolve an address in a worker thread, as :func:`socket.getaddrinfo`."""
        return await _dns.getaddrinfo(
            host, port, family=family, type=type, proto=proto, flags=flags
        )

    @trio_side
    async def getnameinfo(
        self,
        sockaddr: tuple[str, int] | tuple[str, int, int, int],
        flags: int = 0,
    ) -> tuple[str, str]:
        """Look a socket address up in a worker thread, as
        :func:`socket.getnameinfo`."""
        return await _dns.getnameinfo(sockaddr, flags)

    # -- sockets ---------------------------------------------------------------

    # Each sock_*() call tries its socket at once, in the caller's step, and
    # waits only when it must (see _sockets).

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        """Receive up to *nbytes* from *sock*, as :meth:`asyncio.loop.sock_recv`."""
        _sockets.check_socket(self, sock)
        return await _sockets.recv(
            sock, self._socket_waits(), functools.partial(sock.recv, nbytes)
        )

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into *buf*, as :meth:`asyncio.loop.sock_recv_into`."""
        _sockets.check_socket(self, sock)
        return await _sockets.recv(
            sock, self._socket_waits(), functools.partial(sock.recv_into, buf)
        )

    async def sock_recvfrom(
        self, sock: socket.socket, bufsize: int
    ) -> tuple[bytes, Any]:
        """Receive a datagram, as :meth:`asyncio.loop.sock_recvfrom`."""
        _sockets.check_socket(self, sock)
        return await _sockets.recv(
            sock, self._socket_waits(), functools.partial(sock.recvfrom, bufsize)
        )

    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: Any, nbytes: int = 0
    ) -> tuple[int, Any]:
        """Receive a datagram into *buf*, as
        :meth:`asyncio.loop.sock_recvfrom_into`."""
        _sockets.check_socket(self, sock)
        if not nbytes:
            nbytes = len(buf)
        return await _sockets.recv(
            sock,
            self._socket_waits(),
            functools.partial(sock.recvfrom_into, buf, nbytes),
        )

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of *data*, as :meth:`asyncio.loop.sock_sendall`."""
        _sockets.check_socket(self, sock)
        await _sockets.sendall(sock, self._socket_waits(), data)

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        """Send a datagram, as :meth:`asyncio.loop.sock_sendto`."""
        _sockets.check_socket(self, sock)
        return await _sockets.sendto(sock, self._socket_waits(), data, address)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect *sock*, as :meth:`asyncio.loop.sock_connect` (a host name is
        resolved first)."""
        _sockets.check_socket(self, sock)
        await _sockets.connect(self, sock, self._socket_waits(), address)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection, as :meth:`asyncio.loop.sock_accept`; the new
        socket is non-blocking."""
        _sockets.check_socket(self, sock)
        return await _sockets.accept(sock, self._socket_waits())

    async def sock_sendfile(
        self,
        sock: socket.socket,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool | None = True,
    ) -> int:
        """Send a file, as :meth:`asyncio.loop.sock_sendfile`: with
        ``os.sendfile()``, or by reading and sending where the file has no
        descriptor and *fallback* allows."""
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _sockets.check_socket(self, sock)
        _sockets.check_sendfile(sock, file, offset, count)
        return await _sockets.sendfile(
            sock, self._socket_waits(), file, offset, count, fallback=bool(fallback)
        )

    def _socket_waits(self) -> _sockets.Waits:
        """How a sock_*() call of the calling task waits: through the reactor
        when the caller awaits this loop's futures as asyncio does (a task of
        this loop under Trio, any task under asyncio); else the runtime's way: a
        Trio task with Trio itself, which costs it one task switch less, a task
        of another loop in a Trio task of that loop, and every caller where the
        loop has no reactor."""
        if (
            self._on_asyncio or get_running_loop_raw() is self
        ) and self._reader_registry() is not None:
            return self._reactor_waits
        return self._runtime_waits

    # -- sendfile --------------------------------------------------------------

    async def sendfile(
        self,
        transport: asyncio.WriteTransport,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send *file* on *transport*, as :meth:`asyncio.loop.sendfile`; return
        how many bytes were sent.

        On a TCP or Unix socket transport the kernel sends the file
        (``os.sendfile()``) once the bytes written before are sent; reading is
        paused meanwhile, and ``write()`` raises :exc:`RuntimeError`. On a TLS
        transport, or one over another stream, the file is read in a worker
        thread and written to the transport, with write flow control, when
        *fallback* is true (:exc:`RuntimeError` otherwise). Either way the
        file's position is left after the last byte sent.
        """
        return await _sendfile.sendfile(
            self._host, transport, file, offset, count, fallback=fallback
        )

    def _check_fd(self, fd: int, fileobj: Any = None) -> None:
        """Refuse a descriptor that one of this loop's socket or pipe transports
        uses, with asyncio's message."""
        for transport in self._transports:
            if transport.is_closing():
                continue
            used = transport.get_extra_info("socket") or transport.get_extra_info(
                "pipe"
            )
            try:
                used_fd = used.fileno() if used is not None else -1
            except ValueError:  # a closed file
                used_fd = -1
            if used_fd == fd:
                shown = fd if fileobj is None else fileobj
                raise RuntimeError(
                    f"File descriptor {shown!r} is used by transport {transport!r}"
                )

    # -- file descriptors ------------------------------------------------------

    def add_reader(  # type: ignore[override]
        self, fd: Any, callback: Callable[..., object], *args: Any
    ) -> None:
        """Call ``callback(*args)`` whenever *fd* is readable, as
        :meth:`asyncio.loop.add_reader` (under Trio through the loop's reactor,
        which needs Linux's epoll)."""
        self._watches.add(self._unused_fileno(fd), READ, callback, args)

    def remove_reader(self, fd: Any) -> bool:
        """Stop watching *fd* for reading; return whether it was watched."""
        return self._watches.remove(self._unused_fileno(fd), READ)

    def add_writer(  # type: ignore[override]
        self, fd: Any, callback: Callable[..., object], *args: Any
    ) -> None:
        """Call ``callback(*args)`` whenever *fd* is writable, as
        :meth:`asyncio.loop.add_writer`."""
        self._watches.add(self._unused_fileno(fd), WRITE, callback, args)

    def remove_writer(self, fd: Any) -> bool:
        """Stop watching *fd* for writing; return whether it was watched."""
        return self._watches.remove(self._unused_fileno(fd), WRITE)

    def _unused_fileno(self, fd: Any) -> int:
        """The descriptor of *fd*, which no transport of this loop may use."""
        fileno = _fileno(fd)
        self._check_fd(fileno, fd)
        return fileno

    # -- signals -----------------------------------------------------------------

    def add_signal_handler(  # type: ignore[override]
        self, sig: int, callback: Callable[..., object], *args: Any
    ) -> None:
        """Call ``callback(*args)`` as a callback of this loop whenever *sig*
        arrives, as :meth:`asyncio.loop.add_signal_handler` (main thread only).
        Leaving the loop removes its handlers."""
        _refuse_coroutine(callback, "add_signal_handler")
        _check_signal(sig)
        self._check_open()
        handle = asyncio.Handle(callback, args, self, None)
        if sig not in self._signals:
            self._backend.add_signal_handler(
                sig, functools.partial(self._on_signal, sig)
            )
        else:
            self._signals[sig].cancel()
        self._signals[sig] = handle

    def remove_signal_handler(self, sig: int) -> bool:
        """Stop handling *sig*; return whether it was handled."""
        _check_signal(sig)
        handle = self._signals.pop(sig, None)
        if handle is None:
            return False
        handle.cancel()
        self._backend.remove_signal_handler(sig)
        return True

    def _on_signal(self, sig: int) -> None:
        # As asyncio's loops do: the handler runs on the loop's next round.
        handle = self._signals.get(sig)
        if handle is not None and not self._closed:
            self._backend.call_soon(run_handle, handle)

    # -- scheduling ------------------------------------------------------------

    def time(self) -> float:
        """The loop's clock, in seconds: the clock of ``call_at()``."""
        return self._backend.time()

    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: Context | None = None,
    ) -> asyncio.Handle:
        """Arrange for ``callback(*args)`` to be called on the loop's next round,
        in *context* (by default a copy of the current one), after the callbacks
        already scheduled; return a handle that can cancel it."""
        if self._debug:
            _check_callback(callback, "call_soon")
        return self._backend.call_soon(callback, *args, context=context)

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        """Arrange for ``callback(*args)`` to be called after *delay* seconds;
        return a handle that can cancel it."""
        if delay is None:
            raise TypeError("delay must not be None")
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        """Arrange for ``callback(*args)`` to be called at *when*, a time of
        :meth:`time`; return a handle that can cancel it."""
        if when is None:
            raise TypeError("when cannot be None")
        if self._debug:
            _check_callback(callback, "call_at")
        return self._backend.call_at(when, callback, *args, context=context)

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: Context | None = None,
    ) -> asyncio.Handle:
        """Like :meth:`call_soon`, but callable from any thread: the loop is
        woken to run the callback."""
        if self._debug:
            _check_callback(callback, "call_soon_threadsafe")
        return self._backend.call_soon_threadsafe(callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self._backend.timer_cancelled(handle)

    def create_future(self) -> asyncio.Future[Any]:
        """Return a new :class:`asyncio.Future` of this loop (under Trio, one
        that Trio tasks can await too)."""
        return self._backend.create_future()

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> asyncio.Task[T]:
        """Return an :class:`asyncio.Task` running *coro*, stepped by this loop
        under Trio (by the running asyncio loop under asyncio)."""
        self._check_open()
        task = self._backend.create_task(coro, name, context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def set_task_factory(self, factory: TaskFactory | None) -> None:  # type: ignore[override]
        """Set the factory ``create_task()`` calls as ``factory(loop, coro)`` (with
        ``context=`` when one is given), or None for the default; under asyncio,
        the running asyncio loop's."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._backend.set_task_factory(factory)

    def get_task_factory(self) -> Any:
        """Return the task factory set with :meth:`set_task_factory`, or None."""
        return self._backend.get_task_factory()

    def run_in_executor(  # type: ignore[override]
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[..., T],
        *args: Any,
    ) -> asyncio.Future[T]:
        """Run ``func(*args)`` in *executor*, or in an AnyIO worker thread when
        *executor* is None; return a future of its result."""
        self._check_open()
        if self._debug:
            _check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
        if executor is None:
            return self.start_trio(
                functools.partial(anyio.to_thread.run_sync, func, *args)
            )
        future = self.create_future()
        inner = executor.submit(func, *args)

        def copy_outcome() -> None:
            if future.cancelled():
                return
            if inner.cancelled():
                future.cancel()
            elif (exc := inner.exception()) is not None:
                future.set_exception(exc)
            else:
                future.set_result(inner.result())

        inner.add_done_callback(lambda _: self._backend.run_threadsafe(copy_outcome))
        future.add_done_callback(lambda f: inner.cancel() if f.cancelled() else None)
        return future

    def set_default_executor(self, executor: Any) -> None:
        """Make *executor* (a :class:`concurrent.futures.ThreadPoolExecutor`) the
        one ``run_in_executor(None, ...)`` uses instead of AnyIO's threads."""
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shut the default executor down (if one was set), waiting for its work
        in a thread, as :meth:`asyncio.loop.shutdown_default_executor` does."""
        executor = self._default_executor
        if executor is None:
            return
        self._default_executor = None
        with anyio.move_on_after(timeout) as scope:
            await anyio.to_thread.run_sync(
                executor.shutdown, True, abandon_on_cancel=True
            )
        if scope.cancelled_caught:
            warnings.warn(
                f"The executor did not finishing joining its threads within "
                f"{timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)

    async def shutdown_asyncgens(self) -> None:
        """Nothing to do: the runtime's own hooks (Trio's or asyncio's) finalize
        asynchronous generators, as they would without the facade."""
        await anyio.lowlevel.checkpoint()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    # -- errors and debug ------------------------------------------------------

    def get_exception_handler(self) -> ExceptionHandler | None:
        """Return the exception handler set with :meth:`set_exception_handler`,
        or None for the default one."""
        return self._exception_handler

    def set_exception_handler(self, handler: ExceptionHandler | None) -> None:
        """Make *handler*, called as ``handler(loop, context)``, receive what
        :meth:`call_exception_handler` reports; None restores the default."""
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log *context* as asyncio's default handler does; under asyncio, hand it
        to the running asyncio loop's handler instead."""
        forward = self._backend.runtime_exception_handler
        if forward is not None:
            forward(context)
        else:
            log_exception_context(context)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report *context* (a dict with ``message`` and optionally
        ``exception``, ``transport``, ``protocol``...) to the exception handler, or
        to :meth:`default_exception_handler` when none is set. An error of the
        handler is logged, never raised."""
        handler = self._exception_handler
        try:
            if handler is None:
                self.default_exception_handler(context)
            else:
                handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if handler is None:
                logger.error("Exception in default exception handler", exc_info=True)
                return
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an "
                    "unexpected error in custom exception handler",
                    exc_info=True,
                )

    def get_debug(self) -> bool:
        """Whether debug mode is on (off by default)."""
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        """Turn debug mode on or off: when on, asyncio's handles and futures
        record where they were made, more is logged, and the scheduling calls
        check their callbacks as asyncio's do."""
        self._debug = enabled
        # Outside debug mode call_soon() goes straight to the backend (see
        # __init__); in debug mode through the method that checks.
        if enabled:
            self.call_soon = functools.partial(Loop.call_soon, self)  # type: ignore[method-assign,assignment]
        else:
            self.call_soon = self._backend.call_soon  # type: ignore[method-assign,assignment]


#: asyncio's loop methods that the facade does not offer: name → the rest of the
#: sentence its NotImplementedError says after ``loop.<name>()`` (why, and what to
#: do instead). docs/limitations.rst lists each of them.
NOT_IMPLEMENTED: dict[str, str] = {
    **dict.fromkeys(
        ("run_forever", "run_until_complete", "stop", "close"),
        "is not offered: the loop runs for as long as its "
        "`async with protoport.open_loop()` block, inside trio.run() or "
        "anyio.run(); leaving the block stops and closes it",
    ),
}


def _not_implemented(name: str, rest: str) -> Callable[..., Any]:
    """The facade's ``name`` method: it raises NotImplementedError saying what and
    why, when called (when awaited, for asyncio's coroutine methods)."""
    message = f"loop.{name}() {rest}"

    def method(self: Loop, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(message)

    async def coroutine_method(self: Loop, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(message)

    asyncio_method = getattr(asyncio.AbstractEventLoop, name)
    chosen = coroutine_method if inspect.iscoroutinefunction(asyncio_method) else method
    # asyncio's signature, for help() and the API reference.
    functools.update_wrapper(chosen, asyncio_method, assigned=())
    chosen.__name__ = name
    chosen.__qualname__ = f"Loop.{name}"
    rest_rst = rest.replace("`", "``")
    chosen.__doc__ = f"Raises :exc:`NotImplementedError`. This method {rest_rst}."
    return chosen


for _name, _rest in NOT_IMPLEMENTED.items():
    # sock_recvfrom() and a few others exist from Python 3.11 on.
    if hasattr(asyncio.AbstractEventLoop, _name) and _name not in Loop.__dict__:
        setattr(Loop, _name, _not_implemented(_name, _rest))
del _name, _rest


class _LoopHost:
    """A loop facade as its transports and servers see it (a
    :class:`~protoport._core._host.Host`)."""

    __slots__ = ("invoke", "loop", "readers", "run_soon", "spawn")

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.spawn = loop._spawn
        self.invoke = loop._backend.invoke
        self.run_soon = loop._backend.run_soon
        self.readers = loop._reader_registry

    def adopt(self, member: Member) -> None:
        self.loop._transports.add(member)

    def forget(self, member: Member) -> None:
        self.loop._forget(member)


def open_loop(*, exit_timeout: float | None = EXIT_TIMEOUT) -> Loop:
    """Return a new loop facade, to be entered with ``async with``.

    Leaving the block (normally, by an exception or by cancellation) closes every
    transport the loop made, with ``connection_lost()`` called once on each
    protocol, cancels its tasks and pending callbacks, and returns only when none of
    its tasks is left. On a normal exit, transports already closing finish sending
    their buffered bytes first (a TLS transport also its shutdown), for up to
    *exit_timeout* seconds; those still at it then are aborted. Every other
    transport is aborted at once, and all are on an exception or cancellation.

    :param exit_timeout: seconds a normal exit waits for closing transports
        (default 30); 0 aborts them at once, ``None`` waits as long as they take
    :raises ValueError: if *exit_timeout* is negative
    """
    return Loop(exit_timeout=exit_timeout)  # type: ignore[abstract]


def get_running_loop() -> Loop:
    """Return the innermost ``open_loop()`` of the calling task, or the run's
    default loop.

    The default loop is made on first use and lives until the run ends (as
    asyncio's loop does), so transports made on it are closed then.

    :raises RuntimeError: outside a Trio or asyncio run
    """
    loop = _innermost.get()
    if loop is not None and loop._running:
        return loop
    running = get_running_loop_raw()
    if isinstance(running, Loop) and running._running:
        return running
    return default_loop(_make_default_loop, Loop._host_until_run_ends)


def _make_default_loop() -> Loop:
    loop = open_loop()
    # Running from now on: its host task enters it before anything else runs.
    loop._running = True
    return loop


def waiter_maker(loop: asyncio.AbstractEventLoop) -> Callable[[], asyncio.Future[Any]]:
    """What makes the futures a coroutine awaits itself on *loop*: a facade gives
    asyncio's plain future to its own tasks under Trio (Trio code needs the loop's
    usual kind); any other loop makes it with ``create_future()``."""
    if isinstance(loop, Loop):
        return loop._backend.create_waiter
    return loop.create_future
