"""The connection pipeline: make the protocol and its transport, start it, call
``connection_made()``, and undo it all on failure.

Every way a connection comes about ends here: ``connect_stream()``,
``create_connection()`` and its kin, accepted connections, and ``start_tls()``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteStream

from .._core._connect import yield_once
from .._core._connection_set import ConnectionSet
from .._core._host import Host
from .._core._socket_stream import SocketStream
from ._base import run_protocol_callback
from ._stream import StreamTransport
from ._tls import TLSOptions, TLSTransport, handshake, is_tls

_P = TypeVar("_P", bound=asyncio.BaseProtocol)

_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def _make_transport(
    host: Host,
    stream: ByteStream,
    protocol: asyncio.BaseProtocol,
    extra: dict[str, Any] | None,
    clients: ConnectionSet | None,
    ssl_shutdown_timeout: float | None,
) -> StreamTransport:
    if is_tls(stream):
        return TLSTransport(
            host,
            stream,
            protocol,
            extra,
            clients=clients,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
    return StreamTransport(host, stream, protocol, extra, clients=clients)


async def _handshake(stream: ByteStream, tls: TLSOptions) -> ByteStream:
    return await handshake(
        stream,
        tls.context,
        server_side=tls.server_side,
        server_hostname=tls.server_hostname,
        timeout=tls.handshake_timeout,
    )


def _start(
    host: Host,
    protocol_factory: Callable[[], _P],
    stream: ByteStream,
    extra: dict[str, Any] | None,
    clients: ConnectionSet | None,
    ssl_shutdown_timeout: float | None,
    reader_task: bool = True,
) -> tuple[StreamTransport, _P]:
    """Make the protocol and its transport, and start it (``connection_made()``
    included), as a callback of the loop: the caller closes *stream* if this
    raises."""
    if host.loop.is_closed():
        raise RuntimeError("Event loop is closed")
    protocol = protocol_factory()
    transport = _make_transport(
        host, stream, protocol, extra, clients, ssl_shutdown_timeout
    )
    transport.start(reader_task=reader_task)
    return transport, protocol


async def connect(
    host: Host,
    protocol_factory: Callable[[], _P],
    stream: ByteStream,
    *,
    extra: dict[str, Any] | None = None,
    clients: ConnectionSet | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> tuple[StreamTransport, _P]:
    """Run a new protocol over *stream*; return once ``connection_made()`` ran.

    The transport owns the stream from then on. If the loop is closed, the
    factory raises or makes no protocol (nothing with ``connection_made()``), the
    stream is closed and the exception propagates, with no transport left
    behind; a caller cancelled meanwhile does not leave an orphaned transport
    behind either (as in asyncio).
    """
    try:
        transport, protocol = host.invoke(
            _start, host, protocol_factory, stream, extra, clients, ssl_shutdown_timeout
        )
    except BaseException:
        if isinstance(stream, SocketStream):
            stream.close_now()
        else:
            await anyio.aclose_forcefully(stream)
        raise
    try:
        # As asyncio's create_connection(), which returns once a callback after
        # connection_made() has run.
        await yield_once()
    except BaseException:
        transport.close()
        raise
    return transport, protocol


def _set_nodelay(sock: socket.socket) -> None:
    """TCP gets TCP_NODELAY, as asyncio gives it."""
    if sock.family in _TCP_FAMILIES:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def accept_socket(
    host: Host,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    sock: socket.socket,
    *,
    extra: dict[str, Any] | None,
    clients: ConnectionSet | None,
) -> None:
    """Run a new protocol over a socket a server accepted, at once: a plain
    connection is set up without waiting for anything (the socket is closed if
    that fails, and the exception propagates)."""
    _set_nodelay(sock)
    stream = SocketStream(sock)
    try:
        host.invoke(_start, host, protocol_factory, stream, extra, clients, None)
    except BaseException:
        stream.close_now()
        raise


async def accept_tls_socket(
    host: Host,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    sock: socket.socket,
    tls: TLSOptions,
    *,
    extra: dict[str, Any] | None,
    clients: ConnectionSet | None,
) -> StreamTransport:
    """Run a new protocol over a socket a TLS server accepted, once the
    handshake is done, without a reader task: the caller, a task of the loop's,
    goes on with the transport's :meth:`~StreamTransport.run` (a task fewer per
    connection). The socket is closed if the handshake or the set-up fails, and
    the exception propagates."""
    _set_nodelay(sock)
    tls_stream = await _handshake(SocketStream(sock), tls)
    try:
        transport, _ = host.invoke(
            _start,
            host,
            protocol_factory,
            tls_stream,
            extra,
            clients,
            tls.shutdown_timeout,
            False,
        )
    except BaseException:
        await anyio.aclose_forcefully(tls_stream)
        raise
    return transport


async def connect_socket(
    host: Host,
    protocol_factory: Callable[[], _P],
    sock: socket.socket,
    *,
    extra: dict[str, Any] | None = None,
    clients: ConnectionSet | None = None,
    tls: TLSOptions | None = None,
) -> tuple[StreamTransport, _P]:
    """Run a new protocol over a connected stream socket (TCP gets TCP_NODELAY,
    as asyncio gives it), after a TLS handshake when *tls* is given; the socket
    is closed if that fails."""
    _set_nodelay(sock)
    stream: ByteStream = SocketStream(sock)
    if tls is None:
        return await connect(
            host, protocol_factory, stream, extra=extra, clients=clients
        )
    tls_stream = await _handshake(stream, tls)
    return await connect(
        host,
        protocol_factory,
        tls_stream,
        extra=extra,
        clients=clients,
        ssl_shutdown_timeout=tls.shutdown_timeout,
    )


async def upgrade(
    host: Host,
    transport: StreamTransport,
    protocol: asyncio.BaseProtocol,
    tls: TLSOptions,
) -> StreamTransport:
    """Move *transport*'s connection under TLS, as ``start_tls()`` does.

    Bytes written before are sent first, in clear; bytes received and not yet
    delivered are handed to the TLS layer. *protocol* is not told
    ``connection_made()`` again. If the handshake fails, *protocol* gets
    ``connection_lost()`` with its error, which propagates.
    """
    handover = await transport.hand_over()
    stream = handover.stream
    if handover.unread:
        buffered = BufferedByteStream(stream)
        buffered.feed_data(handover.unread)
        stream = buffered
    try:
        tls_stream = await _handshake(stream, tls)
    except BaseException as exc:
        # The handshake closed the stream; the connection ends here.
        lost = exc if isinstance(exc, Exception) else None
        run_protocol_callback(host, protocol, "connection_lost", lost)
        if handover.clients is not None:
            handover.clients.discard(transport)
        raise
    new = _make_transport(
        host, tls_stream, protocol, None, handover.clients, tls.shutdown_timeout
    )
    if handover.clients is not None:
        handover.clients.discard(transport)
    new.start(call_connection_made=False)
    return new
