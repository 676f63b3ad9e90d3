"""Pipe transports: loop.connect_read_pipe() and loop.connect_write_pipe()."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import protoport
from _helpers import Flag, collect_errors, exactly, settle, wait_until
from conftest import open_fds

pytestmark = pytest.mark.anyio


class ReadRecorder(asyncio.Protocol):
    """Records the callbacks of a read pipe; joins consecutive data."""

    def __init__(self) -> None:
        self.trace: list[Any] = []
        self.transport: Any = None
        self.lost = Flag()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.trace.append("made")

    def data_received(self, data: bytes) -> None:
        last = self.trace[-1]
        if isinstance(last, tuple) and last[0] == "data":
            self.trace[-1] = ("data", last[1] + data)
        else:
            self.trace.append(("data", data))

    def eof_received(self) -> bool:
        self.trace.append("eof")
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        self.trace.append(("lost", exc))
        self.lost.set()

    async def wait_lost(self) -> None:
        with anyio.fail_after(5):
            await self.lost.wait()


class WriteRecorder(asyncio.BaseProtocol):
    """Records the callbacks of a write pipe."""

    def __init__(self) -> None:
        self.trace: list[Any] = []
        self.lost = Flag()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.trace.append("made")

    def pause_writing(self) -> None:
        self.trace.append("pause")

    def resume_writing(self) -> None:
        self.trace.append("resume")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.trace.append(("lost", exc))
        self.lost.set()

    async def wait_lost(self) -> None:
        with anyio.fail_after(5):
            await self.lost.wait()


@pytest.fixture
def pipe_fds() -> Iterator[tuple[int, int]]:
    """``(read_fd, write_fd)`` of a new pipe; the test owns both, and whichever
    it did not hand to a transport is closed afterwards."""
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def reader_file(fd: int) -> Any:
    return open(fd, "rb", buffering=0, closefd=True)


def writer_file(fd: int) -> Any:
    return open(fd, "wb", buffering=0, closefd=True)


async def drain_fd(fd: int, n: int) -> bytes:
    """Read *n* bytes from the blocking descriptor *fd* in a worker thread."""

    def read() -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    with anyio.fail_after(10):
        return await anyio.to_thread.run_sync(read)


# -- reading -------------------------------------------------------------------------


async def test_read_pipe_delivers_data_then_eof_then_lost(
    pipe_fds: tuple[int, int],
) -> None:
    r, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_read_pipe(ReadRecorder, reader_file(r))
        assert protocol.trace == ["made"]
        assert transport.get_extra_info("pipe").fileno() == r
        os.write(w, b"hello ")
        os.write(w, b"pipe")
        os.close(w)
        await protocol.wait_lost()
    # eof_received() returning True does not keep a pipe open (as asyncio).
    assert protocol.trace == ["made", ("data", b"hello pipe"), "eof", ("lost", None)]


async def test_read_pipe_pause_holds_data_until_resume(
    pipe_fds: tuple[int, int],
) -> None:
    r, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_read_pipe(ReadRecorder, reader_file(r))
        transport.pause_reading()
        assert not transport.is_reading()
        os.write(w, b"held")
        await settle()
        assert protocol.trace == ["made"]
        transport.resume_reading()
        assert transport.is_reading()
        await wait_until(lambda: len(protocol.trace) == 2)
        assert protocol.trace == ["made", ("data", b"held")]
        transport.close()
        assert transport.is_closing()
        assert not transport.is_reading()
        await protocol.wait_lost()
    assert protocol.trace[-1] == ("lost", None)


async def test_read_pipe_close_stops_reading_and_closes_the_pipe(
    pipe_fds: tuple[int, int],
) -> None:
    r, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_read_pipe(ReadRecorder, reader_file(r))
        transport.close()
        await protocol.wait_lost()
        with pytest.raises(BrokenPipeError):
            os.write(w, b"x")
    assert protocol.trace == ["made", ("lost", None)]


async def test_read_pipe_data_callback_failure_is_reported_and_closes(
    pipe_fds: tuple[int, int],
) -> None:
    r, w = pipe_fds

    class Failing(ReadRecorder):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError

    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)
        _, protocol = await loop.connect_read_pipe(Failing, reader_file(r))
        os.write(w, b"x")
        await protocol.wait_lost()
    assert isinstance(protocol.trace[-1][1], ZeroDivisionError)
    assert errors[0]["message"] == "Fatal error: protocol.data_received() call failed."


async def test_read_pipe_reads_a_socket() -> None:
    a, b = socket.socketpair()
    with b:
        async with protoport.open_loop() as loop:
            _, protocol = await loop.connect_read_pipe(ReadRecorder, a)
            b.sendall(b"over a socket")
            b.shutdown(socket.SHUT_WR)
            await protocol.wait_lost()
    assert protocol.trace[1] == ("data", b"over a socket")
    assert a.fileno() == -1


async def test_read_pipe_reads_a_fifo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fifo")
        os.mkfifo(path)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        w = os.open(path, os.O_WRONLY)
        async with protoport.open_loop() as loop:
            _, protocol = await loop.connect_read_pipe(ReadRecorder, reader_file(fd))
            os.write(w, b"fifo")
            os.close(w)
            await protocol.wait_lost()
    assert protocol.trace == ["made", ("data", b"fifo"), "eof", ("lost", None)]


@pytest.mark.parametrize("method", ["connect_read_pipe", "connect_write_pipe"])
async def test_a_regular_file_is_rejected_with_asyncios_message(method: str) -> None:
    messages = {
        "connect_read_pipe": "Pipe transport is for pipes/sockets only.",
        "connect_write_pipe": (
            "Pipe transport is only for pipes, sockets and character devices"
        ),
    }
    made: list[object] = []
    with tempfile.TemporaryFile() as file:
        async with protoport.open_loop() as loop:
            with pytest.raises(ValueError, match=exactly(messages[method])):
                await getattr(loop, method)(
                    lambda: made.append(1) or ReadRecorder(), file
                )
    # As asyncio: the protocol is made before the pipe is checked.
    assert made == [1]


async def test_the_rejection_messages_are_asyncios() -> None:
    def native_errors() -> list[str]:
        async def connect() -> list[str]:
            loop = asyncio.get_running_loop()
            errors = []
            with tempfile.TemporaryFile() as file:
                for method in (loop.connect_read_pipe, loop.connect_write_pipe):
                    try:
                        await method(asyncio.Protocol, file)
                    except ValueError as exc:
                        errors.append(str(exc))
            return errors

        return asyncio.run(connect())

    assert await anyio.to_thread.run_sync(native_errors) == [
        "Pipe transport is for pipes/sockets only.",
        "Pipe transport is only for pipes, sockets and character devices",
    ]


# -- writing -------------------------------------------------------------------------


async def test_write_pipe_writes_then_close_flushes(pipe_fds: tuple[int, int]) -> None:
    r, w = pipe_fds
    payload = bytes(range(256)) * 4096  # 1 MiB, far more than the pipe holds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_write_pipe(
            WriteRecorder, writer_file(w)
        )
        assert transport.can_write_eof()
        transport.write(payload)
        assert transport.get_write_buffer_size() > 0
        assert protocol.trace == ["made", "pause"]
        transport.close()
        assert transport.is_closing()
        received = await drain_fd(r, len(payload))
        await protocol.wait_lost()
    assert received == payload
    assert protocol.trace == ["made", "pause", "resume", ("lost", None)]
    assert os.read(r, 1) == b""


async def test_write_pipe_respects_the_watermarks(pipe_fds: tuple[int, int]) -> None:
    r, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_write_pipe(
            WriteRecorder, writer_file(w)
        )
        assert transport.get_write_buffer_limits() == (16384, 65536)
        transport.set_write_buffer_limits(high=1 << 20)
        assert transport.get_write_buffer_limits() == (1 << 18, 1 << 20)
        with pytest.raises(
            ValueError, match=exactly("high (1) must be >= low (2) must be >= 0")
        ):
            transport.set_write_buffer_limits(high=1, low=2)
        size = 0
        while "pause" not in protocol.trace:
            transport.write(b"x" * 65536)
            size += 65536
            assert size < 8 << 20
        # Paused just above the high watermark: bounded memory.
        assert (1 << 20) < transport.get_write_buffer_size() <= (1 << 20) + 65536
        await drain_fd(r, size)
        await wait_until(lambda: "resume" in protocol.trace)
        assert transport.get_write_buffer_size() == 0
        transport.abort()
        await protocol.wait_lost()


async def test_write_pipe_rejects_text_with_the_stream_message(
    pipe_fds: tuple[int, int],
) -> None:
    _, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, _ = await loop.connect_write_pipe(WriteRecorder, writer_file(w))
        with pytest.raises(
            TypeError,
            match=exactly("data argument must be a bytes-like object, not 'str'"),
        ):
            transport.write("text")  # type: ignore[arg-type]
        transport.close()


async def test_write_pipe_reader_gone_with_data_buffered_is_broken_pipe(
    pipe_fds: tuple[int, int],
) -> None:
    r, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_write_pipe(
            WriteRecorder, writer_file(w)
        )
        transport.write(b"x" * (1 << 20))
        os.close(r)
        await protocol.wait_lost()
    assert protocol.trace[:2] == ["made", "pause"]
    assert isinstance(protocol.trace[-1][1], BrokenPipeError)


async def test_write_pipe_reader_gone_while_idle_is_noticed(
    pipe_fds: tuple[int, int],
) -> None:
    r, w = pipe_fds
    async with protoport.open_loop() as loop:
        _, protocol = await loop.connect_write_pipe(WriteRecorder, writer_file(w))
        os.close(r)
        # Nothing written: the reader's departure alone ends the transport.
        await protocol.wait_lost()
    assert protocol.trace == ["made", ("lost", None)]


async def test_write_pipe_writes_after_the_end_are_dropped_and_logged(
    pipe_fds: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    _, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_write_pipe(
            WriteRecorder, writer_file(w)
        )
        transport.write_eof()
        for _ in range(6):
            transport.write(b"late")
        await protocol.wait_lost()
    warnings = [
        r.message
        for r in caplog.records
        if r.message == "pipe closed by peer or os.write(pipe, data) raised exception."
    ]
    assert len(warnings) == 2


async def test_write_pipe_abort_drops_the_buffer(pipe_fds: tuple[int, int]) -> None:
    r, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_write_pipe(
            WriteRecorder, writer_file(w)
        )
        transport.write(b"x" * (1 << 20))
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        await protocol.wait_lost()
    assert protocol.trace[-1] == ("lost", None)
    received = b""
    while chunk := os.read(r, 1 << 20):
        received += chunk
    assert 0 < len(received) < 1 << 20


# -- the loop's end --------------------------------------------------------------------


async def test_leaving_the_loop_closes_every_pipe() -> None:
    before = open_fds()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    async with protoport.open_loop() as loop:
        _, reading = await loop.connect_read_pipe(ReadRecorder, reader_file(r1))
        _, writing = await loop.connect_write_pipe(WriteRecorder, writer_file(w2))
    os.close(w1)
    os.close(r2)
    assert reading.trace == ["made", ("lost", None)]
    assert writing.trace == ["made", ("lost", None)]
    assert open_fds() == before


async def test_a_cancelled_loop_closes_a_pipe_full_of_data() -> None:
    before = open_fds()
    r, w = os.pipe()
    with anyio.CancelScope() as scope:
        async with protoport.open_loop() as loop:
            transport, protocol = await loop.connect_write_pipe(
                WriteRecorder, writer_file(w)
            )
            transport.write(b"x" * (1 << 20))
            scope.cancel()
            await anyio.sleep_forever()
    os.close(r)
    assert protocol.trace == ["made", "pause", ("lost", None)]
    assert open_fds() == before


# -- without a reactor (as on platforms without epoll) --------------------------------


@pytest.fixture
def no_reactor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loops made from now on have no reactor: pipes wait in tasks."""
    monkeypatch.setattr(protoport.Loop, "_reader_registry", lambda self: None)


@pytest.mark.usefixtures("no_reactor")
async def test_without_a_reactor_a_read_pipe_reads_pauses_and_ends(
    pipe_fds: tuple[int, int],
) -> None:
    r, w = pipe_fds
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_read_pipe(ReadRecorder, reader_file(r))
        transport.pause_reading()
        os.write(w, b"later")
        await settle()
        assert protocol.trace == ["made"]
        transport.resume_reading()
        os.close(w)
        await protocol.wait_lost()
    assert protocol.trace == ["made", ("data", b"later"), "eof", ("lost", None)]


@pytest.mark.usefixtures("no_reactor")
async def test_without_a_reactor_a_write_pipe_sees_the_reader_go() -> None:
    before = open_fds()
    r, w = os.pipe()
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_write_pipe(
            WriteRecorder, writer_file(w)
        )
        transport.write(b"x" * (1 << 20))
        os.close(r)
        await protocol.wait_lost()
    assert isinstance(protocol.trace[-1][1], BrokenPipeError)
    assert open_fds() == before


def test_close_from_a_callback_under_plain_asyncio_run() -> None:
    """Under ``asyncio.run()`` (nothing declares the runtime to sniffio), the
    transport releases its pipe in a callback of the loop, not in a task."""

    async def main() -> tuple[list[Any], bool]:
        async with protoport.open_loop() as loop:
            read_fd, write_fd = os.pipe()
            os.close(write_fd)
            pipe = open(read_fd, "rb", buffering=0)  # noqa: SIM115
            transport, protocol = await loop.connect_read_pipe(ReadRecorder, pipe)
            transport.close()
            with anyio.fail_after(5):
                await protocol.lost.wait()
            return protocol.trace, pipe.closed

    trace, closed = asyncio.run(main())
    assert trace == ["made", ("lost", None)]
    assert closed
