"""``get_extra_info()`` keys computed from AnyIO's typed attributes."""

from __future__ import annotations

import socket
from asyncio.trsock import TransportSocket
from typing import Any

from anyio import TypedAttributeProvider
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from ._socket_stream import SocketStream


def _address(sock: socket.socket, method: str) -> Any:
    try:
        return getattr(sock, method)()
    except OSError:
        return None


def socket_extra_info(
    sock: socket.socket, known: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``'socket'`` (wrapped as asyncio wraps it), ``'sockname'`` and
    ``'peername'`` as the socket returns them (IPv6 4-tuples included), ``None``
    when the call fails (an unconnected socket has no peer); then the *known*
    keys, which the socket is not asked for (a server knows the peer's address
    from ``accept()``)."""
    info = {"socket": TransportSocket(sock)}
    if known:
        info.update(known)
    if "sockname" not in info:
        info["sockname"] = _address(sock, "getsockname")
    if "peername" not in info:
        info["peername"] = _address(sock, "getpeername")
    return info


def stream_extra_info(
    stream: TypedAttributeProvider, known: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The extra info asyncio would give for *stream*, as of now, with the
    *known* keys (which the stream is not asked for).

    With a socket underneath: what :func:`socket_extra_info` gives.
    With TLS on top: ``'sslcontext'``, ``'ssl_object'``, ``'peercert'``,
    ``'cipher'``, ``'compression'``. Taken at creation, as asyncio does, so they
    stay readable after the connection is closed.
    """
    underneath = stream.transport_stream if isinstance(stream, TLSStream) else stream
    if isinstance(underneath, SocketStream):
        # Straight from the socket: AnyIO's extra() maps every attribute of
        # every layer (and asks the kernel for addresses) on each call.
        info = socket_extra_info(underneath.socket, known)
    else:
        info = {}
        sock: socket.socket | None = stream.extra(SocketAttribute.raw_socket, None)
        if sock is not None:
            info.update(socket_extra_info(sock))
        else:
            local = stream.extra(SocketAttribute.local_address, None)
            if local is not None:
                info["sockname"] = local
            remote = stream.extra(SocketAttribute.remote_address, None)
            if remote is not None:
                info["peername"] = remote
        if known:
            info.update(known)
    ssl_object = stream.extra(TLSAttribute.ssl_object, None)
    if ssl_object is not None:
        info["sslcontext"] = ssl_object.context
        info["ssl_object"] = ssl_object
        info["peercert"] = ssl_object.getpeercert()
        info["cipher"] = ssl_object.cipher()
        info["compression"] = ssl_object.compression()
    return info
