"""The ``ssl`` arguments of the connection and server methods, checked as
asyncio checks them, with asyncio's messages."""

from __future__ import annotations

import socket
import ssl as _ssl

from .._transports._tls import TLSOptions, check_timeouts, client_context


def check_only_with_ssl(ssl: object, **options: object) -> None:
    """Refuse each of *options* (checked in their order) that is set without
    *ssl*."""
    if ssl:
        return
    for name, value in options.items():
        if value is not None:
            raise ValueError(f"{name} is only meaningful with ssl")


def check_not_ssl_socket(sock: socket.socket) -> None:
    if isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def client_tls(
    ssl: bool | _ssl.SSLContext | None,
    server_hostname: str | None,
    handshake_timeout: float | None,
    shutdown_timeout: float | None,
) -> TLSOptions | None:
    """The client side's TLS, or None without *ssl* (``True``: a default
    context)."""
    if not ssl:
        return None
    check_timeouts(handshake_timeout, shutdown_timeout)
    return TLSOptions(
        client_context(ssl),
        server_hostname=server_hostname,
        handshake_timeout=handshake_timeout,
        shutdown_timeout=shutdown_timeout,
    )


def server_tls(
    ssl: object,
    handshake_timeout: float | None,
    shutdown_timeout: float | None,
) -> TLSOptions | None:
    """The server side's TLS, or None without *ssl* (a context: as in asyncio,
    anything else fails when a connection comes)."""
    if not ssl:
        return None
    check_timeouts(handshake_timeout, shutdown_timeout)
    return TLSOptions(
        ssl,  # type: ignore[arg-type]
        server_side=True,
        handshake_timeout=handshake_timeout,
        shutdown_timeout=shutdown_timeout,
    )
