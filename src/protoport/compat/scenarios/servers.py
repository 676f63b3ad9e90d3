"""Event loop: Server Objects — close() and wait_closed() with connections still
open, close_clients(), abort_clients(), serve_forever() and its errors,
start_serving()/is_serving(), sockets, ``async with``, get_loop().

The servers listen on loopback TCP; the clients are deterministic peers
(``env.connect_peer()``), and the server's connections are recorded by
:class:`RecordingProtocol` instances kept in a list.
"""

from __future__ import annotations

import socket
from typing import Any

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._recording import RecordingProtocol
from .._registry import scenario

SERVERS = sections.SERVER_OBJECTS


class Recorded:
    """A protocol factory that keeps the protocols it made."""

    def __init__(self, env: Env, factory: Any = None) -> None:
        self.env = env
        self.factory = factory
        self.protocols: list[RecordingProtocol] = []

    def __call__(self) -> RecordingProtocol:
        name = f"server protocol {len(self.protocols) + 1}"
        if self.factory is None:
            protocol = RecordingProtocol(self.env, name)
        else:
            protocol = self.factory(self.env, name)
        self.protocols.append(protocol)
        return protocol

    async def wait_made(self, count: int) -> list[RecordingProtocol]:
        await self.env.wait_until(
            lambda: sum(p.made for p in self.protocols) >= count,
            f"{count} server connection(s)",
        )
        return self.protocols


async def tcp_server(env: Env, factory: Any, **kwargs: Any) -> Any:
    """``loop.create_server(factory, '127.0.0.1', 0)``, closed after the
    scenario."""
    env.require("tcp")
    server = await env.loop.create_server(factory, "127.0.0.1", 0, **kwargs)
    return env.track_server(server)


def address_of(server: Any) -> Any:
    return server.sockets[0].getsockname()


async def expect_refused(env: Env, address: Any, what: str) -> None:
    """Fail unless connecting to *address* is refused."""
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.settimeout(2)
    try:
        await env.to_thread(sock.connect, address)
    except ConnectionRefusedError:
        return
    except OSError as exc:
        env.fail(f"{what}: connecting raised {exc!r}, not ConnectionRefusedError")
    env.fail(f"{what}: a new connection was accepted")


def expect_runtime_error(env: Env, exc: BaseException, ending: str) -> None:
    """*exc*'s message is ``'server <repr> <ending>'``."""
    message = str(exc)
    env.expect(
        message.startswith("server ") and message.endswith(ending),
        f"RuntimeError message {message[:40]!r}… does not read 'server <server> "
        f"{ending}'",
    )


@scenario(
    SERVERS,
    "close() stops listening (new connections are refused) and leaves the "
    "accepted connections open",
    requires=("tcp",),
)
async def close_keeps_clients(env: Env) -> None:
    recorded = Recorded(env)
    server = await tcp_server(env, recorded)
    address = address_of(server)
    peer = await env.connect_peer(address)
    (protocol,) = await recorded.wait_made(1)
    server.close()
    env.expect_equal("is_serving() after close()", server.is_serving(), False)
    await expect_refused(env, address, "after close()")
    await peer.send(b"still here")
    await protocol.wait_for_data(10)
    protocol.transport.write(b"yes")
    env.expect_equal("peer received", await peer.recv_exactly(3), b"yes")
    env.expect_equal(
        "server connection callbacks",
        protocol.summary(),
        ["made", ("data", b"still here")],
    )


@scenario(
    SERVERS,
    "wait_closed() returns only once the server is closed and every accepted "
    "connection is gone",
    requires=("tcp",),
    since=(3, 12),
)
async def wait_closed_waits_for_clients(env: Env) -> None:
    recorded = Recorded(env)
    server = await tcp_server(env, recorded)
    await env.connect_peer(address_of(server))
    await env.connect_peer(address_of(server))
    first, second = await recorded.wait_made(2)
    task = env.loop.create_task(server.wait_closed())
    await env.settle()
    env.expect(not task.done(), "wait_closed() returned while the server was open")
    server.close()
    first.transport.close()
    await first.wait_lost()
    await env.settle()
    env.expect(
        not task.done(), "wait_closed() returned while a connection was still open"
    )
    second.transport.close()
    await env.wait_done(task, "wait_closed() after the last connection closed")


@scenario(
    SERVERS,
    "wait_closed() on a closed server without connections returns at once",
    requires=("tcp",),
)
async def wait_closed_without_clients(env: Env) -> None:
    server = await tcp_server(env, env.protocol)
    server.close()
    await env.wait_done(
        env.loop.create_task(server.wait_closed()), "wait_closed() to return"
    )


async def _clients_with_buffered_data(
    env: Env, size: int
) -> tuple[Any, Any, list[RecordingProtocol]]:
    """A server whose accepted connection has *size* bytes written, most of them
    still in the transport's buffer (small kernel buffers, a peer not reading)."""
    listener = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    recorded = Recorded(env)
    server = env.track_server(await env.loop.create_server(recorded, sock=listener))
    client = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(2)
    await env.to_thread(client.connect, listener.getsockname())
    peer = env.peer(client)
    (protocol,) = await recorded.wait_made(1)
    protocol.transport.write(pattern(size))
    env.expect(
        protocol.transport.get_write_buffer_size() > 0,
        "the server connection's buffer is empty: the kernel took everything",
    )
    return server, peer, recorded.protocols


@scenario(
    SERVERS,
    "close_clients() closes every accepted connection: buffered data is sent, "
    "then connection_lost(None)",
    requires=("tcp",),
    since=(3, 13),
)
async def close_clients(env: Env) -> None:
    size = 300_000
    server, peer, (protocol,) = await _clients_with_buffered_data(env, size)
    server.close_clients()
    env.expect_equal("is_closing()", protocol.transport.is_closing(), True)
    received = await peer.recv_until_eof()
    env.expect_equal("bytes the peer received", len(received), size)
    env.expect_equal("connection_lost()", await protocol.wait_lost(), None)
    env.expect_equal("is_serving()", server.is_serving(), True)


@scenario(
    SERVERS,
    "abort_clients() aborts every accepted connection: buffered data is dropped, "
    "connection_lost(None)",
    requires=("tcp",),
    since=(3, 13),
)
async def abort_clients(env: Env) -> None:
    size = 300_000
    server, peer, (protocol,) = await _clients_with_buffered_data(env, size)
    server.abort_clients()
    env.expect_equal("is_closing()", protocol.transport.is_closing(), True)
    env.expect_equal("connection_lost()", await protocol.wait_lost(), None)
    received = await peer.recv_until_eof()
    env.expect(
        len(received) < size,
        f"the peer received all {size} bytes: the buffer was not dropped",
    )
    env.expect_equal("is_serving()", server.is_serving(), True)


@scenario(
    SERVERS,
    "serve_forever() while another serve_forever() runs: RuntimeError('server "
    "<server> is already being awaited on serve_forever()')",
    requires=("tcp",),
)
async def serve_forever_twice(env: Env) -> None:
    server = await tcp_server(env, env.protocol)
    task = env.loop.create_task(server.serve_forever())
    await env.settle()
    env.expect(not task.done(), "serve_forever() returned")
    exc = await env.expect_raises_async(
        RuntimeError, None, server.serve_forever(), "the second serve_forever()"
    )
    expect_runtime_error(env, exc, " is already being awaited on serve_forever()")
    task.cancel()
    await env.wait_until(task.done, "serve_forever() to end")


@scenario(
    SERVERS,
    "serve_forever() on a closed server: RuntimeError('server <server> is closed')",
    requires=("tcp",),
)
async def serve_forever_closed(env: Env) -> None:
    server = await tcp_server(env, env.protocol)
    server.close()
    exc = await env.expect_raises_async(
        RuntimeError, None, server.serve_forever(), "serve_forever()"
    )
    expect_runtime_error(env, exc, " is closed")


@scenario(
    SERVERS,
    "cancelling the serve_forever() task closes the server; the task ends cancelled",
    requires=("tcp",),
)
async def serve_forever_cancel_closes(env: Env) -> None:
    server = await tcp_server(env, env.protocol)
    address = address_of(server)
    task = env.loop.create_task(server.serve_forever())
    await env.settle()
    env.expect_equal("is_serving() in serve_forever()", server.is_serving(), True)
    task.cancel()
    await env.wait_until(task.done, "serve_forever() to end")
    env.expect(task.cancelled(), "the serve_forever() task did not end cancelled")
    env.expect_equal("is_serving() after cancelling", server.is_serving(), False)
    await expect_refused(env, address, "after cancelling serve_forever()")


@scenario(
    SERVERS,
    "close() ends a running serve_forever()",
    requires=("tcp",),
)
async def close_ends_serve_forever(env: Env) -> None:
    server = await tcp_server(env, env.protocol)
    task = env.loop.create_task(server.serve_forever())
    await env.settle()
    server.close()
    await env.wait_until(task.done, "serve_forever() to end after close()")


@scenario(
    SERVERS,
    "create_server(start_serving=False): is_serving() is False and nothing is "
    "accepted until start_serving()",
    requires=("tcp",),
)
async def start_serving_later(env: Env) -> None:
    recorded = Recorded(env)
    server = await tcp_server(env, recorded, start_serving=False)
    env.expect_equal("is_serving()", server.is_serving(), False)
    await expect_refused(env, address_of(server), "before start_serving()")
    await server.start_serving()
    env.expect_equal("is_serving() after start_serving()", server.is_serving(), True)
    await server.start_serving()  # a no-op when serving
    await env.connect_peer(address_of(server))
    await recorded.wait_made(1)
    env.expect_equal("connections", len(recorded.protocols), 1)


@scenario(
    SERVERS,
    "sockets: a tuple of the listening sockets (their getsockname() is the "
    "address); () once closed",
    requires=("tcp",),
)
async def sockets(env: Env) -> None:
    listener = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    listener.bind(("127.0.0.1", 0))
    address = listener.getsockname()
    server = env.track_server(await env.loop.create_server(env.protocol, sock=listener))
    found = server.sockets
    env.expect(isinstance(found, tuple), f"sockets is a {type(found).__name__}")
    env.expect_equal("len(sockets)", len(found), 1)
    env.expect_equal("getsockname()", found[0].getsockname(), address)
    env.expect_equal("family", found[0].family, socket.AF_INET)
    env.expect_equal("fileno()", found[0].fileno(), listener.fileno())
    server.close()
    env.expect_equal("sockets after close()", server.sockets, ())


@scenario(
    SERVERS,
    "async with server: leaving the block closes the server",
    requires=("tcp",),
)
async def async_with_closes(env: Env) -> None:
    server = await tcp_server(env, env.protocol)
    address = address_of(server)
    async with server as entered:
        env.expect(entered is server, "async with did not give the server")
        env.expect_equal("is_serving() inside", server.is_serving(), True)
    env.expect_equal("is_serving() after", server.is_serving(), False)
    env.expect_equal("sockets after", server.sockets, ())
    await expect_refused(env, address, "after the async with block")


@scenario(
    SERVERS,
    "get_loop() returns the event loop the server belongs to",
    requires=("tcp",),
)
async def get_loop(env: Env) -> None:
    server = await tcp_server(env, env.protocol)
    env.expect(server.get_loop() is env.loop, "get_loop() is not the loop")


@scenario(
    SERVERS,
    "each accepted connection gets a new protocol from the factory, with "
    "connection_made() first",
    requires=("tcp",),
)
async def protocol_per_connection(env: Env) -> None:
    recorded = Recorded(env)
    server = await tcp_server(env, recorded)
    peers = [await env.connect_peer(address_of(server)) for _ in range(3)]
    protocols = await recorded.wait_made(3)
    env.expect_equal("protocols made", len(protocols), 3)
    for number, peer in enumerate(peers, 1):
        await peer.send(f"peer {number}".encode())
    for protocol in protocols:
        await protocol.wait_for_data(6)
    received = sorted(bytes(p.data) for p in protocols)
    env.expect_equal("data per connection", received, [b"peer 1", b"peer 2", b"peer 3"])
    env.expect(
        len({id(p.transport) for p in protocols}) == 3,
        "connections share a transport",
    )
