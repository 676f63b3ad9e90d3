"""Life cycle of the loop facade: open_loop(), get_running_loop(), and what leaving
the block does to transports, tasks and timers. Both runtimes."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import trio
import trio.testing

import protoport
from _helpers import Recorder, exactly, wait_until
from _streams import memory_stream_pair, socket_stream_pair
from conftest import open_fds

pytestmark = pytest.mark.anyio


EXIT_MODES = ["normal", "exception", "cancel_scope", "timeout"]


async def run_and_leave(
    mode: str, body: Callable[[protoport.Loop], Awaitable[None]]
) -> protoport.Loop:
    """Run ``body(loop)`` inside ``open_loop()`` and leave the block as *mode* says:
    normally, by an exception, or by the cancellation of an enclosing scope."""
    loop: protoport.Loop | None = None
    if mode == "normal":
        async with protoport.open_loop() as loop:
            await body(loop)
    elif mode == "exception":
        # That the exception comes out unchanged is checked on its own below;
        # here only what leaving does to the loop's objects is of interest.
        error = ValueError("leaving by an exception")
        caught: BaseException | None = None
        try:
            async with protoport.open_loop() as loop:
                await body(loop)
                raise error
        except Exception as exc:
            caught = exc
        assert list(getattr(caught, "exceptions", [caught])) == [error]
    elif mode == "cancel_scope":
        with anyio.CancelScope() as scope:
            async with protoport.open_loop() as loop:
                await body(loop)
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
    elif mode == "timeout":
        with anyio.move_on_after(math.inf) as scope:
            async with protoport.open_loop() as loop:
                await body(loop)
                scope.deadline = anyio.current_time() + 0.01
                await anyio.sleep_forever()
        assert scope.cancelled_caught
    else:
        raise AssertionError(mode)
    assert loop is not None
    return loop


# -- open_loop -----------------------------------------------------------------


async def test_open_loop_yields_a_running_loop_closed_after_the_block() -> None:
    manager = protoport.open_loop()
    async with manager as loop:
        assert isinstance(loop, protoport.Loop)
        assert loop is manager
        assert loop.is_running()
        assert not loop.is_closed()
    assert not loop.is_running()
    assert loop.is_closed()


async def test_a_loop_cannot_be_entered_twice() -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(RuntimeError):
            async with loop:
                pass
        assert loop.is_running()
    with pytest.raises(RuntimeError):
        async with loop:
            pass
    assert loop.is_closed()
    assert not loop.is_running()


async def test_closed_loop_refuses_new_work() -> None:
    async with protoport.open_loop() as loop:
        pass

    async def coroutine() -> None:
        pass

    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_soon(lambda: None)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_later(1, lambda: None)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_at(loop.time() + 1, lambda: None)
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.call_soon_threadsafe(lambda: None)
    coro = coroutine()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.create_task(coro)
    coro.close()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.run_in_executor(None, lambda: None)


async def test_connect_stream_on_a_closed_loop_closes_the_stream() -> None:
    async with protoport.open_loop() as loop:
        pass
    a, b = memory_stream_pair()
    made: list[Recorder] = []
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        await loop.connect_stream(lambda: made.append(Recorder()) or made[-1], a)
    assert made == []
    with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
        await b.receive()


# -- get_running_loop ----------------------------------------------------------


async def test_get_running_loop_returns_the_innermost_open_loop() -> None:
    async with protoport.open_loop() as outer:
        assert protoport.get_running_loop() is outer
        async with protoport.open_loop() as inner:
            assert inner is not outer
            assert protoport.get_running_loop() is inner
        assert protoport.get_running_loop() is outer


async def test_get_running_loop_in_a_callback_of_the_loop() -> None:
    seen: list[protoport.Loop] = []
    async with protoport.open_loop() as outer:
        async with protoport.open_loop() as inner:
            done = inner.create_future()
            inner.call_soon(lambda: seen.append(protoport.get_running_loop()))
            inner.call_soon(done.set_result, None)
            with anyio.fail_after(5):
                await done
        done = outer.create_future()
        outer.call_soon(lambda: seen.append(protoport.get_running_loop()))
        outer.call_soon(done.set_result, None)
        with anyio.fail_after(5):
            await done
    assert seen == [inner, outer]
    assert seen[0] is inner
    assert seen[1] is outer


async def test_default_loop_outside_open_loop() -> None:
    default = protoport.get_running_loop()
    assert isinstance(default, protoport.Loop)
    assert not default.is_closed()
    assert protoport.get_running_loop() is default
    async with protoport.open_loop() as loop:
        assert loop is not default
        assert protoport.get_running_loop() is loop
    assert protoport.get_running_loop() is default
    assert not default.is_closed()


async def test_default_loop_is_running_as_soon_as_it_is_returned() -> None:
    default = protoport.get_running_loop()
    assert default.is_running()


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_default_loop_is_one_per_run_and_closes_its_transports_at_the_end(
    backend: str,
) -> None:
    loops: list[protoport.Loop] = []

    async def main() -> Recorder:
        loop = protoport.get_running_loop()
        assert protoport.get_running_loop() is loop
        loops.append(loop)
        a, _b = memory_stream_pair()
        transport, recorder = await loop.connect_stream(Recorder, a)
        assert not transport.is_closing()
        assert recorder.trace == ["made"]
        return recorder

    first = anyio.run(main, backend=backend)
    second = anyio.run(main, backend=backend)
    assert loops[0] is not loops[1]
    assert first.trace == ["made", ("lost", None)]
    assert second.trace == ["made", ("lost", None)]
    assert loops[0].is_closed()
    assert loops[1].is_closed()


def test_get_running_loop_outside_a_run_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        protoport.get_running_loop()


# -- leaving the block ---------------------------------------------------------


@pytest.mark.parametrize("mode", EXIT_MODES)
async def test_leaving_closes_transports_and_cancels_tasks_and_timers(
    mode: str,
) -> None:
    recorders: list[Recorder] = []
    peers: list[Any] = []
    tasks: list[asyncio.Future[Any]] = []
    timers: list[asyncio.TimerHandle] = []
    fired: list[str] = []
    progress: list[str] = []

    async def forever() -> None:
        progress.append("task started")
        await asyncio.sleep(3600)
        progress.append("task finished")

    async def body(loop: protoport.Loop) -> None:
        for capacity in (1 << 20, 4):
            a, b = memory_stream_pair(capacity)
            peers.append(b)
            _, recorder = await loop.connect_stream(Recorder, a)
            recorders.append(recorder)
        # The second one is stuck: its peer does not read.
        recorders[1].transport.write(b"x" * 100)  # type: ignore[union-attr]
        timers.append(loop.call_later(0.05, fired.append, "timer"))
        timers.append(loop.call_at(loop.time() + 3600, fired.append, "far timer"))
        tasks.append(loop.create_task(forever()))
        await wait_until(lambda: progress)

    tasks_before = len(anyio.get_running_tasks())
    loop = await run_and_leave(mode, body)
    assert loop.is_closed()
    assert not loop.is_running()
    for recorder in recorders:
        assert recorder.trace == ["made", ("lost", None)]
    assert tasks[0].cancelled()
    assert progress == ["task started"]
    assert all(timer.cancelled() for timer in timers)
    assert len(anyio.get_running_tasks()) == tasks_before
    # The timers' time passes without them running.
    await wait_until(lambda: loop.time() > timers[0].when())
    await anyio.sleep(0.01)
    assert fired == []
    for recorder in recorders:
        assert recorder.trace == ["made", ("lost", None)]


@pytest.mark.parametrize("mode", EXIT_MODES)
async def test_leaving_leaves_no_file_descriptor_open(mode: str) -> None:
    fds_before = open_fds()
    recorders: list[Recorder] = []
    peers: list[Any] = []

    async def body(loop: protoport.Loop) -> None:
        for _ in range(3):
            a, b = await socket_stream_pair()
            peers.append(b)
            _, recorder = await loop.connect_stream(Recorder, a)
            recorders.append(recorder)
        await peers[0].send(b"hello")
        await wait_until(lambda: len(recorders[0].trace) >= 2)

    tasks_before = len(anyio.get_running_tasks())
    try:
        await run_and_leave(mode, body)
        assert len(anyio.get_running_tasks()) == tasks_before
        assert recorders[0].trace == ["made", ("data", b"hello"), ("lost", None)]
        for recorder in recorders[1:]:
            assert recorder.trace == ["made", ("lost", None)]
        # Each peer sees the connection end.
        for peer in peers:
            with anyio.fail_after(5):
                try:
                    data = await peer.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    data = b""
            assert data == b""
    finally:
        for peer in peers:
            await peer.aclose()
    await wait_until(lambda: open_fds() == fds_before)
    assert open_fds() == fds_before


class SlowReader:
    """Reads a stream a few bytes at a time, yielding in between, and notes how it
    ended: ``"eof"`` or ``"broken"``."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.ended: list[str] = []

    async def read(self, stream: Any) -> None:
        while True:
            try:
                self.received.extend(await stream.receive(7))
            except anyio.EndOfStream:
                self.ended.append("eof")
                return
            except anyio.BrokenResourceError:
                self.ended.append("broken")
                return
            await anyio.sleep(0)


async def test_normal_exit_flushes_a_closing_transport_before_connection_lost() -> None:
    payload = bytes(range(256)) * 16
    reader = SlowReader()

    async with anyio.create_task_group() as tg:
        a, b = memory_stream_pair(16)
        async with protoport.open_loop() as loop:
            transport, recorder = await loop.connect_stream(Recorder, a)
            transport.write(payload)
            transport.close()
            assert transport.is_closing()
            tg.start_soon(reader.read, b)
        # Leaving waited for the buffer to drain to the stream.
        assert recorder.trace == ["made", ("lost", None)]
        assert len(reader.received) >= len(payload) - 16
    assert bytes(reader.received) == payload
    assert reader.ended == ["eof"]


async def _closing_for_a_peer_that_never_reads(
    loop: protoport.Loop, kind: str, peers: list[Any]
) -> Recorder:
    """A transport closed with more buffered than its peer will ever take."""
    if kind == "socket":  # protoport's own socket
        local, peer = socket.socketpair()
        transport, recorder = await loop.connect_accepted_socket(Recorder, local)
        payload = b"x" * (12 << 20)
    else:
        local_stream, peer = memory_stream_pair(16)
        transport, recorder = await loop.connect_stream(Recorder, local_stream)
        payload = b"x" * 1024
    peers.append(peer)
    transport.write(payload)
    transport.close()
    await anyio.sleep(0.01)
    assert transport.get_write_buffer_size() > 0
    return recorder


@pytest.mark.parametrize("exit_timeout", [0.1, 0])
@pytest.mark.parametrize("kind", ["socket", "memory"])
async def test_a_normal_exit_aborts_what_still_flushes_after_exit_timeout(
    kind: str, exit_timeout: float
) -> None:
    # It waited forever (asyncio.run() drops such a transport at once, without
    # connection_lost()).
    fds_before = open_fds()
    peers: list[Any] = []
    with anyio.fail_after(5):
        async with protoport.open_loop(exit_timeout=exit_timeout) as loop:
            flushing = [
                await _closing_for_a_peer_that_never_reads(loop, kind, peers)
                for _ in range(2)
            ]
            a, _b = memory_stream_pair()
            _, idle = await loop.connect_stream(Recorder, a)
            start = anyio.current_time()
        elapsed = anyio.current_time() - start
    assert exit_timeout - 0.05 <= elapsed < exit_timeout + 1
    for recorder in [*flushing, idle]:
        assert recorder.trace == ["made", ("lost", None)]
    for peer in peers:
        if kind == "socket":
            peer.close()
    assert open_fds() == fds_before


async def test_exit_timeout_none_waits_for_the_flush() -> None:
    payload = bytes(range(256)) * 64
    reader = SlowReader()

    async def read_later(stream: Any) -> None:
        await anyio.sleep(0.1)
        await reader.read(stream)

    async with anyio.create_task_group() as tg:
        a, b = memory_stream_pair(16)
        async with protoport.open_loop(exit_timeout=None) as loop:
            transport, recorder = await loop.connect_stream(Recorder, a)
            transport.write(payload)
            transport.close()
            tg.start_soon(read_later, b)
        assert recorder.trace == ["made", ("lost", None)]
    assert bytes(reader.received) == payload
    assert reader.ended == ["eof"]


def _virtual_trio() -> Any:
    # Jump the clock only after a real pause, so that I/O in flight does not
    # count as idleness.
    clock = trio.testing.MockClock(autojump_threshold=0.05)
    return pytest.param(("trio", {"clock": clock}), id="trio-virtual-clock")


@pytest.mark.parametrize("anyio_backend", [_virtual_trio()])
async def test_exit_timeout_is_30_seconds_by_default() -> None:
    peers: list[Any] = []
    with anyio.fail_after(60):  # on the virtual clock
        async with protoport.open_loop() as loop:
            recorder = await _closing_for_a_peer_that_never_reads(loop, "socket", peers)
            start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(30, abs=1)
    assert recorder.trace == ["made", ("lost", None)]
    peers[0].close()


@pytest.mark.parametrize("exit_timeout", [-1, -0.5, math.nan])
def test_exit_timeout_must_not_be_negative(exit_timeout: float) -> None:
    with pytest.raises(
        ValueError,
        match=exactly(
            f"exit_timeout must be None or a number >= 0, got {exit_timeout!r}"
        ),
    ):
        protoport.open_loop(exit_timeout=exit_timeout)


@pytest.mark.parametrize("mode", ["exception", "cancel_scope"])
async def test_exit_by_exception_aborts_a_closing_transport(mode: str) -> None:
    payload = bytes(range(256)) * 16
    reader = SlowReader()

    recorders: list[Recorder] = []

    async with anyio.create_task_group() as tg:
        a, b = memory_stream_pair(16)

        async def body(loop: protoport.Loop) -> None:
            transport, recorder = await loop.connect_stream(Recorder, a)
            recorders.append(recorder)
            transport.write(payload)
            transport.close()
            tg.start_soon(reader.read, b)

        with anyio.fail_after(5):
            await run_and_leave(mode, body)
        assert recorders[0].trace == ["made", ("lost", None)]
    assert len(reader.received) < len(payload)
    assert payload.startswith(bytes(reader.received))
    assert len(reader.ended) == 1


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
async def test_exception_from_the_block_propagates_unchanged(busy: bool) -> None:
    class Custom(Exception):
        pass

    error = Custom("mine")

    async def use_loop() -> None:
        async with protoport.open_loop() as loop:
            if busy:
                a, _b = memory_stream_pair()
                await loop.connect_stream(Recorder, a)
                loop.call_later(10, lambda: None)
            raise error

    with pytest.raises(Custom) as info:
        await use_loop()
    assert info.value is error
