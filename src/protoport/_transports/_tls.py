"""TLS: the handshake with asyncio's timeout and messages, and the TLS transport."""

from __future__ import annotations

import ssl as _ssl
import weakref
from dataclasses import dataclass
from typing import Any

import anyio
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from .._core._errors import logger
from .._core._socket_stream import SocketStream
from .._core._write_buffer import WriteBuffer
from ._stream import StreamTransport

#: asyncio's defaults (``asyncio.constants``).
SSL_HANDSHAKE_TIMEOUT = 60.0
SSL_SHUTDOWN_TIMEOUT = 30.0
#: High watermark of a TLS transport's write buffer, as asyncio's.
TLS_HIGH_WATER = 512 * 1024


@dataclass(frozen=True)
class TLSOptions:
    """How a connection is to be wrapped in TLS."""

    context: _ssl.SSLContext
    server_side: bool = False
    #: The name sent and checked on the client side (None or empty: none).
    server_hostname: str | None = None
    #: Seconds; None for asyncio's defaults (60 s and 30 s).
    handshake_timeout: float | None = None
    shutdown_timeout: float | None = None


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


#: The contexts made for ``ssl=True``: as asyncio, an empty ``server_hostname``
#: turns their host name check off (the certificate is still verified).
_default_contexts: weakref.WeakSet[_ssl.SSLContext] = weakref.WeakSet()


def client_context(ssl: bool | _ssl.SSLContext) -> _ssl.SSLContext:
    """``ssl=True`` means a default context: the peer's certificate and host name
    are verified."""
    if isinstance(ssl, _ssl.SSLContext):
        return ssl
    context = _ssl.create_default_context()
    _default_contexts.add(context)
    return context


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
    # As asyncio: no name is sent or checked on the server side, and an empty
    # name means none (with ssl=True, no host name check either).
    if server_side or not server_hostname:
        server_hostname = None
        if not server_side and context in _default_contexts:
            context.check_hostname = False
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
    shutdown timeout (default 30 s) for the peer's before closing the socket; as in
    asyncio, the protocol then gets ``eof_received()`` (once the peer has answered
    or closed) before ``connection_lost(None)``, or ``connection_lost()`` with
    ``TimeoutError('SSL shutdown timed out')`` when the peer never answers. The end
    of the peer's stream always closes the transport, as in asyncio.
    """

    __slots__ = ("_eof_delivered", "_shutdown_timeout")

    _write_buffer_type = TLSWriteBuffer
    _lost_at_close = False
    _callback_error_message = "Fatal error on SSL protocol"
    _lost_write_warning = "SSL connection is closed"

    def __init__(
        self,
        *args: Any,
        ssl_shutdown_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._shutdown_timeout = (
            SSL_SHUTDOWN_TIMEOUT
            if ssl_shutdown_timeout is None
            else ssl_shutdown_timeout
        )
        self._eof_delivered = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data: expecting a bytes-like instance, got {type(data).__name__}"
            )
        super().write(data)

    def can_write_eof(self) -> bool:
        """False: TLS cannot half-close."""
        return False

    def write_eof(self) -> None:
        """Raise :exc:`NotImplementedError` (without a message, as asyncio's
        TLS transport does)."""
        raise NotImplementedError

    def _eof_received(self) -> None:
        if self._call_eof_received():
            self.close()

    def _call_eof_received(self) -> bool:
        """Call ``eof_received()`` once; False if it raised (the transport is then
        closed with that exception)."""
        self._eof_delivered = True
        try:
            keep_open = self._host.invoke(self._protocol.eof_received)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._report_eof_error(exc)
            return False
        if keep_open:
            logger.warning(
                "returning true from eof_received() has no effect when using ssl"
            )
        return True

    def _report_eof_error(self, exc: BaseException) -> None:
        message = "Error calling eof_received()"
        if self._finished:
            # Called while closing: connection_lost() gets the exception.
            self._report_error(exc, message)
            self._exc = exc
        else:
            self._fatal_error(exc, message)

    async def _close_stream(self, graceful: bool) -> None:
        stream = self._stream
        assert isinstance(stream, TLSStream)
        if graceful:
            await self._shut_down(stream)
        # The TLS stream is not standard-compatible: closing it only closes the
        # stream underneath, which a socket of protoport's own does at once.
        underneath = stream.transport_stream
        if isinstance(underneath, SocketStream):
            underneath.close_now()
        else:
            await anyio.aclose_forcefully(stream)

    async def _shut_down(self, stream: TLSStream) -> None:
        """Send ``close_notify`` and wait for the peer's, within the shutdown
        timeout (``abort()`` cuts it short): what ``connection_lost()`` gets,
        and whether ``eof_received()`` is called, follow asyncio."""
        clean = False
        read_bio = getattr(stream, "_read_bio", None)
        with anyio.move_on_after(self._shutdown_timeout) as scope:
            self._close_scope = scope
            try:
                # As asyncio: once the peer has closed the connection itself
                # (without a TLS shutdown), no close_notify is sent.
                if not (isinstance(read_bio, _ssl.MemoryBIO) and read_bio.eof):
                    await stream.unwrap()
            except EndOfStream:
                # The peer closed without answering: as clean as asyncio sees it.
                clean = True
            except BrokenResourceError as exc:
                if isinstance(exc.__cause__, OSError):
                    self._exc = exc.__cause__
            except OSError as exc:
                # E.g. application data after our close_notify: as asyncio,
                # connection_lost() gets the error.
                self._exc = exc
            except ClosedResourceError:
                pass
            else:
                clean = True
        self._close_scope = None
        if scope.cancelled_caught:
            # Cut short by abort() rather than by the timeout: nothing to report.
            if anyio.current_time() >= scope.deadline:
                self._exc = TimeoutError("SSL shutdown timed out")
        elif clean and not self._eof_delivered:
            self._call_eof_received()


def is_tls(stream: ByteStream) -> bool:
    return isinstance(stream, TLSStream)
