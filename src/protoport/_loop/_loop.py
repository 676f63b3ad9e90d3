"""The loop facade: asyncio's loop methods, owned by an AnyIO task group."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import socket
import ssl as _ssl_module
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
)
from .._core._errors import log_exception_context, logger
from .._core._host import Member
from .._transports import _pipeline
from .._transports._stream import StreamTransport
from .._transports._tls import TLSOptions, check_timeouts
from . import _connections, _dns, _servers
from ._bridge import TrioBridge, trio_side
from ._servers import Server

T = TypeVar("T")
if TYPE_CHECKING:
    import ssl as _ssl

    from typing_extensions import TypeVarTuple, Unpack

    _Ts = TypeVarTuple("_Ts")
_P = TypeVar("_P", bound=asyncio.BaseProtocol)

ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]

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
    ``asyncio.get_running_loop()`` returns this object while a protocol or
    scheduled callback, or a task created here, runs.
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
        self._readers_made = False
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
        elif self._exit_timeout is not None:
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
            self._backend.close()
            self._running = False

    async def _abort_after(self, delay: float) -> None:
        """Abort the transports still flushing *delay* seconds into a normal exit
        (the task group's cancellation ends this once the last one is gone)."""
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
            self._task_group.start_soon(fn, *args)

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
        return self._running

    def is_closed(self) -> bool:
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

    @trio_side
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

    @trio_side
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

    # -- scheduling ------------------------------------------------------------

    def time(self) -> float:
        return self._backend.time()

    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: Context | None = None,
    ) -> asyncio.Handle:
        return self._backend.call_soon(callback, *args, context=context)

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
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
        if when is None:
            raise TypeError("when cannot be None")
        return self._backend.call_at(when, callback, *args, context=context)

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: Context | None = None,
    ) -> asyncio.Handle:
        return self._backend.call_soon_threadsafe(callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self._backend.timer_cancelled(handle)

    def create_future(self) -> asyncio.Future[Any]:
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
        if executor is None:
            future, scope = self._start_in_trio_task(
                functools.partial(anyio.to_thread.run_sync, func, *args)
            )
            future.add_done_callback(
                lambda f: scope.cancel() if f.cancelled() else None
            )
            return future
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

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    # -- errors and debug ------------------------------------------------------

    def get_exception_handler(self) -> ExceptionHandler | None:
        return self._exception_handler

    def set_exception_handler(self, handler: ExceptionHandler | None) -> None:
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
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled


class _LoopHost:
    """A loop facade as its transports and servers see it (a
    :class:`~protoport._core._host.Host`)."""

    __slots__ = ("invoke", "loop", "readers", "spawn")

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.spawn = loop._spawn
        self.invoke = loop._backend.invoke
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
