"""StreamReader: reading, EOF, exceptions, limits and the pausing of the
transport, concurrency errors, async iteration and linear cost."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup

import protoport
from _helpers import Flag, exactly, wait_until
from _streams import memory_stream_pair
from protoport import StreamReader, open_stream_pair

pytestmark = pytest.mark.anyio

DATA = b"line1\nline2\nline3\n"


class Outcome:
    """The result or exception of a call run in the background."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = Flag()

    async def get(self) -> Any:
        with anyio.fail_after(5):
            await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


def spawn(tg: TaskGroup, fn: Callable[..., Awaitable[Any]], *args: Any) -> Outcome:
    outcome = Outcome()

    async def run() -> None:
        try:
            outcome.value = await fn(*args)
        except Exception as exc:
            outcome.error = exc
        finally:
            outcome.done.set()

    tg.start_soon(run)
    return outcome


def waiting(reader: StreamReader) -> bool:
    return "waiter=" in repr(reader)


class PausingTransport:
    """Stands in for a transport: records pause_reading()/resume_reading()."""

    def __init__(self, can_pause: bool = True) -> None:
        self.trace: list[str] = []
        self.can_pause = can_pause

    def pause_reading(self) -> None:
        if not self.can_pause:
            raise NotImplementedError
        self.trace.append("pause")

    def resume_reading(self) -> None:
        self.trace.append("resume")

    def __repr__(self) -> str:
        return "<PausingTransport>"


def with_transport(reader: StreamReader, transport: PausingTransport) -> None:
    reader.set_transport(transport)  # type: ignore[arg-type]


# -- construction and repr -------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, -(2**16)])
async def test_limit_must_be_positive(limit: int) -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(ValueError, match=r"^Limit cannot be <= 0$"):
            StreamReader(limit=limit, loop=loop)


async def test_default_loop_is_the_innermost_open_loop() -> None:
    # Without a loop argument the reader waits on futures of the innermost
    # open_loop(): a read waits, and a feed from a callback of that loop ends it.
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader()
        outcome = spawn(tg, reader.read, 10)
        await wait_until(lambda: waiting(reader))
        loop.call_soon(reader.feed_data, b"abc")
        assert await outcome.get() == b"abc"


async def test_default_loop_outside_open_loop() -> None:
    # protoport.get_running_loop()'s default loop serves a reader made without
    # any open_loop().
    reader = StreamReader()
    async with anyio.create_task_group() as tg:
        outcome = spawn(tg, reader.readline)
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"one\ntwo")
        assert await outcome.get() == b"one\n"


async def test_repr() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        assert repr(reader) == "<StreamReader>"
        assert repr(StreamReader(limit=123, loop=loop)) == "<StreamReader limit=123>"
        reader.feed_data(b"data")
        assert repr(reader) == "<StreamReader 4 bytes>"
        reader.feed_eof()
        assert repr(reader) == "<StreamReader 4 bytes eof>"
        failed = StreamReader(loop=loop)
        failed.set_exception(RuntimeError("x"))
        assert repr(failed) == "<StreamReader exception=RuntimeError('x')>"
        with_transport(failed, PausingTransport())
        assert repr(failed) == (
            "<StreamReader exception=RuntimeError('x') transport=<PausingTransport>>"
        )


async def test_repr_shows_waiter() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        outcome = spawn(tg, reader.read, 1)
        await wait_until(lambda: waiting(reader))
        assert re.fullmatch(r"<StreamReader waiter=<Future pending.*>>", repr(reader))
        reader.feed_eof()
        assert await outcome.get() == b""
        assert repr(reader) == "<StreamReader eof>"


# -- feeding ---------------------------------------------------------------------


async def test_feed_and_at_eof() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        assert not reader.at_eof()
        reader.feed_data(b"some data\n")
        assert not reader.at_eof()
        assert await reader.readline() == b"some data\n"
        assert not reader.at_eof()
        reader.feed_data(b"more\n")
        reader.feed_eof()
        assert not reader.at_eof()  # bytes are still buffered
        assert await reader.readline() == b"more\n"
        assert reader.at_eof()


async def test_feed_empty_data_wakes_nobody() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        outcome = spawn(tg, reader.read, 5)
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"")
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        assert waiting(reader)
        assert not outcome.done.is_set()
        reader.feed_data(bytearray(b"xy"))
        assert await outcome.get() == b"xy"


async def test_feed_data_after_feed_eof_is_an_assertion() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.feed_eof()
        with pytest.raises(AssertionError, match=r"^feed_data after feed_eof$"):
            reader.feed_data(b"x")


def _fed(reader: Any, data: Any) -> tuple[Any, ...]:
    """What ``reader.feed_data(data)`` does: the error, or the buffer after it."""
    try:
        reader.feed_data(data)
    except Exception as exc:
        return type(exc), str(exc)
    return ("buffer", bytes(reader._buffer))


@pytest.mark.parametrize(
    "data",
    ["text", "", 5, 2.5, None, object(), [104, 105], b"bytes", bytearray(b"ba")],
    ids=["str", "empty-str", "int", "float", "None", "object", "ints", "bytes", "ba"],
)
async def test_feed_data_takes_and_refuses_what_asyncio_s_does(data: Any) -> None:
    # What bytearray.extend() takes and raises: "expected iterable of integers;
    # got: 'str'" for a str on 3.13 (protoport said "can't concat str to
    # bytearray").
    async with protoport.open_loop() as loop:
        ours = _fed(StreamReader(loop=loop), data)
        asyncio_s = _fed(asyncio.StreamReader(loop=loop), data)  # type: ignore[arg-type]
    assert ours == asyncio_s


async def test_set_transport_only_once() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        with_transport(reader, PausingTransport())
        with pytest.raises(AssertionError, match=r"^Transport already set$"):
            with_transport(reader, PausingTransport())


async def test_fed_memoryview_is_copied() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        source = bytearray(b"abcd")
        reader.feed_data(memoryview(source))
        source[:] = b"zzzz"
        assert await reader.read(10) == b"abcd"


# -- read ------------------------------------------------------------------------


async def test_read_zero_returns_at_once() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        assert await reader.read(0) == b""  # no data, no EOF: does not wait
        reader.feed_data(DATA)
        assert await reader.read(0) == b""
        assert await reader.read(100) == DATA


async def test_read_waits_for_data() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        outcome = spawn(tg, reader.read, 30)
        await wait_until(lambda: waiting(reader))
        reader.feed_data(DATA)
        assert await outcome.get() == DATA


async def test_read_returns_at_most_n() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"line1")
        reader.feed_data(b"line2")
        assert await reader.read(5) == b"line1"
        assert await reader.read(3) == b"lin"
        assert await reader.read(100) == b"e2"


async def test_read_is_not_bounded_by_the_limit() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=3, loop=loop)
        reader.feed_data(b"chunk")
        assert await reader.read(5) == b"chunk"


async def test_read_at_eof_returns_empty() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        outcome = spawn(tg, reader.read, 1024)
        await wait_until(lambda: waiting(reader))
        reader.feed_eof()
        assert await outcome.get() == b""
        assert await reader.read(10) == b""
        assert await reader.read() == b""


async def test_read_all_until_eof() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        outcome = spawn(tg, reader.read)
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"chunk1\n")
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"chunk2")
        await wait_until(lambda: waiting(reader))
        reader.feed_eof()
        assert await outcome.get() == b"chunk1\nchunk2"
        assert reader.at_eof()


@pytest.mark.parametrize("n", [-1, -5])
async def test_read_negative_reads_to_eof(n: int) -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=4, loop=loop)
        reader.feed_data(b"0123456789" * 3)
        reader.feed_eof()
        assert await reader.read(n) == b"0123456789" * 3


# -- exceptions ------------------------------------------------------------------


async def test_exception_and_set_exception() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        assert reader.exception() is None
        exc = ValueError("boom")
        reader.set_exception(exc)
        assert reader.exception() is exc


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.read(2),
        lambda r: r.read(),
        lambda r: r.readline(),
        lambda r: r.readexactly(2),
        lambda r: r.readuntil(b"\n"),
        lambda r: r.__anext__(),
    ],
    ids=["read", "read_all", "readline", "readexactly", "readuntil", "anext"],
)
async def test_exception_raised_before_buffered_data(
    call: Callable[[StreamReader], Awaitable[bytes]],
) -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"line\n")
        assert await reader.read(2) == b"li"
        exc = ValueError("boom")
        reader.set_exception(exc)
        with pytest.raises(ValueError, match=r"^boom$") as info:
            await call(reader)
        assert info.value is exc


@pytest.mark.parametrize("method", ["read", "readline", "readexactly", "readuntil"])
async def test_set_exception_wakes_a_waiting_read(method: str) -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        args = (5,) if method in ("read", "readexactly") else ()
        outcome = spawn(tg, getattr(reader, method), *args)
        await wait_until(lambda: waiting(reader))
        exc = ConnectionResetError("gone")
        reader.set_exception(exc)
        with pytest.raises(ConnectionResetError) as info:
            await outcome.get()
        assert info.value is exc
        assert repr(reader) == "<StreamReader exception=ConnectionResetError('gone')>"


async def test_cancelled_read_leaves_the_reader_usable() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        async with anyio.create_task_group() as tg:
            spawn(tg, reader.readline)
            await wait_until(lambda: waiting(reader))
            tg.cancel_scope.cancel()
        assert not waiting(reader)
        # Neither feeding nor failing trips over the cancelled wait.
        reader.feed_data(b"abc\n")
        assert await reader.readline() == b"abc\n"
        async with anyio.create_task_group() as tg:
            spawn(tg, reader.read, 3)
            await wait_until(lambda: waiting(reader))
            tg.cancel_scope.cancel()
        reader.set_exception(RuntimeError("message"))
        assert not waiting(reader)
        with pytest.raises(RuntimeError, match=r"^message$"):
            await reader.read(1)


@pytest.mark.parametrize(
    ("first", "second", "name"),
    [
        (lambda r: r.read(1), lambda r: r.read(1), "read"),
        (lambda r: r.read(1), lambda r: r.read(), "read"),
        (lambda r: r.readline(), lambda r: r.readline(), "readuntil"),
        (lambda r: r.read(1), lambda r: r.readuntil(b"!"), "readuntil"),
        (lambda r: r.readline(), lambda r: r.readexactly(3), "readexactly"),
    ],
    ids=["read", "read_all", "readline", "readuntil", "readexactly"],
)
async def test_concurrent_read_is_an_error(
    first: Callable[[StreamReader], Awaitable[bytes]],
    second: Callable[[StreamReader], Awaitable[bytes]],
    name: str,
) -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        outcome = spawn(tg, first, reader)
        await wait_until(lambda: waiting(reader))
        message = (
            f"{name}() called while another coroutine is already waiting for "
            f"incoming data"
        )
        with pytest.raises(RuntimeError, match=exactly(message)):
            await second(reader)
        # The first read is still waiting, and still gets the bytes.
        reader.feed_data(b"x\n")
        assert await outcome.get() in (b"x", b"x\n")


# -- readexactly -----------------------------------------------------------------


async def test_readexactly() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        n = 2 * len(DATA)
        outcome = spawn(tg, reader.readexactly, n)
        for _ in range(3):
            await wait_until(lambda: waiting(reader) or outcome.done.is_set())
            reader.feed_data(DATA)
        assert await outcome.get() == DATA + DATA
        assert await reader.read(100) == DATA


async def test_readexactly_zero_and_negative() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        assert await reader.readexactly(0) == b""  # no data: does not wait
        reader.feed_data(DATA)
        assert await reader.readexactly(0) == b""
        with pytest.raises(
            ValueError, match=r"^readexactly size can not be less than zero$"
        ):
            await reader.readexactly(-1)
        assert await reader.read(100) == DATA


async def test_readexactly_negative_checked_before_exception() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.set_exception(OSError("x"))
        with pytest.raises(ValueError, match="less than zero"):
            await reader.readexactly(-1)


async def test_readexactly_above_limit() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=3, loop=loop)
        reader.feed_data(b"chunk")
        assert await reader.readexactly(5) == b"chunk"


async def test_readexactly_eof() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        n = 2 * len(DATA)
        outcome = spawn(tg, reader.readexactly, n)
        await wait_until(lambda: waiting(reader))
        reader.feed_data(DATA)
        await wait_until(lambda: waiting(reader))
        reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await outcome.get()
        assert info.value.partial == DATA
        assert info.value.expected == n
        assert str(info.value) == "18 bytes read on a total of 36 expected bytes"
        assert reader.at_eof()  # the partial bytes were consumed


# -- readuntil -------------------------------------------------------------------


async def test_readuntil_separator_checks() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        with pytest.raises(
            ValueError, match=r"^Separator should be at least one-byte string$"
        ):
            await reader.readuntil(b"")
        with pytest.raises(
            ValueError, match=r"^Separator should be at least one-byte string$"
        ):
            await reader.readuntil((b"\n", b""))
        with pytest.raises(
            ValueError, match=r"^Separator should contain at least one element$"
        ):
            await reader.readuntil(())


async def test_readuntil_across_chunks() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"QWEaa")
        outcome = spawn(tg, reader.readuntil, b"aaa")
        for chunk in (b"XYa", b"a", b"a"):
            await wait_until(lambda: waiting(reader) or outcome.done.is_set())
            reader.feed_data(chunk)
        assert await outcome.get() == b"QWEaaXYaaa"
        reader.feed_data(b"lineAAAxxx")
        assert await reader.readuntil(b"AAA") == b"lineAAA"
        assert await reader.read(10) == b"xxx"


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
async def test_readuntil_bytes_like_separator(kind: Callable[[bytes], Any]) -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"some data\r\nrest")
        assert await reader.readuntil(kind(b"\r\n")) == b"some data\r\n"
        assert await reader.readuntil((kind(b"s"), kind(b"t"))) == b"res"


async def test_readuntil_tuple_shortest_result_wins() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"line 1\nline 2\r")
        assert await reader.readuntil((b"\r", b"\n")) == b"line 1\n"
        assert await reader.readuntil((b"\r", b"\n")) == b"line 2\r"
        # The match that ends first wins, even when it is the longer separator.
        reader.feed_data(b"ABCDEFG")
        assert await reader.readuntil((b"DEF", b"BCDE")) == b"ABCDE"
        assert await reader.read(10) == b"FG"


async def test_readuntil_tuple_waits_for_more() -> None:
    # The buffer holds enough for the short separator but not the long one.
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"data")
        outcome = spawn(tg, reader.readuntil, (b"A", b"long sep"))
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"Z")
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"Aaaa")
        assert await outcome.get() == b"dataZA"
        assert await reader.read(10) == b"aaa"


async def test_readuntil_eof() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"some dataAA")
        reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readuntil(b"AAA")
        assert info.value.partial == b"some dataAA"
        assert info.value.expected is None
        assert str(info.value) == "11 bytes read on a total of undefined expected bytes"
        assert reader.at_eof()


async def test_readuntil_separator_completed_by_last_chunk_before_eof() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"abc!")
        outcome = spawn(tg, reader.readuntil, b"!!")
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"!")
        reader.feed_eof()
        assert await outcome.get() == b"abc!!"


async def test_readuntil_limit_overrun() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=3, loop=loop)
        reader.feed_data(b"some dataAA")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await reader.readuntil(b"AAA")
        assert info.value.args[0] == (
            "Separator is not found, and chunk exceed the limit"
        )
        assert info.value.consumed == 9
        reader.feed_data(b"A")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await reader.readuntil(b"AAA")
        assert info.value.args[0] == (
            "Separator is found, but chunk is longer than limit"
        )
        assert info.value.consumed == 9
        # The bytes stay buffered and can be read another way.
        assert await reader.read(100) == b"some dataAAA"


async def test_readuntil_limit_with_tuple_uses_shortest_separator() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=3, loop=loop)
        reader.feed_data(b"some dataA")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await reader.readuntil((b"A", b"ome dataA"))
        assert info.value.args[0] == (
            "Separator is found, but chunk is longer than limit"
        )
        assert await reader.read(100) == b"some dataA"


async def test_readuntil_limit_is_inclusive() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=7, loop=loop)
        reader.feed_data(b"1234567\n")
        assert await reader.readuntil() == b"1234567\n"


# -- readline --------------------------------------------------------------------


async def test_readline_waits_for_the_newline() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"chunk1 ")
        outcome = spawn(tg, reader.readline)
        for chunk in (b"chunk2 ", b"chunk3 ", b"\n chunk4"):
            await wait_until(lambda: waiting(reader) or outcome.done.is_set())
            reader.feed_data(chunk)
        assert await outcome.get() == b"chunk1 chunk2 chunk3 \n"
        assert await reader.read(100) == b" chunk4"


async def test_readline_partial_and_empty_at_eof() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"some data")
        reader.feed_eof()
        assert await reader.readline() == b"some data"
        assert await reader.readline() == b""
        assert reader.at_eof()


async def test_readline_overrun_with_newline_drops_the_line() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=3, loop=loop)
        reader.feed_data(b"li")
        reader.feed_data(b"ne1\nline2\n")
        with pytest.raises(
            ValueError, match=r"^Separator is found, but chunk is longer than limit$"
        ):
            await reader.readline()
        assert await reader.read(100) == b"line2\n"


async def test_readline_overrun_without_newline_clears_the_buffer() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=3, loop=loop)
        reader.feed_data(b"li")
        reader.feed_data(b"ne1")
        reader.feed_data(b"li")
        with pytest.raises(
            ValueError, match=r"^Separator is not found, and chunk exceed the limit$"
        ):
            await reader.readline()
        assert "bytes" not in repr(reader)  # nothing left buffered
        reader.feed_data(b"ok\n")
        assert await reader.readline() == b"ok\n"


async def test_readline_overrun_while_waiting() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(limit=7, loop=loop)
        outcome = spawn(tg, reader.readline)
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"chunk1")
        reader.feed_data(b"chunk2\n")
        reader.feed_data(b"chunk3\n")
        reader.feed_eof()
        with pytest.raises(ValueError, match="chunk is longer than limit"):
            await outcome.get()
        assert await reader.read() == b"chunk3\n"


async def test_readline_strict_limit() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=7, loop=loop)
        reader.feed_data(b"1234567\n")
        assert await reader.readline() == b"1234567\n"
        reader.feed_data(b"12345678\n")
        with pytest.raises(ValueError, match="chunk is longer than limit"):
            await reader.readline()
        reader.feed_data(b"12345678")
        with pytest.raises(ValueError, match="chunk exceed the limit"):
            await reader.readline()
        reader.feed_eof()
        assert await reader.readline() == b""


async def test_readline_then_read() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        reader.feed_data(DATA[:6])
        reader.feed_data(DATA[6:])
        assert await reader.readline() == b"line1\n"
        assert await reader.read(7) == b"line2\nl"
        assert await reader.read(100) == b"ine3\n"


# -- async iteration -------------------------------------------------------------


async def test_async_iteration_yields_lines() -> None:
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(loop=loop)
        reader.feed_data(b"line1\nline2\nli")

        async def collect() -> list[bytes]:
            return [line async for line in reader]

        outcome = spawn(tg, collect)
        await wait_until(lambda: waiting(reader))
        reader.feed_data(b"ne3")
        reader.feed_eof()
        assert await outcome.get() == [b"line1\n", b"line2\n", b"line3"]
        assert reader.__aiter__() is reader


# -- the limit pauses and resumes the transport ------------------------------------


async def test_pause_above_twice_the_limit_resume_at_limit() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=10, loop=loop)
        transport = PausingTransport()
        with_transport(reader, transport)
        reader.feed_data(b"x" * 20)  # exactly 2 x limit: not yet
        assert transport.trace == []
        reader.feed_data(b"x")
        assert transport.trace == ["pause"]
        assert repr(reader).endswith(" paused>")
        reader.feed_data(b"x" * 5)  # already paused: no second call
        assert transport.trace == ["pause"]
        assert await reader.read(15) == b"x" * 15  # 11 left: above the limit
        assert transport.trace == ["pause"]
        assert await reader.readexactly(1) == b"x"  # 10 left: resume
        assert transport.trace == ["pause", "resume"]
        assert await reader.read(100) == b"x" * 10
        assert transport.trace == ["pause", "resume"]


@pytest.mark.parametrize(
    ("method", "args"),
    [("readline", ()), ("readuntil", (b"!",))],
)
async def test_readline_and_readuntil_resume(method: str, args: tuple[Any]) -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=4, loop=loop)
        transport = PausingTransport()
        with_transport(reader, transport)
        sep = b"!" if args else b"\n"
        reader.feed_data(b"abcd" + sep + b"e" * 4)  # 9 bytes: paused
        assert transport.trace == ["pause"]
        # The line is within the limit, and 4 bytes (the limit) are left.
        assert await getattr(reader, method)(*args) == b"abcd" + sep
        assert transport.trace == ["pause", "resume"]


async def test_readline_overrun_resumes() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=4, loop=loop)
        transport = PausingTransport()
        with_transport(reader, transport)
        reader.feed_data(b"abcdefghij\nxy")
        assert transport.trace == ["pause"]
        with pytest.raises(ValueError, match="chunk is longer than limit"):
            await reader.readline()
        assert transport.trace == ["pause", "resume"]


async def test_waiting_while_paused_resumes_first() -> None:
    # readexactly(n) with n above the pause threshold would never finish if the
    # wait did not resume the transport.
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        reader = StreamReader(limit=2, loop=loop)
        transport = PausingTransport()
        with_transport(reader, transport)
        reader.feed_data(b"12345")
        assert transport.trace == ["pause"]
        outcome = spawn(tg, reader.readexactly, 8)
        await wait_until(lambda: waiting(reader))
        assert transport.trace == ["pause", "resume"]
        reader.feed_data(b"678")  # 8 bytes: paused again, until they are read
        assert await outcome.get() == b"12345678"
        assert transport.trace == ["pause", "resume", "pause", "resume"]


async def test_transport_that_cannot_pause_is_forgotten() -> None:
    async with protoport.open_loop() as loop:
        reader = StreamReader(limit=1, loop=loop)
        transport = PausingTransport(can_pause=False)
        with_transport(reader, transport)
        reader.feed_data(b"abc")
        assert repr(reader) == "<StreamReader 3 bytes limit=1>"
        reader.feed_data(b"def")
        assert await reader.read(6) == b"abcdef"
        assert transport.trace == []


async def test_real_transport_pauses_and_resumes_reading() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local, limit=1000)
        transport = writer.transport
        await peer.send(b"a" * 2500)
        await wait_until(lambda: not transport.is_reading())  # type: ignore[attr-defined]
        await peer.send(b"b" * 500)
        await peer.send_eof()
        assert await reader.readexactly(1400) == b"a" * 1400
        assert not transport.is_reading()  # type: ignore[attr-defined]
        assert await reader.readexactly(100) == b"a" * 100  # 1000 left
        assert transport.is_reading()  # type: ignore[attr-defined]
        rest = await reader.read()
        assert rest == b"a" * 1000 + b"b" * 500
        writer.close()


# -- cost ------------------------------------------------------------------------


async def _read_all_in_pieces(loop: Any, size: int) -> float:
    """Feed *size* bytes of 100-byte lines at once, then read them back with
    readexactly(100) and readuntil(); return the seconds spent reading."""
    line = b"x" * 99 + b"\n"
    count = size // 100
    reader = StreamReader(limit=1 << 30, loop=loop)
    reader.feed_data(line * count)
    reader.feed_data(line * count)
    start = time.perf_counter()
    for _ in range(count):
        await reader.readexactly(100)
    for _ in range(count):
        await reader.readuntil(b"\n")
    elapsed = time.perf_counter() - start
    reader.feed_eof()
    assert reader.at_eof()
    return elapsed


async def test_reading_in_small_pieces_costs_linear_time() -> None:
    async with protoport.open_loop() as loop:
        await _read_all_in_pieces(loop, 1 << 20)  # warm up
        small = min([await _read_all_in_pieces(loop, 5 << 20) for _ in range(2)])
        large = await _read_all_in_pieces(loop, 20 << 20)
    # Four times the bytes: about four times the time; quadratic would be 16.
    assert large / small < 8, (small, large)
