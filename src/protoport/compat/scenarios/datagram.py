"""Transports: Datagram Transports, and Protocols: Datagram Protocols: the
endpoints ``create_datagram_endpoint()`` makes, ``sendto()`` and the queue of
what the kernel refuses, flow control, closing, extra info, and the datagram
protocol's callbacks. Traffic goes only to loopback addresses and Unix sockets.

Where the kernel must refuse datagrams (so that the transport queues them), the
endpoint sends over a Unix datagram socket pair whose other side is not read
until the scenario says so; a loopback UDP socket drops instead of refusing.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from .. import sections
from .._env import Env
from .._failures import ScenarioFailure
from .._recording import RecordingDatagramProtocol
from .._registry import scenario
from .._timing import PEER_TIMEOUT

TRANSPORTS = sections.DATAGRAM_TRANSPORTS
PROTOCOLS = sections.DATAGRAM_PROTOCOLS
OPENING = sections.OPENING_CONNECTIONS

#: Larger than any UDP datagram: one receive call always takes a whole one.
RECV_SIZE = 70_000
#: How many datagrams the scenarios send at most while waiting for the kernel
#: to refuse one (it refuses after a few hundred on Linux).
MAX_UNREFUSED = 100_000


async def serving_pair(env: Env) -> tuple[Any, RecordingDatagramProtocol, Any, Any]:
    """``(server, server_protocol, client, client_protocol)``: an endpoint bound
    to a loopback port, and one connected to it."""
    server, server_protocol = await env.datagram_endpoint(
        lambda: env.datagram_protocol("server"), local_addr=("127.0.0.1", 0)
    )
    client, client_protocol = await env.datagram_endpoint(
        lambda: env.datagram_protocol("client"),
        remote_addr=server.get_extra_info("sockname"),
    )
    return server, server_protocol, client, client_protocol


async def refusing_pair(
    env: Env, protocol_factory: Any = None
) -> tuple[Any, Any, socket.socket]:
    """``(transport, protocol, peer)``: an endpoint connected to a Unix datagram
    socket, *peer* (blocking, with a timeout), which reads only when the scenario
    makes it: until then the kernel refuses what no longer fits its queue."""
    env.require("datagram")
    path = env.temp_path("peer.sock")
    peer = env.track(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    peer.bind(path)
    peer.settimeout(PEER_TIMEOUT)
    transport, protocol = await env.datagram_endpoint(
        protocol_factory, remote_addr=path, family=socket.AF_UNIX
    )
    return transport, protocol, peer


def fill_queue(transport: Any) -> int:
    """Send numbered datagrams of 8 bytes until the kernel refuses one and the
    transport queues it; return how many were sent (the last one queued)."""
    for count in range(MAX_UNREFUSED):
        transport.sendto(b"%08d" % count)
        if transport.get_write_buffer_size():
            return count + 1
    raise ScenarioFailure(
        f"the kernel took {MAX_UNREFUSED} datagrams: nothing was queued"
    )


async def receive(env: Env, sock: socket.socket, count: int) -> list[bytes]:
    """Receive *count* datagrams on the blocking socket *sock*, in a worker
    thread."""

    def read() -> list[bytes]:
        return [sock.recv(RECV_SIZE) for _ in range(count)]

    try:
        return await env.to_thread(read)
    except TimeoutError:
        env.fail(f"the peer waited in vain for {count} datagrams")


async def receive_from(env: Env, sock: socket.socket) -> tuple[bytes, Any]:
    """One datagram and its sender's address, received on *sock*."""
    try:
        return await env.to_thread(sock.recvfrom, RECV_SIZE)
    except TimeoutError:
        env.fail("the peer waited in vain for a datagram")


def pending(sock: socket.socket) -> bytes | None:
    """A datagram waiting on *sock*, if there is one (without waiting)."""
    sock.setblocking(False)
    try:
        return sock.recv(RECV_SIZE)
    except BlockingIOError:
        return None
    finally:
        sock.settimeout(PEER_TIMEOUT)


def unused_udp_port() -> int:
    """A loopback UDP port nothing is bound to (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the endpoint -------------------------------------------------------------------


@scenario(
    TRANSPORTS,
    "create_datagram_endpoint() returns (transport, protocol): an "
    "asyncio.DatagramTransport, connection_made() already called with it",
)
async def endpoint_is_datagram_transport(env: Env) -> None:
    transport, protocol = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    env.expect(
        isinstance(transport, asyncio.DatagramTransport),
        f"{type(transport).__name__} is not an asyncio.DatagramTransport",
    )
    env.expect_equal("callbacks", protocol.names(), ["connection_made"])
    env.expect(protocol.transport is transport, "connection_made() got another object")


@scenario(TRANSPORTS, "is_closing() is False while the endpoint is open")
async def is_closing_false_when_open(env: Env) -> None:
    transport, _ = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    env.expect_equal("is_closing()", transport.is_closing(), False)


@scenario(
    TRANSPORTS,
    "get_extra_info('socket') is the endpoint's socket (the one given with sock=)",
)
async def extra_info_socket(env: Env) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    fd = sock.fileno()
    try:
        transport, _ = await env.datagram_endpoint(sock=sock)
    except BaseException:
        sock.close()
        raise
    info = transport.get_extra_info("socket")
    env.expect(info is not None, "get_extra_info('socket') is None")
    env.expect_equal("its fileno()", info.fileno(), fd)
    env.expect_equal("its type", info.type, socket.SOCK_DGRAM)


@scenario(
    TRANSPORTS, "get_extra_info('sockname') is the local address the socket is bound to"
)
async def extra_info_sockname(env: Env) -> None:
    port = unused_udp_port()
    transport, _ = await env.datagram_endpoint(local_addr=("127.0.0.1", port))
    env.expect_equal(
        "get_extra_info('sockname')",
        transport.get_extra_info("sockname"),
        ("127.0.0.1", port),
    )


@scenario(
    TRANSPORTS,
    "get_extra_info('peername') is remote_addr on a connected endpoint, None on "
    "an unconnected one",
)
async def extra_info_peername(env: Env) -> None:
    server, _, client, _ = await serving_pair(env)
    env.expect_equal(
        "connected endpoint's peername",
        client.get_extra_info("peername"),
        server.get_extra_info("sockname"),
    )
    env.expect_equal(
        "unconnected endpoint's peername", server.get_extra_info("peername"), None
    )


@scenario(TRANSPORTS, "get_protocol() returns the protocol the factory made")
async def get_protocol(env: Env) -> None:
    transport, protocol = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    env.expect(transport.get_protocol() is protocol, "get_protocol() is another object")


@scenario(
    TRANSPORTS,
    "set_protocol(): datagrams and connection_lost() go to the new protocol",
)
async def set_protocol_switches_receiver(env: Env) -> None:
    server, first, client, _ = await serving_pair(env)
    second = env.datagram_protocol("second")
    server.set_protocol(second)
    env.expect(server.get_protocol() is second, "get_protocol() is not the new one")
    client.sendto(b"to the second")
    await second.wait_for_datagrams(1)
    server.close()
    await second.wait_lost()
    env.expect_equal("first protocol's callbacks", first.names(), ["connection_made"])
    env.expect_equal(
        "second protocol's callbacks",
        second.names(),
        ["datagram_received", "connection_lost"],
    )


# -- sendto() -----------------------------------------------------------------------


@scenario(
    TRANSPORTS,
    "sendto(data, addr) on an unconnected endpoint sends one datagram to addr",
)
async def sendto_address(env: Env) -> None:
    peer = env.udp_socket()
    transport, _ = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    transport.sendto(b"hello", peer.getsockname())
    data, sender = await receive_from(env, peer)
    env.expect_equal("peer received", data, b"hello")
    env.expect_equal("sender's address", sender, transport.get_extra_info("sockname"))


@scenario(TRANSPORTS, "sendto(data) on a connected endpoint sends to remote_addr")
async def sendto_connected(env: Env) -> None:
    peer = env.udp_socket()
    transport, _ = await env.datagram_endpoint(remote_addr=peer.getsockname())
    transport.sendto(b"hello")
    data, _ = await receive_from(env, peer)
    env.expect_equal("peer received", data, b"hello")


@scenario(
    TRANSPORTS,
    "sendto(data, remote_addr) on a connected endpoint is accepted: addr may be "
    "None or the remote address",
)
async def sendto_connected_same_address(env: Env) -> None:
    peer = env.udp_socket()
    transport, _ = await env.datagram_endpoint(remote_addr=peer.getsockname())
    transport.sendto(b"named", peer.getsockname())
    data, _ = await receive_from(env, peer)
    env.expect_equal("peer received", data, b"named")


@scenario(
    TRANSPORTS,
    "sendto(data, other) on a connected endpoint raises ValueError('Invalid "
    "address: must be None or <remote_addr>')",
)
async def sendto_connected_other_address(env: Env) -> None:
    peer = env.udp_socket()
    address = peer.getsockname()
    transport, _ = await env.datagram_endpoint(remote_addr=address)
    env.expect_raises(
        ValueError,
        f"Invalid address: must be None or {address}",
        transport.sendto,
        b"x",
        ("127.0.0.1", address[1] + 1 if address[1] < 65535 else 1),
    )
    env.expect_equal("is_closing()", transport.is_closing(), False)


@scenario(
    TRANSPORTS,
    "sendto(data) without an address on an unconnected endpoint is fatal: 'Fatal "
    "write error on datagram transport', connection_lost(exc)",
)
async def sendto_unconnected_without_address(env: Env) -> None:
    transport, protocol = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    transport.sendto(b"where to?")
    exc = await protocol.wait_lost()
    env.expect(isinstance(exc, TypeError), f"connection_lost() got {exc!r}")
    env.expect_equal(
        "exception handler",
        env.error_messages(),
        ["Fatal write error on datagram transport"],
    )


@scenario(TRANSPORTS, "sendto() accepts bytes-like objects: bytearray and memoryview")
async def sendto_bytes_like(env: Env) -> None:
    peer = env.udp_socket()
    transport, _ = await env.datagram_endpoint(remote_addr=peer.getsockname())
    transport.sendto(bytearray(b"array"))
    transport.sendto(memoryview(b"..view..")[2:6])
    received = await receive(env, peer, 2)
    env.expect_equal("peer received", received, [b"array", b"view"])


@scenario(
    TRANSPORTS,
    "sendto(str) raises TypeError('data argument must be a bytes-like object, "
    "not 'str'')",
)
async def sendto_type_error(env: Env) -> None:
    peer = env.udp_socket()
    transport, _ = await env.datagram_endpoint(remote_addr=peer.getsockname())
    env.expect_raises(
        TypeError,
        "data argument must be a bytes-like object, not 'str'",
        transport.sendto,
        "text",
    )
    env.expect_equal("is_closing()", transport.is_closing(), False)


@scenario(TRANSPORTS, "sendto(b'') sends an empty datagram")
async def sendto_empty(env: Env) -> None:
    peer = env.udp_socket()
    transport, _ = await env.datagram_endpoint(remote_addr=peer.getsockname())
    transport.sendto(b"")
    transport.sendto(b"after")
    received = await receive(env, peer, 2)
    env.expect_equal("peer received", received, [b"", b"after"])


@scenario(TRANSPORTS, "each sendto() is one datagram: boundaries are kept, in order")
async def sendto_keeps_boundaries(env: Env) -> None:
    peer = env.udp_socket()
    transport, _ = await env.datagram_endpoint(remote_addr=peer.getsockname())
    for chunk in (b"one", b"two", b"three"):
        transport.sendto(chunk)
    received = await receive(env, peer, 3)
    env.expect_equal("peer received", received, [b"one", b"two", b"three"])


@scenario(
    TRANSPORTS,
    "sendto() does not block: what the kernel refuses is queued "
    "(get_write_buffer_size()) and sent in order as the peer reads",
)
async def sendto_queues_refused(env: Env) -> None:
    transport, _, peer = await refusing_pair(env)
    sent = fill_queue(transport)
    for extra in range(sent, sent + 10):
        transport.sendto(b"%08d" % extra)
    env.expect(transport.get_write_buffer_size() > 0, "nothing is queued")
    received = await receive(env, peer, sent + 10)
    env.expect(
        received == [b"%08d" % i for i in range(sent + 10)],
        "the peer received other datagrams, or in another order",
    )


@scenario(
    TRANSPORTS,
    "sendto() of a bytearray that is then modified sends the bytes given to sendto()",
)
async def sendto_copies_bytearray(env: Env) -> None:
    transport, _, peer = await refusing_pair(env)
    sent = fill_queue(transport)
    buffer = bytearray(b"original")
    transport.sendto(buffer)
    buffer[:] = b"modified"
    received = await receive(env, peer, sent + 1)
    env.expect_equal("last datagram", received[-1], b"original")


@scenario(
    TRANSPORTS,
    "a datagram larger than the socket accepts: error_received(OSError), and the "
    "endpoint keeps serving",
)
async def oversized_datagram(env: Env) -> None:
    peer = env.udp_socket()
    transport, protocol = await env.datagram_endpoint(remote_addr=peer.getsockname())
    transport.sendto(b"x" * 70_000)
    await env.wait_until(lambda: protocol.errors, "error_received()")
    env.expect(
        isinstance(protocol.errors[0], OSError),
        f"error_received() got {protocol.errors[0]!r}",
    )
    env.expect_equal("is_closing()", transport.is_closing(), False)
    transport.sendto(b"small")
    data, _ = await receive_from(env, peer)
    env.expect_equal("peer received", data, b"small")


@scenario(
    TRANSPORTS,
    "a burst of 10,000 datagrams over loopback UDP arrives complete and in order",
)
async def burst_udp_in_order(env: Env) -> None:
    _, server, client, _ = await serving_pair(env)
    # Loopback UDP drops what the receiver's buffer cannot hold: the burst
    # goes in windows that it holds.
    for end in range(100, 10_001, 100):
        for i in range(end - 100, end):
            client.sendto(b"%d" % i)
        await server.wait_for_datagrams(end, timeout=5.0)
    env.expect(
        server.payloads() == [b"%d" % i for i in range(10_000)],
        "datagrams were lost, duplicated or reordered",
    )


@scenario(
    TRANSPORTS,
    "a burst of 10,000 datagrams sent at once over a Unix datagram socket is "
    "queued and arrives complete and in order",
)
async def burst_unix_in_order(env: Env) -> None:
    transport, _, peer = await refusing_pair(env)
    for i in range(10_000):
        transport.sendto(b"%d" % i)
    received = await receive(env, peer, 10_000)
    env.expect(
        received == [b"%d" % i for i in range(10_000)],
        "datagrams were lost, duplicated or reordered",
    )


# -- the write buffer and flow control ----------------------------------------------


@scenario(TRANSPORTS, "get_write_buffer_size() is 0 while nothing is queued")
async def write_buffer_empty(env: Env) -> None:
    peer = env.udp_socket()
    transport, _ = await env.datagram_endpoint(remote_addr=peer.getsockname())
    transport.sendto(b"taken at once")
    env.expect_equal("get_write_buffer_size()", transport.get_write_buffer_size(), 0)


@scenario(
    TRANSPORTS,
    "get_write_buffer_size() counts each queued datagram with 8 bytes of header, "
    "as asyncio counts it",
)
async def write_buffer_counts_header(env: Env) -> None:
    transport, _, _ = await refusing_pair(env)
    fill_queue(transport)
    env.expect_equal("after one queued", transport.get_write_buffer_size(), 8 + 8)
    transport.sendto(b"x" * 100)
    env.expect_equal(
        "after two queued", transport.get_write_buffer_size(), 8 + 8 + 100 + 8
    )


@scenario(
    TRANSPORTS,
    "get_write_buffer_size() returns to 0 once the queue is sent",
    reference_deviation=(
        "CPython 3.13 adds 8 bytes of header for each queued datagram and "
        "subtracts only its length once it is sent (gh-135444): the size never "
        "returns to 0"
    ),
)
async def write_buffer_returns_to_zero(env: Env) -> None:
    transport, _, peer = await refusing_pair(env)
    sent = fill_queue(transport)
    await receive(env, peer, sent)
    await env.wait_until(
        lambda: transport.get_write_buffer_size() == 0,
        lambda: (
            "get_write_buffer_size() to return to 0 "
            f"(it is {transport.get_write_buffer_size()})"
        ),
    )


@scenario(TRANSPORTS, "get_write_buffer_limits() defaults to (16384, 65536), low first")
async def default_limits(env: Env) -> None:
    transport, _ = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    env.expect_equal(
        "get_write_buffer_limits()", transport.get_write_buffer_limits(), (16384, 65536)
    )


@scenario(
    TRANSPORTS,
    "set_write_buffer_limits(high): low defaults to high // 4; high < low raises "
    "ValueError",
)
async def set_limits(env: Env) -> None:
    transport, _ = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    transport.set_write_buffer_limits(high=4000)
    env.expect_equal(
        "get_write_buffer_limits()", transport.get_write_buffer_limits(), (1000, 4000)
    )
    env.expect_raises(
        ValueError,
        "high (1) must be >= low (2) must be >= 0",
        transport.set_write_buffer_limits,
        high=1,
        low=2,
    )


@scenario(
    TRANSPORTS,
    "pause_writing() once the queue goes above the high watermark, "
    "resume_writing() once the peer took it down to the low one",
)
async def pause_and_resume(env: Env) -> None:
    transport, protocol, peer = await refusing_pair(env)
    transport.set_write_buffer_limits(high=2000)
    sent = 0
    while not protocol.count("pause_writing") and sent < MAX_UNREFUSED:
        transport.sendto(b"%08d" % sent + b"x" * 92)
        sent += 1
    env.expect(protocol.count("pause_writing"), "pause_writing() was not called")
    env.expect(
        transport.get_write_buffer_size() > 2000,
        f"paused at {transport.get_write_buffer_size()} bytes, not above 2000",
    )
    await receive(env, peer, sent)
    await protocol.wait_for("resume_writing")
    flow = [name for name in protocol.names() if name.endswith("_writing")]
    env.expect_equal("flow control calls", flow, ["pause_writing", "resume_writing"])


# -- closing ------------------------------------------------------------------------


@scenario(
    TRANSPORTS,
    "close(): is_closing() becomes True, connection_lost(None) follows",
)
async def close_loses_connection(env: Env) -> None:
    transport, protocol = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    transport.close()
    env.expect_equal("is_closing() after close()", transport.is_closing(), True)
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
    env.expect_equal(
        "callbacks", protocol.names(), ["connection_made", "connection_lost"]
    )


@scenario(TRANSPORTS, "close() twice, then abort(): connection_lost() is called once")
async def close_is_idempotent(env: Env) -> None:
    transport, protocol = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    transport.close()
    transport.close()
    transport.abort()
    await protocol.wait_lost()
    await env.settle()
    env.expect_equal("connection_lost() calls", protocol.count("connection_lost"), 1)


@scenario(TRANSPORTS, "close(): no more datagrams are received")
async def close_stops_receiving(env: Env) -> None:
    peer = env.udp_socket()
    transport, protocol = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    address = transport.get_extra_info("sockname")
    transport.close()
    peer.sendto(b"too late", address)
    await protocol.wait_lost()
    await env.settle()
    env.expect_equal("datagrams received", protocol.payloads(), [])


@scenario(
    TRANSPORTS,
    "close(): the queued datagrams are sent first, then connection_lost(None)",
)
async def close_sends_queue(env: Env) -> None:
    transport, protocol, peer = await refusing_pair(env)
    sent = fill_queue(transport)
    transport.sendto(b"last")
    transport.close()
    await env.settle()
    env.expect_equal("connection_lost() before the peer read", protocol.lost, False)
    received = await receive(env, peer, sent + 1)
    env.expect_equal("last datagram", received[-1], b"last")
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)


@scenario(
    TRANSPORTS,
    "abort(): the queued datagrams are dropped, connection_lost(None) follows",
)
async def abort_drops_queue(env: Env) -> None:
    transport, protocol, peer = await refusing_pair(env)
    sent = fill_queue(transport)
    transport.sendto(b"dropped")
    transport.abort()
    env.expect_equal("is_closing() after abort()", transport.is_closing(), True)
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)
    received = await receive(env, peer, sent - 1)
    env.expect_equal("datagrams left after the ones taken", pending(peer), None)
    env.expect(b"dropped" not in received, "the queued datagram was sent")


@scenario(
    TRANSPORTS,
    "sendto() after close() on a connected endpoint sends nothing; from the "
    "fifth on, 'socket.send() raised exception.' is logged",
)
async def writes_after_close_connected(env: Env) -> None:
    peer = env.udp_socket()
    transport, protocol = await env.datagram_endpoint(remote_addr=peer.getsockname())
    transport.close()
    for _ in range(6):
        transport.sendto(b"late")
    await protocol.wait_lost()
    await env.settle()
    env.expect_equal("datagram waiting at the peer", pending(peer), None)
    logged = [w for w in env.warnings() if w == "socket.send() raised exception."]
    env.expect_equal("warnings logged", len(logged), 2)


@scenario(
    TRANSPORTS,
    "sendto() after close() on an unconnected endpoint sends nothing and raises "
    "nothing, before and after connection_lost()",
    reference_deviation=(
        "CPython 3.13 counts writes after close() only on connected endpoints: an "
        "unconnected one still sends until connection_lost(), then raises "
        "AttributeError"
    ),
)
async def writes_after_close_unconnected(env: Env) -> None:
    peer = env.udp_socket()
    transport, protocol = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    transport.close()
    transport.sendto(b"before lost", peer.getsockname())
    await protocol.wait_lost()
    try:
        transport.sendto(b"after lost", peer.getsockname())
    except Exception as exc:
        env.fail(f"sendto() after connection_lost() raised {exc!r}")
    await env.settle()
    env.expect_equal("datagram waiting at the peer", pending(peer), None)


# -- Datagram Protocols -------------------------------------------------------------


@scenario(
    PROTOCOLS,
    "callbacks come in the order connection_made, datagram_received*, connection_lost",
)
async def callback_order(env: Env) -> None:
    server, protocol, client, _ = await serving_pair(env)
    client.sendto(b"one")
    client.sendto(b"two")
    await protocol.wait_for_datagrams(2)
    server.close()
    await protocol.wait_lost()
    env.expect_equal(
        "callbacks",
        protocol.names(),
        [
            "connection_made",
            "datagram_received",
            "datagram_received",
            "connection_lost",
        ],
    )
    env.expect_equal("datagrams", protocol.payloads(), [b"one", b"two"])


@scenario(
    PROTOCOLS,
    "datagram_received(data, addr): data is bytes, addr the sender's address",
)
async def datagram_received_arguments(env: Env) -> None:
    peer = env.udp_socket()
    transport, protocol = await env.datagram_endpoint(local_addr=("127.0.0.1", 0))
    peer.sendto(b"from the peer", transport.get_extra_info("sockname"))
    await protocol.wait_for_datagrams(1)
    data, addr = protocol.datagrams[0]
    env.expect_equal("type of data", type(data).__name__, "bytes")
    env.expect_equal("data", data, b"from the peer")
    env.expect_equal("addr", addr, peer.getsockname())


@scenario(
    PROTOCOLS,
    "Unix datagram endpoints (family=AF_UNIX, paths): datagrams both ways, with "
    "the sender's path as addr",
)
async def unix_paths(env: Env) -> None:
    server_path = env.temp_path("server.sock")
    client_path = env.temp_path("client.sock")
    server, server_protocol = await env.datagram_endpoint(
        lambda: env.datagram_protocol("server"),
        local_addr=server_path,
        family=socket.AF_UNIX,
    )
    client, client_protocol = await env.datagram_endpoint(
        lambda: env.datagram_protocol("client"),
        local_addr=client_path,
        remote_addr=server_path,
        family=socket.AF_UNIX,
    )
    client.sendto(b"ping")
    await server_protocol.wait_for_datagrams(1)
    env.expect_equal(
        "server received", server_protocol.datagrams, [(b"ping", client_path)]
    )
    server.sendto(b"pong", client_path)
    await client_protocol.wait_for_datagrams(1)
    env.expect_equal("client received", client_protocol.payloads(), [b"pong"])


@scenario(
    PROTOCOLS,
    "an ICMP port unreachable on a connected endpoint: error_received("
    "ConnectionRefusedError), the endpoint stays open",
)
async def port_unreachable(env: Env) -> None:
    transport, protocol = await env.datagram_endpoint(
        remote_addr=("127.0.0.1", unused_udp_port())
    )
    transport.sendto(b"anyone?")
    await env.wait_until(lambda: protocol.errors, "error_received()")
    env.expect(
        isinstance(protocol.errors[0], ConnectionRefusedError),
        f"error_received() got {protocol.errors[0]!r}",
    )
    await env.settle()
    env.expect_equal("is_closing()", transport.is_closing(), False)
    env.expect_equal("connection_lost() called", protocol.lost, False)
    env.expect_equal("exception handler calls", env.error_messages(), [])


@scenario(
    PROTOCOLS,
    "after error_received() the endpoint keeps serving: it sends and receives once "
    "the peer is there",
)
async def serving_after_error(env: Env) -> None:
    port = unused_udp_port()
    transport, protocol = await env.datagram_endpoint(remote_addr=("127.0.0.1", port))
    transport.sendto(b"anyone?")
    await env.wait_until(lambda: protocol.errors, "error_received()")
    late = env.track(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        late.bind(("127.0.0.1", port))
    except OSError:
        env.fail("the port was taken meanwhile")  # pragma: no cover
    late.settimeout(PEER_TIMEOUT)
    transport.sendto(b"now?")
    data, address = await receive_from(env, late)
    env.expect_equal("peer received", data, b"now?")
    late.sendto(b"yes", address)
    env.expect_equal(
        "endpoint received", await protocol.wait_for_datagrams(1), [b"yes"]
    )


@scenario(
    PROTOCOLS,
    "an exception in datagram_received() goes to the exception handler; the "
    "endpoint keeps receiving",
)
async def datagram_received_raises(env: Env) -> None:
    class Failing(RecordingDatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            super().datagram_received(data, addr)
            if data == b"boom":
                raise ZeroDivisionError("datagram")

    server, protocol = await env.datagram_endpoint(
        lambda: Failing(env, "server"), local_addr=("127.0.0.1", 0)
    )
    peer = env.udp_socket()
    peer.sendto(b"boom", server.get_extra_info("sockname"))
    await env.wait_until(lambda: env.errors, "the exception handler")
    peer.sendto(b"after", server.get_extra_info("sockname"))
    env.expect_equal(
        "datagrams", await protocol.wait_for_datagrams(2), [b"boom", b"after"]
    )
    exc = env.errors[0].get("exception")
    env.expect(isinstance(exc, ZeroDivisionError), f"the handler got {exc!r}")
    env.expect_equal("is_closing()", server.is_closing(), False)


@scenario(
    PROTOCOLS,
    "an exception in error_received() goes to the exception handler; the endpoint "
    "stays open",
)
async def error_received_raises(env: Env) -> None:
    class Failing(RecordingDatagramProtocol):
        def error_received(self, exc: Exception) -> None:
            super().error_received(exc)
            raise ZeroDivisionError("error")

    transport, protocol = await env.datagram_endpoint(
        lambda: Failing(env), remote_addr=("127.0.0.1", unused_udp_port())
    )
    transport.sendto(b"anyone?")
    await env.wait_until(lambda: env.errors, "the exception handler")
    exc = env.errors[0].get("exception")
    env.expect(isinstance(exc, ZeroDivisionError), f"the handler got {exc!r}")
    await env.settle()
    env.expect_equal("is_closing()", transport.is_closing(), False)
    env.expect_equal("connection_lost() called", protocol.lost, False)


@scenario(
    PROTOCOLS,
    "an exception in connection_made() goes to the exception handler; the "
    "endpoint stays open and receives",
)
async def connection_made_raises(env: Env) -> None:
    class Failing(RecordingDatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            raise ZeroDivisionError("made")

    transport, protocol = await env.datagram_endpoint(
        lambda: Failing(env), local_addr=("127.0.0.1", 0)
    )
    await env.wait_until(lambda: env.errors, "the exception handler")
    exc = env.errors[0].get("exception")
    env.expect(isinstance(exc, ZeroDivisionError), f"the handler got {exc!r}")
    env.expect_equal("is_closing()", transport.is_closing(), False)
    peer = env.udp_socket()
    peer.sendto(b"still open", transport.get_extra_info("sockname"))
    env.expect_equal("datagrams", await protocol.wait_for_datagrams(1), [b"still open"])


@scenario(
    PROTOCOLS,
    "close() inside connection_made(): connection_lost(None) once, no datagram "
    "after it",
)
async def close_in_connection_made(env: Env) -> None:
    class Closing(RecordingDatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.close()

    transport, protocol = await env.datagram_endpoint(
        lambda: Closing(env), local_addr=("127.0.0.1", 0)
    )
    peer = env.udp_socket()
    peer.sendto(b"ignored", transport.get_extra_info("sockname"))
    await protocol.wait_lost()
    await env.settle()
    env.expect_equal(
        "callbacks", protocol.names(), ["connection_made", "connection_lost"]
    )


# -- create_datagram_endpoint() -----------------------------------------------------


@scenario(
    OPENING,
    "create_datagram_endpoint(reuse_address=...) raises TypeError: the parameter "
    "was removed",
    since=(3, 11),
)
async def datagram_reuse_address_rejected(env: Env) -> None:
    env.require("datagram")

    async def call() -> object:
        return await env.loop.create_datagram_endpoint(
            env.datagram_protocol,
            local_addr=("127.0.0.1", 0),
            reuse_address=True,
        )

    await env.expect_raises_async(TypeError, None, call(), "create_datagram_endpoint()")


@scenario(
    OPENING,
    "create_datagram_endpoint(sock=a stream socket) raises ValueError('A datagram "
    "socket was expected, got <socket>')",
    since=(3, 11),
)
async def datagram_stream_socket_rejected(env: Env) -> None:
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    exc = await env.expect_raises_async(
        ValueError,
        None,
        env.datagram_endpoint(sock=sock),
        "create_datagram_endpoint()",
    )
    env.expect(
        str(exc).startswith("A datagram socket was expected, got "),
        f"the message is {str(exc)!r}",
    )


@scenario(
    OPENING,
    "create_datagram_endpoint(sock=, local_addr=) raises ValueError('socket "
    "modifier keyword arguments can not be used when sock is specified. (...)')",
)
async def datagram_sock_with_modifiers(env: Env) -> None:
    sock = env.track(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    await env.expect_raises_async(
        ValueError,
        "socket modifier keyword arguments can not be used when sock is "
        "specified. (local_addr=('127.0.0.1', 0))",
        env.datagram_endpoint(sock=sock, local_addr=("127.0.0.1", 0)),
        "create_datagram_endpoint()",
    )


@scenario(
    OPENING,
    "create_datagram_endpoint() with no address and no family raises "
    "ValueError('unexpected address family')",
)
async def datagram_no_address_no_family(env: Env) -> None:
    await env.expect_raises_async(
        ValueError,
        "unexpected address family",
        env.datagram_endpoint(),
        "create_datagram_endpoint()",
    )


@scenario(
    OPENING,
    "create_datagram_endpoint(family=AF_UNIX, local_addr=path): a socket file "
    "left there by an earlier socket is replaced",
)
async def datagram_stale_unix_socket_file(env: Env) -> None:
    env.require("datagram")
    path = env.temp_path("stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as earlier:
        earlier.bind(path)
    env.expect(os.path.exists(path), "the earlier socket left no file")
    transport, _ = await env.datagram_endpoint(local_addr=path, family=socket.AF_UNIX)
    env.expect_equal(
        "get_extra_info('sockname')", transport.get_extra_info("sockname"), path
    )
