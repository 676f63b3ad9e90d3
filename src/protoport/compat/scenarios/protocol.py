"""Protocols: Base Protocol and Streaming Protocols: the order of the callbacks,
what they receive, and what happens when they raise."""

from __future__ import annotations

from typing import Any

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._recording import RecordingProtocol
from .._registry import scenario

BASE = sections.BASE_PROTOCOL
STREAMING = sections.STREAMING_PROTOCOLS


@scenario(
    BASE,
    "connection_made() has run when create_connection() returns, with the "
    "transport it returns",
)
async def made_before_return(env: Env) -> None:
    conn = await env.connect(family="tcp")
    env.expect_equal(
        "callbacks when create_connection() returns", conn.protocol.summary(), ["made"]
    )
    env.expect(
        conn.protocol.transport is conn.transport,
        "connection_made() got another object than the transport returned",
    )


@scenario(BASE, "connect_accepted_socket(): connection_made() has run when it returns")
async def made_accepted_socket(env: Env) -> None:
    conn = await env.connect(via="accepted", peer_sends=b"hi")
    env.expect_equal(
        "first callback when it returns", conn.protocol.names()[:1], ["connection_made"]
    )
    await conn.protocol.wait_for_data(2)
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("data", b"hi")])


@scenario(
    BASE,
    "connection_lost(None) on a regular end of the stream, after eof_received()",
)
async def lost_none_on_eof(env: Env) -> None:
    conn = await env.connect()
    await conn.peer.shutdown_write()
    env.expect_equal(
        "connection_lost() argument", await conn.protocol.wait_lost(), None
    )
    env.expect_equal(
        "callbacks", conn.protocol.summary(), ["made", "eof", ("lost", None)]
    )


@scenario(
    BASE,
    "connection_lost() is called once, last, even if close() is called inside "
    "connection_made()",
)
async def close_in_connection_made(env: Env) -> None:
    class Closing(RecordingProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.close()

    conn = await env.connect(lambda: Closing(env), peer_sends=b"ignored")
    await conn.protocol.wait_lost()
    await env.settle()
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("lost", None)])


@scenario(
    BASE,
    "an exception in connection_made() goes to the exception handler; the "
    "transport stays open",
)
async def connection_made_error(env: Env) -> None:
    class Failing(RecordingProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            raise ZeroDivisionError("made")

    conn = await env.connect(lambda: Failing(env))
    await env.wait_until(lambda: env.errors, "the exception handler")
    exc = env.errors[0].get("exception")
    env.expect(isinstance(exc, ZeroDivisionError), f"the handler got {exc!r}")
    env.expect_equal("is_closing()", conn.transport.is_closing(), False)
    await conn.peer.send(b"still open")
    await conn.protocol.wait_for_data(10)
    conn.transport.write(b"yes")
    env.expect_equal("peer received", await conn.peer.recv_exactly(3), b"yes")


@scenario(
    BASE,
    "a peer reset: connection_lost() gets the OSError, and the exception handler "
    "is not called",
)
async def peer_reset(env: Env) -> None:
    conn = await env.connect(family="tcp")
    await conn.peer.reset_connection()
    exc = await conn.protocol.wait_lost()
    env.expect(isinstance(exc, ConnectionResetError), f"connection_lost() got {exc!r}")
    env.expect_equal("exception handler calls", env.error_messages(), [])


@scenario(
    BASE,
    "a write error (peer gone): connection_lost() gets the OSError, and the "
    "exception handler is not called",
)
async def write_error(env: Env) -> None:
    conn = await env.connect(family="tcp")
    conn.transport.pause_reading()
    await conn.peer.reset_connection()
    for _ in range(20):
        if conn.protocol.lost:
            break
        conn.transport.write(b"into the void")
        await env.settle(0.005)
    exc = await conn.protocol.wait_lost()
    env.expect(isinstance(exc, OSError), f"connection_lost() got {exc!r}")
    env.expect_equal("exception handler calls", env.error_messages(), [])


@scenario(
    BASE,
    "no callback after connection_lost(): close(), abort(), write() and "
    "pause/resume_reading() do nothing then",
)
async def nothing_after_lost(env: Env) -> None:
    conn = await env.connect()
    await conn.peer.close()
    await conn.protocol.wait_lost()
    transport = conn.transport
    transport.close()
    transport.abort()
    transport.pause_reading()
    transport.resume_reading()
    transport.write_eof()
    await env.settle()
    env.expect_equal(
        "callbacks", conn.protocol.summary(), ["made", "eof", ("lost", None)]
    )


# -- Streaming protocols ------------------------------------------------------------


@scenario(
    STREAMING,
    "callbacks come in the order connection_made, data_received*, eof_received, "
    "connection_lost",
)
async def callback_order(env: Env) -> None:
    conn = await env.connect(family="tcp")
    await conn.peer.send(b"some data")
    await conn.protocol.wait_for_data(9)
    await conn.peer.send(b", more data")
    await conn.peer.shutdown_write()
    await conn.protocol.wait_lost()
    env.expect_equal(
        "callbacks",
        conn.protocol.summary(),
        ["made", ("data", b"some data, more data"), "eof", ("lost", None)],
    )


@scenario(STREAMING, "data_received(data): data is a non-empty bytes object")
async def data_is_bytes(env: Env) -> None:
    conn = await env.connect()
    await conn.peer.send(pattern(100_000))
    await conn.protocol.wait_for_data(100_000)
    kinds = {
        type(event[1]).__name__
        for event in conn.protocol.events
        if event[0] == "data_received"
    }
    env.expect_equal("types given to data_received()", kinds, {"bytes"})
    empty = [e for e in conn.protocol.events if e[0] == "data_received" and not e[1]]
    env.expect(not empty, "data_received() got an empty bytes object")


@scenario(STREAMING, "data_received(): the bytes arrive complete and in order")
async def data_in_order(env: Env) -> None:
    conn = await env.connect(family="tcp")
    data = pattern(1_000_000, 3)
    await conn.peer.send(data)
    received = await conn.protocol.wait_for_data(len(data))
    env.expect_equal("bytes received", len(received), len(data))
    env.expect(received == data, "data_received() got other bytes than were sent")


@scenario(
    STREAMING,
    "eof_received() returning a true value keeps the transport open (half-open): "
    "it can still write",
)
async def eof_true_half_open(env: Env) -> None:
    conn = await env.connect(lambda: RecordingProtocol(env, eof_result=True))
    await conn.peer.send(b"question")
    await conn.peer.shutdown_write()
    await conn.protocol.wait_for("eof_received")
    await env.settle()
    env.expect_equal("is_closing()", conn.transport.is_closing(), False)
    conn.transport.write(b"answer")
    env.expect_equal("peer received", await conn.peer.recv_exactly(6), b"answer")
    conn.transport.close()
    await conn.protocol.wait_lost()
    env.expect_equal(
        "callbacks",
        conn.protocol.summary(),
        ["made", ("data", b"question"), "eof", ("lost", None)],
    )


@scenario(
    STREAMING,
    "eof_received() is called at most once, even if reading is paused and resumed "
    "after it",
    reference_deviation=(
        "CPython 3.13 reads the end of the stream again after resume_reading() on a "
        "half-open transport, and calls eof_received() a second time"
    ),
)
async def eof_received_once(env: Env) -> None:
    conn = await env.connect(lambda: RecordingProtocol(env, eof_result=True))
    await conn.peer.shutdown_write()
    await conn.protocol.wait_for("eof_received")
    conn.transport.pause_reading()
    conn.transport.resume_reading()
    await env.settle()
    env.expect_equal("eof_received() calls", conn.protocol.count("eof_received"), 1)


@scenario(
    STREAMING,
    "eof_received() returning a false value (or None) closes the transport",
)
async def eof_false_closes(env: Env) -> None:
    conn = await env.connect(lambda: RecordingProtocol(env, eof_result=False))
    await conn.peer.shutdown_write()
    await conn.protocol.wait_for("eof_received")
    env.expect_equal(
        "is_closing() after eof_received()", conn.transport.is_closing(), True
    )
    await conn.protocol.wait_lost()
    env.expect_equal("peer received", await conn.peer.recv_until_eof(), b"")


@scenario(
    STREAMING,
    "an exception in data_received() is fatal: 'Fatal error: "
    "protocol.data_received() call failed.', connection_lost(exc)",
)
async def data_received_error(env: Env) -> None:
    class Failing(RecordingProtocol):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            raise ZeroDivisionError("data")

    conn = await env.connect(lambda: Failing(env))
    await conn.peer.send(b"boom")
    exc = await conn.protocol.wait_lost()
    env.expect(isinstance(exc, ZeroDivisionError), f"connection_lost() got {exc!r}")
    env.expect_equal(
        "exception handler",
        env.error_messages(),
        ["Fatal error: protocol.data_received() call failed."],
    )
    env.expect(
        env.errors[0].get("exception") is exc, "the handler got another exception"
    )
    env.expect_equal("peer received", await conn.peer.recv_until_eof(), b"")


@scenario(
    STREAMING,
    "an exception in eof_received() is fatal: 'Fatal error: "
    "protocol.eof_received() call failed.', connection_lost(exc)",
)
async def eof_received_error(env: Env) -> None:
    class Failing(RecordingProtocol):
        def eof_received(self) -> bool | None:
            super().eof_received()
            raise ZeroDivisionError("eof")

    conn = await env.connect(lambda: Failing(env))
    await conn.peer.shutdown_write()
    exc = await conn.protocol.wait_lost()
    env.expect(isinstance(exc, ZeroDivisionError), f"connection_lost() got {exc!r}")
    env.expect_equal(
        "exception handler",
        env.error_messages(),
        ["Fatal error: protocol.eof_received() call failed."],
    )


@scenario(
    STREAMING,
    "the exception handler's context names the transport and the protocol",
)
async def fatal_error_context(env: Env) -> None:
    class Failing(RecordingProtocol):
        def data_received(self, data: bytes) -> None:
            raise ZeroDivisionError("data")

    conn = await env.connect(lambda: Failing(env))
    await conn.peer.send(b"boom")
    await conn.protocol.wait_lost()
    context = env.errors[0]
    env.expect(
        context.get("transport") is conn.transport, "'transport' is not the transport"
    )
    env.expect(
        context.get("protocol") is conn.protocol, "'protocol' is not the protocol"
    )
