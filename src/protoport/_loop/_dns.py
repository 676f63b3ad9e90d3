"""Name resolution: getaddrinfo and getnameinfo in worker threads, and the
lookups that a numeric address does not need."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread

# One getaddrinfo() result: (family, type, proto, canonname, sockaddr).
AddrInfo = tuple[int, int, int, str, Any]

_HAS_IPV6 = hasattr(socket, "AF_INET6")


async def getaddrinfo(
    host: bytes | str | None,
    port: bytes | str | int | None,
    *,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[Any]:
    """Call :func:`socket.getaddrinfo` in a worker thread.

    As with asyncio's executor, a cancelled caller does not wait for the lookup
    to finish: the thread is left to complete on its own.
    """
    return await anyio.to_thread.run_sync(
        socket.getaddrinfo,
        host,
        port,
        family,
        type,
        proto,
        flags,
        abandon_on_cancel=True,
    )


async def getnameinfo(
    sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int = 0
) -> tuple[str, str]:
    """Call :func:`socket.getnameinfo` in a worker thread."""
    return await anyio.to_thread.run_sync(
        socket.getnameinfo, sockaddr, flags, abandon_on_cancel=True
    )


def numeric_addrinfo(
    host: bytes | str | None,
    port: bytes | str | int | None,
    family: int,
    type: int,
    proto: int,
    flowinfo: int = 0,
    scopeid: int = 0,
) -> AddrInfo | None:
    """Return the one getaddrinfo() entry for a host that is already a numeric IP
    address, or None when a real lookup is needed."""
    if not hasattr(socket, "inet_pton"):  # pragma: no cover - every Unix has it
        return None
    if host is None or proto not in (0, socket.IPPROTO_TCP, socket.IPPROTO_UDP):
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None

    if port is None or port == "" or port == b"":
        number = 0
    else:
        # A service name such as "http" needs the real lookup.
        try:
            number = int(port)
        except (TypeError, ValueError):
            return None

    if family == socket.AF_UNSPEC:
        candidates: list[int] = [socket.AF_INET]
        if _HAS_IPV6:
            candidates.append(socket.AF_INET6)
    else:
        candidates = [family]

    text = host.decode("idna") if isinstance(host, bytes) else host
    if "%" in text:
        # A zone index ("fe80::1%eth0") is not understood by inet_pton everywhere.
        return None
    for candidate in candidates:
        try:
            socket.inet_pton(candidate, text)
        except (OSError, ValueError):
            continue
        if _HAS_IPV6 and candidate == socket.AF_INET6:
            return candidate, type, proto, "", (text, number, flowinfo, scopeid)
        return candidate, type, proto, "", (text, number)
    return None


async def resolve(
    loop: asyncio.AbstractEventLoop,
    address: Sequence[Any],
    *,
    family: int,
    type: int,
    proto: int = 0,
    flags: int = 0,
) -> list[AddrInfo]:
    """Resolve *address* for a socket of *type*, skipping the lookup for numeric
    hosts; otherwise through ``loop.getaddrinfo`` (as asyncio does)."""
    host, port = address[0], address[1]
    info = numeric_addrinfo(host, port, family, type, proto, *address[2:])
    if info is not None:
        return [info]
    infos = await loop.getaddrinfo(
        host, port, family=family, type=type, proto=proto, flags=flags
    )
    return list(infos)
