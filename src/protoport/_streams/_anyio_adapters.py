"""Adapters between asyncio's streams and AnyIO's byte streams, both ways."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.lowlevel
from anyio import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    EndOfStream,
)
from anyio.abc import ByteStream, SocketAttribute

from .._backends import wait_done
from .._loop._loop import get_running_loop
from .._transports._stream import StreamTransport
from ._reader import DEFAULT_LIMIT, StreamReader, is_waiting
from ._writer import StreamReaderProtocol, StreamWriter, close_waiter


async def open_stream_pair(
    stream: ByteStream, *, limit: int = DEFAULT_LIMIT
) -> tuple[StreamReader, StreamWriter]:
    """Run asyncio's stream classes over any AnyIO byte stream.

    Returns ``(reader, writer)`` as :func:`asyncio.open_connection` does, for a
    memory stream pair, a TLS stream, a stapled stream or any other
    :class:`~anyio.abc.ByteStream`, on the loop of :func:`protoport.get_running_loop`
    (which owns the stream from then on).

    :param limit: the reader's buffer limit
    """
    loop = get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.connect_stream(lambda: protocol, stream)
    writer = StreamWriter(transport, protocol, reader, loop)
    return reader, writer


def as_anyio_stream(reader: StreamReader, writer: StreamWriter) -> ByteStream:
    """Present an asyncio-style ``(reader, writer)`` pair as an AnyIO
    :class:`~anyio.abc.ByteStream`.

    ``receive(n)`` is ``reader.read(n)``, raising :exc:`anyio.EndOfStream` at the
    end; ``send(data)`` is ``writer.write(data)`` then ``await writer.drain()``;
    ``send_eof()`` is ``writer.write_eof()``; ``aclose()`` closes the writer and
    waits until the connection is closed. Connection errors become
    :exc:`anyio.BrokenResourceError`, use after ``aclose()``
    :exc:`anyio.ClosedResourceError`. The typed attributes are those of the AnyIO
    stream under a protoport transport, or else the socket attributes that the
    transport's ``get_extra_info()`` provides.
    """
    return _ReaderWriterStream(reader, writer)


def _transport_attributes(
    transport: asyncio.BaseTransport,
) -> Mapping[Any, Callable[[], Any]]:
    if isinstance(transport, StreamTransport):
        # A protoport transport: its AnyIO stream knows best.
        return transport.extra_attributes
    attributes: dict[Any, Callable[[], Any]] = {}
    sock = transport.get_extra_info("socket")
    if sock is not None:
        family = sock.family
        attributes[SocketAttribute.family] = lambda: family
    sockname = transport.get_extra_info("sockname")
    if sockname is not None:
        local = sockname[:2] if isinstance(sockname, tuple) else sockname
        attributes[SocketAttribute.local_address] = lambda: local
        if isinstance(sockname, tuple):
            attributes[SocketAttribute.local_port] = lambda: sockname[1]
    peername = transport.get_extra_info("peername")
    if peername is not None:
        remote = peername[:2] if isinstance(peername, tuple) else peername
        attributes[SocketAttribute.remote_address] = lambda: remote
        if isinstance(peername, tuple):
            attributes[SocketAttribute.remote_port] = lambda: peername[1]
    return attributes


class _ReaderWriterStream(ByteStream):
    def __init__(self, reader: StreamReader, writer: StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._closed = False
        self._eof_sent = False

    def __repr__(self) -> str:
        return f"<as_anyio_stream reader={self._reader!r} writer={self._writer!r}>"

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        if self._closed:
            raise ClosedResourceError
        if is_waiting(self._reader):
            raise BusyResourceError("reading from")
        try:
            data = await self._reader.read(max_bytes)
        except OSError as exc:
            raise BrokenResourceError from exc
        if self._closed:
            raise ClosedResourceError
        if not data:
            raise EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        if self._closed or self._eof_sent:
            raise ClosedResourceError
        writer = self._writer
        exc = self._reader.exception()
        if exc is not None:
            raise BrokenResourceError from exc
        if writer.is_closing():
            # Closed by the transport itself (an error, or the peer): broken.
            raise BrokenResourceError
        writer.write(item)
        try:
            await writer.drain()
        except OSError as exc:
            raise BrokenResourceError from exc

    async def send_eof(self) -> None:
        if self._closed:
            raise ClosedResourceError
        if not self._eof_sent:
            self._eof_sent = True
            self._writer.write_eof()
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        writer = self._writer
        self._closed = True
        writer.close()
        try:
            await wait_done(close_waiter(writer), cancel=False)
        except BaseException:
            # Cancelled while the buffered bytes were being sent: drop them.
            writer.transport.abort()
            raise

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return _transport_attributes(self._writer.transport)
