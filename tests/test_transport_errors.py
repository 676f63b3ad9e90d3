"""Errors on the stream transport: exceptions raised by protocol callbacks, peer
resets, and isolation between transports of one loop."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream, SocketAttribute

import protoport
from _helpers import (
    IP_FAMILIES,
    Recorder,
    collect_errors,
    open_pair,
    read_exactly,
    read_until_closed,
    settle,
    wait_until,
)
from _streams import memory_stream_pair, socket_stream_pair
from conftest import open_fds

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


# -- exceptions from data_received() and eof_received() --------------------------


class FailOnData(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.error = Boom("data_received failed")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        raise self.error


async def test_data_received_raising_is_fatal(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(FailOnData, local)
        await peer.send(b"trigger")
        await proto.wait_lost()
        assert errors == [
            {
                "message": "Fatal error: protocol.data_received() call failed.",
                "exception": proto.error,
                "transport": transport,
                "protocol": proto,
            }
        ]
        assert proto.trace == ["made", ("data", b"trigger"), ("lost", proto.error)]
        assert proto.trace[-1][1] is proto.error
        assert transport.is_closing()
        # The connection is gone for the peer as well.
        assert await read_until_closed(peer) == b""


async def test_no_data_is_delivered_after_a_fatal_data_received(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        _, proto = await loop.connect_stream(FailOnData, local)
        await peer.send(b"first")
        await proto.wait_lost()
        try:
            await peer.send(b"second")
        except anyio.BrokenResourceError:
            pass
        await settle()
    assert proto.trace == ["made", ("data", b"first"), ("lost", proto.error)]
    assert len(errors) == 1


class FailOnEof(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.error = Boom("eof_received failed")

    def eof_received(self) -> Any:
        super().eof_received()
        raise self.error


async def test_eof_received_raising_is_fatal(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(FailOnEof, local)
        await peer.send(b"bye")
        await peer.send_eof()
        await proto.wait_lost()
        assert errors == [
            {
                "message": "Fatal error: protocol.eof_received() call failed.",
                "exception": proto.error,
                "transport": transport,
                "protocol": proto,
            }
        ]
        assert [e for e in proto.trace if e != ("data", b"bye")] == [
            "made",
            "eof",
            ("lost", proto.error),
        ]
        assert proto.received() == b"bye"


async def test_fatal_error_drops_pending_writes() -> None:
    local, peer = memory_stream_pair(capacity=16)
    async with peer, protoport.open_loop() as loop:
        collect_errors(loop)
        transport, proto = await loop.connect_stream(FailOnData, local)
        transport.write(b"p" * 10_000)
        await peer.send(b"trigger")
        await proto.wait_lost()
        assert transport.get_write_buffer_size() == 0
        assert len(await read_until_closed(peer)) <= 16


# -- the peer resets the connection -----------------------------------------------


async def test_memory_peer_reset_reports_connection_reset() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(Recorder, local)
        await peer.send(b"partial")
        await wait_until(lambda: proto.received() == b"partial")
        peer.reset()
        await proto.wait_lost()
        assert errors == []
        assert proto.trace[:2] == ["made", ("data", b"partial")]
        assert len(proto.trace) == 3
        assert proto.trace[2][0] == "lost"
        assert isinstance(proto.trace[2][1], ConnectionResetError)
        assert transport.is_closing()


class PauseInMade(Recorder):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # only the write side can notice a reset


async def test_memory_peer_reset_while_writing() -> None:
    local, peer = memory_stream_pair(capacity=16)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(PauseInMade, local)
        transport.write(b"w" * 1000)
        await anyio.wait_all_tasks_blocked()
        peer.reset()
        await proto.wait_lost()
        assert errors == []
        assert len(proto.trace) == 2
        assert isinstance(proto.trace[1][1], ConnectionResetError)
        assert transport.get_write_buffer_size() == 0


async def _reset(peer: ByteStream) -> None:
    """Close *peer* with SO_LINGER 0, so that the kernel sends an RST."""
    raw = peer.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await peer.aclose()


@pytest.mark.parametrize("family", IP_FAMILIES)
async def test_tcp_peer_reset_reports_an_oserror(family: socket.AddressFamily) -> None:
    local, peer = await socket_stream_pair(family)
    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(Recorder, local)
        await peer.send(b"partial")
        await wait_until(lambda: proto.received() == b"partial")
        await _reset(peer)
        await proto.wait_lost()
        assert errors == []
        assert proto.trace[:2] == ["made", ("data", b"partial")]
        assert len(proto.trace) == 3
        assert proto.trace[2][0] == "lost"
        assert isinstance(proto.trace[2][1], OSError)
        assert isinstance(proto.trace[2][1], ConnectionResetError)
        assert transport.is_closing()


async def test_tcp_peer_reset_noticed_by_writing() -> None:
    local, peer = await socket_stream_pair(socket.AF_INET)
    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(PauseInMade, local)
        await _reset(peer)
        with anyio.fail_after(5):
            while not proto.lost.is_set():
                transport.write(b"x" * 1024)
                await anyio.sleep(0.001)
        assert errors == []
        assert len(proto.trace) == 2
        assert isinstance(proto.trace[1][1], OSError)


async def test_a_failing_transport_does_not_disturb_another(kind: str) -> None:
    bad_local, bad_peer = await open_pair(kind)
    good_local, good_peer = await open_pair(kind)
    async with bad_peer, good_peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        good_transport, good = await loop.connect_stream(Recorder, good_local)
        bad_transport, bad = await loop.connect_stream(FailOnData, bad_local)
        await good_peer.send(b"one,")
        await bad_peer.send(b"boom")
        await bad.wait_lost()
        await good_peer.send(b"two")
        await wait_until(lambda: good.received() == b"one,two")
        good_transport.write(b"still here")
        assert await read_exactly(good_peer, 10) == b"still here"
        assert not good_transport.is_closing()
        assert [e["protocol"] for e in errors] == [bad]
        assert bad_transport.is_closing()
        good_transport.close()
        await good.wait_lost()
    assert good.trace[0] == "made"
    assert good.trace[-1] == ("lost", None)


async def test_a_reset_does_not_disturb_another_transport() -> None:
    bad_local, bad_peer = memory_stream_pair()
    good_local, good_peer = memory_stream_pair()
    async with good_peer, protoport.open_loop() as loop:
        good_transport, good = await loop.connect_stream(Recorder, good_local)
        _, bad = await loop.connect_stream(Recorder, bad_local)
        bad_peer.reset()
        await bad.wait_lost()
        await good_peer.send(b"fine")
        await wait_until(lambda: good.received() == b"fine")
        good_transport.write(b"ok")
        assert await read_exactly(good_peer, 2) == b"ok"
        assert not good_transport.is_closing()


# -- exceptions from pause_writing() / resume_writing() --------------------------


class FailingFlow(Recorder):
    fail_pause = False
    fail_resume = False

    def __init__(self) -> None:
        super().__init__()
        self.pause_error = Boom("pause failed")
        self.resume_error = Boom("resume failed")

    def pause_writing(self) -> None:
        self.trace.append("pause")
        if self.fail_pause:
            raise self.pause_error

    def resume_writing(self) -> None:
        self.trace.append("resume")
        if self.fail_resume:
            raise self.resume_error


class FailPause(FailingFlow):
    fail_pause = True


class FailResume(FailingFlow):
    fail_resume = True


async def test_pause_writing_raising_goes_to_the_handler() -> None:
    local, peer = memory_stream_pair(capacity=16)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(FailPause, local)
        transport.set_write_buffer_limits(high=100)
        transport.write(b"a" * 200)  # does not raise
        assert errors == [
            {
                "message": "protocol.pause_writing() failed",
                "exception": proto.pause_error,
                "transport": transport,
                "protocol": proto,
            }
        ]
        assert proto.trace == ["made", "pause"]
        assert not transport.is_closing()
        # The protocol counts as paused: no second pause_writing().
        transport.write(b"b" * 200)
        assert proto.trace == ["made", "pause"]
        assert await read_exactly(peer, 400) == b"a" * 200 + b"b" * 200
        await wait_until(lambda: "resume" in proto.trace)
        assert proto.trace == ["made", "pause", "resume"]
        assert len(errors) == 1


async def test_resume_writing_raising_goes_to_the_handler() -> None:
    local, peer = memory_stream_pair(capacity=16)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        transport, proto = await loop.connect_stream(FailResume, local)
        transport.set_write_buffer_limits(high=100)
        transport.write(b"a" * 200)
        assert await read_exactly(peer, 200) == b"a" * 200
        await wait_until(lambda: "resume" in proto.trace)
        assert errors == [
            {
                "message": "protocol.resume_writing() failed",
                "exception": proto.resume_error,
                "transport": transport,
                "protocol": proto,
            }
        ]
        assert not transport.is_closing()
        # The protocol counts as resumed: the next overflow pauses again.
        transport.write(b"b" * 200)
        assert proto.trace == ["made", "pause", "resume", "pause"]
        assert await read_exactly(peer, 200) == b"b" * 200


# -- exceptions from connection_lost() -------------------------------------------


class FailOnLost(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.error = Boom("connection_lost failed")

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        raise self.error


async def test_connection_lost_raising_goes_to_the_handler(kind: str) -> None:
    local, peer = await open_pair(kind)
    other_local, other_peer = await open_pair(kind)
    async with peer, other_peer:
        async with protoport.open_loop() as loop:
            errors = collect_errors(loop)
            transport, proto = await loop.connect_stream(FailOnLost, local)
            other_transport, other = await loop.connect_stream(Recorder, other_local)
            transport.write(b"last")
            transport.close()
            assert await read_until_closed(peer) == b"last"
            await proto.wait_lost()
            await wait_until(lambda: len(errors) == 1)
            assert errors[0]["exception"] is proto.error
            # The other transport is fine.
            other_transport.write(b"alive")
            assert await read_exactly(other_peer, 5) == b"alive"
        # Leaving the loop did not raise, and the other protocol was closed.
        assert proto.trace == ["made", ("lost", None)]
        assert other.trace == ["made", ("lost", None)]
        assert len(errors) == 1


async def test_connection_lost_raising_when_the_loop_closes_it() -> None:
    local, peer = memory_stream_pair()
    async with peer:
        async with protoport.open_loop() as loop:
            errors = collect_errors(loop)
            _, proto = await loop.connect_stream(FailOnLost, local)
        assert proto.trace == ["made", ("lost", None)]
        assert [e["exception"] for e in errors] == [proto.error]


# -- a protocol without connection_lost() ------------------------------------------


class Duck:
    """A duck-typed protocol: every method but connection_lost()."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        pass


@pytest.mark.parametrize("how", ["set_protocol(None)", "duck-typed"])
async def test_a_protocol_without_connection_lost_is_reported_as_asyncio_does(
    kind: str, how: str
) -> None:
    # asyncio looks connection_lost() up inside the handle that reports its
    # failure; the loop, and the other connections, carry on.
    local, peer = await open_pair(kind)
    other_local, other_peer = await open_pair(kind)
    async with peer, other_peer:
        async with protoport.open_loop() as loop:
            errors = collect_errors(loop)
            if how == "duck-typed":
                transport, protocol = await loop.connect_stream(Duck, local)
            else:
                transport, _ = await loop.connect_stream(Recorder, local)
                transport.set_protocol(None)  # type: ignore[arg-type]
                protocol = None
            other_transport, other = await loop.connect_stream(Recorder, other_local)
            transport.write(b"last")
            transport.close()
            assert await read_until_closed(peer) == b"last"
            await wait_until(lambda: len(errors) == 1)
            other_transport.write(b"alive")
            assert await read_exactly(other_peer, 5) == b"alive"
        # Leaving the loop did not raise, and the other protocol was closed.
        assert other.trace == ["made", ("lost", None)]
    [context] = errors
    name = type(protocol).__name__
    assert context["message"].startswith(
        f"Exception in callback {name}.connection_lost("
    )
    assert isinstance(context["exception"], AttributeError)
    assert str(context["exception"]).startswith(
        f"'{name}' object has no attribute 'connection_lost'"
    )


async def test_a_protocol_without_connection_lost_when_the_loop_aborts_it() -> None:
    fds_before = open_fds()
    local, peer = await open_pair("tcp")
    async with peer:
        async with protoport.open_loop() as loop:
            errors = collect_errors(loop)
            await loop.connect_stream(Duck, local)
        assert await read_until_closed(peer) == b""
    assert [type(e["exception"]) for e in errors] == [AttributeError]
    assert open_fds() == fds_before


async def test_a_factory_making_no_protocol_leaves_no_transport_behind(
    kind: str,
) -> None:
    # As asyncio, whose transport looks connection_made() up when it is made: the
    # call raises, and the stream is closed.
    fds_before = open_fds()
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        errors = collect_errors(loop)
        tasks_before = len(anyio.get_running_tasks())
        with pytest.raises(AttributeError, match="'NoneType' object has no attribute"):
            await loop.connect_stream(lambda: None, local)  # type: ignore[arg-type,return-value]
        assert await read_until_closed(peer) == b""
        assert len(anyio.get_running_tasks()) == tasks_before
    assert errors == []
    assert open_fds() == fds_before


# -- nothing leaks after failures ----------------------------------------------


async def test_failed_transports_leave_nothing_behind() -> None:
    fds_before = open_fds()
    tasks_before = len(anyio.get_running_tasks())
    peers: list[ByteStream] = []
    async with protoport.open_loop() as loop:
        collect_errors(loop)
        # data_received() raises
        local, peer = await open_pair("unix")
        peers.append(peer)
        _, failing = await loop.connect_stream(FailOnData, local)
        await peer.send(b"boom")
        await failing.wait_lost()
        # the peer resets
        local, peer = await open_pair("tcp")
        _, reset = await loop.connect_stream(Recorder, local)
        await _reset(peer)
        await reset.wait_lost()
        # connection_lost() raises, when the loop closes the transport
        local, peer = await open_pair("tcp")
        peers.append(peer)
        _, raising = await loop.connect_stream(FailOnLost, local)
    for peer in peers:
        await peer.aclose()
    assert open_fds() == fds_before
    assert len(anyio.get_running_tasks()) == tasks_before
    assert failing.trace[-1] == ("lost", failing.error)
    assert isinstance(reset.trace[-1][1], ConnectionResetError)
    assert raising.trace == ["made", ("lost", None)]


class _ClosedForSending(ByteStream):
    """A stream whose peer is gone the way AnyIO's TLS stream reports it: send()
    raises EndOfStream; receive() waits forever."""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(self, item: bytes) -> None:
        raise anyio.EndOfStream

    async def send_eof(self) -> None:
        raise anyio.EndOfStream

    async def aclose(self) -> None:
        pass


async def test_end_of_stream_from_send_loses_the_connection() -> None:
    # The peer's end seen while writing ends this connection only, as a reset.
    async with protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Recorder, _ClosedForSending())
        transport.write(b"to nobody")
        await proto.wait_lost()
        assert len(proto.trace) == 2
        assert proto.trace[0] == "made"
        lost = proto.trace[1]
        assert lost[0] == "lost"
        assert isinstance(lost[1], ConnectionResetError)
