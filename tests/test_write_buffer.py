"""Unit tests for ``protoport.WriteBuffer``: asyncio's write flow control as a
standalone, synchronous object, plus its ``wait_resumed()`` helper."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from _helpers import RecordingProtocol, exactly
from protoport import WriteBuffer

pytestmark = pytest.mark.anyio


class DummyTransport(asyncio.Transport):
    def __repr__(self) -> str:
        return "<DummyTransport>"


def make(
    high: int | None = None, low: int | None = None, **kwargs: Any
) -> tuple[WriteBuffer, RecordingProtocol]:
    proto = RecordingProtocol()
    buf = WriteBuffer(proto, high=high, low=low, **kwargs)
    proto.buffer = buf
    return buf, proto


def drain_all(buf: WriteBuffer, max_size: int = 256 * 1024) -> bytes:
    """Take everything out of *buf* the way a writer task does."""
    out = bytearray()
    while buf:
        chunk = bytes(buf.peek(max_size))
        assert chunk
        out += chunk
        buf.consume(len(chunk))
    return bytes(out)


# --------------------------------------------------------------------------- limits


def test_default_limits() -> None:
    buf = WriteBuffer()
    assert buf.get_write_buffer_limits() == (16384, 65536)


def test_only_high_given_low_is_quarter() -> None:
    assert WriteBuffer(high=1000).get_write_buffer_limits() == (250, 1000)
    assert WriteBuffer(high=1001).get_write_buffer_limits() == (250, 1001)
    assert WriteBuffer(high=3).get_write_buffer_limits() == (0, 3)


def test_only_low_given_high_is_four_times() -> None:
    assert WriteBuffer(low=100).get_write_buffer_limits() == (100, 400)
    assert WriteBuffer(low=0).get_write_buffer_limits() == (0, 0)


def test_high_zero_gives_zero_zero() -> None:
    assert WriteBuffer(high=0).get_write_buffer_limits() == (0, 0)


def test_both_given() -> None:
    assert WriteBuffer(high=50, low=50).get_write_buffer_limits() == (50, 50)
    assert WriteBuffer(high=50, low=0).get_write_buffer_limits() == (0, 50)


def test_set_limits_applies_same_defaults() -> None:
    buf = WriteBuffer(high=10, low=5)
    buf.set_write_buffer_limits()
    assert buf.get_write_buffer_limits() == (16384, 65536)
    buf.set_write_buffer_limits(high=1000)
    assert buf.get_write_buffer_limits() == (250, 1000)
    buf.set_write_buffer_limits(low=7)
    assert buf.get_write_buffer_limits() == (7, 28)
    buf.set_write_buffer_limits(high=0)
    assert buf.get_write_buffer_limits() == (0, 0)
    buf.set_write_buffer_limits(8, 3)  # positional order is (high, low)
    assert buf.get_write_buffer_limits() == (3, 8)


@pytest.mark.parametrize(
    ("high", "low", "message"),
    [
        (10, 20, "high (10) must be >= low (20) must be >= 0"),
        (-1, None, "high (-1) must be >= low (-1) must be >= 0"),
        (None, -1, "high (-4) must be >= low (-1) must be >= 0"),
        (5, -1, "high (5) must be >= low (-1) must be >= 0"),
        (-2, -3, "high (-2) must be >= low (-3) must be >= 0"),
        (1, 2, "high (1) must be >= low (2) must be >= 0"),
    ],
)
def test_invalid_limits_at_construction(
    high: int | None, low: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        WriteBuffer(RecordingProtocol(), high=high, low=low)


@pytest.mark.parametrize(
    ("high", "low", "message"),
    [
        (10, 20, "high (10) must be >= low (20) must be >= 0"),
        (-1, None, "high (-1) must be >= low (-1) must be >= 0"),
        (None, -1, "high (-4) must be >= low (-1) must be >= 0"),
        (5, -1, "high (5) must be >= low (-1) must be >= 0"),
    ],
)
def test_invalid_set_limits_keeps_old_limits(
    high: int | None, low: int | None, message: str
) -> None:
    buf, proto = make(high=100, low=30)
    buf.append(b"x" * 50)
    with pytest.raises(ValueError, match=exactly(message)):
        buf.set_write_buffer_limits(high=high, low=low)
    assert buf.get_write_buffer_limits() == (30, 100)
    assert proto.events == []
    assert not buf.paused
    # The old limits are the ones still in force.
    buf.append(b"x" * 50)
    assert proto.events == []
    buf.append(b"x")
    assert proto.events == ["pause"]


# --------------------------------------------------------------------------- append


@pytest.mark.parametrize(
    ("value", "name"),
    [("text", "str"), (5, "int"), (None, "NoneType"), ([1, 2], "list")],
)
def test_append_rejects_non_bytes(value: object, name: str) -> None:
    buf, proto = make()
    with pytest.raises(TypeError) as info:
        buf.append(value)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"data argument must be a bytes-like object, not {name!r}"
    )
    assert buf.size == 0
    assert proto.events == []


def test_append_empty_str_still_rejected() -> None:
    buf = WriteBuffer()
    with pytest.raises(TypeError) as info:
        buf.append("")  # type: ignore[arg-type]
    assert str(info.value) == "data argument must be a bytes-like object, not 'str'"


def test_append_accepts_bytes_like() -> None:
    buf = WriteBuffer()
    buf.append(b"ab")
    buf.append(bytearray(b"cd"))
    buf.append(memoryview(b"ef"))
    buf.append(memoryview(bytearray(b"xgh"))[1:])
    assert buf.size == 8
    assert drain_all(buf) == b"abcdefgh"


def test_append_copies_mutable_buffers() -> None:
    buf = WriteBuffer()
    data = bytearray(b"hello")
    buf.append(data)
    data[:] = b"HELLO"
    data += b"!!!"
    view_source = bytearray(b"world")
    buf.append(memoryview(view_source))
    view_source[0:1] = b"W"
    assert buf.size == 10
    assert bytes(buf.peek()) == b"helloworld"


@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"")])
def test_append_empty_does_nothing(empty: bytes | bytearray | memoryview) -> None:
    buf, proto = make(high=0)
    buf.append(empty)
    assert buf.size == 0
    assert len(buf) == 0
    assert not buf
    assert not buf.paused
    assert proto.events == []
    assert buf.peek() == b""


def test_size_len_bool() -> None:
    buf = WriteBuffer()
    assert (buf.size, len(buf), bool(buf)) == (0, 0, False)
    buf.append(b"abc")
    assert (buf.size, len(buf), bool(buf)) == (3, 3, True)
    buf.append(b"defg")
    assert (buf.size, len(buf), bool(buf)) == (7, 7, True)
    buf.consume(5)
    assert (buf.size, len(buf), bool(buf)) == (2, 2, True)
    buf.consume(2)
    assert (buf.size, len(buf), bool(buf)) == (0, 0, False)


# ----------------------------------------------------------------------- pause points


def test_pause_only_when_strictly_above_high() -> None:
    buf, proto = make(high=10, low=2)
    buf.append(b"x" * 10)  # size == high: no pause
    assert proto.events == []
    assert not buf.paused
    buf.append(b"x")  # 11 > 10
    assert proto.events == ["pause"]
    assert buf.paused
    # The flag is already set, and the byte counted, when pause_writing() runs.
    assert proto.seen == [("pause", 11, True)]


def test_single_large_append_pauses() -> None:
    buf, proto = make(high=10, low=2)
    buf.append(b"x" * 100)
    assert proto.events == ["pause"]
    assert buf.paused


def test_pause_is_synchronous_inside_append() -> None:
    buf, proto = make(high=4, low=0)
    calls: list[str] = []

    def pause_writing() -> None:
        calls.append("pause")

    proto.pause_writing = pause_writing  # type: ignore[method-assign]
    buf.append(b"12345")
    calls.append("after append")
    assert calls == ["pause", "after append"]


def test_pause_only_once_while_paused() -> None:
    buf, proto = make(high=10, low=2)
    for _ in range(5):
        buf.append(b"x" * 8)
    assert proto.events == ["pause"]
    assert buf.paused
    assert buf.size == 40


def test_pause_again_after_resume() -> None:
    buf, proto = make(high=10, low=2)
    buf.append(b"x" * 11)
    buf.consume(9)  # 2 <= low
    buf.append(b"x" * 8)  # 10: not above high
    assert proto.events == ["pause", "resume"]
    buf.append(b"x")
    assert proto.events == ["pause", "resume", "pause"]


def test_lowering_high_below_size_pauses() -> None:
    buf, proto = make(high=100, low=10)
    buf.append(b"x" * 50)
    buf.set_write_buffer_limits(high=50, low=10)  # size == high: no pause
    assert proto.events == []
    buf.set_write_buffer_limits(high=49, low=10)
    assert proto.events == ["pause"]
    assert buf.paused
    assert proto.seen == [("pause", 50, True)]
    # Lowering further while paused does not pause again.
    buf.set_write_buffer_limits(high=20, low=5)
    assert proto.events == ["pause"]


def test_raising_limits_never_resumes() -> None:
    buf, proto = make(high=10, low=2)
    buf.append(b"x" * 20)
    assert proto.events == ["pause"]
    buf.set_write_buffer_limits(high=1000, low=500)
    assert proto.events == ["pause"]
    assert buf.paused
    buf.set_write_buffer_limits()
    assert proto.events == ["pause"]
    assert buf.paused


def test_set_limits_on_empty_buffer_does_not_pause() -> None:
    buf, proto = make(high=10, low=2)
    buf.set_write_buffer_limits(high=0)
    assert proto.events == []
    assert not buf.paused


def test_high_zero_pauses_on_first_non_empty_append() -> None:
    buf, proto = make(high=0)
    buf.append(b"")
    assert proto.events == []
    buf.append(b"x")
    assert proto.events == ["pause"]
    assert buf.paused


# ---------------------------------------------------------------------- resume points


def test_resume_when_consume_reaches_low() -> None:
    buf, proto = make(high=10, low=4)
    buf.append(b"x" * 12)
    buf.consume(7)  # 5 > low
    assert proto.events == ["pause"]
    assert buf.paused
    buf.consume(1)  # 4 == low
    assert proto.events == ["pause", "resume"]
    assert not buf.paused
    # The flag is already cleared when resume_writing() runs.
    assert proto.seen == [("pause", 12, True), ("resume", 4, False)]
    buf.consume(4)
    assert proto.events == ["pause", "resume"]


def test_resume_when_consume_jumps_below_low() -> None:
    buf, proto = make(high=10, low=4)
    buf.append(b"x" * 12)
    buf.consume(12)
    assert proto.events == ["pause", "resume"]
    assert not buf.paused


def test_no_resume_when_not_paused() -> None:
    buf, proto = make(high=10, low=4)
    buf.append(b"x" * 10)
    buf.consume(10)
    assert proto.events == []
    assert not buf.paused


def test_low_zero_resumes_only_when_empty() -> None:
    buf, proto = make(high=10, low=0)
    buf.append(b"x" * 11)
    for _ in range(10):
        buf.consume(1)
        assert proto.events == ["pause"]
    assert buf.size == 1
    buf.consume(1)
    assert proto.events == ["pause", "resume"]
    assert not buf.paused


def test_high_zero_resumes_only_when_empty() -> None:
    buf, proto = make(high=0)
    buf.append(b"ab")
    buf.consume(1)
    assert proto.events == ["pause"]
    buf.consume(1)
    assert proto.events == ["pause", "resume"]


# ------------------------------------------------------------- exceptions in callbacks


def test_pause_writing_exception_goes_to_handler() -> None:
    exc = RuntimeError("pause boom")
    proto = RecordingProtocol(pause_exc=exc)
    transport = DummyTransport()
    contexts: list[dict[str, Any]] = []
    buf = WriteBuffer(
        proto, high=4, low=1, transport=transport, exception_handler=contexts.append
    )
    buf.append(b"12345")  # does not raise
    assert contexts == [
        {
            "message": "protocol.pause_writing() failed",
            "exception": exc,
            "transport": transport,
            "protocol": proto,
        }
    ]
    assert buf.paused
    # Still paused: no second pause_writing(), and consume resumes.
    buf.append(b"6")
    assert proto.events == ["pause"]
    buf.consume(5)
    assert proto.events == ["pause", "resume"]
    assert not buf.paused
    assert len(contexts) == 1


def test_resume_writing_exception_goes_to_handler() -> None:
    exc = ValueError("resume boom")
    proto = RecordingProtocol(resume_exc=exc)
    transport = DummyTransport()
    contexts: list[dict[str, Any]] = []
    buf = WriteBuffer(
        proto, high=4, low=1, transport=transport, exception_handler=contexts.append
    )
    buf.append(b"12345")
    buf.consume(4)  # does not raise
    assert contexts == [
        {
            "message": "protocol.resume_writing() failed",
            "exception": exc,
            "transport": transport,
            "protocol": proto,
        }
    ]
    assert not buf.paused
    assert buf.size == 1
    # Not paused any more: the next crossing of high pauses again.
    buf.append(b"2345")
    assert proto.events == ["pause", "resume", "pause"]
    assert buf.paused


def test_exception_context_without_transport_has_no_transport_key() -> None:
    exc = RuntimeError("boom")
    proto = RecordingProtocol(pause_exc=exc)
    contexts: list[dict[str, Any]] = []
    buf = WriteBuffer(proto, high=0, exception_handler=contexts.append)
    buf.append(b"x")
    assert contexts == [
        {
            "message": "protocol.pause_writing() failed",
            "exception": exc,
            "protocol": proto,
        }
    ]


def test_base_exception_from_callback_is_reported() -> None:
    # asyncio reports any BaseException except SystemExit/KeyboardInterrupt.
    class Custom(BaseException):
        pass

    exc = Custom()
    proto = RecordingProtocol(pause_exc=exc)
    contexts: list[dict[str, Any]] = []
    buf = WriteBuffer(proto, high=0, exception_handler=contexts.append)
    buf.append(b"x")
    assert [c["exception"] for c in contexts] == [exc]
    assert buf.paused


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_propagate(
    exc_type: type[BaseException],
) -> None:
    contexts: list[dict[str, Any]] = []
    proto = RecordingProtocol(pause_exc=exc_type(), resume_exc=exc_type())
    buf = WriteBuffer(proto, high=0, exception_handler=contexts.append)
    with pytest.raises(exc_type):
        buf.append(b"x")
    assert buf.paused
    with pytest.raises(exc_type):
        buf.consume(1)
    assert not buf.paused
    assert contexts == []


def test_callback_exception_logged_without_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pause_exc = RuntimeError("pause boom")
    resume_exc = RuntimeError("resume boom")
    proto = RecordingProtocol(pause_exc=pause_exc, resume_exc=resume_exc)
    transport = DummyTransport()
    buf = WriteBuffer(proto, high=2, low=0, transport=transport)
    with caplog.at_level(logging.ERROR, logger="protoport"):
        buf.append(b"abc")
        buf.consume(3)
    records = [r for r in caplog.records if r.name == "protoport"]
    assert len(records) == 2
    first, second = records
    assert first.levelno == logging.ERROR
    assert second.levelno == logging.ERROR
    first_lines = first.getMessage().splitlines()
    second_lines = second.getMessage().splitlines()
    assert first_lines[0] == "protocol.pause_writing() failed"
    assert second_lines[0] == "protocol.resume_writing() failed"
    assert f"protocol: {proto!r}" in first_lines
    assert "transport: <DummyTransport>" in first_lines
    assert first.exc_info is not None
    assert first.exc_info[1] is pause_exc
    assert second.exc_info is not None
    assert second.exc_info[1] is resume_exc
    assert proto.events == ["pause", "resume"]
    assert not buf.paused


# ----------------------------------------------------------------------- peek/consume


def test_peek_empty() -> None:
    buf = WriteBuffer()
    assert buf.peek() == b""
    assert buf.peek(10) == b""


def test_peek_joins_small_chunks() -> None:
    buf = WriteBuffer()
    for piece in (b"ab", b"cd", b"ef", b"gh"):
        buf.append(piece)
    assert bytes(buf.peek()) == b"abcdefgh"
    assert buf.size == 8  # peek removes nothing
    assert bytes(buf.peek()) == b"abcdefgh"


def test_peek_respects_max_size() -> None:
    buf = WriteBuffer()
    for piece in (b"ab", b"cd", b"ef", b"gh"):
        buf.append(piece)
    assert bytes(buf.peek(4)) == b"abcd"
    assert bytes(buf.peek(6)) == b"abcdef"
    assert bytes(buf.peek(2)) == b"ab"
    assert buf.size == 8
    assert drain_all(buf) == b"abcdefgh"


def test_peek_max_size_never_exceeded() -> None:
    buf = WriteBuffer()
    for piece in (b"abc", b"defg", b"hi", b"jklmn"):
        buf.append(piece)
    expected = b"abcdefghijklmn"
    for max_size in range(1, 20):
        got = bytes(buf.peek(max_size))
        assert 0 < len(got) <= max_size
        assert expected.startswith(got)
    assert buf.size == len(expected)


def test_peek_large_chunk_is_cut_at_max_size() -> None:
    buf = WriteBuffer()
    buf.append(bytes(range(100)))
    buf.append(b"tail")
    assert bytes(buf.peek(10)) == bytes(range(10))
    assert bytes(buf.peek(100)) == bytes(range(100))
    assert buf.size == 104


def test_consume_partial_chunk_then_peek_returns_rest() -> None:
    buf = WriteBuffer()
    buf.append(b"hello")
    buf.append(b" world")
    buf.consume(3)
    assert buf.size == 8
    assert bytes(buf.peek()) == b"lo world"
    buf.consume(4)
    assert bytes(buf.peek()) == b"orld"
    buf.consume(4)
    assert buf.peek() == b""
    assert buf.size == 0


def test_consume_across_chunks() -> None:
    buf = WriteBuffer()
    for piece in (b"ab", b"cd", b"ef"):
        buf.append(piece)
    buf.consume(3)
    assert bytes(buf.peek()) == b"def"
    buf.consume(0)
    assert bytes(buf.peek()) == b"def"


@pytest.mark.parametrize("nbytes", [6, 100, -1])
def test_consume_out_of_range(nbytes: int) -> None:
    buf, proto = make(high=1, low=0)
    buf.append(b"abcde")
    with pytest.raises(ValueError, match=f"^cannot consume {nbytes} of 5 bytes$"):
        buf.consume(nbytes)
    assert buf.size == 5
    assert bytes(buf.peek()) == b"abcde"
    assert proto.events == ["pause"]


def test_consume_on_empty_buffer() -> None:
    buf = WriteBuffer()
    buf.consume(0)
    with pytest.raises(ValueError, match=r"^cannot consume 1 of 0 bytes$"):
        buf.consume(1)


def test_random_appends_and_consumes_preserve_bytes() -> None:
    rng = random.Random(20240601)
    buf, proto = make(high=300, low=100)
    appended = bytearray()
    consumed = bytearray()
    counter = 0
    for _ in range(500):
        if rng.random() < 0.55:
            n = rng.randrange(0, 200)
            data = bytes((counter + i) % 251 for i in range(n))
            counter += n
            kind = rng.choice((bytes, bytearray, memoryview))
            buf.append(kind(data))
            appended += data
        elif buf:
            chunk = bytes(buf.peek(rng.randrange(1, 400)))
            take = rng.randrange(0, len(chunk) + 1)
            buf.consume(take)
            consumed += chunk[:take]
        assert buf.size == len(appended) - len(consumed)
    consumed += drain_all(buf, max_size=97)
    assert bytes(consumed) == bytes(appended)
    # Pauses and resumes alternated, starting with a pause, and ended resumed.
    assert proto.events == ["pause", "resume"] * (len(proto.events) // 2)
    assert not buf.paused


# ----------------------------------------------------------------------- clear/close


def test_clear_drops_everything_without_resuming() -> None:
    buf, proto = make(high=4, low=1)
    buf.append(b"abc")
    buf.append(b"defgh")
    assert proto.events == ["pause"]
    buf.clear()
    assert buf.size == 0
    assert len(buf) == 0
    assert not buf
    assert buf.peek() == b""
    assert proto.events == ["pause"]
    assert buf.paused


def test_clear_then_append_is_fresh() -> None:
    buf = WriteBuffer()
    buf.append(b"old")
    buf.consume(1)
    buf.clear()
    buf.append(b"new")
    assert bytes(buf.peek()) == b"new"
    assert buf.size == 3


def test_close_sets_closed() -> None:
    buf = WriteBuffer()
    assert not buf.closed
    buf.close()
    assert buf.closed


def test_new_limits_do_not_pause_once_closed() -> None:
    # A closed buffer's transport has called connection_lost(): its protocol
    # gets no more callbacks, whatever the limits become.
    protocol = RecordingProtocol()
    buf = WriteBuffer(protocol)
    buf.append(b"left over")
    buf.close()
    buf.set_write_buffer_limits(high=1)
    assert protocol.events == []


# ----------------------------------------------------------------------- no protocol


def test_no_protocol_tracks_flags() -> None:
    buf = WriteBuffer(high=4, low=1)
    assert buf.protocol is None
    buf.append(b"abcde")
    assert buf.paused
    buf.consume(4)
    assert not buf.paused
    buf.append(b"abcd")
    buf.set_write_buffer_limits(high=2, low=0)
    assert buf.paused


def test_protocol_can_be_set_later() -> None:
    buf = WriteBuffer(high=4, low=1)
    buf.append(b"abcde")  # paused with no protocol to tell
    assert buf.paused
    proto = RecordingProtocol()
    buf.protocol = proto
    buf.consume(4)
    assert proto.events == ["resume"]
    buf.append(b"abcd")
    assert proto.events == ["resume", "pause"]


def test_protocol_can_be_replaced() -> None:
    first = RecordingProtocol()
    second = RecordingProtocol()
    buf = WriteBuffer(first, high=4, low=1)
    buf.append(b"abcde")
    buf.protocol = second
    buf.consume(5)
    assert first.events == ["pause"]
    assert second.events == ["resume"]


def test_exception_context_names_current_protocol() -> None:
    contexts: list[dict[str, Any]] = []
    buf = WriteBuffer(RecordingProtocol(), high=0, exception_handler=contexts.append)
    replacement = RecordingProtocol(pause_exc=RuntimeError("x"))
    buf.protocol = replacement
    buf.append(b"x")
    assert [c["protocol"] for c in contexts] == [replacement]


# ---------------------------------------------------------------------- wait_resumed


async def test_wait_resumed_returns_at_once_when_not_paused() -> None:
    buf = WriteBuffer(high=4, low=1)
    with anyio.fail_after(1):
        await buf.wait_resumed()
    buf.append(b"abcd")  # size == high: not paused
    with anyio.fail_after(1):
        await buf.wait_resumed()


async def test_wait_resumed_blocks_until_low() -> None:
    buf, proto = make(high=4, low=1)
    buf.append(b"abcdefg")
    assert buf.paused
    done: list[str] = []

    async def waiter() -> None:
        await buf.wait_resumed()
        done.append("resumed")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert done == []
            buf.consume(5)  # 2 > low: still paused
            await anyio.wait_all_tasks_blocked()
            assert done == []
            buf.append(b"")  # nothing happens
            buf.consume(1)  # 1 <= low: resumed
            await anyio.wait_all_tasks_blocked()
            assert done == ["resumed"]
    assert proto.events == ["pause", "resume"]


async def test_wait_resumed_after_repause_blocks_again() -> None:
    buf = WriteBuffer(high=4, low=1)
    done: list[int] = []

    async def waiter(n: int) -> None:
        await buf.wait_resumed()
        done.append(n)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            buf.append(b"abcde")
            tg.start_soon(waiter, 1)
            await anyio.wait_all_tasks_blocked()
            buf.consume(5)
            await anyio.wait_all_tasks_blocked()
            assert done == [1]
            buf.append(b"abcde")
            tg.start_soon(waiter, 2)
            await anyio.wait_all_tasks_blocked()
            assert done == [1]
            buf.consume(5)
            await anyio.wait_all_tasks_blocked()
            assert done == [1, 2]


@pytest.mark.parametrize(
    ("release", "waiters", "paused_after"),
    [
        pytest.param(lambda buf: buf.consume(4), 5, False, id="resumed"),
        # Still paused, but closed: waiting returns at once.
        pytest.param(WriteBuffer.close, 2, True, id="closed"),
    ],
)
async def test_wait_resumed_releases_every_waiter(
    release: Callable[[WriteBuffer], None], waiters: int, paused_after: bool
) -> None:
    buf = WriteBuffer(high=4, low=1)
    buf.append(b"abcde")
    done: list[int] = []

    async def waiter(n: int) -> None:
        await buf.wait_resumed()
        done.append(n)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in range(waiters):
                tg.start_soon(waiter, n)
            await anyio.wait_all_tasks_blocked()
            assert done == []
            release(buf)
            await anyio.wait_all_tasks_blocked()
            assert sorted(done) == list(range(waiters))
        assert buf.paused is paused_after
        await buf.wait_resumed()


async def test_cancelled_waiter_leaves_others_working() -> None:
    buf = WriteBuffer(high=4, low=1)
    buf.append(b"abcde")
    done: list[str] = []

    async def waiter(name: str, scope: anyio.CancelScope | None = None) -> None:
        if scope is None:
            await buf.wait_resumed()
            done.append(name)
            return
        with scope:
            await buf.wait_resumed()
            done.append(name)
        if scope.cancelled_caught:
            done.append(name + " cancelled")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()
            tg.start_soon(waiter, "a")
            tg.start_soon(waiter, "b", scope)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            assert done == ["b cancelled"]
            # A new waiter after the cancellation also waits.
            tg.start_soon(waiter, "c")
            await anyio.wait_all_tasks_blocked()
            assert done == ["b cancelled"]
            buf.consume(5)
            await anyio.wait_all_tasks_blocked()
            assert sorted(done) == ["a", "b cancelled", "c"]
