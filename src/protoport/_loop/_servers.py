"""Listening: create_server, create_unix_server and the Server object."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import ssl as _ssl
import sys
from asyncio.trsock import TransportSocket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio
from anyio import CancelScope, ClosedResourceError

from .._backends import fd_waits
from .._core._connection_set import ConnectionSet
from .._core._errors import logger
from .._core._host import Host
from .._transports._pipeline import accept_socket, accept_tls_socket
from .._transports._tls import TLSOptions
from ._bridge import trio_side
from ._dns import resolve
from ._socket_setup import remove_stale_socket_file, set_reuse_port
from ._tls_arguments import check_not_ssl_socket, check_only_with_ssl, server_tls

#: How long accepting pauses on a socket after the process ran out of file
#: descriptors or memory (asyncio's ``ACCEPT_RETRY_DELAY``).
ACCEPT_RETRY_DELAY = 1.0

#: ``accept()`` errors that mean "out of resources": wait, then try again.
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

#: ``accept()`` errors about one pending connection only (its peer went away, or
#: Linux passing on a network error of the new connection): skip it.
_SKIP_CONNECTION = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
    )
    if hasattr(errno, name)
)

_HAS_IPV6 = hasattr(socket, "AF_INET6")

_Address = tuple[str, int] | tuple[str, int, int, int]
_AddrInfo = tuple[int, int, int, str, _Address]
_UnixPath = str | bytes


def _is_abstract(path: _UnixPath) -> bool:
    """Whether *path* is empty or in Linux's abstract namespace (no file)."""
    return not path or path[0] in (0, "\x00")


class Server(asyncio.AbstractServer):
    """A listening server, as returned by :meth:`asyncio.loop.create_server`.

    Listening sockets are served by a reader callback of the loop's reactor each,
    as a selector loop serves them (a TLS server's, or where the loop has no
    reactor, by one accept task each, in the loop's task group).
    ``close()`` stops listening and leaves accepted connections alone;
    ``wait_closed()`` returns once the server is closed and its last connection is
    gone.
    """

    def __init__(
        self,
        loop_host: Host,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
        unix_files: dict[socket.socket, tuple[_UnixPath, int, int]] | None = None,
        tls: TLSOptions | None = None,
    ) -> None:
        self._host = loop_host
        self._loop = loop_host.loop
        self._tls = tls
        self._sockets: list[socket.socket] | None = sockets
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._unix_files = unix_files or {}
        self._clients = ConnectionSet()
        self._serving = False
        self._serve_forever_scope: CancelScope | None = None
        self._accept_scopes: set[CancelScope] = set()
        #: The reactor serving plain listening sockets, None: accept tasks do.
        self._readers = loop_host.readers()
        #: The listening sockets registered with the reactor, and their
        #: descriptors.
        self._watched: dict[socket.socket, int] = {}
        self._closed = anyio.Event()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    # -- clients ---------------------------------------------------------------

    def close_clients(self) -> None:
        """Close every accepted connection (their buffers are flushed first)."""
        for transport in self._clients:
            transport.close()

    def abort_clients(self) -> None:
        """Abort every accepted connection at once."""
        for transport in self._clients:
            transport.abort()

    # -- state -----------------------------------------------------------------

    def _is_closed(self) -> bool:
        return self._sockets is None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """Return the loop the server belongs to."""
        return self._loop

    def is_serving(self) -> bool:
        """Whether the server is accepting connections."""
        return self._serving

    @property
    def sockets(self) -> tuple[TransportSocket, ...]:
        """The listening sockets, wrapped as asyncio wraps them; ``()`` once
        closed."""
        if self._sockets is None:
            return ()
        return tuple(TransportSocket(sock) for sock in self._sockets)

    # -- serving ---------------------------------------------------------------

    def _start_serving(self) -> None:
        if self._serving:
            return
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            if self._readers is None or self._tls is not None:
                # A TLS connection starts with a task of its own (the handshake),
                # which a task spawns where a callback could not under asyncio.
                self._host.spawn(self._accept_loop, sock)
            else:
                self._watch(sock)

    def _watch(self, sock: socket.socket) -> None:
        """Have the reactor call :meth:`_accept_some` when *sock* is readable."""
        if self._sockets is None or sock not in self._sockets:
            return
        assert self._readers is not None
        fd = sock.fileno()
        self._readers.add_reader(fd, functools.partial(self._accept_some, sock))
        self._watched[sock] = fd

    def _unwatch(self, sock: socket.socket) -> None:
        fd = self._watched.pop(sock, None)
        if fd is not None:
            assert self._readers is not None
            self._readers.remove_reader(fd)

    def _accept_some(self, sock: socket.socket) -> None:
        """Accept what the kernel has queued, as a callback of the reactor."""
        if self._accept_batch(sock):
            # Out of resources: stop watching for a while, as asyncio does.
            self._unwatch(sock)
            self._loop.call_later(ACCEPT_RETRY_DELAY, self._watch, sock)

    @trio_side
    async def start_serving(self) -> None:
        """Start accepting connections; a no-op when already serving."""
        self._start_serving()
        await anyio.lowlevel.checkpoint()

    @trio_side
    async def serve_forever(self) -> None:
        """Accept connections until cancelled or closed.

        Cancelling it closes the server (its connections stay open) and
        re-raises the cancellation at once: waiting for clients that may never
        leave would hang a cancelled scope. When the server is closed by
        ``close()`` instead, it returns once the last connection is gone.
        """
        if self._serve_forever_scope is not None:
            raise RuntimeError(
                f"server {self!r} is already being awaited on serve_forever()"
            )
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        scope = self._serve_forever_scope = CancelScope()
        try:
            with scope:
                await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.close()
            raise
        finally:
            if self._serve_forever_scope is scope:
                self._serve_forever_scope = None
        await self.wait_closed()

    async def _accept_loop(self, sock: socket.socket) -> None:
        if self._sockets is None:
            return
        scope = CancelScope()
        self._accept_scopes.add(scope)
        try:
            with scope:
                await self._accept_connections(sock)
        finally:
            self._accept_scopes.discard(scope)

    async def _accept_connections(self, sock: socket.socket) -> None:
        while True:
            if self._is_closed():
                return
            try:
                await anyio.wait_readable(sock)
            except ClosedResourceError:
                return
            if self._accept_batch(sock):
                await anyio.sleep(ACCEPT_RETRY_DELAY)

    def _accept_batch(self, sock: socket.socket) -> bool:
        """Take what the kernel has queued, up to backlog connections per
        readiness event, as asyncio does, and set each connection up; return
        whether the process ran out of resources (accepting should then pause)."""
        for _ in range(max(self._backlog, 1)):
            if self._is_closed():
                return False
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._report("socket.accept() out of system resource", exc, sock)
                    return True
                if exc.errno in _SKIP_CONNECTION:
                    continue
                self._report("socket.accept() failed", exc, sock)
                return False
            if self._tls is not None:
                # A handshake takes round trips: never hold up accepting.
                self._host.spawn(self._serve_tls_connection, conn, addr)
                continue
            # A plain connection is set up at once, without waiting.
            try:
                # As asyncio: 'peername' is what accept() returned.
                accept_socket(
                    self._host,
                    self._protocol_factory,
                    conn,
                    extra={"peername": addr},
                    clients=self._clients,
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._setup_failed(conn, exc)
        return False

    async def _serve_tls_connection(self, conn: socket.socket, addr: Any) -> None:
        """The handshake, then the connection's reading, in this one task."""
        assert self._tls is not None
        try:
            transport = await accept_tls_socket(
                self._host,
                self._protocol_factory,
                conn,
                self._tls,
                extra={"peername": addr},
                clients=self._clients,
            )
        except (SystemExit, KeyboardInterrupt, anyio.get_cancelled_exc_class()):
            conn.close()
            raise
        except BaseException as exc:
            self._setup_failed(conn, exc)
            return
        await transport.run()

    def _setup_failed(self, conn: socket.socket, exc: BaseException) -> None:
        """Setting up an accepted connection failed: close its socket, and
        report the failure as asyncio does."""
        conn.close()
        if isinstance(exc, OSError):
            # A failed TLS handshake or a peer gone: asyncio logs it in debug
            # mode only.
            if self._loop.get_debug():
                logger.debug("%r: connection set-up failed: %r", self, exc)
        else:
            self._report(
                "Error on transport creation for incoming connection", exc, conn
            )

    def _report(self, message: str, exc: BaseException, sock: socket.socket) -> None:
        self._loop.call_exception_handler(
            {"message": message, "exception": exc, "socket": TransportSocket(sock)}
        )

    # -- closing ---------------------------------------------------------------

    def close(self) -> None:
        """Stop listening and close the listening sockets; accepted connections
        stay open. Idempotent."""
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        self._serving = False
        for scope in list(self._accept_scopes):
            scope.cancel()
        for sock in sockets:
            self._close_listening_socket(sock)
        serving_forever = self._serve_forever_scope
        if serving_forever is not None:
            self._serve_forever_scope = None
            serving_forever.cancel()
        self._closed.set()

    def _close_listening_socket(self, sock: socket.socket) -> None:
        unix_file = self._unix_files.pop(sock, None)
        self._unwatch(sock)
        if sock.fileno() >= 0:
            try:
                fd_waits().notify_closing(sock)
            except RuntimeError:  # no async runtime in this thread any more
                pass
        sock.close()
        if unix_file is None:
            return
        path, ino, dev = unix_file
        try:
            st = os.stat(path)
            if st.st_ino == ino and st.st_dev == dev:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.error("Unable to clean up listening UNIX socket %r: %r", path, exc)

    @trio_side
    async def wait_closed(self) -> None:
        """Return once the server is closed and every accepted connection is gone
        (waiting for both, in either order)."""
        await self._closed.wait()
        await self._clients.wait_empty()


# -- TCP -------------------------------------------------------------------------


def _check_ssl_arguments(
    ssl: object,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
) -> None:
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    check_only_with_ssl(
        ssl,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )


async def _resolve(
    loop: asyncio.AbstractEventLoop,
    host: str | None,
    port: int | str | None,
    family: int,
    flags: int,
) -> list[_AddrInfo]:
    infos = await resolve(
        loop, (host, port), family=family, type=socket.SOCK_STREAM, flags=flags
    )
    if not infos:
        raise OSError(f"getaddrinfo({host!r}) returned empty list")
    return [
        (af, kind, proto, name, address) for af, kind, proto, name, address in infos
    ]


def _open_listening_sockets(
    infos: list[_AddrInfo],
    *,
    reuse_address: bool,
    reuse_port: bool | None,
    keep_alive: bool | None,
) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    completed = False
    try:
        for af, kind, proto, _name, address in infos:
            try:
                sock = socket.socket(af, kind, proto)
            except OSError:
                continue  # a family this machine does not offer
            sockets.append(sock)
            if reuse_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
            if reuse_port:
                set_reuse_port(sock)
            if keep_alive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
            if _HAS_IPV6 and af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                # One socket per family: no IPv4-mapped addresses on the IPv6 one.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    # The family is not enabled here (bpo-30945): skip it.
                    sockets.pop()
                    sock.close()
                    continue
                raise OSError(
                    exc.errno,
                    f"error while attempting to bind on address {address!r}: "
                    f"{str(exc).lower()}",
                ) from None
        if not sockets:
            raise OSError(
                f"could not bind on any address out of {[info[4] for info in infos]!r}"
            )
        completed = True
    finally:
        if not completed:
            for sock in sockets:
                sock.close()
    return sockets


async def create_server(
    loop_host: Host,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    host: str | Sequence[str] | None,
    port: int | str | None,
    *,
    family: int,
    flags: int,
    sock: socket.socket | None,
    backlog: int,
    ssl: _ssl.SSLContext | None,
    reuse_address: bool | None,
    reuse_port: bool | None,
    keep_alive: bool | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
    start_serving: bool,
) -> Server:
    _check_ssl_arguments(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    if sock is not None:
        check_not_ssl_socket(sock)
    by_address = host is not None or port is not None
    if by_address:
        if sock is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
    else:
        if sock is None:
            raise ValueError("Neither host/port nor sock were specified")
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
    tls = server_tls(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    if loop_host.loop.is_closed():
        raise RuntimeError("Event loop is closed")

    if by_address:
        if reuse_address is None:
            reuse_address = os.name == "posix" and sys.platform != "cygwin"
        hosts: Iterable[str | None]
        if host == "":
            hosts = [None]
        elif isinstance(host, str) or not isinstance(host, Iterable):
            hosts = [host]
        else:
            hosts = host
        infos: dict[_AddrInfo, None] = {}  # ordered, without duplicates
        for one_host in hosts:
            for info in await _resolve(loop_host.loop, one_host, port, family, flags):
                infos.setdefault(info)
        sockets = _open_listening_sockets(
            list(infos),
            reuse_address=reuse_address,
            reuse_port=reuse_port,
            keep_alive=keep_alive,
        )
    else:
        assert sock is not None
        sockets = [sock]

    for listening in sockets:
        listening.setblocking(False)
    server = Server(loop_host, sockets, protocol_factory, backlog, tls=tls)
    await _start(server, start_serving)
    return server


# -- Unix ------------------------------------------------------------------------


async def create_unix_server(
    loop_host: Host,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    path: str | bytes | os.PathLike[str] | None,
    *,
    sock: socket.socket | None,
    backlog: int,
    ssl: _ssl.SSLContext | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
    start_serving: bool,
    cleanup_socket: bool,
) -> Server:
    _check_ssl_arguments(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
    elif sock is None:
        raise ValueError("path was not specified, and no sock specified")
    elif sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
    tls = server_tls(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    if loop_host.loop.is_closed():
        raise RuntimeError("Event loop is closed")

    if path is not None:
        fspath: _UnixPath = os.fspath(path)
        if not _is_abstract(fspath):
            remove_stale_socket_file(fspath)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(fspath)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise OSError(
                    errno.EADDRINUSE, f"Address {fspath!r} is already in use"
                ) from None
            raise
        except BaseException:
            sock.close()
            raise
    assert sock is not None

    unix_files: dict[socket.socket, tuple[_UnixPath, int, int]] = {}
    if cleanup_socket:
        bound: _UnixPath = sock.getsockname()
        if not _is_abstract(bound):
            try:
                st = os.stat(bound)
            except FileNotFoundError:
                pass
            else:
                unix_files[sock] = (bound, st.st_ino, st.st_dev)

    sock.setblocking(False)
    server = Server(loop_host, [sock], protocol_factory, backlog, unix_files, tls=tls)
    await _start(server, start_serving)
    return server


async def _start(server: Server, start_serving: bool) -> None:
    """Start serving if asked; if that fails (``listen()`` rejecting the backlog),
    close the server, whose sockets would stay open until the loop closes."""
    if not start_serving:
        return
    try:
        await server.start_serving()
    except BaseException:
        server.close()
        raise
