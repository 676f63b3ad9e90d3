"""Opening connections: create_connection, create_unix_connection,
connect_accepted_socket, and name resolution."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl as _ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._loop import Loop
    from ._stream_transport import StreamTransport

_P = TypeVar("_P", bound=asyncio.BaseProtocol)


async def create_connection(
    loop: Loop,
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
    raise NotImplementedError


async def create_unix_connection(
    loop: Loop,
    protocol_factory: Callable[[], _P],
    path: str | bytes | os.PathLike[str] | None,
    *,
    ssl: bool | _ssl.SSLContext | None,
    sock: socket.socket | None,
    server_hostname: str | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
) -> tuple[StreamTransport, _P]:
    raise NotImplementedError


async def connect_accepted_socket(
    loop: Loop,
    protocol_factory: Callable[[], _P],
    sock: socket.socket,
    *,
    ssl: bool | _ssl.SSLContext | None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
) -> tuple[StreamTransport, _P]:
    raise NotImplementedError


async def getaddrinfo(
    host: bytes | str | None,
    port: bytes | str | int | None,
    *,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[Any]:
    raise NotImplementedError


async def getnameinfo(
    sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int = 0
) -> tuple[str, str]:
    raise NotImplementedError
