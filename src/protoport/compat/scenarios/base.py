"""Transports: Transports Hierarchy and Base Transport: close(), is_closing(),
get_extra_info(), set_protocol()/get_protocol()."""

from __future__ import annotations

import asyncio
import socket

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._recording import RecordingProtocol
from .._registry import scenario

HIERARCHY = sections.TRANSPORTS_HIERARCHY
BASE = sections.BASE_TRANSPORT


@scenario(
    HIERARCHY,
    "create_connection() returns an asyncio.Transport (Read-, Write- and "
    "BaseTransport)",
)
async def transport_is_asyncio_transport(env: Env) -> None:
    conn = await env.connect()
    for cls in (
        asyncio.Transport,
        asyncio.ReadTransport,
        asyncio.WriteTransport,
        asyncio.BaseTransport,
    ):
        env.expect(
            isinstance(conn.transport, cls),
            f"{type(conn.transport).__name__} is not an asyncio.{cls.__name__}",
        )


# -- close() ----------------------------------------------------------------------


@scenario(
    BASE,
    "close(): buffered data is flushed, then connection_lost(None) is called",
)
async def close_flushes_then_connection_lost(env: Env) -> None:
    conn = await env.connect(fill=True)
    data = pattern(100_000)
    conn.transport.write(data)
    conn.transport.close()
    await env.settle()
    env.expect(
        not conn.protocol.lost,
        "connection_lost() was called before the buffered data was sent",
    )
    received = await conn.peer.recv_until_eof()
    env.expect_equal("bytes the peer received", len(received), len(data))
    env.expect(received == data, "the peer received other bytes than were written")
    env.expect_equal(
        "connection_lost() argument", await conn.protocol.wait_lost(), None
    )
    env.expect_equal(
        "callbacks",
        conn.protocol.summary(),
        ["made", "pause", "resume", ("lost", None)],
    )


@scenario(BASE, "close(): no more data will be received")
async def close_stops_receiving(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(b"pending")  # keeps the transport open after close()
    conn.transport.close()
    await conn.peer.send(b"too late")
    await env.settle()
    await conn.peer.recv_until_eof()
    await conn.protocol.wait_lost()
    env.expect_equal(
        "callbacks", conn.protocol.names(), ["connection_made", "connection_lost"]
    )


@scenario(BASE, "close() is idempotent: connection_lost() is called once")
async def close_is_idempotent(env: Env) -> None:
    conn = await env.connect()
    conn.transport.close()
    conn.transport.close()
    await conn.protocol.wait_lost()
    conn.transport.close()
    await env.settle()
    env.expect_equal(
        "connection_lost() calls", conn.protocol.count("connection_lost"), 1
    )


@scenario(BASE, "close(): the peer sees the end of the stream")
async def close_sends_eof(env: Env) -> None:
    conn = await env.connect(family="tcp")
    conn.transport.write(b"bye")
    conn.transport.close()
    env.expect_equal("peer received", await conn.peer.recv_until_eof(), b"bye")
    env.expect(not conn.peer.reset, "the peer saw a reset, not the end of the stream")


@scenario(BASE, "is_closing() is False while the transport is open")
async def is_closing_false_when_open(env: Env) -> None:
    conn = await env.connect()
    env.expect_equal("is_closing()", conn.transport.is_closing(), False)
    await conn.peer.send(b"x")
    await conn.protocol.wait_for_data(1)
    env.expect_equal("is_closing() after data", conn.transport.is_closing(), False)


@scenario(
    BASE, "is_closing() is True from close() on, and after the connection is lost"
)
async def is_closing_after_close(env: Env) -> None:
    conn = await env.connect()
    conn.transport.close()
    env.expect_equal(
        "is_closing() right after close()", conn.transport.is_closing(), True
    )
    await conn.protocol.wait_lost()
    env.expect_equal(
        "is_closing() after connection_lost()", conn.transport.is_closing(), True
    )


@scenario(BASE, "is_closing() is True after the peer closed the connection")
async def is_closing_after_peer_close(env: Env) -> None:
    conn = await env.connect()
    await conn.peer.close()
    await conn.protocol.wait_lost()
    env.expect_equal("is_closing()", conn.transport.is_closing(), True)


# -- get_extra_info() -------------------------------------------------------------


@scenario(BASE, "get_extra_info('socket') is the transport's socket")
async def extra_info_socket(env: Env) -> None:
    conn = await env.connect(family="tcp")
    sock = conn.transport.get_extra_info("socket")
    env.expect(sock is not None, "get_extra_info('socket') returned None")
    env.expect_equal("socket family", sock.family, socket.AF_INET)
    env.expect_equal("socket type", sock.type, socket.SOCK_STREAM)
    env.expect_equal(
        "socket's getpeername()", sock.getpeername(), conn.peer.sock.getsockname()
    )


@scenario(
    BASE,
    "get_extra_info('peername') is the remote address (socket.getpeername())",
)
async def extra_info_peername(env: Env) -> None:
    conn = await env.connect(family="tcp")
    env.expect_equal(
        "peername",
        conn.transport.get_extra_info("peername"),
        conn.peer.sock.getsockname(),
    )


@scenario(
    BASE,
    "get_extra_info('sockname') is the socket's own address (socket.getsockname())",
)
async def extra_info_sockname(env: Env) -> None:
    conn = await env.connect(family="tcp")
    env.expect_equal(
        "sockname",
        conn.transport.get_extra_info("sockname"),
        conn.peer.sock.getpeername(),
    )


@scenario(
    BASE,
    "get_extra_info() on a Unix socket: 'sockname' and 'peername' as the socket "
    "returns them",
)
async def extra_info_unix_addresses(env: Env) -> None:
    conn = await env.connect(family="unix")
    env.expect_equal(
        "sockname",
        conn.transport.get_extra_info("sockname"),
        conn.peer.sock.getpeername(),
    )
    env.expect_equal(
        "peername",
        conn.transport.get_extra_info("peername"),
        conn.peer.sock.getsockname(),
    )


@scenario(BASE, "get_extra_info(name, default) returns default for unknown names")
async def extra_info_default(env: Env) -> None:
    conn = await env.connect()
    env.expect_equal(
        "get_extra_info('no such key')",
        conn.transport.get_extra_info("no such key"),
        None,
    )
    marker = object()
    env.expect(
        conn.transport.get_extra_info("no such key", marker) is marker,
        "get_extra_info('no such key', default) did not return default",
    )


@scenario(
    BASE,
    "get_extra_info('peername') stays readable after the connection is closed",
)
async def extra_info_after_close(env: Env) -> None:
    conn = await env.connect(family="tcp")
    expected = conn.peer.sock.getsockname()
    conn.transport.close()
    await conn.protocol.wait_lost()
    env.expect_equal(
        "peername after connection_lost()",
        conn.transport.get_extra_info("peername"),
        expected,
    )


# -- get_protocol() / set_protocol() ----------------------------------------------


@scenario(BASE, "get_protocol() returns the current protocol")
async def get_protocol_returns_protocol(env: Env) -> None:
    conn = await env.connect()
    env.expect(
        conn.transport.get_protocol() is conn.protocol,
        "get_protocol() is not the protocol the factory made",
    )
    other = RecordingProtocol(env, "other")
    conn.transport.set_protocol(other)
    env.expect(
        conn.transport.get_protocol() is other,
        "get_protocol() is not the protocol given to set_protocol()",
    )


@scenario(
    BASE, "set_protocol(): data, EOF and connection_lost() go to the new protocol"
)
async def set_protocol_switches_callbacks(env: Env) -> None:
    conn = await env.connect()
    await conn.peer.send(b"first")
    await conn.protocol.wait_for_data(5)
    other = RecordingProtocol(env, "other")
    conn.transport.set_protocol(other)
    await conn.peer.send(b"second")
    await conn.peer.shutdown_write()
    await other.wait_lost()
    env.expect_equal(
        "old protocol", conn.protocol.summary(), ["made", ("data", b"first")]
    )
    env.expect_equal(
        "new protocol", other.summary(), [("data", b"second"), "eof", ("lost", None)]
    )


@scenario(BASE, "set_protocol(): pause_writing() goes to the new protocol")
async def set_protocol_flow_control(env: Env) -> None:
    conn = await env.connect(fill=True)
    other = RecordingProtocol(env, "other")
    conn.transport.set_protocol(other)
    conn.transport.set_write_buffer_limits(high=100)
    conn.transport.write(pattern(200))
    env.expect_equal("old protocol", conn.protocol.summary(), ["made"])
    env.expect_equal("new protocol", other.summary(), ["pause"])
    await conn.peer.recv_exactly(200)
    await other.wait_for("resume_writing")
