"""Byte streams for tests: an in-memory pair with a bounded buffer, and socket pairs."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import anyio
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
from anyio.abc import ByteStream, SocketStream


@dataclass(eq=False)
class _Pipe:
    """One direction: bytes in flight, at most ``capacity`` of them."""

    capacity: int
    data: bytearray = field(default_factory=bytearray)
    eof: bool = False
    broken: bool = False
    changed: anyio.Event = field(default_factory=anyio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


class MemoryByteStream(ByteStream):
    """One end of an in-memory byte stream pair.

    ``send()`` blocks while the peer's buffer holds ``capacity`` bytes or more, so a
    peer that does not read exerts backpressure as a socket does.
    """

    def __init__(self, incoming: _Pipe, outgoing: _Pipe) -> None:
        self._in = incoming
        self._out = outgoing
        self._closed = False
        self.sent_eof = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        pipe = self._in
        while True:
            if self._closed:
                raise ClosedResourceError
            if pipe.data:
                chunk = bytes(pipe.data[:max_bytes])
                del pipe.data[:max_bytes]
                pipe.notify()
                await anyio.lowlevel.checkpoint()
                return chunk
            if pipe.broken:
                raise BrokenResourceError
            if pipe.eof:
                raise EndOfStream
            await pipe.changed.wait()

    async def send(self, item: bytes) -> None:
        pipe = self._out
        view = memoryview(item)
        while view:
            if self._closed:
                raise ClosedResourceError
            if pipe.broken:
                raise BrokenResourceError
            room = pipe.capacity - len(pipe.data)
            if room <= 0:
                await pipe.changed.wait()
                continue
            pipe.data += view[:room]
            view = view[room:]
            pipe.notify()
        await anyio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        self.sent_eof = True
        self._out.eof = True
        self._out.notify()
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._out.eof = True
            self._in.broken = True
            self._out.notify()
            self._in.notify()
        await anyio.lowlevel.checkpoint()

    def reset(self) -> None:
        """Break both directions, as a peer's RST would."""
        self._in.broken = self._out.broken = True
        self._in.notify()
        self._out.notify()


def memory_stream_pair(
    capacity: int = 1 << 30,
) -> tuple[MemoryByteStream, MemoryByteStream]:
    a_to_b = _Pipe(capacity)
    b_to_a = _Pipe(capacity)
    return MemoryByteStream(b_to_a, a_to_b), MemoryByteStream(a_to_b, b_to_a)


async def socket_stream_pair(
    family: socket.AddressFamily = socket.AF_UNIX,
) -> tuple[SocketStream, SocketStream]:
    if family == socket.AF_UNIX:
        a, b = socket.socketpair()
    else:
        listener = socket.socket(family)
        listener.bind(("127.0.0.1", 0) if family == socket.AF_INET else ("::1", 0))
        listener.listen()
        a = socket.create_connection(listener.getsockname()[:2])
        b, _ = listener.accept()
        listener.close()
    return await SocketStream.from_socket(a), await SocketStream.from_socket(b)
