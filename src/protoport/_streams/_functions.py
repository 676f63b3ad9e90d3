"""The stream functions of asyncio: open_connection, start_server and their Unix
twins, on the loop of :func:`protoport.get_running_loop`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._loop._loop import get_running_loop
from ._reader import DEFAULT_LIMIT, StreamReader
from ._writer import (
    ClientConnectedCallback,
    StreamReaderProtocol,
    StreamWriter,
)

if TYPE_CHECKING:
    from .._loop._servers import Server


async def open_connection(
    host: str | None = None,
    port: int | str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> tuple[StreamReader, StreamWriter]:
    """Open a TCP connection and return ``(reader, writer)``, as
    :func:`asyncio.open_connection`.

    The other arguments are those of :meth:`protoport.Loop.create_connection`
    (``ssl``, ``family``, ``sock``, ``local_addr``, ``happy_eyeballs_delay``, ...);
    *limit* is the reader's buffer limit.
    """
    loop = get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **kwds)
    writer = StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_server(
    client_connected_cb: ClientConnectedCallback,
    host: str | Sequence[str] | None = None,
    port: int | str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> Server:
    """Listen on TCP sockets and call *client_connected_cb* with
    ``(reader, writer)`` for each connection, as :func:`asyncio.start_server`.

    *client_connected_cb* may be a plain function or a coroutine function, whose
    coroutine then runs as a task of the loop. The other arguments are those of
    :meth:`protoport.Loop.create_server`; *limit* is each reader's buffer limit.
    Returns the loop's :class:`~asyncio.Server`-like object.
    """
    loop = get_running_loop()

    def factory() -> StreamReaderProtocol:
        reader = StreamReader(limit=limit, loop=loop)
        return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await loop.create_server(factory, host, port, **kwds)


async def open_unix_connection(
    path: str | bytes | os.PathLike[str] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> tuple[StreamReader, StreamWriter]:
    """Open a Unix socket connection and return ``(reader, writer)``, as
    :func:`asyncio.open_unix_connection`."""
    loop = get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_unix_connection(lambda: protocol, path, **kwds)
    writer = StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_unix_server(
    client_connected_cb: ClientConnectedCallback,
    path: str | bytes | os.PathLike[str] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> Server:
    """Listen on a Unix socket and call *client_connected_cb* with
    ``(reader, writer)`` for each connection, as :func:`asyncio.start_unix_server`.
    """
    loop = get_running_loop()

    def factory() -> StreamReaderProtocol:
        reader = StreamReader(limit=limit, loop=loop)
        return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await loop.create_unix_server(factory, path, **kwds)
