"""Event loop: Opening network connections and Creating network servers —
connection refused, the argument checks and their messages,
connect_accepted_socket(), TCP_NODELAY, and the addresses in get_extra_info()
for IPv4, IPv6 and Unix sockets."""

from __future__ import annotations

import errno
import re
import socket
from typing import Any

from .. import sections
from .._env import Env
from .._failures import Unsupported
from .._recording import RecordingProtocol
from .._registry import scenario

OPENING = sections.OPENING_CONNECTIONS
SERVING = sections.CREATING_SERVERS


def untyped_loop(env: Env) -> Any:
    """The loop, for calls whose arguments are wrong on purpose."""
    return env.loop


def closed_port(env: Env) -> tuple[str, int]:
    """A loopback address where nothing listens (bound, not listening)."""
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    return host, port


async def expect_value_error(
    env: Env, message: str, awaitable: Any, what: str
) -> BaseException:
    return await env.expect_raises_async(ValueError, message, awaitable, what)


async def expect_stream_socket_error(
    env: Env, sock: socket.socket, awaitable: Any, what: str
) -> None:
    """*awaitable* raises ``ValueError(f'A Stream Socket was expected, got
    {sock!r}')``; a different message is reported without its numbers (file
    descriptors and ports change from run to run)."""
    exc = await env.expect_raises_async(ValueError, None, awaitable, what)
    expected = f"A Stream Socket was expected, got {sock!r}"
    if str(exc) != expected:
        env.fail(
            f"{what} raised ValueError({re.sub(r'[0-9]+', 'N', str(exc))!r}), "
            "expected 'A Stream Socket was expected, got <the socket's repr>'"
        )


# -- create_connection() -------------------------------------------------------------


@scenario(
    OPENING,
    "create_connection() to an address where nothing listens raises "
    "ConnectionRefusedError (errno ECONNREFUSED)",
    requires=("tcp",),
)
async def connection_refused(env: Env) -> None:
    host, port = closed_port(env)
    exc: Any = await env.expect_raises_async(
        ConnectionRefusedError,
        None,
        env.loop.create_connection(env.protocol, host, port),
        "create_connection()",
    )
    env.expect_equal("errno", exc.errno, errno.ECONNREFUSED)


@scenario(
    OPENING,
    "create_connection(host, port, sock=...): ValueError('host/port and sock can "
    "not be specified at the same time')",
    requires=("tcp",),
)
async def connection_host_and_sock(env: Env) -> None:
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await expect_value_error(
        env,
        "host/port and sock can not be specified at the same time",
        untyped_loop(env).create_connection(env.protocol, "127.0.0.1", 1, sock=sock),
        "create_connection()",
    )


@scenario(
    OPENING,
    "create_connection() without host, port or sock: ValueError('host and port "
    "was not specified and no sock specified')",
)
async def connection_no_address(env: Env) -> None:
    await expect_value_error(
        env,
        "host and port was not specified and no sock specified",
        env.loop.create_connection(env.protocol),
        "create_connection()",
    )


@scenario(
    OPENING,
    "create_connection(server_hostname=...) without ssl: ValueError("
    "'server_hostname is only meaningful with ssl')",
    requires=("tcp",),
)
async def connection_server_hostname_without_ssl(env: Env) -> None:
    await expect_value_error(
        env,
        "server_hostname is only meaningful with ssl",
        env.loop.create_connection(
            env.protocol, "127.0.0.1", 1, server_hostname="localhost"
        ),
        "create_connection()",
    )


@scenario(
    OPENING,
    "create_connection(ssl_handshake_timeout=...) without ssl: ValueError("
    "'ssl_handshake_timeout is only meaningful with ssl')",
    requires=("tcp",),
)
async def connection_handshake_timeout_without_ssl(env: Env) -> None:
    await expect_value_error(
        env,
        "ssl_handshake_timeout is only meaningful with ssl",
        env.loop.create_connection(
            env.protocol, "127.0.0.1", 1, ssl_handshake_timeout=1.0
        ),
        "create_connection()",
    )


@scenario(
    OPENING,
    "create_connection(ssl=True, sock=...) without server_hostname: ValueError("
    "'You must set server_hostname when using ssl without a host')",
    requires=("tls",),
)
async def connection_ssl_without_host(env: Env) -> None:
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await expect_value_error(
        env,
        "You must set server_hostname when using ssl without a host",
        env.loop.create_connection(env.protocol, sock=sock, ssl=True),
        "create_connection()",
    )


@scenario(
    OPENING,
    "create_connection(sock=) with a datagram socket: ValueError('A Stream "
    "Socket was expected, got <socket>')",
)
async def connection_datagram_sock(env: Env) -> None:
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    await expect_stream_socket_error(
        env,
        sock,
        env.loop.create_connection(env.protocol, sock=sock),
        "create_connection()",
    )


@scenario(
    OPENING,
    "TCP connections have TCP_NODELAY set (create_connection to an address and "
    "with sock=)",
    requires=("tcp",),
)
async def tcp_nodelay_client(env: Env) -> None:
    for via in ("address", "sock"):
        conn = await env.connect(family="tcp", via=via)
        sock = conn.transport.get_extra_info("socket")
        env.expect(
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0,
            f"TCP_NODELAY is not set (create_connection via {via})",
        )


@scenario(
    OPENING,
    "IPv6: get_extra_info('peername') and ('sockname') are the 4-tuples the "
    "socket returns",
    requires=("tcp",),
)
async def extra_info_ipv6(env: Env) -> None:
    listener = env.track(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    try:
        listener.bind(("::1", 0))
    except OSError as exc:  # pragma: no cover - a machine without IPv6
        raise Unsupported(f"no IPv6 loopback: {exc}") from None
    listener.listen(1)
    listener.settimeout(2)
    host, port = listener.getsockname()[:2]
    transport, _ = await env.loop.create_connection(env.protocol, host, port)
    env.track_transport(transport)
    remote, _ = await env.to_thread(listener.accept)
    env.track(remote)
    peername = transport.get_extra_info("peername")
    sockname = transport.get_extra_info("sockname")
    env.expect_equal("'peername'", peername, remote.getsockname())
    env.expect_equal("'sockname'", sockname, remote.getpeername())
    env.expect_equal("len('peername')", len(peername), 4)
    env.expect_equal(
        "the socket's family",
        transport.get_extra_info("socket").family,
        socket.AF_INET6,
    )


# -- servers and accepted sockets -----------------------------------------------------


@scenario(
    SERVING,
    "create_server(host, port, sock=...): ValueError('host/port and sock can not "
    "be specified at the same time')",
    requires=("tcp",),
)
async def server_host_and_sock(env: Env) -> None:
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await expect_value_error(
        env,
        "host/port and sock can not be specified at the same time",
        untyped_loop(env).create_server(env.protocol, "127.0.0.1", 0, sock=sock),
        "create_server()",
    )


@scenario(
    SERVING,
    "create_server() without host, port or sock: ValueError('Neither host/port "
    "nor sock were specified')",
)
async def server_no_address(env: Env) -> None:
    await expect_value_error(
        env,
        "Neither host/port nor sock were specified",
        untyped_loop(env).create_server(env.protocol),
        "create_server()",
    )


@scenario(
    SERVING,
    "create_server(ssl=True): TypeError('ssl argument must be an SSLContext or None')",
    requires=("tcp",),
)
async def server_ssl_bool(env: Env) -> None:
    await env.expect_raises_async(
        TypeError,
        "ssl argument must be an SSLContext or None",
        env.loop.create_server(env.protocol, "127.0.0.1", 0, ssl=True),
        "create_server()",
    )


@scenario(
    SERVING,
    "accepted TCP connections have TCP_NODELAY set; their 'peername' is the "
    "client's address and 'sockname' the server's",
    requires=("tcp",),
)
async def server_connection_addresses(env: Env) -> None:
    protocols: list[RecordingProtocol] = []

    def factory() -> RecordingProtocol:
        protocols.append(env.protocol("server protocol"))
        return protocols[-1]

    server = env.track_server(await env.loop.create_server(factory, "127.0.0.1", 0))
    peer = await env.connect_peer(server.sockets[0].getsockname())
    await env.wait_until(lambda: protocols and protocols[0].made, "connection_made()")
    transport = protocols[0].transport
    env.expect_equal(
        "'peername'", transport.get_extra_info("peername"), peer.sock.getsockname()
    )
    env.expect_equal(
        "'sockname'", transport.get_extra_info("sockname"), peer.sock.getpeername()
    )
    sock = transport.get_extra_info("socket")
    env.expect(
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0,
        "TCP_NODELAY is not set on the accepted connection",
    )


@scenario(
    SERVING,
    "connect_accepted_socket() wraps an accepted socket: connection_made(), then "
    "data both ways",
    requires=("tcp",),
)
async def connect_accepted_socket(env: Env) -> None:
    conn = await env.connect(family="tcp", via="accepted")
    await conn.peer.send(b"from peer")
    await conn.protocol.wait_for_data(9)
    conn.transport.write(b"to peer")
    env.expect_equal("peer received", await conn.peer.recv_exactly(7), b"to peer")
    env.expect_equal(
        "callbacks", conn.protocol.summary(), ["made", ("data", b"from peer")]
    )
    sock = conn.transport.get_extra_info("socket")
    env.expect(
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0,
        "TCP_NODELAY is not set",
    )


@scenario(
    SERVING,
    "connect_accepted_socket() with a datagram socket: ValueError('A Stream "
    "Socket was expected, got <socket>')",
)
async def accepted_datagram_sock(env: Env) -> None:
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    await expect_stream_socket_error(
        env,
        sock,
        env.loop.connect_accepted_socket(env.protocol, sock),
        "connect_accepted_socket()",
    )


@scenario(
    SERVING,
    "create_unix_server(path) and create_unix_connection(path): the client's "
    "'peername' is the path, the server connection's 'sockname' too",
    requires=("unix",),
)
async def unix_server_addresses(env: Env) -> None:
    path = env.temp_path("server.sock")
    protocols: list[RecordingProtocol] = []

    def factory() -> RecordingProtocol:
        protocols.append(env.protocol("server protocol"))
        return protocols[-1]

    server = env.track_server(await env.loop.create_unix_server(factory, path))
    transport, _ = await env.loop.create_unix_connection(env.protocol, path)
    env.track_transport(transport)
    await env.wait_until(lambda: protocols and protocols[0].made, "connection_made()")
    env.expect_equal("client 'peername'", transport.get_extra_info("peername"), path)
    server_side = protocols[0].transport
    env.expect_equal(
        "server connection 'sockname'", server_side.get_extra_info("sockname"), path
    )
    transport.write(b"over unix")
    await protocols[0].wait_for_data(9)
    env.expect_equal("server received", bytes(protocols[0].data), b"over unix")
    server.close()
