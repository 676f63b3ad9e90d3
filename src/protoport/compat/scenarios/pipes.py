"""Event Loop: Working with pipes: ``connect_read_pipe()`` and
``connect_write_pipe()``, the read and write transports they make."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, BinaryIO

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._registry import scenario

PIPES = sections.PIPES


async def _read_pipe(env: Env) -> tuple[Any, Any, BinaryIO]:
    """A read pipe transport with a recording protocol, and the write end."""
    read_end, write_end, _ = env.pipe()
    transport, protocol = await env.loop.connect_read_pipe(env.protocol, read_end)
    return transport, protocol, write_end


# -- connect_read_pipe() ----------------------------------------------------------


@scenario(
    PIPES,
    "connect_read_pipe() returns (ReadTransport, protocol) after connection_made()",
    requires=["pipes"],
)
async def read_pipe_returns_read_transport(env: Env) -> None:
    read_end, _, _ = env.pipe()
    transport, protocol = await env.loop.connect_read_pipe(env.protocol, read_end)
    env.expect(
        isinstance(transport, asyncio.ReadTransport),
        f"{type(transport).__name__} is not an asyncio.ReadTransport",
    )
    env.expect_equal("callbacks", protocol.names(), ["connection_made"])
    env.expect(protocol.transport is transport, "connection_made() got another object")
    env.expect(
        transport.get_extra_info("pipe") is read_end,
        "get_extra_info('pipe') is not the pipe given",
    )


@scenario(
    PIPES,
    "read pipe: bytes written to the pipe reach data_received()",
    requires=["pipes"],
)
async def read_pipe_data_received(env: Env) -> None:
    _, protocol, write_end = await _read_pipe(env)
    data = pattern(300_000)
    await env.write_to(write_end, data)
    env.expect(await protocol.wait_for_data(len(data)) == data, "other bytes arrived")


@scenario(
    PIPES,
    "read pipe: the writer closing gives eof_received(), then connection_lost(None)",
    requires=["pipes"],
)
async def read_pipe_eof(env: Env) -> None:
    transport, protocol, write_end = await _read_pipe(env)
    await env.write_to(write_end, b"last")
    write_end.close()
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
    env.expect_equal(
        "callbacks",
        protocol.summary(),
        ["made", ("data", b"last"), "eof", ("lost", None)],
    )
    env.expect_equal("is_closing()", transport.is_closing(), True)


@scenario(
    PIPES,
    "read pipe: pause_reading() stops data_received() until resume_reading()",
    requires=["pipes"],
)
async def read_pipe_pause_resume(env: Env) -> None:
    transport, protocol, write_end = await _read_pipe(env)
    env.expect_equal("is_reading()", transport.is_reading(), True)
    transport.pause_reading()
    env.expect_equal("is_reading() when paused", transport.is_reading(), False)
    await env.write_to(write_end, b"held")
    await env.settle()
    env.expect_equal("bytes received while paused", bytes(protocol.data), b"")
    transport.resume_reading()
    env.expect_equal("is_reading() after resume", transport.is_reading(), True)
    env.expect_equal("bytes after resume", await protocol.wait_for_data(4), b"held")


@scenario(
    PIPES,
    "read pipe: pause_reading() and resume_reading() twice are no-ops",
    requires=["pipes"],
)
async def read_pipe_pause_idempotent(env: Env) -> None:
    transport, protocol, write_end = await _read_pipe(env)
    transport.pause_reading()
    transport.pause_reading()
    transport.resume_reading()
    transport.resume_reading()
    await env.write_to(write_end, b"once")
    env.expect_equal("bytes", await protocol.wait_for_data(4), b"once")


@scenario(
    PIPES,
    "read pipe: close() calls connection_lost(None) once and closes the pipe",
    requires=["pipes"],
)
async def read_pipe_close(env: Env) -> None:
    read_end, _, _ = env.pipe()
    transport, protocol = await env.loop.connect_read_pipe(env.protocol, read_end)
    transport.close()
    env.expect_equal("is_closing()", transport.is_closing(), True)
    transport.close()
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
    await env.settle()
    env.expect_equal("callbacks", protocol.summary(), ["made", ("lost", None)])
    env.expect(read_end.closed, "the pipe's file object is still open")


@scenario(
    PIPES,
    "read pipe: no data_received() after close(), even for bytes already there",
    requires=["pipes"],
)
async def read_pipe_close_stops_reading(env: Env) -> None:
    transport, protocol, write_end = await _read_pipe(env)
    # Written with no await in between: the bytes are there when close() runs.
    write_end.write(b"x")
    transport.close()
    await protocol.wait_lost()
    env.expect_equal(
        "callbacks", protocol.names(), ["connection_made", "connection_lost"]
    )


@scenario(
    PIPES,
    "connect_read_pipe() of a regular file raises ValueError('Pipe transport is for "
    "pipes/sockets only.')",
    requires=["pipes"],
)
async def read_pipe_rejects_regular_file(env: Env) -> None:
    with open(env.temp_path("regular"), "w+b") as file:
        await env.expect_raises_async(
            ValueError,
            "Pipe transport is for pipes/sockets only.",
            env.loop.connect_read_pipe(env.protocol, file),
            "connect_read_pipe()",
        )


@scenario(PIPES, "connect_read_pipe() reads a socket", requires=["pipes"])
async def read_pipe_socket(env: Env) -> None:
    local, remote = socket.socketpair()
    env.track(local)
    env.track(remote)
    _, protocol = await env.loop.connect_read_pipe(env.protocol, local)
    remote.sendall(b"via socket")
    env.expect_equal("bytes", await protocol.wait_for_data(10), b"via socket")
    remote.close()
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
    env.expect(protocol.eof, "no eof_received() when the socket's peer closed")


@scenario(PIPES, "connect_read_pipe() reads a FIFO", requires=["pipes"])
async def read_pipe_fifo(env: Env) -> None:
    path = env.temp_path("fifo")
    os.mkfifo(path)
    reader = env.track_file(open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb", 0))  # noqa: SIM115
    writer = env.track_file(open(path, "wb", buffering=0))  # noqa: SIM115
    _, protocol = await env.loop.connect_read_pipe(env.protocol, reader)
    await env.write_to(writer, b"fifo bytes")
    env.expect_equal("bytes", await protocol.wait_for_data(10), b"fifo bytes")
    writer.close()
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)


@scenario(PIPES, "connect_read_pipe() reads a pseudo-terminal", requires=["pipes"])
async def read_pipe_pty(env: Env) -> None:
    import pty  # not on every platform

    master, slave = pty.openpty()
    master_file = env.track_file(open(master, "rb", buffering=0))  # noqa: SIM115
    slave_file = env.track_file(open(slave, "wb", buffering=0))  # noqa: SIM115
    _, protocol = await env.loop.connect_read_pipe(env.protocol, master_file)
    await env.write_to(slave_file, b"tty\n")
    data = await protocol.wait_for_data(4)
    # The terminal's line discipline turns "\n" into "\r\n".
    env.expect_equal("bytes", data.replace(b"\r\n", b"\n"), b"tty\n")


# -- connect_write_pipe() ---------------------------------------------------------


@scenario(
    PIPES,
    "connect_write_pipe() returns (WriteTransport, protocol) after connection_made()",
    requires=["pipes"],
)
async def write_pipe_returns_write_transport(env: Env) -> None:
    _, write_end, _ = env.pipe()
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, write_end)
    env.expect(
        isinstance(transport, asyncio.WriteTransport),
        f"{type(transport).__name__} is not an asyncio.WriteTransport",
    )
    env.expect_equal("callbacks", protocol.names(), ["connection_made"])
    env.expect(
        transport.get_extra_info("pipe") is write_end,
        "get_extra_info('pipe') is not the pipe given",
    )
    env.expect_equal("can_write_eof()", transport.can_write_eof(), True)


@scenario(
    PIPES,
    "write pipe: write() and writelines() reach the reader in order",
    requires=["pipes"],
)
async def write_pipe_write_reaches_reader(env: Env) -> None:
    read_end, write_end, _ = env.pipe()
    transport, _ = await env.loop.connect_write_pipe(env.protocol, write_end)
    data = pattern(1_000_000)
    transport.write(data[:10])
    transport.writelines([data[10:500_000], bytearray(data[500_000:])])
    received = await env.read_from(read_end, len(data))
    env.expect(received == data, "the reader got other bytes than were written")


@scenario(
    PIPES,
    "write pipe: write_eof() flushes, closes the pipe and calls connection_lost(None)",
    requires=["pipes"],
)
async def write_pipe_write_eof(env: Env) -> None:
    read_end, write_end, filled = env.pipe(fill=True)
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, write_end)
    transport.write(b"tail")
    transport.write_eof()
    env.expect_equal("is_closing() after write_eof()", transport.is_closing(), True)
    env.expect_equal("reader got", await env.read_from(read_end, skip=filled), b"tail")
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)


@scenario(
    PIPES,
    "write pipe: close() sends the buffered bytes, then connection_lost(None)",
    requires=["pipes"],
)
async def write_pipe_close_flushes(env: Env) -> None:
    read_end, write_end, filled = env.pipe(fill=True)
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, write_end)
    data = pattern(200_000)
    transport.write(data)
    transport.close()
    await env.settle()
    env.expect(not protocol.lost, "connection_lost() before the buffer was sent")
    received = await env.read_from(read_end, skip=filled)
    env.expect(received == data, "the reader got other bytes than were written")
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
    env.expect(write_end.closed, "the pipe's file object is still open")


@scenario(
    PIPES,
    "write pipe: get_write_buffer_size() counts what the pipe did not take",
    requires=["pipes"],
)
async def write_pipe_buffer_size(env: Env) -> None:
    read_end, write_end, filled = env.pipe(fill=True)
    transport, _ = await env.loop.connect_write_pipe(env.protocol, write_end)
    transport.set_write_buffer_limits(high=1_000_000)
    transport.write(b"a" * 5000)
    transport.write(b"b" * 3000)
    env.expect_equal("get_write_buffer_size()", transport.get_write_buffer_size(), 8000)
    await env.read_from(read_end, 8000, skip=filled)
    await env.wait_until(
        lambda: transport.get_write_buffer_size() == 0,
        "get_write_buffer_size() to drop to 0",
    )


@scenario(
    PIPES,
    "write pipe: pause_writing() above the high-water mark, resume_writing() at the "
    "low one",
    requires=["pipes"],
)
async def write_pipe_flow_control(env: Env) -> None:
    read_end, write_end, filled = env.pipe(fill=True)
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, write_end)
    transport.set_write_buffer_limits(high=10_000, low=2_000)
    env.expect_equal(
        "get_write_buffer_limits()",
        transport.get_write_buffer_limits(),
        (2_000, 10_000),
    )
    transport.write(b"x" * 10_000)
    env.expect_equal("callbacks at the mark", protocol.names(), ["connection_made"])
    transport.write(b"x")
    env.expect_equal(
        "callbacks above the mark",
        protocol.names(),
        ["connection_made", "pause_writing"],
    )
    await env.read_from(read_end, 10_001, skip=filled)
    await protocol.wait_for("resume_writing")
    env.expect_equal("callbacks", protocol.summary(), ["made", "pause", "resume"])


@scenario(
    PIPES,
    "write pipe: set_write_buffer_limits(high < low) raises ValueError",
    requires=["pipes"],
)
async def write_pipe_bad_limits(env: Env) -> None:
    _, write_end, _ = env.pipe()
    transport, _ = await env.loop.connect_write_pipe(env.protocol, write_end)
    env.expect_raises(
        ValueError,
        "high (1) must be >= low (2) must be >= 0",
        transport.set_write_buffer_limits,
        high=1,
        low=2,
    )


@scenario(
    PIPES,
    "write pipe: abort() drops the buffer and calls connection_lost(None)",
    requires=["pipes"],
)
async def write_pipe_abort(env: Env) -> None:
    read_end, write_end, filled = env.pipe(fill=True)
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, write_end)
    transport.write(b"dropped")
    transport.abort()
    env.expect_equal("is_closing()", transport.is_closing(), True)
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
    env.expect_equal("reader got", await env.read_from(read_end, skip=filled), b"")


@scenario(
    PIPES,
    "write pipe: the reader closing with nothing buffered gives connection_lost(None)",
    requires=["pipes"],
)
async def write_pipe_reader_closes_idle(env: Env) -> None:
    read_end, write_end, _ = env.pipe()
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, write_end)
    read_end.close()
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
    env.expect_equal("is_closing()", transport.is_closing(), True)


@scenario(
    PIPES,
    "write pipe: the reader closing with bytes buffered gives "
    "connection_lost(BrokenPipeError)",
    requires=["pipes"],
)
async def write_pipe_reader_closes_busy(env: Env) -> None:
    read_end, write_end, _ = env.pipe(fill=True)
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, write_end)
    transport.write(b"never read")
    read_end.close()
    exc = await protocol.wait_lost()
    env.expect(
        isinstance(exc, BrokenPipeError),
        f"connection_lost({exc!r}), expected a BrokenPipeError",
    )


@scenario(
    PIPES,
    "write pipe: write() after close() is ignored, not an error",
    requires=["pipes"],
)
async def write_pipe_write_after_close(env: Env) -> None:
    read_end, write_end, _ = env.pipe()
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, write_end)
    transport.write(b"kept")
    transport.close()
    transport.write(b"ignored")
    await protocol.wait_lost()
    env.expect_equal("reader got", await env.read_from(read_end), b"kept")
    env.expect_equal("exception handler calls", env.error_messages(), [])


@scenario(
    PIPES,
    "connect_write_pipe() of a regular file raises ValueError('Pipe transport is only "
    "for pipes, sockets and character devices')",
    requires=["pipes"],
)
async def write_pipe_rejects_regular_file(env: Env) -> None:
    with open(env.temp_path("regular"), "w+b") as file:
        await env.expect_raises_async(
            ValueError,
            "Pipe transport is only for pipes, sockets and character devices",
            env.loop.connect_write_pipe(env.protocol, file),
            "connect_write_pipe()",
        )


@scenario(PIPES, "connect_write_pipe() writes to a socket", requires=["pipes"])
async def write_pipe_socket(env: Env) -> None:
    local, remote = socket.socketpair()
    env.track(local)
    env.track(remote)
    remote.settimeout(2.0)
    transport, protocol = await env.loop.connect_write_pipe(env.protocol, local)
    transport.write(b"via socket")
    env.expect_equal("peer got", await env.to_thread(remote.recv, 100), b"via socket")
    transport.close()
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
