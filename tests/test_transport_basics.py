"""The stream transport made by ``loop.connect_stream()``: life cycle, writing,
``write_eof()``, closing, EOF handling, reading control, extra info and protocol
switching, over in-memory streams and over UNIX and TCP socket pairs."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream, SocketAttribute

import protoport
from _helpers import (
    IP_FAMILIES,
    KINDS,
    SOCKET_KINDS,
    Recorder,
    check_writelines,
    collect_errors,
    listener,
    open_pair,
    read_exactly,
    read_to_eof,
    settle,
    squash,
    wait_until,
)
from _streams import memory_stream_pair, socket_stream_pair
from conftest import open_fds

pytestmark = pytest.mark.anyio


# -- connect_stream and the callback order ------------------------------------


async def test_connect_stream_returns_after_connection_made(kind: str) -> None:
    made: list[Recorder] = []

    def factory() -> Recorder:
        proto = Recorder()
        made.append(proto)
        return proto

    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(factory, local)
        assert made == [proto]
        assert proto.trace == ["made"]
        assert proto.transport is transport
        assert transport.get_protocol() is proto
        assert not transport.is_closing()
        assert transport.is_reading()


async def test_transport_is_an_asyncio_transport() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        assert isinstance(transport, asyncio.Transport)
        assert isinstance(transport, asyncio.BaseTransport)
        assert isinstance(transport, asyncio.ReadTransport)
        assert isinstance(transport, asyncio.WriteTransport)


class FactoryError(Exception):
    pass


async def test_factory_exception_propagates_and_closes_the_stream(kind: str) -> None:
    def factory() -> Recorder:
        raise FactoryError("no protocol today")

    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        with pytest.raises(FactoryError, match=r"^no protocol today$"):
            await loop.connect_stream(factory, local)
        # The peer sees the stream end: the transport side was closed.
        assert await read_to_eof(peer) == b""
    if kind != "memory":
        assert local.extra(SocketAttribute.raw_socket).fileno() == -1


async def test_order_for_a_peer_that_sends_then_closes(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with protoport.open_loop() as loop:
        _, proto = await loop.connect_stream(Recorder, local)
        await peer.send(b"hello")
        await peer.send(b" world")
        await peer.aclose()
        await proto.wait_lost()
        assert squash(proto.trace) == [
            "made",
            ("data", b"hello world"),
            "eof",
            ("lost", None),
        ]
    assert proto.trace.count(("lost", None)) == 1


async def test_peer_eof_without_keep_open_closes_and_peer_sees_eof(
    kind: str,
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        await peer.send(b"last words")
        await peer.send_eof()
        await proto.wait_lost()
        assert squash(proto.trace) == [
            "made",
            ("data", b"last words"),
            "eof",
            ("lost", None),
        ]
        assert transport.is_closing()
        assert await read_to_eof(peer) == b""


@pytest.mark.parametrize("keep_open", [None, False, 0, b""])
async def test_falsy_eof_received_closes_the_transport(keep_open: Any) -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        proto.keep_open = keep_open
        await peer.send_eof()
        await proto.wait_lost()
        assert proto.trace == ["made", "eof", ("lost", None)]
        assert transport.is_closing()


class CloseInMade(Recorder):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.close()


async def test_close_inside_connection_made_loses_once_and_last(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(CloseInMade, local)
        assert transport.is_closing()
        await proto.wait_lost()
        assert await read_to_eof(peer) == b""
        transport.close()
        transport.abort()
    assert proto.trace == ["made", ("lost", None)]


class WriteAndCloseInMade(Recorder):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.write(b"greeting")
        transport.close()


async def test_bytes_written_inside_connection_made_are_flushed_on_close(
    kind: str,
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        _, proto = await loop.connect_stream(WriteAndCloseInMade, local)
        assert await read_to_eof(peer) == b"greeting"
        await proto.wait_lost()
    assert proto.trace == ["made", ("lost", None)]


class MadeError(Exception):
    pass


class RaiseInMade(Recorder):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        raise MadeError("made failed")


async def test_connection_made_raising_calls_handler_and_keeps_transport_open(
    kind: str,
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(RaiseInMade, local)
        assert len(errors) == 1
        assert isinstance(errors[0]["exception"], MadeError)
        assert str(errors[0]["exception"]) == "made failed"
        assert not transport.is_closing()
        # Data still flows both ways.
        await peer.send(b"ping")
        await wait_until(lambda: proto.received() == b"ping")
        transport.write(b"pong")
        assert await read_exactly(peer, 4) == b"pong"
        transport.close()
        await proto.wait_lost()
        assert squash(proto.trace) == ["made", ("data", b"ping"), ("lost", None)]
        assert len(errors) == 1


class LoopProbe(Recorder):
    """Records, in each callback, whether a running asyncio loop is visible."""

    def __init__(self) -> None:
        super().__init__()
        self.loops: list[tuple[str, object]] = []

    def _probe(self, name: str) -> None:
        try:
            self.loops.append((name, asyncio.get_running_loop()))
        except RuntimeError:
            self.loops.append((name, None))

    def connection_made(self, transport: Any) -> None:
        self._probe("made")
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._probe("data")
        super().data_received(data)

    def eof_received(self) -> Any:
        self._probe("eof")
        return super().eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._probe("lost")
        super().connection_lost(exc)


async def test_callbacks_see_a_running_event_loop(
    kind: str, anyio_backend: str
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        # Under Trio the facade stands in for asyncio's loop; under asyncio
        # the callbacks run on asyncio's own loop.
        expected = loop if anyio_backend == "trio" else asyncio.get_running_loop()
        _, proto = await loop.connect_stream(LoopProbe, local)
        await peer.send(b"x")
        await peer.send_eof()
        await proto.wait_lost()
    assert squash(proto.trace) == ["made", ("data", b"x"), "eof", ("lost", None)]
    assert proto.loops == [
        ("made", expected),
        ("data", expected),
        ("eof", expected),
        ("lost", expected),
    ]


# -- write() and writelines() -------------------------------------------------


async def test_write_accepts_bytes_like_objects_in_order(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        transport.write(b"bytes,")
        transport.write(bytearray(b"bytearray,"))
        transport.write(memoryview(b"memoryview,"))
        transport.write(memoryview(b"..slice..")[2:7])
        expected = b"bytes,bytearray,memoryview,slice"
        assert await read_exactly(peer, len(expected)) == expected


async def test_bytearray_mutated_after_write_is_sent_as_it_was(kind: str) -> None:
    # A tiny memory capacity keeps the bytes in the transport's buffer.
    local, peer = await open_pair(kind, capacity=4)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        first = bytearray(b"first chunk|")
        second = bytearray(b"second chunk")
        transport.write(first)
        transport.write(memoryview(second))
        first[:] = b"X" * len(first)
        second[:] = b"Y" * len(second)
        expected = b"first chunk|second chunk"
        assert await read_exactly(peer, len(expected)) == expected


@pytest.mark.parametrize(
    ("value", "type_name"),
    [("text", "str"), (123, "int"), (None, "NoneType"), ([b"a"], "list")],
)
async def test_write_rejects_non_bytes_like(value: Any, type_name: str) -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        with pytest.raises(TypeError) as info:
            transport.write(value)
        assert str(info.value) == (
            f"data argument must be a bytes-like object, not {type_name!r}"
        )
        assert transport.get_write_buffer_size() == 0
        assert not transport.is_closing()


async def test_writelines_with_list_and_generator(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        transport.writelines([b"one,", bytearray(b"two,"), memoryview(b"three,")])
        transport.writelines(f"{n};".encode() for n in range(4))
        transport.writelines([])
        transport.writelines(iter(()))
        expected = b"one,two,three,0;1;2;3;"
        assert await read_exactly(peer, len(expected)) == expected
        transport.write_eof()
        assert await read_to_eof(peer) == b""


async def test_writelines_takes_and_refuses_what_asyncio_does(kind: str) -> None:
    # asyncio's (3.12 on): None writes nothing, a bad item gets memoryview()'s
    # error; protoport refused None and gave write()'s message.
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        expected = check_writelines(transport.writelines) + b"end"
        transport.write(b"end")
        assert await read_exactly(peer, len(expected)) == expected
        assert not transport.is_closing()


@pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="asyncio's writelines() is write(b''.join(...)) before Python 3.12",
)
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_writelines_cases_are_what_asyncio_does() -> None:
    # The table above, checked against asyncio's own socket transport.
    local, peer = socket.socketpair()
    with peer:
        native = asyncio.get_running_loop()
        transport, _ = await native.connect_accepted_socket(asyncio.Protocol, local)
        expected = check_writelines(transport.writelines) + b"end"
        transport.write(b"end")
        peer.settimeout(5)
        received = b""
        while len(received) < len(expected):
            received += await anyio.to_thread.run_sync(peer.recv, 65536)
        transport.close()
    assert received == expected


async def test_writelines_rejects_a_non_bytes_item_and_sends_nothing(
    kind: str,
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        with pytest.raises(TypeError):
            transport.writelines([b"good", "bad", b"good"])
        transport.write(b"after")
        transport.write_eof()
        assert await read_to_eof(peer) == b"after"


async def test_write_after_write_eof_raises() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        transport.write_eof()
        with pytest.raises(RuntimeError) as info:
            transport.write(b"late")
        assert str(info.value) == "Cannot call write() after write_eof()"
        # Even an empty write is refused after write_eof(), and any bytes-like.
        for late in (b"", bytearray(b"late"), memoryview(b"late")):
            with pytest.raises(RuntimeError) as info:
                transport.write(late)
            assert str(info.value) == "Cannot call write() after write_eof()"
        with pytest.raises(RuntimeError) as info:
            transport.writelines([b"late"])
        assert str(info.value) == "Cannot call writelines() after write_eof()"
        # The type check comes first.
        with pytest.raises(TypeError) as type_info:
            transport.write("late")  # type: ignore[arg-type]
        assert str(type_info.value) == (
            "data argument must be a bytes-like object, not 'str'"
        )
        assert await read_to_eof(peer) == b""


async def test_empty_write_does_nothing(kind: str) -> None:
    local, peer = await open_pair(kind, capacity=4)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.set_write_buffer_limits(high=0)
        for empty in (b"", bytearray(), memoryview(b"")):
            transport.write(empty)
            assert transport.get_write_buffer_size() == 0
        transport.writelines([b"", b""])
        assert transport.get_write_buffer_size() == 0
        assert proto.trace == ["made"]
        transport.write_eof()
        assert await read_to_eof(peer) == b""


async def test_large_write_arrives_intact(kind: str) -> None:
    pattern = bytes(range(256)) * 4096  # 1 MiB
    data = b"".join(bytes([i]) + pattern[1:] for i in range(10))  # 10 MiB
    local, peer = await open_pair(kind, capacity=256 * 1024)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        transport.write(data)
        transport.write(b"tail")
        transport.write_eof()
        received = await read_to_eof(peer)
        assert len(received) == len(data) + 4
        assert received == data + b"tail"


# -- write_eof() ---------------------------------------------------------------


async def test_write_eof_comes_after_buffered_bytes(kind: str) -> None:
    data = bytes(range(256)) * 400
    local, peer = await open_pair(kind, capacity=1024)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        assert transport.can_write_eof() is True
        transport.write(data)
        transport.write_eof()
        transport.write_eof()  # a second call does nothing
        assert not transport.is_closing()
        assert await read_to_eof(peer) == data
        assert proto.trace == ["made"]


async def test_data_is_still_received_after_write_eof(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.write(b"request")
        transport.write_eof()
        assert await read_to_eof(peer) == b"request"
        await peer.send(b"response")
        await peer.send_eof()
        await proto.wait_lost()
        assert squash(proto.trace) == [
            "made",
            ("data", b"response"),
            "eof",
            ("lost", None),
        ]


# -- close() and abort() -------------------------------------------------------


async def test_close_flushes_buffer_before_connection_lost(kind: str) -> None:
    data = bytes(range(256)) * 800
    local, peer = await open_pair(kind, capacity=1024)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.write(data)
        assert not transport.is_closing()
        transport.close()
        assert transport.is_closing()
        assert not transport.is_reading()
        assert proto.trace == ["made"]
        assert await read_to_eof(peer) == data
        await proto.wait_lost()
        assert proto.trace == ["made", ("lost", None)]


async def test_close_is_idempotent(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.write(b"once")
        transport.close()
        transport.close()
        assert await read_to_eof(peer) == b"once"
        await proto.wait_lost()
        transport.close()
        assert transport.is_closing()
    assert proto.trace == ["made", ("lost", None)]


async def test_close_stops_reading_at_once() -> None:
    local, peer = memory_stream_pair(capacity=1024)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        await peer.send(b"before")
        await wait_until(lambda: proto.received() == b"before")
        # The full pipe keeps the transport alive (flushing) while the peer
        # keeps talking.
        transport.write(b"z" * 50_000)
        transport.close()
        await peer.send(b"after close")
        await anyio.wait_all_tasks_blocked()
        assert proto.trace == ["made", ("data", b"before")]
        assert await read_to_eof(peer) == b"z" * 50_000
        await proto.wait_lost()
    assert proto.trace == ["made", ("data", b"before"), ("lost", None)]


@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_close_stops_reading_at_once_on_sockets(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        await peer.send(b"before")
        await wait_until(lambda: proto.received() == b"before")
        transport.close()
        try:
            await peer.send(b"after close")
        except anyio.BrokenResourceError:
            pass  # the transport's socket is already gone
        await proto.wait_lost()
    assert proto.trace == ["made", ("data", b"before"), ("lost", None)]


async def test_writes_after_close_while_flushing_are_sent_too() -> None:
    """As CPython's transports: while close() still flushes the buffer, later
    writes join it."""
    local, peer = memory_stream_pair(capacity=8)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.write(b"accepted before close")
        transport.close()
        transport.write(b" after close")
        transport.writelines([b" and", b" this"])
        assert transport.get_write_buffer_size() == len(
            b"accepted before close after close and this"
        )
        assert await read_to_eof(peer) == b"accepted before close after close and this"
        await proto.wait_lost()


async def test_writes_after_close_with_an_empty_buffer_are_not_sent() -> None:
    local, peer = memory_stream_pair(capacity=8)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.close()
        transport.write(b"after close")
        transport.writelines([b"and", b"this"])
        assert transport.get_write_buffer_size() == 0
        assert await read_to_eof(peer) == b""
        await proto.wait_lost()
        transport.write(b"after connection_lost")
        assert transport.get_write_buffer_size() == 0


async def test_writes_after_close_are_dropped_and_logged_from_the_fifth(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="protoport")
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.close()

        def warnings() -> list[logging.LogRecord]:
            return [
                r
                for r in caplog.records
                if r.name == "protoport" and r.levelno == logging.WARNING
            ]

        for _ in range(4):
            transport.write(b"dropped")
        assert warnings() == []
        transport.write(b"dropped")
        assert [r.getMessage() for r in warnings()] == [
            "socket.send() raised exception."
        ]
        transport.write(b"dropped")
        assert [r.getMessage() for r in warnings()] == [
            "socket.send() raised exception."
        ] * 2
        assert await read_to_eof(peer) == b""
        await proto.wait_lost()


async def test_empty_writes_after_close_are_not_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="protoport")
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.close()
        for _ in range(10):
            transport.write(b"")
        await proto.wait_lost()
    assert [r for r in caplog.records if r.name == "protoport"] == []


async def test_writes_after_connection_lost_are_dropped(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.close()
        await proto.wait_lost()
        transport.write(b"into the void")
        transport.writelines([b"and", b"more"])
        assert transport.get_write_buffer_size() == 0
        assert await read_to_eof(peer) == b""
    assert proto.trace == ["made", ("lost", None)]


async def test_abort_drops_the_buffer() -> None:
    data = b"a" * 100_000
    local, peer = memory_stream_pair(capacity=1024)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.write(data)
        await anyio.wait_all_tasks_blocked()  # the writer is stuck on the full pipe
        assert transport.get_write_buffer_size() == len(data)
        transport.abort()
        assert transport.is_closing()
        assert transport.get_write_buffer_size() == 0
        await proto.wait_lost()
        received = await read_to_eof(peer)
        assert len(received) <= 1024
        assert proto.trace == ["made", ("lost", None)]


async def test_abort_during_a_graceful_close_drops_the_rest() -> None:
    data = b"b" * 100_000
    local, peer = memory_stream_pair(capacity=1024)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.write(data)
        transport.close()
        await anyio.wait_all_tasks_blocked()
        transport.abort()
        await proto.wait_lost()
        assert len(await read_to_eof(peer)) <= 1024
    assert proto.trace == ["made", ("lost", None)]


async def test_abort_after_connection_lost_is_a_no_op(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        transport.abort()
        await proto.wait_lost()
        transport.abort()
        transport.close()
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
    assert proto.trace == ["made", ("lost", None)]


# -- eof_received() ------------------------------------------------------------


class HalfOpen(Recorder):
    keep_open = True


@pytest.mark.parametrize("keep_open", [True, 1, "yes"])
async def test_truthy_eof_received_keeps_writing_open(
    kind: str, keep_open: Any
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(HalfOpen, local)
        proto.keep_open = keep_open
        await peer.send(b"question")
        await peer.send_eof()
        await wait_until(lambda: "eof" in proto.trace)
        assert not transport.is_closing()
        transport.write(b"answer after eof")
        assert await read_exactly(peer, 16) == b"answer after eof"
        assert squash(proto.trace) == ["made", ("data", b"question"), "eof"]
        transport.close()
        assert await read_to_eof(peer) == b""
        await proto.wait_lost()
    assert squash(proto.trace) == [
        "made",
        ("data", b"question"),
        "eof",
        ("lost", None),
    ]


# -- pause_reading() / resume_reading() ----------------------------------------


async def test_pause_and_resume_reading_are_idempotent() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        assert transport.is_reading()
        transport.pause_reading()
        transport.pause_reading()
        assert not transport.is_reading()
        transport.resume_reading()
        assert transport.is_reading()
        transport.resume_reading()
        assert transport.is_reading()
        await peer.send(b"still reading")
        await wait_until(lambda: proto.received() == b"still reading")


@pytest.mark.parametrize("paused", [False, True])
async def test_reading_controls_are_no_ops_when_closing(paused: bool) -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        if paused:
            transport.pause_reading()
        transport.close()
        assert not transport.is_reading()
        transport.resume_reading()
        assert not transport.is_reading()
        transport.pause_reading()
        transport.resume_reading()
        assert not transport.is_reading()
        await proto.wait_lost()
        transport.resume_reading()
        assert not transport.is_reading()
    assert proto.trace == ["made", ("lost", None)]


class PauseInMade(Recorder):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.pause_reading()


async def test_pause_reading_in_connection_made_holds_data_until_resume(
    kind: str,
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(PauseInMade, local)
        assert not transport.is_reading()
        await peer.send(b"first,")
        await peer.send(b"second,")
        await settle()
        await peer.send(b"third")
        await peer.send_eof()
        await settle()
        assert proto.trace == ["made"]
        transport.resume_reading()
        assert transport.is_reading()
        await proto.wait_lost()
        assert squash(proto.trace) == [
            "made",
            ("data", b"first,second,third"),
            "eof",
            ("lost", None),
        ]


async def test_pause_reading_pushes_back_on_the_peer() -> None:
    data = bytes(range(100))
    local, peer = memory_stream_pair(capacity=16)
    sent = anyio.Event()

    async def sender() -> None:
        await peer.send(data)
        sent.set()

    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(PauseInMade, local)
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            await anyio.wait_all_tasks_blocked()
            # Nothing was read, so the peer is stuck on a full pipe.
            assert not sent.is_set()
            assert proto.trace == ["made"]
            transport.resume_reading()
            with anyio.fail_after(5):
                await sent.wait()
        await wait_until(lambda: proto.received() == data)


async def test_eof_waits_for_resume_reading(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        await anyio.wait_all_tasks_blocked()  # the transport is waiting for data
        transport.pause_reading()
        await peer.send_eof()
        await settle()
        assert proto.trace == ["made"]
        assert not transport.is_closing()
        transport.resume_reading()
        await proto.wait_lost()
    assert proto.trace == ["made", "eof", ("lost", None)]


async def test_data_arriving_while_paused_waits_for_resume_reading(
    kind: str,
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        await anyio.wait_all_tasks_blocked()  # the transport is waiting for data
        transport.pause_reading()
        await peer.send(b"held back")
        await settle()
        assert proto.trace == ["made"]
        transport.resume_reading()
        await wait_until(lambda: proto.received() == b"held back")
        assert squash(proto.trace) == ["made", ("data", b"held back")]


class PauseOnFirstData(Recorder):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.pause_reading()


async def test_pause_reading_inside_data_received(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(PauseOnFirstData, local)
        await peer.send(b"one")
        await wait_until(lambda: len(proto.trace) == 2)
        assert proto.trace == ["made", ("data", b"one")]
        await peer.send(b"two")
        await peer.send_eof()
        await settle()
        assert proto.trace == ["made", ("data", b"one")]
        transport.resume_reading()
        await wait_until(lambda: len(proto.trace) == 3)
        assert proto.trace == ["made", ("data", b"one"), ("data", b"two")]
        transport.resume_reading()
        await proto.wait_lost()
        assert proto.trace[-2:] == ["eof", ("lost", None)]


# -- get_extra_info() ----------------------------------------------------------


@pytest.mark.parametrize("family", [socket.AF_UNIX, *IP_FAMILIES])
async def test_socket_extra_info(family: socket.AddressFamily) -> None:
    local, peer = await socket_stream_pair(family)
    raw = local.extra(SocketAttribute.raw_socket)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, local)
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        assert sockname == raw.getsockname()
        assert peername == raw.getpeername()
        if family == socket.AF_INET:
            assert isinstance(sockname, tuple)
            assert len(sockname) == 2
            assert sockname[0] == "127.0.0.1"
            assert peername == peer.extra(SocketAttribute.raw_socket).getsockname()
        elif family == socket.AF_INET6:
            assert isinstance(sockname, tuple)
            assert len(sockname) == 4
            assert isinstance(peername, tuple)
            assert len(peername) == 4
            assert sockname[0] == "::1"
        sock = transport.get_extra_info("socket")
        assert sock.fileno() == raw.fileno()
        assert sock.family == family
        assert sock.type == socket.SOCK_STREAM
        transport.close()
        await proto.wait_lost()
        # Taken at creation: still readable once the connection is gone.
        assert transport.get_extra_info("peername") == peername


async def test_unknown_extra_info_key_returns_the_default(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        assert transport.get_extra_info("no such key") is None
        marker = object()
        assert transport.get_extra_info("no such key", marker) is marker
        assert transport.get_extra_info("no such key", default=42) == 42


async def test_memory_stream_has_no_socket_info() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(Recorder, local)
        assert transport.get_extra_info("peername") is None
        assert transport.get_extra_info("sockname") is None
        assert transport.get_extra_info("socket") is None
        assert transport.get_extra_info("peername", "fallback") == "fallback"


async def test_extra_argument_adds_keys(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(
            Recorder, local, extra={"label": "backend-7", "weight": 3}
        )
        assert transport.get_extra_info("label") == "backend-7"
        assert transport.get_extra_info("weight") == 3
        assert transport.get_extra_info("other") is None


# -- get_protocol() / set_protocol() -------------------------------------------


class SwitchOnData(Recorder):
    def __init__(self, successor: Recorder) -> None:
        super().__init__()
        self.successor = successor

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.set_protocol(self.successor)


async def test_set_protocol_sends_later_callbacks_to_the_new_protocol(
    kind: str,
) -> None:
    second = Recorder()
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, first = await loop.connect_stream(
            lambda: SwitchOnData(second), local
        )
        await peer.send(b"switch")
        await wait_until(lambda: len(first.trace) == 2)
        assert transport.get_protocol() is second
        await peer.send(b"for the second")
        await peer.send_eof()
        await second.wait_lost()
    assert first.trace == ["made", ("data", b"switch")]
    assert squash(second.trace) == [("data", b"for the second"), "eof", ("lost", None)]


async def test_set_protocol_from_outside_a_callback(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, first = await loop.connect_stream(Recorder, local)
        second = Recorder()
        transport.set_protocol(second)
        assert transport.get_protocol() is second
        await peer.send(b"hello")
        await wait_until(lambda: second.received() == b"hello")
        transport.close()
        await second.wait_lost()
    assert first.trace == ["made"]
    assert second.trace == [("data", b"hello"), ("lost", None)]


# -- leaving the loop ----------------------------------------------------------


async def test_leaving_the_loop_loses_open_transports_once(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer:
        async with protoport.open_loop() as loop:
            transport, proto = await loop.connect_stream(Recorder, local)
            transport.write(b"bye")
        assert proto.trace == ["made", ("lost", None)]
        assert transport.is_closing()


async def test_nothing_is_left_open_or_running_after_the_loop() -> None:
    fds_before = open_fds()
    tasks_before = len(anyio.get_running_tasks())
    protos: list[Recorder] = []
    peers: list[ByteStream] = []
    async with protoport.open_loop() as loop:
        for kind in KINDS:
            local, peer = await open_pair(kind)
            peers.append(peer)
            transport, proto = await loop.connect_stream(Recorder, local)
            protos.append(proto)
            transport.write(b"data")
            assert await read_exactly(peer, 4) == b"data"
            await peer.send(b"back")
            await wait_until(lambda p=proto: p.received() == b"back")
        # One closed by its peer, one closing (flushing) when the loop ends.
        local, peer = await open_pair("unix")
        peers.append(peer)
        _, proto = await loop.connect_stream(Recorder, local)
        protos.append(proto)
        await peer.aclose()
        await proto.wait_lost()
        local, peer = await open_pair("tcp")
        peers.append(peer)
        transport, proto = await loop.connect_stream(Recorder, local)
        protos.append(proto)
        transport.write(b"flushed at exit")
        transport.close()
    assert await read_to_eof(peers[-1]) == b"flushed at exit"
    for peer in peers:
        await peer.aclose()
    assert open_fds() == fds_before
    assert len(anyio.get_running_tasks()) == tasks_before
    for proto in protos:
        assert proto.trace[0] == "made"
        assert [e for e in proto.trace if e[0] == "lost"] == [("lost", None)]
        assert proto.trace[-1] == ("lost", None)


class _WatchSocket(asyncio.Protocol):
    """Records whether its socket is open when connection_lost() runs, and its
    descriptor one callback later."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.sock = transport.get_extra_info("socket")

    def connection_lost(self, exc: Exception | None) -> None:
        self.seen.append(self.sock.fileno() >= 0)
        asyncio.get_running_loop().call_soon(
            lambda: self.seen.append(self.sock.fileno())
        )


@pytest.mark.parametrize("end", ["close", "abort"])
async def test_socket_is_closed_right_after_connection_lost(end: str) -> None:
    # As asyncio's socket transports: open during connection_lost(), closed by
    # the next callback.
    with listener() as server:
        async with protoport.open_loop() as loop:
            transport, proto = await loop.create_connection(
                _WatchSocket, *server.getsockname()
            )
            getattr(transport, end)()
            await wait_until(lambda: len(proto.seen) == 2)
    assert proto.seen == [True, -1]


# -- protoport.SocketStream ----------------------------------------------------


async def test_socket_stream_send_some_takes_what_the_kernel_takes() -> None:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setblocking(False)
    stream = protoport.SocketStream(ours)
    try:
        assert await stream.send_some(b"hello") == 5
        assert theirs.recv(100) == b"hello"
        # Nobody reads: the kernel's buffers fill; each send reports only what
        # the kernel took, and one that finds them full waits.
        sent = 0
        with anyio.move_on_after(0.2) as scope:
            while True:
                sent += await stream.send_some(b"x" * 65536)
        assert scope.cancelled_caught
        assert sent > 0
        received = 0
        while received < sent:
            try:
                received += len(theirs.recv(1 << 20))
            except BlockingIOError:
                await anyio.sleep(0.01)
        assert received == sent
        theirs.send(b"back")
        assert await stream.receive() == b"back"
    finally:
        await stream.aclose()
        theirs.close()


async def test_socket_stream_cancelled_receive_loses_no_bytes() -> None:
    # A receive cancelled while bytes are waiting leaves them in the socket: the
    # next receive returns them (a TLS layer above would be corrupted otherwise).
    ours, theirs = socket.socketpair()
    stream = protoport.SocketStream(ours)
    try:
        theirs.send(b"first")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await stream.receive()
        assert scope.cancelled_caught
        with anyio.fail_after(5):
            assert await stream.receive() == b"first"
    finally:
        await stream.aclose()
        theirs.close()


async def test_socket_stream_cancelled_send_sends_nothing() -> None:
    # A send_some() cancelled before it returns has sent nothing, so that the
    # caller's count of sent bytes stays true.
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    stream = protoport.SocketStream(ours)
    try:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await stream.send_some(b"unsent")
        assert scope.cancelled_caught
        with pytest.raises(BlockingIOError):
            theirs.recv(100)
        assert await stream.send_some(b"sent") == 4
        assert theirs.recv(100) == b"sent"
    finally:
        await stream.aclose()
        theirs.close()
