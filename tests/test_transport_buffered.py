"""``asyncio.BufferedProtocol`` on the stream transport: ``get_buffer()`` /
``buffer_updated()``, their errors, and switching between protocol kinds."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

import protoport
from _helpers import (
    Flag,
    collect_errors,
    open_pair,
    read_until_closed,
    settle,
    wait_until,
)

pytestmark = pytest.mark.anyio


def pattern(n: int) -> bytes:
    """*n* bytes in which a reordering or a lost byte shows."""
    return bytes((i * 7 + i // 256) % 256 for i in range(n))


class Buffered(asyncio.BufferedProtocol):
    """Records the buffered callbacks; keeps the bytes it was given."""

    def __init__(self, size: int = 7) -> None:
        self.size = size
        self.trace: list[Any] = []
        self.hints: list[int] = []
        self.data = bytearray()
        self.transport: Any = None
        self.buf = bytearray(size)
        self.lost = Flag()
        self.lost_exc: BaseException | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.trace.append("made")

    def get_buffer(self, sizehint: int) -> Any:
        self.trace.append("get_buffer")
        self.hints.append(sizehint)
        self.buf = bytearray(b"\xee" * self.size)
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        assert self.trace[-1] == "get_buffer"
        assert 0 < nbytes <= len(self.buf)
        self.trace.append(("updated", nbytes))
        self.data += self.buf[:nbytes]

    def eof_received(self) -> Any:
        self.trace.append("eof")
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.trace.append(("lost", exc))
        self.lost_exc = exc
        self.lost.set()

    async def wait_lost(self) -> None:
        with anyio.fail_after(5):
            await self.lost.wait()


class Plain(asyncio.Protocol):
    def __init__(self) -> None:
        self.trace: list[Any] = []
        self.data = bytearray()
        self.transport: Any = None
        self.lost = Flag()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.trace.append("made")

    def data_received(self, data: bytes) -> None:
        self.trace.append("data")
        self.data += data

    def eof_received(self) -> Any:
        self.trace.append("eof")
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.trace.append(("lost", exc))
        self.lost.set()


def check_buffered_order(trace: list[Any]) -> None:
    """``made, (get_buffer, updated)*, eof, lost``."""
    assert trace[0] == "made"
    assert trace[-2:] == ["eof", ("lost", None)]
    middle = trace[1:-2]
    assert len(middle) % 2 == 0
    assert middle[0::2] == ["get_buffer"] * (len(middle) // 2)
    assert all(e[0] == "updated" for e in middle[1::2])


# -- delivery ------------------------------------------------------------------


async def test_small_buffer_receives_everything_in_order(kind: str) -> None:
    data = pattern(100 * 1024)
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(lambda: Buffered(7), local)
        assert proto.trace == ["made"]
        await peer.send(data)
        await peer.send_eof()
        await proto.wait_lost()
        assert transport.is_closing()
    assert bytes(proto.data) == data
    check_buffered_order(proto.trace)
    assert set(proto.hints) == {-1}
    updates = [e[1] for e in proto.trace if isinstance(e, tuple) and e[0] == "updated"]
    assert sum(updates) == len(data)
    assert max(updates) <= 7
    assert len(updates) >= len(data) // 7


async def test_large_buffer_and_memoryview(kind: str) -> None:
    class ViewProtocol(Buffered):
        def get_buffer(self, sizehint: int) -> Any:
            super().get_buffer(sizehint)
            return memoryview(self.buf)

    data = pattern(300 * 1024)
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        _, proto = await loop.connect_stream(lambda: ViewProtocol(1 << 20), local)
        await peer.send(data)
        await peer.aclose()
        await proto.wait_lost()
    assert bytes(proto.data) == data
    check_buffered_order(proto.trace)


async def test_buffered_trace_for_peer_that_sends_then_closes(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        _, proto = await loop.connect_stream(lambda: Buffered(64), local)
        await peer.send(b"hello")
        await peer.aclose()
        await proto.wait_lost()
    assert proto.trace == ["made", "get_buffer", ("updated", 5), "eof", ("lost", None)]
    assert proto.data == b"hello"


async def test_buffered_half_open_after_eof(kind: str) -> None:
    class KeepOpen(Buffered):
        def eof_received(self) -> Any:
            super().eof_received()
            return True

    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(lambda: KeepOpen(64), local)
        await peer.send(b"req")
        await peer.send_eof()
        await wait_until(lambda: "eof" in proto.trace)
        assert not transport.is_closing()
        transport.write(b"reply")
        transport.close()
        assert await read_until_closed(peer) == b"reply"
        await proto.wait_lost()
    assert proto.trace == ["made", "get_buffer", ("updated", 3), "eof", ("lost", None)]


class CloseOnFirstUpdate(Buffered):
    def buffer_updated(self, nbytes: int) -> None:
        super().buffer_updated(nbytes)
        self.transport.close()


async def test_close_inside_buffer_updated_stops_delivery(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        _, proto = await loop.connect_stream(lambda: CloseOnFirstUpdate(4), local)
        await peer.send(b"0123456789")
        await proto.wait_lost()
    assert proto.trace == ["made", "get_buffer", ("updated", 4), ("lost", None)]
    assert proto.data == b"0123"


class PauseOnFirstUpdate(Buffered):
    def buffer_updated(self, nbytes: int) -> None:
        super().buffer_updated(nbytes)
        if len(self.data) == nbytes:
            self.transport.pause_reading()


async def test_pause_reading_inside_buffer_updated_stops_delivery(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(
            lambda: PauseOnFirstUpdate(4), local
        )
        await peer.send(b"0123456789")
        await wait_until(lambda: len(proto.data) >= 4)
        await settle()
        assert proto.trace == ["made", "get_buffer", ("updated", 4)]
        transport.resume_reading()
        await peer.send_eof()
        await proto.wait_lost()
    assert proto.data == b"0123456789"
    check_buffered_order(proto.trace)


class PauseInMade(Buffered):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.pause_reading()


async def test_pause_reading_in_connection_made_with_buffered(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(lambda: PauseInMade(3), local)
        await peer.send(b"abcdefgh")
        await peer.send_eof()
        await settle()
        assert proto.trace == ["made"]
        transport.resume_reading()
        await proto.wait_lost()
    assert proto.data == b"abcdefgh"
    check_buffered_order(proto.trace)


# -- errors --------------------------------------------------------------------


class EmptyBuffer(Buffered):
    def get_buffer(self, sizehint: int) -> Any:
        super().get_buffer(sizehint)
        return bytearray()


class RaisingGetBuffer(Buffered):
    def __init__(self) -> None:
        super().__init__()
        self.error = ValueError("no buffer for you")

    def get_buffer(self, sizehint: int) -> Any:
        super().get_buffer(sizehint)
        raise self.error


class RaisingUpdate(Buffered):
    def __init__(self) -> None:
        super().__init__(16)
        self.error = KeyError("update failed")

    def buffer_updated(self, nbytes: int) -> None:
        super().buffer_updated(nbytes)
        raise self.error


async def test_empty_buffer_is_fatal(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(EmptyBuffer, local)
        await peer.send(b"data")
        await proto.wait_lost()
        assert len(errors) == 1
        context = errors[0]
        exc = context["exception"]
        assert type(exc) is RuntimeError
        assert str(exc) == "get_buffer() returned an empty buffer"
        assert context == {
            "message": "Fatal error: protocol.get_buffer() call failed.",
            "exception": exc,
            "transport": transport,
            "protocol": proto,
        }
        assert proto.trace == ["made", "get_buffer", ("lost", exc)]
        assert transport.is_closing()
        assert await read_until_closed(peer) == b""


@pytest.mark.parametrize(
    ("protocol_class", "message", "trace_before_lost"),
    [
        pytest.param(
            RaisingGetBuffer,
            "Fatal error: protocol.get_buffer() call failed.",
            ["made", "get_buffer"],
            id="get_buffer",
        ),
        pytest.param(
            RaisingUpdate,
            "Fatal error: protocol.buffer_updated() call failed.",
            ["made", "get_buffer", ("updated", 4)],
            id="buffer_updated",
        ),
    ],
)
async def test_a_raising_buffered_callback_is_fatal(
    kind: str,
    protocol_class: type[Buffered],
    message: str,
    trace_before_lost: list[Any],
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(protocol_class, local)
        await peer.send(b"data")
        await proto.wait_lost()
        assert errors == [
            {
                "message": message,
                "exception": proto.error,
                "transport": transport,
                "protocol": proto,
            }
        ]
        assert proto.trace == [*trace_before_lost, ("lost", proto.error)]
        assert proto.lost_exc is proto.error


# -- switching between Protocol and BufferedProtocol -----------------------------


async def test_switch_plain_to_buffered_and_back(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, plain = await loop.connect_stream(Plain, local)
        await peer.send(b"plain-1")
        await wait_until(lambda: plain.data == b"plain-1")

        buffered = Buffered(5)
        transport.set_protocol(buffered)
        assert transport.get_protocol() is buffered
        await peer.send(b"buffered!")
        await wait_until(lambda: buffered.data == b"buffered!")

        back = Plain()
        transport.set_protocol(back)
        await peer.send(b"plain-2")
        await peer.send_eof()
        await back.lost.wait()
    assert plain.trace == ["made", "data"]
    assert buffered.trace == [
        "get_buffer",
        ("updated", 5),
        "get_buffer",
        ("updated", 4),
    ]
    assert back.data == b"plain-2"
    assert back.trace[-2:] == ["eof", ("lost", None)]
    assert set(back.trace[:-2]) == {"data"}


class SwitchToBuffered(Plain):
    def __init__(self, successor: Buffered) -> None:
        super().__init__()
        self.successor = successor

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.set_protocol(self.successor)


async def test_switch_to_buffered_inside_data_received(kind: str) -> None:
    successor = Buffered(3)
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        _, first = await loop.connect_stream(lambda: SwitchToBuffered(successor), local)
        await peer.send(b"switch")
        await wait_until(lambda: first.data == b"switch")
        await peer.send(b"abcdefg")
        await peer.send_eof()
        await successor.wait_lost()
    assert first.trace == ["made", "data"]
    assert successor.data == b"abcdefg"
    assert successor.trace[-2:] == ["eof", ("lost", None)]


class SwitchToPlain(Buffered):
    def __init__(self, successor: Plain) -> None:
        super().__init__(4)
        self.successor = successor

    def buffer_updated(self, nbytes: int) -> None:
        super().buffer_updated(nbytes)
        self.transport.set_protocol(self.successor)


async def test_switch_to_plain_inside_buffer_updated(kind: str) -> None:
    successor = Plain()
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        _, first = await loop.connect_stream(lambda: SwitchToPlain(successor), local)
        # One send: the rest after the first 4 bytes follows in the same read.
        await peer.send(b"0123456789")
        await peer.send_eof()
        await successor.lost.wait()
    assert errors == []
    assert first.trace == ["made", "get_buffer", ("updated", 4)]
    assert first.data == b"0123"
    assert successor.data == b"456789"
    assert successor.trace[-2:] == ["eof", ("lost", None)]
