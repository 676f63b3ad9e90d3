"""Streams: StreamReader — the limit and the pausing of the transport, every read
method, its errors and their messages, the stored exception, ``at_eof()`` and
async iteration.

Most scenarios feed a reader of the implementation's streams API
(``env.streams.StreamReader``) by hand with ``feed_data()``/``feed_eof()``, as the
documentation describes them: what a read returns is then exact, whatever the
kernel does. The pausing of the transport is checked with a stand-in transport
that records ``pause_reading()``/``resume_reading()``, and end to end on a real
connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._registry import scenario

READER = sections.STREAM_READER

#: asyncio's two LimitOverrunError messages (readline() raises ValueError with them).
NOT_FOUND = "Separator is not found, and chunk exceed the limit"
FOUND_TOO_LONG = "Separator is found, but chunk is longer than limit"


def new_reader(env: Env, **kwargs: Any) -> Any:
    """A StreamReader of the implementation's streams API."""
    env.require("streams")
    return env.streams.StreamReader(**kwargs)


class _ReadingSwitch:
    """Stands in for a transport: records ``pause_reading()`` and
    ``resume_reading()``."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


async def expect_waiting(env: Env, task: asyncio.Future[Any], what: str) -> None:
    """Let the loop run a little; fail if *task* finished (it should be waiting
    for data)."""
    await env.settle()
    if task.done():
        result = repr(task.result()) if not task.exception() else "an exception"
        env.fail(f"{what} did not wait for data: it returned {result}")


# -- the limit and pausing -------------------------------------------------------


@scenario(
    READER,
    "StreamReader(limit=0) and negative limits raise ValueError('Limit cannot be "
    "<= 0')",
    requires=("streams",),
)
async def limit_must_be_positive(env: Env) -> None:
    env.require("streams")
    for limit in (0, -1):
        env.expect_raises(
            ValueError, "Limit cannot be <= 0", env.streams.StreamReader, limit=limit
        )


@scenario(
    READER,
    "feed_data() pauses the transport's reading once the buffer holds more than "
    "twice the limit (not at exactly twice the limit), once",
    requires=("streams",),
)
async def feed_data_pauses_above_twice_limit(env: Env) -> None:
    reader = new_reader(env, limit=10)
    switch = _ReadingSwitch()
    reader.set_transport(switch)
    reader.feed_data(b"a" * 20)
    env.expect_equal("calls at 20 bytes (limit 10)", switch.calls, [])
    reader.feed_data(b"b")
    env.expect_equal("calls at 21 bytes", switch.calls, ["pause"])
    reader.feed_data(b"c" * 10)
    env.expect_equal("calls at 31 bytes", switch.calls, ["pause"])


@scenario(
    READER,
    "a read resumes the paused transport once the buffer is down to limit bytes "
    "or fewer",
    requires=("streams",),
)
async def read_resumes_at_limit(env: Env) -> None:
    reader = new_reader(env, limit=10)
    switch = _ReadingSwitch()
    reader.set_transport(switch)
    reader.feed_data(b"x" * 21)
    await reader.read(10)
    env.expect_equal("calls with 11 bytes left", switch.calls, ["pause"])
    await reader.readexactly(1)
    env.expect_equal("calls with 10 bytes left", switch.calls, ["pause", "resume"])


@scenario(
    READER,
    "a read that must wait for more data resumes a paused transport first "
    "(readexactly(n) above the buffer)",
    requires=("streams",),
)
async def waiting_read_resumes(env: Env) -> None:
    reader = new_reader(env, limit=10)
    switch = _ReadingSwitch()
    reader.set_transport(switch)
    reader.feed_data(b"x" * 25)
    task = env.loop.create_task(reader.readexactly(30))
    await expect_waiting(env, task, "readexactly(30) with 25 bytes buffered")
    env.expect_equal("calls while it waits", switch.calls, ["pause", "resume"])
    reader.feed_data(b"y" * 5)
    env.expect_equal(
        "readexactly(30)",
        await env.wait_done(task, "readexactly(30)"),
        b"x" * 25 + b"y" * 5,
    )


@scenario(
    READER,
    "open_connection(limit=): a peer sending more than twice the limit pauses reading "
    "(is_reading() False); reading the data resumes it",
    requires=("streams",),
)
async def flood_pauses_transport(env: Env) -> None:
    stream = await env.open_stream(limit=1000)
    data = pattern(10_000)
    await stream.peer.send(data)
    transport = stream.writer.transport
    await env.wait_until(
        lambda: not transport.is_reading(), "the transport to pause reading"
    )
    env.expect_equal("bytes read", await stream.reader.readexactly(len(data)), data)
    await env.wait_until(transport.is_reading, "the transport to resume reading")


# -- read() ------------------------------------------------------------------------


@scenario(
    READER,
    "read(0) returns b'' at once, even with nothing buffered",
    requires=("streams",),
)
async def read_zero(env: Env) -> None:
    reader = new_reader(env)
    task = env.loop.create_task(reader.read(0))
    env.expect_equal("read(0)", await env.wait_done(task, "read(0)"), b"")
    reader.feed_data(b"abc")
    env.expect_equal("read(0) with data buffered", await reader.read(0), b"")
    env.expect_equal("read(3) afterwards", await reader.read(3), b"abc")


@scenario(
    READER,
    "read() and read(-1) read until EOF and return all the bytes",
    requires=("streams",),
)
async def read_all_until_eof(env: Env) -> None:
    reader = new_reader(env, limit=4)
    task = env.loop.create_task(reader.read(-1))
    reader.feed_data(b"first ")
    reader.feed_data(b"second")
    await expect_waiting(env, task, "read(-1) before EOF")
    reader.feed_eof()
    env.expect_equal("read(-1)", await env.wait_done(task, "read(-1)"), b"first second")
    other = new_reader(env)
    other.feed_data(b"more")
    other.feed_eof()
    env.expect_equal("read()", await other.read(), b"more")


@scenario(
    READER,
    "read(n) returns at most n bytes as soon as at least one byte is buffered",
    requires=("streams",),
)
async def read_n_returns_available(env: Env) -> None:
    reader = new_reader(env)
    task = env.loop.create_task(reader.read(5))
    await expect_waiting(env, task, "read(5) with nothing buffered")
    reader.feed_data(b"abc")
    env.expect_equal(
        "read(5) after 3 bytes", await env.wait_done(task, "read(5)"), b"abc"
    )
    reader.feed_data(b"defgh")
    env.expect_equal("read(2)", await reader.read(2), b"de")
    env.expect_equal("read(100)", await reader.read(100), b"fgh")


@scenario(
    READER,
    "at EOF with an empty buffer: read(n), read(), readline() return b''",
    requires=("streams",),
)
async def read_at_eof_returns_empty(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_eof()
    env.expect_equal("read(10)", await reader.read(10), b"")
    env.expect_equal("read()", await reader.read(), b"")
    env.expect_equal("readline()", await reader.readline(), b"")
    env.expect_equal("readexactly(0)", await reader.readexactly(0), b"")


# -- readline() ---------------------------------------------------------------------


@scenario(
    READER,
    "readline() returns one line with its b'\\n', waiting for the rest of a line "
    "that arrives in pieces",
    requires=("streams",),
)
async def readline_returns_line(env: Env) -> None:
    reader = new_reader(env)
    task = env.loop.create_task(reader.readline())
    reader.feed_data(b"hel")
    await expect_waiting(env, task, "readline() on a partial line")
    reader.feed_data(b"lo\nworld\n")
    env.expect_equal("readline()", await env.wait_done(task, "readline()"), b"hello\n")
    env.expect_equal("second readline()", await reader.readline(), b"world\n")


@scenario(
    READER,
    "readline() at EOF returns the partial line without b'\\n', then b''",
    requires=("streams",),
)
async def readline_partial_at_eof(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"line\npartial")
    reader.feed_eof()
    lines = [await reader.readline() for _ in range(3)]
    env.expect_equal("readline() results", lines, [b"line\n", b"partial", b""])


@scenario(
    READER,
    "readline() of a line longer than the limit: ValueError('Separator is found, "
    "but chunk is longer than limit'); the line is discarded",
    requires=("streams",),
)
async def readline_overrun_discards_line(env: Env) -> None:
    reader = new_reader(env, limit=10)
    reader.feed_data(b"a" * 12 + b"\nnext\n")
    await env.expect_raises_async(ValueError, FOUND_TOO_LONG, reader.readline())
    env.expect_equal("the next readline()", await reader.readline(), b"next\n")


@scenario(
    READER,
    "readline() with more than limit bytes and no b'\\n': ValueError('Separator is "
    "not found, and chunk exceed the limit'); the buffer is cleared",
    requires=("streams",),
)
async def readline_overrun_clears_buffer(env: Env) -> None:
    reader = new_reader(env, limit=10)
    reader.feed_data(b"a" * 15)
    await env.expect_raises_async(ValueError, NOT_FOUND, reader.readline())
    reader.feed_data(b"b\n")
    env.expect_equal("the next readline()", await reader.readline(), b"b\n")


# -- readexactly() -------------------------------------------------------------------


@scenario(
    READER,
    "readexactly(n) waits until n bytes are buffered and returns exactly n",
    requires=("streams",),
)
async def readexactly_waits(env: Env) -> None:
    reader = new_reader(env)
    task = env.loop.create_task(reader.readexactly(6))
    reader.feed_data(b"abc")
    await expect_waiting(env, task, "readexactly(6) with 3 bytes")
    reader.feed_data(b"defg")
    env.expect_equal(
        "readexactly(6)", await env.wait_done(task, "readexactly(6)"), b"abcdef"
    )
    env.expect_equal("read(10) afterwards", await reader.read(10), b"g")


@scenario(
    READER,
    "readexactly(-1) raises ValueError('readexactly size can not be less than zero')",
    requires=("streams",),
)
async def readexactly_negative(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"data")
    await env.expect_raises_async(
        ValueError,
        "readexactly size can not be less than zero",
        reader.readexactly(-1),
    )


@scenario(
    READER,
    "readexactly(n) at EOF before n bytes: IncompleteReadError with partial (the "
    "bytes consumed) and expected n",
    requires=("streams",),
)
async def readexactly_incomplete(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"abc")
    reader.feed_eof()
    exc: Any = await env.expect_raises_async(
        asyncio.IncompleteReadError,
        "3 bytes read on a total of 5 expected bytes",
        reader.readexactly(5),
    )
    env.expect_equal("partial", exc.partial, b"abc")
    env.expect_equal("expected", exc.expected, 5)
    env.expect_equal("at_eof() afterwards", reader.at_eof(), True)


# -- readuntil() ---------------------------------------------------------------------


@scenario(
    READER,
    "readuntil(separator) returns the data with the separator, also when the "
    "separator arrives split in two",
    requires=("streams",),
)
async def readuntil_split_separator(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"ab\r")
    task = env.loop.create_task(reader.readuntil(b"\r\n"))
    await expect_waiting(env, task, "readuntil(b'\\r\\n') on b'ab\\r'")
    reader.feed_data(b"\ncd")
    env.expect_equal(
        "readuntil(b'\\r\\n')", await env.wait_done(task, "readuntil()"), b"ab\r\n"
    )
    env.expect_equal("read(10) afterwards", await reader.read(10), b"cd")


@scenario(
    READER,
    "readuntil(b'') raises ValueError('Separator should be at least one-byte string')",
    requires=("streams",),
)
async def readuntil_empty_separator(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"data\n")
    await env.expect_raises_async(
        ValueError,
        "Separator should be at least one-byte string",
        reader.readuntil(b""),
    )


@scenario(
    READER,
    "readuntil(()) raises ValueError('Separator should contain at least one element')",
    requires=("streams",),
    since=(3, 13),
)
async def readuntil_empty_tuple(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"data\n")
    await env.expect_raises_async(
        ValueError,
        "Separator should contain at least one element",
        reader.readuntil(()),
    )


@scenario(
    READER,
    "readuntil() with a tuple of separators returns the shortest data ending with "
    "any of them",
    requires=("streams",),
    since=(3, 13),
)
async def readuntil_tuple_shortest_match(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"xx;yyEND")
    separators = (b"END", b";")
    env.expect_equal("first readuntil()", await reader.readuntil(separators), b"xx;")
    env.expect_equal("second readuntil()", await reader.readuntil(separators), b"yyEND")


@scenario(
    READER,
    "readuntil() with more than limit bytes and no separator: LimitOverrunError("
    "'Separator is not found, and chunk exceed the limit', consumed); data kept",
    requires=("streams",),
)
async def readuntil_overrun_not_found(env: Env) -> None:
    reader = new_reader(env, limit=10)
    reader.feed_data(b"a" * 15)
    exc: Any = await env.expect_raises_async(
        asyncio.LimitOverrunError, NOT_FOUND, reader.readuntil(b"\n")
    )
    env.expect_equal("consumed", exc.consumed, 15)
    env.expect_equal("read(100) afterwards", await reader.read(100), b"a" * 15)


@scenario(
    READER,
    "readuntil() of a chunk longer than limit before the separator: "
    "LimitOverrunError('Separator is found, but chunk is longer than limit', "
    "consumed); data kept",
    requires=("streams",),
)
async def readuntil_overrun_found(env: Env) -> None:
    reader = new_reader(env, limit=10)
    reader.feed_data(b"a" * 12 + b"\nrest")
    exc: Any = await env.expect_raises_async(
        asyncio.LimitOverrunError, FOUND_TOO_LONG, reader.readuntil(b"\n")
    )
    env.expect_equal("consumed", exc.consumed, 12)
    env.expect_equal(
        "readexactly(13) afterwards", await reader.readexactly(13), b"a" * 12 + b"\n"
    )
    # The limit counts the bytes before the separator: exactly limit is fine.
    reader.feed_data(b"b" * 6 + b"\n")
    env.expect_equal(
        "readuntil() of exactly limit bytes before the separator",
        await reader.readuntil(b"\n"),
        b"rest" + b"b" * 6 + b"\n",
    )


@scenario(
    READER,
    "readuntil() at EOF without the separator: IncompleteReadError(partial, "
    "expected=None), the buffer is consumed",
    requires=("streams",),
)
async def readuntil_incomplete_at_eof(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"abc\r")
    reader.feed_eof()
    exc: Any = await env.expect_raises_async(
        asyncio.IncompleteReadError,
        "4 bytes read on a total of undefined expected bytes",
        reader.readuntil(b"\r\n"),
    )
    env.expect_equal("partial", exc.partial, b"abc\r")
    env.expect_equal("expected", exc.expected, None)
    env.expect_equal("at_eof() afterwards", reader.at_eof(), True)


# -- concurrency, exceptions, EOF, iteration -----------------------------------------


@scenario(
    READER,
    "a read while another coroutine waits for data: RuntimeError('<read>() called "
    "while another coroutine is already waiting for incoming data')",
    requires=("streams",),
)
async def concurrent_read_error(env: Env) -> None:
    reader = new_reader(env)
    task = env.loop.create_task(reader.read(1))
    await expect_waiting(env, task, "read(1) with nothing buffered")
    suffix = "called while another coroutine is already waiting for incoming data"
    await env.expect_raises_async(RuntimeError, f"read() {suffix}", reader.read(1))
    await env.expect_raises_async(
        RuntimeError, f"readuntil() {suffix}", reader.readline()
    )
    await env.expect_raises_async(
        RuntimeError, f"readuntil() {suffix}", reader.readuntil(b";")
    )
    await env.expect_raises_async(
        RuntimeError, f"readexactly() {suffix}", reader.readexactly(1)
    )
    reader.feed_data(b"x")
    env.expect_equal(
        "the first read(1)", await env.wait_done(task, "the first read(1)"), b"x"
    )


@scenario(
    READER,
    "set_exception(): every read raises the exception, before any buffered data",
    requires=("streams",),
)
async def exception_before_buffered_data(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"data\nmore")
    error = ValueError("stored")
    reader.set_exception(error)
    env.expect(reader.exception() is error, "exception() is not the stored one")
    for what, awaitable in (
        ("read(4)", reader.read(4)),
        ("read()", reader.read()),
        ("readline()", reader.readline()),
        ("readexactly(2)", reader.readexactly(2)),
        ("readuntil()", reader.readuntil(b"\n")),
    ):
        exc = await env.expect_raises_async(ValueError, "stored", awaitable, what)
        env.expect(exc is error, f"{what} raised another ValueError")


@scenario(
    READER,
    "set_exception() wakes a read waiting for data, which raises the exception",
    requires=("streams",),
)
async def exception_wakes_waiting_read(env: Env) -> None:
    reader = new_reader(env)
    task = env.loop.create_task(reader.readline())
    await expect_waiting(env, task, "readline() with nothing buffered")
    reader.set_exception(ConnectionResetError("gone"))
    await env.wait_until(task.done, "readline() to end")
    await env.expect_raises_async(ConnectionResetError, "gone", task, "readline()")


@scenario(
    READER,
    "at_eof() is True only once feed_eof() was called and the buffer is empty",
    requires=("streams",),
)
async def at_eof(env: Env) -> None:
    reader = new_reader(env)
    env.expect_equal("at_eof() of a new reader", reader.at_eof(), False)
    reader.feed_data(b"x")
    reader.feed_eof()
    env.expect_equal("at_eof() with 1 byte buffered", reader.at_eof(), False)
    await reader.read(1)
    env.expect_equal("at_eof() after reading it", reader.at_eof(), True)


@scenario(
    READER,
    "async for line in reader: yields each line (the last one partial) and stops "
    "at EOF",
    requires=("streams",),
)
async def async_iteration(env: Env) -> None:
    reader = new_reader(env)
    reader.feed_data(b"one\ntwo\nthree")
    reader.feed_eof()
    lines = [line async for line in reader]
    env.expect_equal("lines", lines, [b"one\n", b"two\n", b"three"])


@scenario(
    READER,
    "on a connection: reads return the peer's bytes, then b'' once the peer has "
    "closed (at_eof() True)",
    requires=("streams",),
)
async def connection_eof(env: Env) -> None:
    stream = await env.open_stream()
    await stream.peer.send(b"last words\n")
    await stream.peer.shutdown_write()
    reader = stream.reader
    env.expect_equal("readline()", await reader.readline(), b"last words\n")
    env.expect_equal("read()", await reader.read(), b"")
    env.expect_equal("at_eof()", reader.at_eof(), True)


@scenario(
    READER,
    "on a connection reset by the peer: reads raise ConnectionResetError",
    requires=("streams", "tcp"),
)
async def connection_reset_raises(env: Env) -> None:
    stream = await env.open_stream(family="tcp")
    await stream.peer.reset_connection()
    exc = await env.expect_raises_async(
        ConnectionResetError, None, stream.reader.read(), "read()"
    )
    env.expect(
        stream.reader.exception() is exc, "exception() is not what read() raised"
    )
