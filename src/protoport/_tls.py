"""TLS: the handshake with asyncio's timeout and messages, and the TLS transport."""

from __future__ import annotations

import ssl as _ssl
from typing import Any

import anyio
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from ._exception_handling import logger
from ._stream_transport import StreamTransport
from ._write_buffer import WriteBuffer

#: asyncio's defaults (``asyncio.constants``).
SSL_HANDSHAKE_TIMEOUT = 60.0
SSL_SHUTDOWN_TIMEOUT = 30.0
#: High watermark of a TLS transport's write buffer, as asyncio's.
TLS_HIGH_WATER = 512 * 1024


def check_ssl_arguments(
    ssl: bool | _ssl.SSLContext | None,
    *,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
) -> None:
    """asyncio's checks of the TLS keyword arguments, in asyncio's order."""
    if server_hostname is not None and not ssl:
        raise ValueError("server_hostname is only meaningful with ssl")
    if ssl_handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if ssl_shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def check_timeouts(
    ssl_handshake_timeout: float | None, ssl_shutdown_timeout: float | None
) -> None:
    if ssl_handshake_timeout is not None and ssl_handshake_timeout <= 0:
        raise ValueError(
            f"ssl_handshake_timeout should be a positive number, "
            f"got {ssl_handshake_timeout}"
        )
    if ssl_shutdown_timeout is not None and ssl_shutdown_timeout <= 0:
        raise ValueError(
            f"ssl_shutdown_timeout should be a positive number, "
            f"got {ssl_shutdown_timeout}"
        )


def client_context(ssl: bool | _ssl.SSLContext) -> _ssl.SSLContext:
    """``ssl=True`` means a default context: the peer's certificate and host name
    are verified."""
    if isinstance(ssl, _ssl.SSLContext):
        return ssl
    return _ssl.create_default_context()


async def handshake(
    stream: ByteStream,
    context: _ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None,
    timeout: float | None,
) -> TLSStream:
    """Wrap *stream* in TLS; on failure or timeout the stream is closed.

    :raises ConnectionAbortedError: when the handshake outlasts *timeout*
        (default 60 s), with asyncio's message
    :raises ssl.SSLError: when the handshake fails (a bad certificate, a wrong
        host name)
    """
    if timeout is None:
        timeout = SSL_HANDSHAKE_TIMEOUT
    with anyio.move_on_after(timeout):
        try:
            # Not standard-compatible on receive: a peer closing without a TLS
            # shutdown is an end of stream, as in asyncio. The transport sends
            # close_notify itself when it closes.
            return await TLSStream.wrap(
                stream,
                server_side=server_side,
                hostname=server_hostname,
                ssl_context=context,
                standard_compatible=False,
            )
        except BaseException as exc:
            await anyio.aclose_forcefully(stream)
            if isinstance(exc, (BrokenResourceError, EndOfStream)):
                cause = exc.__cause__
                if isinstance(cause, OSError):
                    raise cause from None
                raise ConnectionResetError() from None
            raise
    raise ConnectionAbortedError(
        f"SSL handshake is taking longer than {timeout} seconds: "
        "aborting the connection"
    )


class TLSWriteBuffer(WriteBuffer):
    """A TLS transport's buffer: asyncio's TLS defaults (512 KiB) and pause point
    (at the high watermark, not above it)."""

    __slots__ = ()
    default_high = TLS_HIGH_WATER
    pause_at_high = True


class TLSTransport(StreamTransport):
    """A :class:`StreamTransport` over an AnyIO :class:`~anyio.streams.tls.TLSStream`.

    TLS cannot half-close: ``can_write_eof()`` is False and ``write_eof()`` raises
    :exc:`NotImplementedError`. Closing sends ``close_notify`` and waits up to the
    shutdown timeout (default 30 s) for the peer's before closing the socket. The
    end of the peer's stream always closes the transport, as in asyncio.
    """

    _write_buffer_type = TLSWriteBuffer
    _close_timeout = SSL_SHUTDOWN_TIMEOUT

    def __init__(
        self,
        *args: Any,
        ssl_shutdown_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._close_timeout = (
            SSL_SHUTDOWN_TIMEOUT
            if ssl_shutdown_timeout is None
            else ssl_shutdown_timeout
        )

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS does not support half-closing")

    def _keep_open_after_eof(self, keep_open: object) -> bool:
        if keep_open:
            logger.warning(
                "returning true from eof_received() has no effect when using ssl"
            )
        return False

    async def _close_stream(self) -> None:
        stream = self._stream
        assert isinstance(stream, TLSStream)
        try:
            await stream.unwrap()
        except (OSError, BrokenResourceError, ClosedResourceError, EndOfStream):
            pass
        await super()._close_stream()


def is_tls(stream: ByteStream) -> bool:
    return isinstance(stream, TLSStream)
