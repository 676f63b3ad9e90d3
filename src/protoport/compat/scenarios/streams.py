"""Streams: the stream functions — open_connection(), start_server() with a plain
callback and with a coroutine callback, the two together, and their Unix twins;
always those of the implementation under test (``env.streams``)."""

from __future__ import annotations

from typing import Any

from .. import sections
from .._env import Env
from .._registry import scenario

FUNCTIONS = sections.STREAM_FUNCTIONS


async def start_tcp_server(env: Env, callback: Any, **kwargs: Any) -> Any:
    """``start_server(callback, '127.0.0.1', 0)`` of the implementation; closed
    after the scenario."""
    env.require("streams", "tcp")
    server = await env.streams.start_server(callback, "127.0.0.1", 0, **kwargs)
    return env.track_server(server)


def address_of(server: Any) -> Any:
    return server.sockets[0].getsockname()


@scenario(
    FUNCTIONS,
    "open_connection(host, port) returns a (StreamReader, StreamWriter) pair "
    "connected to the address",
    requires=("streams", "tcp"),
)
async def open_connection_returns_pair(env: Env) -> None:
    stream = await env.open_stream(family="tcp", via="address")
    env.expect(
        isinstance(stream.reader, env.streams.StreamReader),
        f"the reader is a {type(stream.reader).__name__}",
    )
    env.expect(
        isinstance(stream.writer, env.streams.StreamWriter),
        f"the writer is a {type(stream.writer).__name__}",
    )
    stream.writer.write(b"ping\n")
    env.expect_equal("peer received", await stream.peer.recv_exactly(5), b"ping\n")
    await stream.peer.send(b"pong\n")
    env.expect_equal("readline()", await stream.reader.readline(), b"pong\n")


@scenario(
    FUNCTIONS,
    "open_connection(limit=) is the reader's limit: a longer line makes "
    "readline() raise ValueError",
    requires=("streams",),
)
async def open_connection_limit(env: Env) -> None:
    stream = await env.open_stream(limit=10)
    await stream.peer.send(b"0123456789\n" + b"x" * 11 + b"\nok\n")
    env.expect_equal(
        "readline() of 10 bytes and b'\\n'",
        await stream.reader.readline(),
        b"0123456789\n",
    )
    await env.expect_raises_async(
        ValueError,
        "Separator is found, but chunk is longer than limit",
        stream.reader.readline(),
    )
    env.expect_equal("the next readline()", await stream.reader.readline(), b"ok\n")


@scenario(
    FUNCTIONS,
    "start_server() with a plain function: it is called with (StreamReader, "
    "StreamWriter) for each connection",
    requires=("streams", "tcp"),
)
async def start_server_plain_callback(env: Env) -> None:
    clients: list[tuple[Any, Any]] = []

    def on_client(reader: Any, writer: Any) -> None:
        env.track_transport(writer.transport)
        clients.append((reader, writer))
        writer.write(b"welcome\n")

    server = await start_tcp_server(env, on_client)
    peer = await env.connect_peer(address_of(server))
    env.expect_equal("peer received", await peer.recv_exactly(8), b"welcome\n")
    env.expect_equal("callback calls", len(clients), 1)
    reader, writer = clients[0]
    env.expect(
        isinstance(reader, env.streams.StreamReader),
        f"the callback got a {type(reader).__name__} as reader",
    )
    env.expect(
        isinstance(writer, env.streams.StreamWriter),
        f"the callback got a {type(writer).__name__} as writer",
    )
    await peer.send(b"hello\n")
    env.expect_equal("the client's readline()", await reader.readline(), b"hello\n")


@scenario(
    FUNCTIONS,
    "start_server() with a coroutine function: it runs as a task for each connection",
    requires=("streams", "tcp"),
)
async def start_server_coroutine_callback(env: Env) -> None:
    async def echo_upper(reader: Any, writer: Any) -> None:
        env.track_transport(writer.transport)
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await start_tcp_server(env, echo_upper)
    peers = [await env.connect_peer(address_of(server)) for _ in range(2)]
    await peers[1].send(b"second\n")
    await peers[0].send(b"first\n")
    env.expect_equal("peer 2 received", await peers[1].recv_until_eof(), b"SECOND\n")
    env.expect_equal("peer 1 received", await peers[0].recv_until_eof(), b"FIRST\n")


@scenario(
    FUNCTIONS,
    "an exception in a coroutine callback goes to the exception handler ("
    "'Unhandled exception in client_connected_cb') and closes the connection",
    requires=("streams", "tcp"),
    since=(3, 11),
)
async def coroutine_callback_error(env: Env) -> None:
    async def failing(reader: Any, writer: Any) -> None:
        env.track_transport(writer.transport)
        await reader.readline()
        raise RuntimeError("handler failed")

    server = await start_tcp_server(env, failing)
    peer = await env.connect_peer(address_of(server))
    await peer.send(b"go\n")
    env.expect_equal("peer received", await peer.recv_until_eof(), b"")
    await env.wait_until(lambda: env.errors, "the exception handler")
    env.expect_equal(
        "exception handler",
        env.error_messages(),
        ["Unhandled exception in client_connected_cb"],
    )
    exc = env.errors[0].get("exception")
    env.expect(
        isinstance(exc, RuntimeError) and str(exc) == "handler failed",
        f"the context's exception is {exc!r}",
    )


@scenario(
    FUNCTIONS,
    "open_connection() to a start_server() of the same loop: both pairs talk, "
    "the end of the stream goes both ways",
    requires=("streams", "tcp"),
)
async def open_connection_to_start_server(env: Env) -> None:
    async def echo(reader: Any, writer: Any) -> None:
        env.track_transport(writer.transport)
        async for line in reader:
            writer.write(b"echo: " + line)
            await writer.drain()
        writer.close()

    server = await start_tcp_server(env, echo)
    host, port = address_of(server)
    reader, writer = await env.streams.open_connection(host, port)
    env.track_transport(writer.transport)
    writer.write(b"one\ntwo\n")
    env.expect_equal("first line", await reader.readline(), b"echo: one\n")
    env.expect_equal("second line", await reader.readline(), b"echo: two\n")
    writer.write_eof()
    env.expect_equal("after write_eof()", await reader.read(), b"")
    writer.close()
    await writer.wait_closed()


@scenario(
    FUNCTIONS,
    "open_unix_connection() to a start_unix_server() of the same loop",
    requires=("streams", "unix"),
)
async def unix_stream_functions(env: Env) -> None:
    env.require("streams", "unix")
    path = env.temp_path("streams.sock")

    async def greet(reader: Any, writer: Any) -> None:
        env.track_transport(writer.transport)
        name = await reader.readline()
        writer.write(b"hello " + name)
        writer.close()

    server = env.track_server(await env.streams.start_unix_server(greet, path))
    reader, writer = await env.streams.open_unix_connection(path)
    env.track_transport(writer.transport)
    env.expect_equal("'peername'", writer.get_extra_info("peername"), path)
    writer.write(b"unix\n")
    env.expect_equal("reply", await reader.read(), b"hello unix\n")
    writer.close()
    server.close()
