"""Transports: Read-only Transports: is_reading(), pause_reading(),
resume_reading()."""

from __future__ import annotations

from typing import Any

from .. import sections
from .._env import Env
from .._recording import RecordingProtocol
from .._registry import scenario

READ = sections.READ_TRANSPORTS


@scenario(READ, "is_reading() is True for a new transport")
async def is_reading_initially(env: Env) -> None:
    conn = await env.connect()
    env.expect_equal("is_reading()", conn.transport.is_reading(), True)


@scenario(
    READ,
    "pause_reading(): no data is passed to data_received() until resume_reading()",
)
async def pause_reading_stops_data(env: Env) -> None:
    conn = await env.connect()
    conn.transport.pause_reading()
    env.expect_equal(
        "is_reading() after pause_reading()", conn.transport.is_reading(), False
    )
    await conn.peer.send(b"while paused")
    await env.settle()
    env.expect_equal("callbacks while paused", conn.protocol.summary(), ["made"])


@scenario(
    READ,
    "resume_reading(): data_received() is called again with the data that arrived "
    "meanwhile",
)
async def resume_reading_delivers(env: Env) -> None:
    conn = await env.connect()
    conn.transport.pause_reading()
    await conn.peer.send(b"while paused")
    await env.settle()
    conn.transport.resume_reading()
    env.expect_equal(
        "is_reading() after resume_reading()", conn.transport.is_reading(), True
    )
    await conn.protocol.wait_for_data(12)
    await conn.peer.send(b", and after")
    await conn.protocol.wait_for_data(23)
    env.expect_equal(
        "callbacks",
        conn.protocol.summary(),
        ["made", ("data", b"while paused, and after")],
    )


@scenario(READ, "pause_reading() is idempotent (may be called when already paused)")
async def pause_reading_idempotent(env: Env) -> None:
    conn = await env.connect()
    conn.transport.pause_reading()
    conn.transport.pause_reading()
    env.expect_equal("is_reading()", conn.transport.is_reading(), False)
    await conn.peer.send(b"data")
    await env.settle()
    env.expect_equal("callbacks while paused", conn.protocol.summary(), ["made"])
    conn.transport.resume_reading()
    await conn.protocol.wait_for_data(4)


@scenario(READ, "resume_reading() is idempotent (may be called when already reading)")
async def resume_reading_idempotent(env: Env) -> None:
    conn = await env.connect()
    conn.transport.resume_reading()
    conn.transport.resume_reading()
    env.expect_equal("is_reading()", conn.transport.is_reading(), True)
    await conn.peer.send(b"data")
    await conn.protocol.wait_for_data(4)
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("data", b"data")])


@scenario(
    READ,
    "pause_reading() and resume_reading() may be called when the transport is closed",
)
async def pause_resume_after_close(env: Env) -> None:
    conn = await env.connect()
    conn.transport.close()
    conn.transport.pause_reading()
    conn.transport.resume_reading()
    await conn.protocol.wait_lost()
    conn.transport.pause_reading()
    conn.transport.resume_reading()
    env.expect_equal("is_reading() after close()", conn.transport.is_reading(), False)
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("lost", None)])


@scenario(READ, "is_reading() is False once the transport is closing")
async def is_reading_false_when_closing(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(b"pending")
    conn.transport.close()
    env.expect_equal("is_reading() after close()", conn.transport.is_reading(), False)


@scenario(
    READ,
    "pause_reading() inside connection_made() takes effect before any data is "
    "delivered",
)
async def pause_reading_in_connection_made(env: Env) -> None:
    class Pausing(RecordingProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.pause_reading()

    conn = await env.connect(lambda: Pausing(env), peer_sends=b"early bytes")
    await env.settle()
    env.expect_equal("callbacks while paused", conn.protocol.summary(), ["made"])
    conn.transport.resume_reading()
    await conn.protocol.wait_for_data(11)
    env.expect_equal(
        "callbacks", conn.protocol.summary(), ["made", ("data", b"early bytes")]
    )


@scenario(
    READ,
    "pause_reading() inside data_received() stops the next delivery",
)
async def pause_reading_in_data_received(env: Env) -> None:
    class PauseOnData(RecordingProtocol):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.transport.pause_reading()

    conn = await env.connect(lambda: PauseOnData(env))
    await conn.peer.send(b"one")
    await conn.protocol.wait_for_data(3)
    await conn.peer.send(b"two")
    await env.settle()
    env.expect_equal(
        "callbacks while paused", conn.protocol.summary(), ["made", ("data", b"one")]
    )
    conn.transport.resume_reading()
    await conn.protocol.wait_for_data(6)


@scenario(
    READ,
    "the end of the stream waits for resume_reading(): eof_received() comes after "
    "the data",
)
async def eof_waits_for_resume(env: Env) -> None:
    conn = await env.connect()
    conn.transport.pause_reading()
    await conn.peer.send(b"last words")
    await conn.peer.shutdown_write()
    await env.settle()
    env.expect_equal("callbacks while paused", conn.protocol.summary(), ["made"])
    conn.transport.resume_reading()
    await conn.protocol.wait_lost()
    env.expect_equal(
        "callbacks",
        conn.protocol.summary(),
        ["made", ("data", b"last words"), "eof", ("lost", None)],
    )
