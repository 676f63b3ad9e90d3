"""Transports: Write-only Transports: write(), writelines(), write_eof(),
can_write_eof(), abort(), get_write_buffer_size(), and their error messages."""

from __future__ import annotations

from .. import sections
from .._env import Env
from .._failures import Unsupported
from .._pattern import pattern
from .._registry import scenario

WRITE = sections.WRITE_TRANSPORTS


# -- write() ------------------------------------------------------------------------


@scenario(WRITE, "write(data) sends the bytes to the peer, in order")
async def write_sends_bytes(env: Env) -> None:
    conn = await env.connect(family="tcp")
    conn.transport.write(b"hello, ")
    conn.transport.write(b"world")
    env.expect_equal("peer received", await conn.peer.recv_exactly(12), b"hello, world")


@scenario(WRITE, "write() accepts bytes-like objects: bytearray and memoryview")
async def write_accepts_bytes_like(env: Env) -> None:
    conn = await env.connect()
    conn.transport.write(bytearray(b"array "))
    conn.transport.write(memoryview(b"view "))
    conn.transport.write(memoryview(b"..slice..")[2:7])
    env.expect_equal(
        "peer received", await conn.peer.recv_exactly(16), b"array view slice"
    )


@scenario(
    WRITE,
    "write() does not block: what the socket cannot take is buffered "
    "(get_write_buffer_size())",
)
async def write_does_not_block(env: Env) -> None:
    conn = await env.connect(fill=True)
    data = pattern(1_000_000)
    conn.transport.write(data)
    env.expect_equal(
        "get_write_buffer_size()", conn.transport.get_write_buffer_size(), len(data)
    )
    received = await conn.peer.recv_exactly(len(data))
    env.expect(received == data, "the peer received other bytes than were written")
    await env.wait_until(
        lambda: conn.transport.get_write_buffer_size() == 0,
        "get_write_buffer_size() to drop to 0",
    )


@scenario(
    WRITE,
    "write() of a bytearray that is then modified sends the bytes given to write()",
    reference_deviation=(
        "CPython 3.13 keeps a reference to the bytearray when the socket cannot "
        "take it at once, and sends its later contents"
    ),
)
async def write_copies_mutable_buffer(env: Env) -> None:
    conn = await env.connect(fill=True)
    buffer = bytearray(b"original")
    conn.transport.write(buffer)
    buffer[:] = b"modified"
    env.expect_equal("peer received", await conn.peer.recv_exactly(8), b"original")


@scenario(
    WRITE,
    "write(str) raises TypeError('data argument must be a bytes-like object, "
    "not 'str'')",
)
async def write_type_error(env: Env) -> None:
    conn = await env.connect()
    env.expect_raises(
        TypeError,
        "data argument must be a bytes-like object, not 'str'",
        conn.transport.write,
        "text",
    )
    env.expect_raises(
        TypeError,
        "data argument must be a bytes-like object, not 'int'",
        conn.transport.write,
        42,
    )


@scenario(WRITE, "write(b'') does nothing")
async def write_empty(env: Env) -> None:
    conn = await env.connect()
    conn.transport.write(b"")
    env.expect_equal(
        "get_write_buffer_size()", conn.transport.get_write_buffer_size(), 0
    )
    conn.transport.write_eof()
    env.expect_equal("peer received", await conn.peer.recv_until_eof(), b"")


@scenario(
    WRITE,
    "write() after write_eof() raises RuntimeError('Cannot call write() after "
    "write_eof()'), even for b''",
)
async def write_after_write_eof(env: Env) -> None:
    conn = await env.connect()
    conn.transport.write_eof()
    message = "Cannot call write() after write_eof()"
    env.expect_raises(RuntimeError, message, conn.transport.write, b"more")
    env.expect_raises(RuntimeError, message, conn.transport.write, b"")


@scenario(
    WRITE,
    "write() after close(), while buffered bytes are still being sent: the bytes "
    "are sent too",
)
async def write_after_close_while_flushing(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(b"before ")
    conn.transport.close()
    conn.transport.write(b"after")
    env.expect_equal("peer received", await conn.peer.recv_until_eof(), b"before after")


@scenario(
    WRITE,
    "write() after close() with nothing buffered: the bytes are dropped, no exception",
)
async def write_after_close_dropped(env: Env) -> None:
    conn = await env.connect()
    conn.transport.close()
    conn.transport.write(b"dropped")
    env.expect_equal("peer received", await conn.peer.recv_until_eof(), b"")
    await conn.protocol.wait_lost()


@scenario(
    WRITE,
    "write() after the connection was lost drops the bytes without raising",
    reference_deviation=(
        "CPython 3.13 raises AttributeError when the transport was closed with "
        "bytes still buffered"
    ),
)
async def write_after_lost_does_not_raise(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(b"pending")
    conn.transport.close()
    await conn.peer.recv_until_eof()
    await conn.protocol.wait_lost()
    try:
        conn.transport.write(b"dropped")
    except Exception as exc:
        env.fail(f"write() raised {type(exc).__name__}: {exc}")
    await env.settle()
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("lost", None)])
    env.expect_equal("exception handler calls", env.error_messages(), [])


@scenario(
    WRITE,
    "writes after the connection is lost: from the 5th on, each logs the warning "
    "'socket.send() raised exception.'",
)
async def writes_after_lost_warn(env: Env) -> None:
    conn = await env.connect()
    conn.transport.close()
    await conn.protocol.wait_lost()
    for _ in range(7):
        conn.transport.write(b"x")
    env.expect_equal(
        "warnings", env.warnings(), ["socket.send() raised exception."] * 3
    )


@scenario(
    WRITE,
    "write() and writelines() while loop.sendfile() runs on the transport raise "
    "RuntimeError('unable to write; sendfile is in progress')",
)
async def write_during_sendfile(env: Env) -> None:
    conn = await env.connect(fill=True)
    data = pattern(200_000)
    path = env.temp_path("payload")
    with open(path, "wb") as file:
        file.write(data)
    with open(path, "rb") as file:
        task = env.loop.create_task(env.loop.sendfile(conn.transport, file))
        # sendfile() pauses reading before it starts sending.
        await env.wait_until(
            lambda: task.done() or not conn.transport.is_reading(),
            "sendfile() to start",
        )
        if task.done():
            try:
                task.result()
            except NotImplementedError:
                raise Unsupported("loop.sendfile() is not implemented") from None
        env.expect_raises(
            RuntimeError,
            "unable to write; sendfile is in progress",
            conn.transport.write,
            b"x",
        )
        env.expect_raises(
            RuntimeError,
            "unable to writelines; sendfile is in progress",
            conn.transport.writelines,
            [b"x"],
        )
        received = await conn.peer.recv_exactly(len(data))
        sent = await task
    env.expect_equal("sendfile() result", sent, len(data))
    env.expect(received == data, "the peer received other bytes than the file's")


# -- writelines() -------------------------------------------------------------------


@scenario(WRITE, "writelines(list) sends the items in order (bytes-like items)")
async def writelines_sends_items(env: Env) -> None:
    conn = await env.connect()
    conn.transport.writelines([b"one ", bytearray(b"two "), memoryview(b"three")])
    env.expect_equal(
        "peer received", await conn.peer.recv_exactly(13), b"one two three"
    )


@scenario(WRITE, "writelines() accepts any iterable, e.g. a generator")
async def writelines_iterable(env: Env) -> None:
    conn = await env.connect()
    conn.transport.writelines(bytes([65 + i]) * 2 for i in range(3))
    env.expect_equal("peer received", await conn.peer.recv_exactly(6), b"AABBCC")


@scenario(WRITE, "writelines() buffers what the socket cannot take, like write()")
async def writelines_buffers(env: Env) -> None:
    conn = await env.connect(fill=True)
    parts = [pattern(1000, seed) for seed in range(5)]
    conn.transport.writelines(parts)
    env.expect_equal(
        "get_write_buffer_size()", conn.transport.get_write_buffer_size(), 5000
    )
    received = await conn.peer.recv_exactly(5000)
    env.expect(received == b"".join(parts), "the peer received other bytes")


@scenario(WRITE, "writelines() with an item that is not bytes-like raises TypeError")
async def writelines_type_error(env: Env) -> None:
    conn = await env.connect()
    env.expect_raises(TypeError, None, conn.transport.writelines, ["text"])


@scenario(
    WRITE,
    "writelines() after write_eof() raises RuntimeError('Cannot call writelines() "
    "after write_eof()')",
)
async def writelines_after_write_eof(env: Env) -> None:
    conn = await env.connect()
    conn.transport.write_eof()
    env.expect_raises(
        RuntimeError,
        "Cannot call writelines() after write_eof()",
        conn.transport.writelines,
        [b"more"],
    )


@scenario(
    WRITE,
    "writelines() after the connection was lost drops the bytes like write()",
    reference_deviation=(
        "CPython 3.13 raises TypeError (\"'NoneType' object is not callable\") "
        "from writelines() once the connection is lost"
    ),
)
async def writelines_after_lost(env: Env) -> None:
    conn = await env.connect()
    conn.transport.close()
    await conn.protocol.wait_lost()
    try:
        conn.transport.writelines([b"dropped"])
    except Exception as exc:
        env.fail(f"writelines() raised {type(exc).__name__}: {exc}")


@scenario(
    WRITE,
    "writelines() after abort() drops the bytes: nothing is buffered and the next "
    "connection on the same descriptor works",
    reference_deviation=(
        "CPython 3.13 buffers the bytes and leaves a writer registered for the "
        "aborted socket's descriptor; the next transport given that descriptor "
        "number cannot register its reader and never receives data"
    ),
)
async def writelines_after_abort(env: Env) -> None:
    conn = await env.connect()
    conn.transport.abort()
    conn.transport.writelines([b"dropped"])
    env.expect_equal(
        "get_write_buffer_size()", conn.transport.get_write_buffer_size(), 0
    )
    await conn.protocol.wait_lost()
    await env.settle()
    again = await env.connect()
    await again.peer.send(b"still works")
    env.expect_equal(
        "data received by the next connection",
        await again.protocol.wait_for_data(11),
        b"still works",
    )


# -- write_eof() / can_write_eof() ----------------------------------------------------


@scenario(WRITE, "can_write_eof() is True for a TCP transport")
async def can_write_eof(env: Env) -> None:
    conn = await env.connect(family="tcp")
    env.expect_equal("can_write_eof()", conn.transport.can_write_eof(), True)


@scenario(
    WRITE,
    "write_eof() closes the write end after flushing buffered data",
)
async def write_eof_flushes_first(env: Env) -> None:
    conn = await env.connect(fill=True)
    data = pattern(50_000)
    conn.transport.write(data)
    conn.transport.write_eof()
    received = await conn.peer.recv_until_eof()
    env.expect_equal("bytes before the end of the stream", len(received), len(data))
    env.expect(received == data, "the peer received other bytes")


@scenario(WRITE, "write_eof(): data may still be received (half-close)")
async def write_eof_half_close(env: Env) -> None:
    conn = await env.connect(family="tcp")
    conn.transport.write(b"request")
    conn.transport.write_eof()
    env.expect_equal("peer received", await conn.peer.recv_until_eof(), b"request")
    await conn.peer.send(b"response")
    await conn.protocol.wait_for_data(8)
    env.expect_equal("is_closing()", conn.transport.is_closing(), False)
    env.expect_equal(
        "callbacks", conn.protocol.summary(), ["made", ("data", b"response")]
    )


@scenario(WRITE, "write_eof() twice, or after close(), does nothing")
async def write_eof_idempotent(env: Env) -> None:
    conn = await env.connect()
    conn.transport.write_eof()
    conn.transport.write_eof()
    env.expect_equal("peer received", await conn.peer.recv_until_eof(), b"")
    conn.transport.close()
    conn.transport.write_eof()
    await conn.protocol.wait_lost()
    conn.transport.write_eof()
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("lost", None)])


# -- abort() ------------------------------------------------------------------------


@scenario(WRITE, "abort(): buffered data is lost")
async def abort_drops_buffer(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(pattern(50_000))
    conn.transport.abort()
    await conn.protocol.wait_lost()
    env.expect_equal("peer received", len(await conn.peer.recv_until_eof()), 0)


@scenario(
    WRITE,
    "abort(): connection_lost(None) is called soon, once; is_closing() is True at once",
)
async def abort_calls_connection_lost(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(pattern(50_000))
    conn.transport.abort()
    env.expect_equal(
        "is_closing() right after abort()", conn.transport.is_closing(), True
    )
    env.expect_equal(
        "connection_lost() argument", await conn.protocol.wait_lost(), None
    )
    conn.transport.abort()
    await env.settle()
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("lost", None)])


@scenario(WRITE, "abort() empties the write buffer (get_write_buffer_size() is 0)")
async def abort_empties_buffer(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(pattern(5000))
    conn.transport.abort()
    env.expect_equal(
        "get_write_buffer_size() after abort()",
        conn.transport.get_write_buffer_size(),
        0,
    )


@scenario(WRITE, "abort() after close() drops the data close() was flushing")
async def abort_after_close(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(pattern(5000))
    conn.transport.close()
    conn.transport.abort()
    await conn.protocol.wait_lost()
    env.expect_equal("peer received", len(await conn.peer.recv_until_eof()), 0)
    await env.settle()
    env.expect_equal(
        "connection_lost() calls", conn.protocol.count("connection_lost"), 1
    )


@scenario(
    WRITE,
    "abort() after the connection was lost does nothing",
    reference_deviation=(
        "CPython 3.13 raises AttributeError from abort() when the transport was "
        "closed with bytes still buffered"
    ),
)
async def abort_after_lost(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(b"pending")
    conn.transport.close()
    await conn.peer.recv_until_eof()
    await conn.protocol.wait_lost()
    try:
        conn.transport.abort()
    except Exception as exc:
        env.fail(f"abort() raised {type(exc).__name__}: {exc}")
    await env.settle()
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("lost", None)])


@scenario(WRITE, "abort(): no more data will be received")
async def abort_stops_receiving(env: Env) -> None:
    conn = await env.connect(family="tcp")
    conn.transport.abort()
    try:
        await conn.peer.send(b"too late")
    except OSError:
        pass
    await conn.protocol.wait_lost()
    await env.settle()
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("lost", None)])


@scenario(WRITE, "get_write_buffer_size() counts the bytes accepted and not yet sent")
async def write_buffer_size_counts(env: Env) -> None:
    conn = await env.connect(fill=True)
    env.expect_equal(
        "get_write_buffer_size() at first", conn.transport.get_write_buffer_size(), 0
    )
    conn.transport.write(b"x" * 3000)
    conn.transport.write(b"y" * 17)
    env.expect_equal(
        "get_write_buffer_size()", conn.transport.get_write_buffer_size(), 3017
    )
    await conn.peer.recv_exactly(3017)
    await env.wait_until(
        lambda: conn.transport.get_write_buffer_size() == 0,
        "get_write_buffer_size() to drop to 0",
    )
