"""Streams: StreamWriter — write(), writelines(), write_eof(), close(),
is_closing(), wait_closed(), get_extra_info(), the transport attribute, and
drain(): at once when not paused, waiting while paused, after the connection
is lost, several at once.

Every connection is made with the implementation's ``open_connection()``
(``env.open_stream()``); ``fill=True`` fills the kernel's send buffer first, so
that what the writer writes stays in the transport's buffer until the peer
reads, and the pause points are exact.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._registry import scenario

WRITER = sections.STREAM_WRITER


async def expect_pending(env: Env, task: asyncio.Future[Any], what: str) -> None:
    """Let the loop run a little; fail if *task* finished."""
    await env.settle()
    if task.done():
        outcome = "raised" if task.exception() is not None else "returned"
        env.fail(f"{what} {outcome} before the peer read anything")


@scenario(
    WRITER,
    "write() sends the bytes to the peer; drain() then returns",
    requires=("streams",),
)
async def write_sends(env: Env) -> None:
    stream = await env.open_stream()
    stream.writer.write(b"hello")
    stream.writer.write(bytearray(b" world"))
    await stream.writer.drain()
    env.expect_equal(
        "peer received", await stream.peer.recv_exactly(11), b"hello world"
    )


@scenario(
    WRITER,
    "writelines() sends the items of an iterable in order",
    requires=("streams",),
)
async def writelines_sends(env: Env) -> None:
    stream = await env.open_stream()
    stream.writer.writelines(iter([b"one ", bytearray(b"two "), memoryview(b"3")]))
    await stream.writer.drain()
    env.expect_equal("peer received", await stream.peer.recv_exactly(9), b"one two 3")


@scenario(
    WRITER,
    "can_write_eof() is True; write_eof() sends the end of the stream after the "
    "data and reading goes on",
    requires=("streams",),
)
async def write_eof_half_closes(env: Env) -> None:
    stream = await env.open_stream()
    writer = stream.writer
    env.expect_equal("can_write_eof()", writer.can_write_eof(), True)
    writer.write(b"request")
    writer.write_eof()
    env.expect_equal("peer received", await stream.peer.recv_until_eof(), b"request")
    await stream.peer.send(b"response")
    env.expect_equal(
        "reader after write_eof()", await stream.reader.readexactly(8), b"response"
    )
    env.expect_equal("is_closing() after write_eof()", writer.is_closing(), False)


@scenario(
    WRITER,
    "close(): is_closing() becomes True, wait_closed() returns once the "
    "connection is closed, the peer gets the data then the end of the stream",
    requires=("streams",),
)
async def close_and_wait_closed(env: Env) -> None:
    stream = await env.open_stream()
    writer = stream.writer
    env.expect_equal("is_closing() while open", writer.is_closing(), False)
    writer.write(b"bye")
    writer.close()
    env.expect_equal("is_closing() after close()", writer.is_closing(), True)
    task = env.loop.create_task(writer.wait_closed())
    await env.wait_done(task, "wait_closed() to return")
    env.expect_equal("peer received", await stream.peer.recv_until_eof(), b"bye")
    env.expect(not stream.peer.reset, "the peer saw a reset")


@scenario(
    WRITER,
    "wait_closed() raises the connection's error when the connection was lost "
    "with one (a reset)",
    requires=("streams", "tcp"),
)
async def wait_closed_raises_connection_error(env: Env) -> None:
    stream = await env.open_stream(family="tcp")
    await stream.peer.reset_connection()
    await env.expect_raises_async(
        ConnectionResetError, None, stream.reader.read(), "read()"
    )
    await env.expect_raises_async(
        ConnectionResetError, None, stream.writer.wait_closed(), "wait_closed()"
    )


@scenario(
    WRITER,
    "get_extra_info(): the transport's 'socket', 'peername' and 'sockname', and "
    "the default for unknown names",
    requires=("streams", "tcp"),
)
async def get_extra_info(env: Env) -> None:
    stream = await env.open_stream(family="tcp")
    writer = stream.writer
    sock = writer.get_extra_info("socket")
    env.expect(sock is not None, "get_extra_info('socket') is None")
    env.expect_equal("socket family", sock.family, socket.AF_INET)
    env.expect_equal(
        "'peername'", writer.get_extra_info("peername"), stream.peer.sock.getsockname()
    )
    env.expect_equal(
        "'sockname'", writer.get_extra_info("sockname"), stream.peer.sock.getpeername()
    )
    marker = object()
    env.expect(
        writer.get_extra_info("no such key", marker) is marker,
        "get_extra_info(unknown, default) did not return default",
    )
    env.expect_equal("get_extra_info(unknown)", writer.get_extra_info("nope"), None)


@scenario(
    WRITER,
    "the transport attribute is the connection's transport (its write() reaches "
    "the peer, it closes with the writer)",
    requires=("streams",),
)
async def transport_attribute(env: Env) -> None:
    stream = await env.open_stream()
    transport = stream.writer.transport
    env.expect(
        isinstance(transport, asyncio.WriteTransport),
        f"{type(transport).__name__} is not an asyncio.WriteTransport",
    )
    env.expect(
        transport.get_extra_info("socket") is stream.writer.get_extra_info("socket"),
        "transport.get_extra_info('socket') differs from the writer's",
    )
    transport.write(b"direct")
    env.expect_equal("peer received", await stream.peer.recv_exactly(6), b"direct")
    stream.writer.close()
    env.expect_equal(
        "transport.is_closing() after writer.close()", transport.is_closing(), True
    )


# -- drain() -------------------------------------------------------------------


@scenario(
    WRITER,
    "drain() returns at once when writing is not paused, even with bytes still "
    "buffered",
    requires=("streams",),
)
async def drain_not_paused(env: Env) -> None:
    stream = await env.open_stream(fill=True)
    writer = stream.writer
    writer.write(b"x" * 100)
    env.expect_equal(
        "get_write_buffer_size()", writer.transport.get_write_buffer_size(), 100
    )
    task = env.loop.create_task(writer.drain())
    await env.wait_done(task, "drain() below the high watermark")


@scenario(
    WRITER,
    "drain() waits while writing is paused (buffer above high), and returns once "
    "the buffer is down to low",
    requires=("streams",),
)
async def drain_waits_while_paused(env: Env) -> None:
    stream = await env.open_stream(fill=True)
    writer = stream.writer
    writer.transport.set_write_buffer_limits(high=1000, low=100)
    data = pattern(3000)
    writer.write(data)
    task = env.loop.create_task(writer.drain())
    await expect_pending(env, task, "drain() with 3000 bytes buffered (high 1000)")
    env.expect_equal("peer received", await stream.peer.recv_exactly(3000), data)
    await env.wait_done(task, "drain() after the peer read everything")


@scenario(
    WRITER,
    "several drain() calls may wait at once; all return when writing resumes",
    requires=("streams",),
)
async def concurrent_drains(env: Env) -> None:
    stream = await env.open_stream(fill=True)
    writer = stream.writer
    writer.transport.set_write_buffer_limits(high=1000, low=100)
    writer.write(pattern(3000))
    tasks = [env.loop.create_task(writer.drain()) for _ in range(3)]
    for task in tasks:
        await expect_pending(env, task, "a drain() while paused")
    await stream.peer.recv_exactly(3000)
    for number, task in enumerate(tasks, 1):
        await env.wait_done(task, f"drain() number {number} to return")


@scenario(
    WRITER,
    "drain() after the connection was lost raises ConnectionResetError("
    "'Connection lost')",
    requires=("streams",),
)
async def drain_after_connection_lost(env: Env) -> None:
    stream = await env.open_stream()
    stream.writer.transport.abort()
    await env.wait_done(
        env.loop.create_task(stream.writer.wait_closed()), "wait_closed()"
    )
    await env.expect_raises_async(
        ConnectionResetError, "Connection lost", stream.writer.drain()
    )


@scenario(
    WRITER,
    "write(); close(); drain(): drain() lets connection_lost() run and raises "
    "ConnectionResetError('Connection lost')",
    requires=("streams",),
)
async def drain_after_close(env: Env) -> None:
    stream = await env.open_stream()
    stream.writer.write(b"last")
    stream.writer.close()
    await env.expect_raises_async(
        ConnectionResetError, "Connection lost", stream.writer.drain()
    )
    env.expect_equal("peer received", await stream.peer.recv_until_eof(), b"last")


@scenario(
    WRITER,
    "a drain() waiting while paused raises the connection's error when the "
    "connection is reset",
    requires=("streams", "tcp"),
)
async def paused_drain_connection_error(env: Env) -> None:
    stream = await env.open_stream(family="tcp", fill=True)
    writer = stream.writer
    writer.transport.set_write_buffer_limits(high=1000, low=100)
    writer.write(pattern(3000))
    task = env.loop.create_task(writer.drain())
    await expect_pending(env, task, "drain() while paused")
    await stream.peer.reset_connection()
    await env.wait_until(task.done, "drain() to end after the reset")
    await env.expect_raises_async(ConnectionError, None, task, "drain()")


@scenario(
    WRITER,
    "drain() raises the reader's exception when it has one",
    requires=("streams",),
)
async def drain_raises_reader_exception(env: Env) -> None:
    stream = await env.open_stream()
    error = ValueError("reader failed")
    stream.reader.set_exception(error)
    exc = await env.expect_raises_async(
        ValueError, "reader failed", stream.writer.drain()
    )
    env.expect(exc is error, "drain() raised another ValueError")
