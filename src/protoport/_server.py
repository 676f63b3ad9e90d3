"""Listening: create_server, create_unix_server and the Server object."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl as _ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._loop import Loop
    from ._stream_transport import StreamTransport


class Server(asyncio.AbstractServer):
    def _attach(self, transport: StreamTransport) -> None:
        raise NotImplementedError

    def _detach(self, transport: StreamTransport) -> None:
        raise NotImplementedError


async def create_server(
    loop: Loop,
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
    raise NotImplementedError


async def create_unix_server(
    loop: Loop,
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
    raise NotImplementedError
