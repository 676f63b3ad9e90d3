"""Protocols: Buffered Streaming Protocols: get_buffer() / buffer_updated(), and
switching between buffered and plain protocols."""

from __future__ import annotations

from typing import Any

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._recording import RecordingBufferedProtocol, RecordingProtocol
from .._registry import scenario

BUFFERED = sections.BUFFERED_PROTOCOLS


def _buffered(env: Env, **kwargs: Any) -> Any:
    return lambda: RecordingBufferedProtocol(env, **kwargs)


def _pairs_ok(names: list[str]) -> bool:
    """Every buffer_updated() follows a get_buffer()."""
    previous = ""
    for name in names:
        if name == "buffer_updated" and previous != "get_buffer":
            return False
        previous = name
    return True


@scenario(
    BUFFERED,
    "data arrives as get_buffer(sizehint) followed by buffer_updated(nbytes)",
    requires=("buffered",),
)
async def get_buffer_then_updated(env: Env) -> None:
    conn = await env.connect(_buffered(env))
    await conn.peer.send(b"buffered data")
    await conn.protocol.wait_for_data(13)
    names = conn.protocol.names()
    env.expect(_pairs_ok(names), f"callbacks out of order: {names}")
    env.expect_equal(
        "callbacks", conn.protocol.summary(), ["made", ("data", b"buffered data")]
    )


@scenario(
    BUFFERED,
    "a buffer smaller than the data: the rest comes in further get_buffer() / "
    "buffer_updated() pairs",
    requires=("buffered",),
)
async def small_buffer(env: Env) -> None:
    conn = await env.connect(_buffered(env, buffer_size=3))
    data = pattern(1000)
    await conn.peer.send(data)
    received = await conn.protocol.wait_for_data(len(data))
    env.expect(received == data, "the protocol received other bytes than were sent")
    sizes = [e[1] for e in conn.protocol.events if e[0] == "buffer_updated"]
    env.expect(
        all(0 < n <= 3 for n in sizes),
        f"buffer_updated() sizes beyond the buffer: {sorted(set(sizes))}",
    )
    env.expect(
        _pairs_ok(conn.protocol.names()), "a buffer_updated() without a get_buffer()"
    )


@scenario(
    BUFFERED,
    "get_buffer(sizehint): sizehint is an int, -1 or a positive recommended size",
    requires=("buffered",),
)
async def sizehint(env: Env) -> None:
    conn = await env.connect(_buffered(env))
    await conn.peer.send(b"x")
    await conn.protocol.wait_for_data(1)
    hints = [e[1] for e in conn.protocol.events if e[0] == "get_buffer"]
    env.expect(
        all(type(h) is int and (h == -1 or h > 0) for h in hints),
        f"get_buffer() sizehints: {hints}",
    )


@scenario(
    BUFFERED,
    "buffered protocols: eof_received() then connection_lost(None)",
    requires=("buffered",),
)
async def buffered_eof(env: Env) -> None:
    conn = await env.connect(_buffered(env))
    await conn.peer.send(b"end")
    await conn.peer.shutdown_write()
    await conn.protocol.wait_lost()
    env.expect_equal(
        "callbacks",
        conn.protocol.summary(),
        ["made", ("data", b"end"), "eof", ("lost", None)],
    )


@scenario(
    BUFFERED,
    "buffered protocols: eof_received() returning True keeps the transport open",
    requires=("buffered",),
)
async def buffered_eof_half_open(env: Env) -> None:
    conn = await env.connect(_buffered(env, eof_result=True))
    await conn.peer.shutdown_write()
    await conn.protocol.wait_for("eof_received")
    await env.settle()
    env.expect_equal("is_closing()", conn.transport.is_closing(), False)
    conn.transport.write(b"reply")
    env.expect_equal("peer received", await conn.peer.recv_exactly(5), b"reply")


@scenario(
    BUFFERED,
    "get_buffer() returning an empty buffer is fatal: RuntimeError('get_buffer() "
    "returned an empty buffer')",
    requires=("buffered",),
)
async def empty_buffer(env: Env) -> None:
    conn = await env.connect(_buffered(env, buffer_size=0))
    await conn.peer.send(b"data")
    exc = await conn.protocol.wait_lost()
    env.expect(isinstance(exc, RuntimeError), f"connection_lost() got {exc!r}")
    env.expect_equal("exception", str(exc), "get_buffer() returned an empty buffer")
    env.expect_equal(
        "exception handler",
        env.error_messages(),
        ["Fatal error: protocol.get_buffer() call failed."],
    )


@scenario(
    BUFFERED,
    "an exception in get_buffer() is fatal: 'Fatal error: protocol.get_buffer() "
    "call failed.'",
    requires=("buffered",),
)
async def get_buffer_error(env: Env) -> None:
    class Failing(RecordingBufferedProtocol):
        def get_buffer(self, sizehint: int) -> memoryview:
            raise ZeroDivisionError("get_buffer")

    conn = await env.connect(lambda: Failing(env))
    await conn.peer.send(b"data")
    exc = await conn.protocol.wait_lost()
    env.expect(isinstance(exc, ZeroDivisionError), f"connection_lost() got {exc!r}")
    env.expect_equal(
        "exception handler",
        env.error_messages(),
        ["Fatal error: protocol.get_buffer() call failed."],
    )


@scenario(
    BUFFERED,
    "an exception in buffer_updated() is fatal: 'Fatal error: "
    "protocol.buffer_updated() call failed.'",
    requires=("buffered",),
)
async def buffer_updated_error(env: Env) -> None:
    class Failing(RecordingBufferedProtocol):
        def buffer_updated(self, nbytes: int) -> None:
            super().buffer_updated(nbytes)
            raise ZeroDivisionError("buffer_updated")

    conn = await env.connect(lambda: Failing(env))
    await conn.peer.send(b"data")
    exc = await conn.protocol.wait_lost()
    env.expect(isinstance(exc, ZeroDivisionError), f"connection_lost() got {exc!r}")
    env.expect_equal(
        "exception handler",
        env.error_messages(),
        ["Fatal error: protocol.buffer_updated() call failed."],
    )


@scenario(
    BUFFERED,
    "pause_reading() inside buffer_updated() stops further get_buffer() calls",
    requires=("buffered",),
)
async def pause_in_buffer_updated(env: Env) -> None:
    class Pausing(RecordingBufferedProtocol):
        def buffer_updated(self, nbytes: int) -> None:
            super().buffer_updated(nbytes)
            self.transport.pause_reading()

    conn = await env.connect(lambda: Pausing(env, buffer_size=4))
    await conn.peer.send(b"abcdefghijkl")
    await conn.protocol.wait_for_data(4)
    await env.settle()
    env.expect_equal("bytes received while paused", bytes(conn.protocol.data), b"abcd")
    for expected in (b"abcdefgh", b"abcdefghijkl"):
        conn.transport.resume_reading()
        await conn.protocol.wait_for_data(len(expected))
        await env.settle()
        env.expect_equal("bytes received", bytes(conn.protocol.data), expected)


@scenario(
    BUFFERED,
    "set_protocol() from a Protocol to a BufferedProtocol: new data goes through "
    "get_buffer()",
    requires=("buffered",),
)
async def switch_to_buffered(env: Env) -> None:
    conn = await env.connect()
    await conn.peer.send(b"plain")
    await conn.protocol.wait_for_data(5)
    other = RecordingBufferedProtocol(env, "buffered")
    conn.transport.set_protocol(other)
    await conn.peer.send(b"buffered")
    await other.wait_for_data(8)
    env.expect_equal(
        "new protocol's callbacks", other.names()[:2], ["get_buffer", "buffer_updated"]
    )
    env.expect_equal(
        "old protocol", conn.protocol.summary(), ["made", ("data", b"plain")]
    )


@scenario(
    BUFFERED,
    "set_protocol() from a BufferedProtocol to a Protocol: new data goes to "
    "data_received()",
    requires=("buffered",),
)
async def switch_to_plain(env: Env) -> None:
    conn = await env.connect(_buffered(env))
    await conn.peer.send(b"buffered")
    await conn.protocol.wait_for_data(8)
    other = RecordingProtocol(env, "plain")
    conn.transport.set_protocol(other)
    await conn.peer.send(b"plain")
    await other.wait_for_data(5)
    env.expect_equal("new protocol", other.summary(), [("data", b"plain")])
