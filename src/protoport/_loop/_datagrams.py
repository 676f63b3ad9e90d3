"""Opening datagram endpoints: create_datagram_endpoint.

The argument checks, their order, the exceptions and their messages are those of
CPython's asyncio (3.13); names are resolved in a worker thread, and a datagram
socket connects without waiting, so nothing here blocks either runtime.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from .._core._errors import logger
from .._core._host import Host
from .._transports._datagram import DatagramTransport
from ._dns import resolve
from ._socket_setup import remove_stale_socket_file, set_reuse_port

_P = TypeVar("_P", bound=asyncio.BaseProtocol)

#: ``((family, proto), (local address, remote address))``: one way to make the
#: endpoint, tried in turn.
_Candidate = tuple[tuple[int, int], tuple[Any, Any]]


def _check_given_socket(
    sock: socket.socket,
    local_addr: Any,
    remote_addr: Any,
    family: int,
    proto: int,
    flags: int,
    reuse_port: bool | None,
    allow_broadcast: bool | None,
) -> None:
    if sock.type == socket.SOCK_STREAM:
        raise ValueError(f"A datagram socket was expected, got {sock!r}")
    options = {
        "local_addr": local_addr,
        "remote_addr": remote_addr,
        "family": family,
        "proto": proto,
        "flags": flags,
        "reuse_port": reuse_port,
        "allow_broadcast": allow_broadcast,
    }
    problems = ", ".join(f"{key}={value}" for key, value in options.items() if value)
    if problems:
        raise ValueError(
            "socket modifier keyword arguments can not be used "
            f"when sock is specified. ({problems})"
        )


def _unix_candidates(
    local_addr: Any, remote_addr: Any, family: int, proto: int
) -> list[_Candidate]:
    for addr in (local_addr, remote_addr):
        if addr is not None and not isinstance(addr, str):
            raise TypeError("string is expected")
    if local_addr and local_addr[0] not in (0, "\x00"):
        # A socket file left by an earlier endpoint would make bind() fail.
        remove_stale_socket_file(local_addr)
    return [((family, proto), (local_addr, remote_addr))]


async def _inet_candidates(
    loop: asyncio.AbstractEventLoop,
    local_addr: Any,
    remote_addr: Any,
    family: int,
    proto: int,
    flags: int,
) -> list[_Candidate]:
    """Resolve both addresses and pair them by ``(family, proto)``, in the order
    the resolver gave; keep only the pairs that have each address asked for."""
    pairs: dict[tuple[int, int], list[Any]] = {}
    for index, addr in ((0, local_addr), (1, remote_addr)):
        if addr is None:
            continue
        if not (isinstance(addr, tuple) and len(addr) == 2):
            raise TypeError("2-tuple is expected")
        infos = await resolve(
            loop, addr, type=socket.SOCK_DGRAM, family=family, proto=proto, flags=flags
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        for info_family, _, info_proto, _, address in infos:
            pair = pairs.setdefault((info_family, info_proto), [None, None])
            pair[index] = address
    candidates: list[_Candidate] = [
        (key, (local, remote))
        for key, (local, remote) in pairs.items()
        if not ((local_addr and local is None) or (remote_addr and remote is None))
    ]
    if not candidates:
        raise ValueError("can not get address information")
    return candidates


def _open_socket(
    family: int,
    proto: int,
    local_address: Any,
    remote_address: Any,
    reuse_port: bool | None,
    allow_broadcast: bool | None,
) -> socket.socket:
    """A non-blocking datagram socket, bound and connected as asked. With
    *allow_broadcast* it is not connected: ``sendto()`` sends to the remote
    address instead."""
    sock = socket.socket(family=family, type=socket.SOCK_DGRAM, proto=proto)
    try:
        if reuse_port:
            set_reuse_port(sock)
        if allow_broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setblocking(False)
        if local_address:
            sock.bind(local_address)
        if remote_address and not allow_broadcast:
            # A datagram socket connects at once: nothing to wait for.
            sock.connect(remote_address)
    except BaseException:
        sock.close()
        raise
    return sock


async def create_datagram_endpoint(
    host: Host,
    protocol_factory: Callable[[], _P],
    local_addr: Any,
    remote_addr: Any,
    *,
    family: int,
    proto: int,
    flags: int,
    reuse_port: bool | None,
    allow_broadcast: bool | None,
    sock: socket.socket | None,
) -> tuple[DatagramTransport, _P]:
    remote: Any = None
    if sock is not None:
        _check_given_socket(
            sock,
            local_addr,
            remote_addr,
            family,
            proto,
            flags,
            reuse_port,
            allow_broadcast,
        )
    else:
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            candidates: list[_Candidate] = [((family, proto), (None, None))]
        elif family == getattr(socket, "AF_UNIX", None):
            candidates = _unix_candidates(local_addr, remote_addr, family, proto)
        else:
            candidates = await _inet_candidates(
                host.loop, local_addr, remote_addr, family, proto, flags
            )
        errors: list[OSError] = []
        for (one_family, one_proto), (local_address, remote_address) in candidates:
            try:
                sock = _open_socket(
                    one_family,
                    one_proto,
                    local_address,
                    remote_address,
                    reuse_port,
                    allow_broadcast,
                )
            except OSError as exc:
                errors.append(exc)
                continue
            if remote_addr:
                remote = remote_address
            break
        else:
            raise errors[0]
    assert sock is not None
    transport, protocol = await _start(host, protocol_factory, sock, remote)
    if host.loop.get_debug():
        if local_addr:
            logger.info(
                "Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                local_addr,
                remote_addr,
                transport,
                protocol,
            )
        else:
            logger.debug(
                "Datagram endpoint remote_addr=%r created: (%r, %r)",
                remote_addr,
                transport,
                protocol,
            )
    return transport, protocol


async def _start(
    host: Host,
    protocol_factory: Callable[[], _P],
    sock: socket.socket,
    remote: Any,
) -> tuple[DatagramTransport, _P]:
    """Make the protocol and its transport and start them; return once
    ``connection_made()`` ran. The socket is closed if the loop is closed or
    the factory raises; a caller cancelled meanwhile closes the transport."""
    try:
        if host.loop.is_closed():
            raise RuntimeError("Event loop is closed")
        protocol = host.invoke(protocol_factory)
    except BaseException:
        sock.close()
        raise
    transport = DatagramTransport(host, sock, protocol, remote)
    transport.start()
    try:
        await anyio.lowlevel.checkpoint()
    except BaseException:
        transport.close()
        raise
    return transport, protocol
