"""Opening connections: create_connection, create_unix_connection and
connect_accepted_socket.

The argument checks, their order, the exceptions and their messages are those of
CPython's asyncio (3.13); the work is done with AnyIO, so it runs under Trio and
asyncio alike: name resolution in a worker thread, connection attempts on
non-blocking sockets that wait for writability, Happy Eyeballs as a task group.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import ssl as _ssl
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._core._connect import sock_connect
from .._core._errors import logger
from .._core._host import Host
from .._transports._pipeline import connect_socket
from ._dns import AddrInfo, resolve
from ._tls_arguments import (
    check_not_ssl_socket,
    check_only_with_ssl,
    client_tls,
    server_tls,
)

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import ExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from .._transports._stream import StreamTransport

_P = TypeVar("_P", bound=asyncio.BaseProtocol)


def _interleave(infos: list[AddrInfo], first_family_count: int = 1) -> list[AddrInfo]:
    """Reorder addresses so that families alternate, starting with
    *first_family_count* addresses of the first family."""
    by_family: dict[int, list[AddrInfo]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    groups = list(by_family.values())
    reordered: list[AddrInfo] = []
    if first_family_count > 1:
        reordered.extend(groups[0][: first_family_count - 1])
        del groups[0][: first_family_count - 1]
    for row in itertools.zip_longest(*groups):
        reordered.extend(info for info in row if info is not None)
    return reordered


# -- connecting one socket ------------------------------------------------------


async def _sock_connect(loop_host: Host, sock: socket.socket, address: Any) -> None:
    await sock_connect(sock, address, loop_host.readers(), loop_host.loop.create_future)


async def _connect_one(
    loop_host: Host,
    errors: list[list[OSError]],
    info: AddrInfo,
    local_infos: list[AddrInfo] | None,
) -> socket.socket:
    """Create, bind (if asked) and connect one socket; on failure close it and
    record the OSError(s) in a list of its own, appended to *errors*."""
    mine: list[OSError] = []
    errors.append(mine)
    family, type_, proto, _, address = info
    sock: socket.socket | None = None
    try:
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setblocking(False)
        if local_infos is not None:
            for local_family, _, _, _, local_address in local_infos:
                if local_family != family:
                    continue
                try:
                    sock.bind(local_address)
                    break
                except OSError as exc:
                    message = (
                        f"error while attempting to bind on address "
                        f"{local_address!r}: {str(exc).lower()}"
                    )
                    mine.append(OSError(exc.errno, message))
            else:
                if mine:
                    raise mine.pop()
                raise OSError(f"no matching local address with {family=} found")
        await _sock_connect(loop_host, sock, address)
        return sock
    except OSError as exc:
        mine.append(exc)
        if sock is not None:
            sock.close()
        raise
    except BaseException:
        if sock is not None:
            sock.close()
        raise


async def _staggered_connect(
    loop_host: Host,
    infos: list[AddrInfo],
    local_infos: list[AddrInfo] | None,
    delay: float,
    errors: list[list[OSError]],
) -> socket.socket | None:
    """Happy Eyeballs: start one attempt per address, the next one when the
    previous failed or *delay* seconds passed; the first to connect wins and the
    others are cancelled (each closing its socket)."""
    winner: socket.socket | None = None
    other_error: Exception | None = None

    async def attempt(info: AddrInfo, failed: anyio.Event) -> None:
        nonlocal winner, other_error
        try:
            sock = await _connect_one(loop_host, errors, info, local_infos)
        except OSError:
            failed.set()
            return
        except Exception as exc:
            if other_error is None:
                other_error = exc
            failed.set()
            return
        if winner is None:
            winner = sock
            group.cancel_scope.cancel()
        else:  # a second success before the cancellation reached it
            sock.close()

    try:
        async with anyio.create_task_group() as group:
            for info in infos:
                failed = anyio.Event()
                group.start_soon(attempt, info, failed)
                with anyio.move_on_after(delay):
                    await failed.wait()
    except BaseException:
        if winner is not None:
            winner.close()
        raise
    if winner is None and other_error is not None and not any(errors):
        raise other_error
    return winner


def _raise_connect_errors(errors: list[list[OSError]], all_errors: bool) -> None:
    flat = [exc for sub in errors for exc in sub]
    if all_errors:
        raise ExceptionGroup("create_connection failed", flat)
    if len(flat) == 1:
        raise flat[0]
    # One error when they all read the same, else one naming them all.
    model = str(flat[0])
    if all(str(exc) == model for exc in flat):
        raise flat[0]
    raise OSError("Multiple exceptions: {}".format(", ".join(str(e) for e in flat)))


# -- the loop methods -----------------------------------------------------------


def awaits_loop_futures(
    *args: Any,
    ssl: object = None,
    happy_eyeballs_delay: float | None = None,
    **kwargs: Any,
) -> bool:
    """Whether a call of ``create_connection()`` or ``create_unix_connection()``
    with these arguments waits for nothing but the loop's futures (and name
    resolution, a loop method of its own): a TLS handshake and Happy Eyeballs
    wait the AnyIO way."""
    return not ssl and happy_eyeballs_delay is None


async def create_connection(
    loop_host: Host,
    protocol_factory: Callable[[], _P],
    host: str | None,
    port: int | str | None,
    *,
    ssl: bool | _ssl.SSLContext | None,
    family: int,
    proto: int,
    flags: int,
    sock: socket.socket | None,
    local_addr: tuple[str, int] | None,
    server_hostname: str | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
    happy_eyeballs_delay: float | None,
    interleave: int | None,
    all_errors: bool,
) -> tuple[StreamTransport, _P]:
    check_only_with_ssl(
        ssl,
        server_hostname=server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    if server_hostname is None and ssl:
        # The host is the default name to check the certificate against.
        if not host:
            raise ValueError(
                "You must set server_hostname when using ssl without a host"
            )
        server_hostname = host
    if sock is not None:
        check_not_ssl_socket(sock)
    if happy_eyeballs_delay is not None and interleave is None:
        interleave = 1  # Happy Eyeballs alternates families by default

    if host is not None or port is not None:
        if sock is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
    else:
        if sock is None:
            raise ValueError("host and port was not specified and no sock specified")
        # Any family (AF_UNIX included) is accepted, as long as it is a stream.
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
    tls = client_tls(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)

    if sock is None:
        loop = loop_host.loop
        infos = await resolve(
            loop,
            (host, port),
            type=socket.SOCK_STREAM,
            family=family,
            proto=proto,
            flags=flags,
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        local_infos: list[AddrInfo] | None = None
        if local_addr is not None:
            local_infos = await resolve(
                loop,
                local_addr,
                type=socket.SOCK_STREAM,
                family=family,
                proto=proto,
                flags=flags,
            )
            if not local_infos:
                raise OSError("getaddrinfo() returned empty list")
        if interleave:
            infos = _interleave(infos, interleave)

        errors: list[list[OSError]] = []
        if happy_eyeballs_delay is None:
            for info in infos:
                try:
                    sock = await _connect_one(loop_host, errors, info, local_infos)
                except OSError:
                    continue
                break
        else:
            sock = await _staggered_connect(
                loop_host, infos, local_infos, happy_eyeballs_delay, errors
            )
        if sock is None:
            _raise_connect_errors(errors, all_errors)
        assert sock is not None
    # From here on the loop owns the socket: it closes it if the protocol
    # factory raises.
    transport, protocol = await connect_socket(
        loop_host, protocol_factory, sock, tls=tls
    )
    if loop_host.loop.get_debug():
        logger.debug(
            "%r connected to %s:%r: (%r, %r)",
            transport.get_extra_info("socket"),
            host,
            port,
            transport,
            protocol,
        )
    return transport, protocol


async def create_unix_connection(
    loop_host: Host,
    protocol_factory: Callable[[], _P],
    path: str | bytes | os.PathLike[str] | None,
    *,
    ssl: bool | _ssl.SSLContext | None,
    sock: socket.socket | None,
    server_hostname: str | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
) -> tuple[StreamTransport, _P]:
    if ssl and server_hostname is None:
        raise ValueError("you have to pass server_hostname when using ssl")
    check_only_with_ssl(
        ssl,
        server_hostname=server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )

    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
        address = os.fspath(path)
        tls = client_tls(
            ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
        try:
            sock.setblocking(False)
            await _sock_connect(loop_host, sock, address)
        except BaseException:
            sock.close()
            raise
        return await connect_socket(loop_host, protocol_factory, sock, tls=tls)

    if sock is None:
        raise ValueError("no path and sock were specified")
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
    tls = client_tls(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
    return await connect_socket(loop_host, protocol_factory, sock, tls=tls)


async def connect_accepted_socket(
    loop_host: Host,
    protocol_factory: Callable[[], _P],
    sock: socket.socket,
    *,
    ssl: bool | _ssl.SSLContext | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
) -> tuple[StreamTransport, _P]:
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A Stream Socket was expected, got {sock!r}")
    check_only_with_ssl(
        ssl,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    check_not_ssl_socket(sock)
    tls = server_tls(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
    if tls is not None and not isinstance(ssl, _ssl.SSLContext):
        raise ValueError("Server side SSL needs a valid SSLContext")
    transport, protocol = await connect_socket(
        loop_host, protocol_factory, sock, tls=tls
    )
    if loop_host.loop.get_debug():
        logger.debug(
            "%r handled: (%r, %r)",
            transport.get_extra_info("socket"),
            transport,
            protocol,
        )
    return transport, protocol
