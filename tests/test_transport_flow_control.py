"""Write flow control of the stream transport: watermarks, ``pause_writing()`` /
``resume_writing()``, ``get_write_buffer_size()``, and bounded memory for a
protocol that honours ``pause_writing()``."""

from __future__ import annotations

import asyncio

import anyio
import pytest

import protoport
from _helpers import (
    SOCKET_KINDS,
    Flag,
    Recorder,
    exactly,
    open_pair,
    receive_exactly,
    wait_until,
)
from _streams import memory_stream_pair

pytestmark = pytest.mark.anyio


class FlowRecorder(Recorder):
    """Records callbacks, and the buffer size seen by pause/resume_writing."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[str, int]] = []

    def pause_writing(self) -> None:
        self.trace.append("pause")
        self.sizes.append(("pause", self.transport.get_write_buffer_size()))

    def resume_writing(self) -> None:
        self.trace.append("resume")
        self.sizes.append(("resume", self.transport.get_write_buffer_size()))


# -- limits --------------------------------------------------------------------


async def test_default_write_buffer_limits(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(FlowRecorder, local)
        assert transport.get_write_buffer_limits() == (16384, 65536)
        assert transport.get_write_buffer_size() == 0


@pytest.mark.parametrize(
    ("kwargs", "limits"),
    [
        ({}, (16384, 65536)),
        ({"high": 1000}, (250, 1000)),
        ({"low": 100}, (100, 400)),
        ({"high": 1000, "low": 10}, (10, 1000)),
        ({"high": 7, "low": 7}, (7, 7)),
        ({"high": 0}, (0, 0)),
        ({"high": 3}, (0, 3)),
    ],
)
async def test_set_write_buffer_limits(
    kwargs: dict[str, int], limits: tuple[int, int]
) -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(FlowRecorder, local)
        transport.set_write_buffer_limits(high=5, low=1)
        transport.set_write_buffer_limits(**kwargs)
        assert transport.get_write_buffer_limits() == limits


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"high": 10, "low": 20}, "high (10) must be >= low (20) must be >= 0"),
        ({"high": -1}, "high (-1) must be >= low (-1) must be >= 0"),
        ({"low": -4}, "high (-16) must be >= low (-4) must be >= 0"),
        ({"high": 5, "low": -1}, "high (5) must be >= low (-1) must be >= 0"),
    ],
)
async def test_set_write_buffer_limits_validation(
    kwargs: dict[str, int], message: str
) -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        transport, _ = await loop.connect_stream(FlowRecorder, local)
        transport.set_write_buffer_limits(high=1000, low=100)
        with pytest.raises(ValueError, match=exactly(message)):
            transport.set_write_buffer_limits(**kwargs)
        # A rejected call leaves the limits as they were.
        assert transport.get_write_buffer_limits() == (100, 1000)


# -- pause_writing() and resume_writing() ---------------------------------------


async def test_write_above_high_pauses_synchronously() -> None:
    # The peer never reads and the pipe holds 16 bytes: everything else stays in
    # the transport's buffer.
    local, peer = memory_stream_pair(capacity=16)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(FlowRecorder, local)
        transport.set_write_buffer_limits(high=100, low=20)
        transport.write(b"a" * 60)
        assert proto.trace == ["made"]
        assert transport.get_write_buffer_size() == 60
        transport.write(b"b" * 40)
        # Exactly high is not above high.
        assert proto.trace == ["made"]
        assert transport.get_write_buffer_size() == 100
        transport.write(b"c")
        assert proto.trace == ["made", "pause"]
        assert proto.sizes == [("pause", 101)]
        assert transport.get_write_buffer_size() == 101
        # Already paused: more writes do not pause again.
        transport.write(b"d" * 50)
        assert proto.trace == ["made", "pause"]
        assert transport.get_write_buffer_size() == 151
        transport.abort()


async def test_buffer_size_counts_pending_bytes_while_peer_does_not_read() -> None:
    local, peer = memory_stream_pair(capacity=10)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(FlowRecorder, local)
        transport.write(b"x" * 1000)
        transport.write(b"y" * 500)
        assert transport.get_write_buffer_size() == 1500
        await anyio.wait_all_tasks_blocked()
        # The peer took at most 10 bytes; the rest is still counted.
        assert 1490 <= transport.get_write_buffer_size() <= 1500
        assert proto.trace == ["made"]
        assert await receive_exactly(peer, 1500) == b"x" * 1000 + b"y" * 500
        await wait_until(lambda: transport.get_write_buffer_size() == 0)


async def test_resume_writing_once_the_peer_reads_down_to_low() -> None:
    local, peer = memory_stream_pair(capacity=64)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(FlowRecorder, local)
        transport.set_write_buffer_limits(high=2000, low=500)
        for i in range(30):
            transport.write(bytes([i]) * 100)
        assert proto.trace == ["made", "pause"]
        await anyio.wait_all_tasks_blocked()
        assert proto.trace == ["made", "pause"]  # no reader, no resume
        expected = b"".join(bytes([i]) * 100 for i in range(30))
        received = bytearray()
        with anyio.fail_after(5):
            while "resume" not in proto.trace:
                received += await peer.receive(32)
        assert proto.trace == ["made", "pause", "resume"]
        assert proto.sizes[0] == ("pause", 2100)
        assert proto.sizes[1][0] == "resume"
        assert proto.sizes[1][1] <= 500
        received += await receive_exactly(peer, len(expected) - len(received))
        assert received == expected


async def test_pause_and_resume_alternate() -> None:
    local, peer = memory_stream_pair(capacity=256)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(FlowRecorder, local)
        transport.set_write_buffer_limits(high=1000, low=100)
        for round_ in range(4):
            chunk = bytes([round_]) * 3000
            transport.write(chunk)
            transport.write(chunk)  # paused already: no second pause
            assert proto.trace.count("pause") == round_ + 1
            assert await receive_exactly(peer, 6000) == chunk * 2
            await wait_until(lambda n=round_: proto.trace.count("resume") == n + 1)
        assert proto.trace == ["made"] + ["pause", "resume"] * 4
        for event, size in proto.sizes:
            if event == "pause":
                assert size > 1000
            else:
                assert size <= 100


async def test_lowering_high_below_the_buffered_size_pauses_at_once() -> None:
    local, peer = memory_stream_pair(capacity=8)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(FlowRecorder, local)
        transport.write(b"q" * 500)
        assert proto.trace == ["made"]
        transport.set_write_buffer_limits(high=100)
        assert proto.trace == ["made", "pause"]
        # Raising the limits again never resumes by itself.
        transport.set_write_buffer_limits(high=100_000)
        assert proto.trace == ["made", "pause"]
        await anyio.wait_all_tasks_blocked()
        assert proto.trace == ["made", "pause"]
        # Sending (the peer reads) is what resumes.
        assert await receive_exactly(peer, 500) == b"q" * 500
        await wait_until(lambda: "resume" in proto.trace)
        assert proto.trace == ["made", "pause", "resume"]


async def test_set_limits_at_exactly_the_buffered_size_does_not_pause() -> None:
    local, peer = memory_stream_pair(capacity=8)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(FlowRecorder, local)
        transport.write(b"q" * 500)
        transport.set_write_buffer_limits(high=500)
        assert proto.trace == ["made"]
        transport.abort()


async def test_high_zero_pauses_on_any_buffered_byte() -> None:
    local, peer = memory_stream_pair(capacity=1)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(FlowRecorder, local)
        transport.set_write_buffer_limits(high=0)
        assert transport.get_write_buffer_limits() == (0, 0)
        transport.write(b"!")
        assert proto.trace == ["made", "pause"]
        assert proto.sizes == [("pause", 1)]
        assert await receive_exactly(peer, 1) == b"!"
        await wait_until(lambda: "resume" in proto.trace)
        assert proto.sizes == [("pause", 1), ("resume", 0)]


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_a_write_the_socket_takes_whole_never_pauses_on_trio(
    kind: str,
) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(FlowRecorder, local)
        transport.set_write_buffer_limits(high=0)
        transport.write(b"small")
        assert transport.get_write_buffer_size() == 0
        assert proto.trace == ["made"]
        assert await receive_exactly(peer, 5) == b"small"
        assert proto.trace == ["made"]


# -- a protocol that honours pause_writing() -------------------------------------


class Producer(FlowRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.can_write = Flag()
        self.can_write.set()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused = True
        self.can_write.clear()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = False
        self.can_write.set()


async def test_honouring_pause_writing_keeps_the_buffer_bounded(kind: str) -> None:
    chunk_size = 64 * 1024
    chunks = [bytes([i % 251]) * chunk_size for i in range(80)]  # 5 MiB
    total = chunk_size * len(chunks)
    high = 65536
    local, peer = await open_pair(kind, capacity=32 * 1024)
    biggest = 0
    received = bytearray()

    async with peer, protoport.open_loop() as loop:
        transport, proto = await loop.connect_stream(Producer, local)
        assert transport.get_write_buffer_limits() == (16384, high)

        async def produce() -> None:
            nonlocal biggest
            for chunk in chunks:
                await proto.can_write.wait()
                transport.write(chunk)
                biggest = max(biggest, transport.get_write_buffer_size())
            transport.write_eof()

        async def slow_reader() -> None:
            with anyio.fail_after(10):
                while True:
                    try:
                        received.extend(await peer.receive(8192))
                    except anyio.EndOfStream:
                        return

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            tg.start_soon(slow_reader)

    assert len(received) == total
    assert bytes(received) == b"".join(chunks)
    assert biggest <= high + chunk_size
    pauses = proto.trace.count("pause")
    assert proto.trace.count("resume") == pauses
    if kind == "memory":
        assert pauses > 0  # the pipe is far smaller than 5 MiB
    # pause and resume strictly alternate
    flow = [e for e in proto.trace if e in ("pause", "resume")]
    assert flow == ["pause", "resume"] * pauses


# -- protocol switching and flow control -----------------------------------------


async def test_pause_writing_goes_to_the_new_protocol() -> None:
    local, peer = memory_stream_pair(capacity=16)
    async with peer, protoport.open_loop() as loop:
        transport, first = await loop.connect_stream(FlowRecorder, local)
        second = FlowRecorder()
        second.transport = transport
        transport.set_protocol(second)
        transport.set_write_buffer_limits(high=100)
        transport.write(b"w" * 200)
        assert first.trace == ["made"]
        assert second.trace == ["pause"]
        assert await receive_exactly(peer, 200) == b"w" * 200
        await wait_until(lambda: "resume" in second.trace)
        assert first.trace == ["made"]
        assert second.trace == ["pause", "resume"]


async def test_resume_writing_goes_to_the_protocol_set_while_paused() -> None:
    local, peer = memory_stream_pair(capacity=16)
    async with peer, protoport.open_loop() as loop:
        transport, first = await loop.connect_stream(FlowRecorder, local)
        transport.set_write_buffer_limits(high=100)
        transport.write(b"w" * 200)
        assert first.trace == ["made", "pause"]
        second = FlowRecorder()
        second.transport = transport
        transport.set_protocol(second)
        assert await receive_exactly(peer, 200) == b"w" * 200
        await wait_until(lambda: "resume" in second.trace)
        assert first.trace == ["made", "pause"]
        assert second.trace == ["resume"]


# -- the flow control callbacks see a running loop ------------------------------


class LoopProbe(FlowRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, object]] = []

    def _probe(self, name: str) -> None:
        try:
            self.seen.append((name, asyncio.get_running_loop()))
        except RuntimeError:
            self.seen.append((name, None))

    def pause_writing(self) -> None:
        self._probe("pause")
        super().pause_writing()

    def resume_writing(self) -> None:
        self._probe("resume")
        super().resume_writing()


async def test_flow_control_callbacks_see_a_running_loop(anyio_backend: str) -> None:
    local, peer = memory_stream_pair(capacity=16)
    async with peer, protoport.open_loop() as loop:
        # Under Trio the facade stands in for asyncio's loop.
        expected = loop if anyio_backend == "trio" else asyncio.get_running_loop()
        transport, proto = await loop.connect_stream(LoopProbe, local)
        transport.set_write_buffer_limits(high=10)
        transport.write(b"p" * 100)  # called from a plain task, not a callback
        assert await receive_exactly(peer, 100) == b"p" * 100
        await wait_until(lambda: "resume" in proto.trace)
    assert proto.seen == [("pause", expected), ("resume", expected)]
