"""Datagram endpoints: ``create_datagram_endpoint`` (its argument checks against
native asyncio's, IPv4, IPv6, Unix paths and abstract names, ``sock=``) and
``DatagramTransport`` (``sendto``, the queue the kernel's refusals fill and its
flow control, errors from the OS and from the protocol, closing). Traffic goes
only to loopback addresses and Unix sockets."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
import uuid
from asyncio.trsock import TransportSocket
from pathlib import Path
from typing import Any

import anyio
import pytest

import protoport
from _helpers import (
    IP_FAMILIES,
    Flag,
    collect_errors,
    exactly,
    settle,
    wait_until,
)
from conftest import open_fds

pytestmark = pytest.mark.anyio

#: What asyncio counts for each queued datagram besides its bytes.
OVERHEAD = 8


class Datagrams(asyncio.DatagramProtocol):
    """Records every callback in ``trace``; datagrams also in ``received``
    (with their addresses), errors in ``errors``; raises *fail_on* from
    ``datagram_received()`` for that payload."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.trace: list[Any] = []
        self.received: list[tuple[bytes, Any]] = []
        self.errors: list[BaseException] = []
        self.transport: Any = None
        self.lost = Flag()
        self.fail_on = fail_on

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.trace.append("made")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((data, addr))
        if data == self.fail_on:
            raise RuntimeError(f"refused {data!r}")

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.trace.append(("error", type(exc)))

    def pause_writing(self) -> None:
        self.trace.append(("pause", self.transport.get_write_buffer_size()))

    def resume_writing(self) -> None:
        self.trace.append(("resume", self.transport.get_write_buffer_size()))

    def connection_lost(self, exc: BaseException | None) -> None:
        self.trace.append(("lost", exc))
        self.lost.set()

    def payloads(self) -> list[bytes]:
        return [data for data, _ in self.received]

    async def wait_lost(self) -> None:
        with anyio.fail_after(5):
            await self.lost.wait()


def loopback(family: int) -> str:
    return "::1" if family == socket.AF_INET6 else "127.0.0.1"


async def udp_pair(
    loop: protoport.Loop, family: int = socket.AF_INET
) -> tuple[Datagrams, Datagrams]:
    """``(server, client)``: a server endpoint bound to loopback and a client
    endpoint connected to it."""
    _, server = await loop.create_datagram_endpoint(
        Datagrams, local_addr=(loopback(family), 0)
    )
    address = server.transport.get_extra_info("sockname")[:2]
    _, client = await loop.create_datagram_endpoint(Datagrams, remote_addr=address)
    return server, client


def abstract_name() -> str:
    return f"\0protoport-test-{uuid.uuid4().hex}"


def unused_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("family", IP_FAMILIES)
async def test_udp_both_ways(family: int) -> None:
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop, family)
        assert isinstance(client.transport, asyncio.DatagramTransport)
        assert isinstance(client.transport, protoport.DatagramTransport)
        client_address = client.transport.get_extra_info("sockname")
        server_address = server.transport.get_extra_info("sockname")
        client.transport.sendto(b"ping")
        await wait_until(lambda: server.received)
        assert server.received == [(b"ping", client_address)]
        server.transport.sendto(b"pong", client_address)
        await wait_until(lambda: client.received)
        assert client.received == [(b"pong", server_address)]
        assert client.transport.get_extra_info("peername") == server_address
        assert server.transport.get_extra_info("peername") is None
        sock = client.transport.get_extra_info("socket")
        assert isinstance(sock, TransportSocket)
        assert sock.family == family
        assert sock.type == socket.SOCK_DGRAM
        assert client.transport.get_extra_info("nothing", "default") == "default"
    assert server.trace == ["made", ("lost", None)]
    assert client.trace == ["made", ("lost", None)]


async def test_one_endpoint_sends_to_several_addresses() -> None:
    async with protoport.open_loop() as loop:
        sender = (
            await loop.create_datagram_endpoint(Datagrams, family=socket.AF_INET)
        )[1]
        receivers = [
            (
                await loop.create_datagram_endpoint(
                    Datagrams, local_addr=("127.0.0.1", 0)
                )
            )[1]
            for _ in range(3)
        ]
        for index, receiver in enumerate(receivers):
            sender.transport.sendto(
                b"to %d" % index, receiver.transport.get_extra_info("sockname")
            )
        await wait_until(lambda: all(r.received for r in receivers))
        assert [r.payloads() for r in receivers] == [[b"to 0"], [b"to 1"], [b"to 2"]]


async def test_empty_datagram_is_sent_and_received() -> None:
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop)
        client.transport.sendto(b"")
        client.transport.sendto(b"after")
        await wait_until(lambda: len(server.received) == 2)
        assert server.payloads() == [b"", b"after"]


async def test_bytes_like_data() -> None:
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop)
        client.transport.sendto(bytearray(b"array"))
        client.transport.sendto(memoryview(b"view"))
        client.transport.sendto(memoryview(b"xxsliced")[2:])
        await wait_until(lambda: len(server.received) == 3)
        assert server.payloads() == [b"array", b"view", b"sliced"]


async def test_reuse_port_lets_two_endpoints_share_a_port() -> None:
    async with protoport.open_loop() as loop:
        first, _ = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0), reuse_port=True
        )
        port = first.get_extra_info("sockname")[1]
        second, _ = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", port), reuse_port=True
        )
        assert second.get_extra_info("sockname") == ("127.0.0.1", port)


async def test_local_address_in_use() -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        taken, _ = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0)
        )
        with pytest.raises(OSError, match=rf"Errno {errno.EADDRINUSE}\]"):
            await loop.create_datagram_endpoint(
                Datagrams, local_addr=taken.get_extra_info("sockname")
            )
    assert open_fds() <= before


async def test_host_name_is_resolved() -> None:
    async with protoport.open_loop() as loop:
        server, _ = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0)
        )
        port = server.get_extra_info("sockname")[1]
        client, _ = await loop.create_datagram_endpoint(
            Datagrams, remote_addr=("localhost", port), family=socket.AF_INET
        )
        assert client.get_extra_info("peername") == ("127.0.0.1", port)


async def test_broadcast_endpoint_is_not_connected() -> None:
    async with protoport.open_loop() as loop:
        server = (
            await loop.create_datagram_endpoint(Datagrams, local_addr=("127.0.0.1", 0))
        )[1]
        address = server.transport.get_extra_info("sockname")
        transport, _ = await loop.create_datagram_endpoint(
            Datagrams, remote_addr=address, allow_broadcast=True
        )
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) != 0
        assert transport.get_extra_info("peername") is None
        # Without an address, a datagram goes to remote_addr all the same.
        transport.sendto(b"to remote_addr")
        await wait_until(lambda: server.received)
        assert server.payloads() == [b"to remote_addr"]
        with pytest.raises(
            ValueError, match=exactly(f"Invalid address: must be None or {address}")
        ):
            transport.sendto(b"x", ("127.0.0.1", 1))


async def test_family_alone_makes_an_unbound_socket() -> None:
    async with protoport.open_loop() as loop:
        transport, _ = await loop.create_datagram_endpoint(
            Datagrams, family=socket.AF_INET
        )
        assert transport.get_extra_info("sockname") == ("0.0.0.0", 0)


# -- Unix datagram sockets ----------------------------------------------------------


async def test_unix_path_endpoints(tmp_path: Path) -> None:
    server_path = str(tmp_path / "server.sock")
    client_path = str(tmp_path / "client.sock")
    async with protoport.open_loop() as loop:
        server = (
            await loop.create_datagram_endpoint(
                Datagrams, local_addr=server_path, family=socket.AF_UNIX
            )
        )[1]
        client = (
            await loop.create_datagram_endpoint(
                Datagrams,
                local_addr=client_path,
                remote_addr=server_path,
                family=socket.AF_UNIX,
            )
        )[1]
        assert client.transport.get_extra_info("peername") == server_path
        client.transport.sendto(b"over a path")
        await wait_until(lambda: server.received)
        assert server.received == [(b"over a path", client_path)]
        server.transport.sendto(b"back", client_path)
        await wait_until(lambda: client.received)
        assert client.received == [(b"back", server_path)]


async def test_unix_abstract_names() -> None:
    server_name, client_name = abstract_name(), abstract_name()
    async with protoport.open_loop() as loop:
        server = (
            await loop.create_datagram_endpoint(
                Datagrams, local_addr=server_name, family=socket.AF_UNIX
            )
        )[1]
        client = (
            await loop.create_datagram_endpoint(
                Datagrams,
                local_addr=client_name,
                remote_addr=server_name,
                family=socket.AF_UNIX,
            )
        )[1]
        assert server.transport.get_extra_info("sockname") == server_name.encode()
        client.transport.sendto(b"abstract")
        await wait_until(lambda: server.received)
        assert server.received == [(b"abstract", client_name.encode())]


async def test_unix_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as old:
        old.bind(path)
    assert os.path.exists(path)  # left behind by the closed socket
    async with protoport.open_loop() as loop:
        transport, _ = await loop.create_datagram_endpoint(
            Datagrams, local_addr=path, family=socket.AF_UNIX
        )
        assert transport.get_extra_info("sockname") == path


async def test_unix_other_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "regular"
    path.write_text("keep me")
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(OSError, match=rf"Errno {errno.EADDRINUSE}\]"):
            await loop.create_datagram_endpoint(
                Datagrams, local_addr=str(path), family=socket.AF_UNIX
            )
    assert path.read_text() == "keep me"
    assert open_fds() <= before


async def test_unix_socketpair_given_as_sock_sends_without_address() -> None:
    # asyncio sends to no address here (the peer's address is empty) and the
    # endpoint fails; protoport sends to the connected peer.
    mine, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with peer:
        async with protoport.open_loop() as loop:
            transport, protocol = await loop.create_datagram_endpoint(
                Datagrams, sock=mine
            )
            transport.sendto(b"to the peer")
            peer.settimeout(5)
            assert peer.recv(100) == b"to the peer"
            peer.send(b"from the peer")
            await wait_until(lambda: protocol.received)
            assert protocol.payloads() == [b"from the peer"]
        assert mine.fileno() == -1  # the transport owned it


async def test_sock_given_is_used() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    address = sock.getsockname()
    async with protoport.open_loop() as loop:
        transport, _ = await loop.create_datagram_endpoint(Datagrams, sock=sock)
        assert transport.get_extra_info("socket").fileno() == sock.fileno()
        assert transport.get_extra_info("sockname") == address
        assert not sock.getblocking()
    assert sock.fileno() == -1


# -- argument checks, against native asyncio -------------------------------------------


def _argument_cases() -> list[Any]:
    unix = getattr(socket, "AF_UNIX", None)
    cases = [
        ({}, ValueError, "unexpected address family"),
        ({"local_addr": "127.0.0.1"}, TypeError, "2-tuple is expected"),
        ({"remote_addr": ["127.0.0.1", 1]}, TypeError, "2-tuple is expected"),
        ({"local_addr": ("127.0.0.1", 0, 0)}, TypeError, "2-tuple is expected"),
        (
            {"local_addr": ("127.0.0.1", 0), "remote_addr": ("::1", 1)},
            ValueError,
            "can not get address information",
        ),
        ({"family": unix, "local_addr": ("a", 1)}, TypeError, "string is expected"),
        ({"family": unix, "remote_addr": b"/x"}, TypeError, "string is expected"),
        (
            {"sock": "stream"},
            ValueError,
            "A datagram socket was expected, got {sock!r}",
        ),
        (
            {"sock": "datagram", "local_addr": ("127.0.0.1", 0), "family": 2},
            ValueError,
            "socket modifier keyword arguments can not be used when sock is "
            "specified. (local_addr=('127.0.0.1', 0), family=2)",
        ),
        (
            {"sock": "datagram", "reuse_port": True, "allow_broadcast": True},
            ValueError,
            "socket modifier keyword arguments can not be used when sock is "
            "specified. (reuse_port=True, allow_broadcast=True)",
        ),
        # The socket's type is checked first.
        (
            {"sock": "stream", "flags": 1},
            ValueError,
            "A datagram socket was expected, got {sock!r}",
        ),
    ]
    return [pytest.param(*case, id=str(index)) for index, case in enumerate(cases)]


ARGUMENT_CASES = _argument_cases()


async def _check_arguments(
    loop: asyncio.AbstractEventLoop,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    kwargs = dict(kwargs)  # the parameters are shared by every run
    stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    given = {"stream": stream, "datagram": datagram}
    sock = given.get(kwargs.get("sock", ""))
    if sock is not None:
        kwargs["sock"] = sock
    try:
        with pytest.raises(error, match=exactly(message.format(sock=sock))):
            await loop.create_datagram_endpoint(Datagrams, **kwargs)
        # The caller's sockets are left alone.
        assert stream.fileno() >= 0
        assert datagram.fileno() >= 0
    finally:
        stream.close()
        datagram.close()


@pytest.mark.parametrize(("kwargs", "error", "message"), ARGUMENT_CASES)
async def test_argument_checks(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        await _check_arguments(loop, kwargs, error, message)
    assert open_fds() <= before


@pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="the reference is CPython 3.13's asyncio; older ones word these checks "
    "differently",
)
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(("kwargs", "error", "message"), ARGUMENT_CASES)
async def test_argument_checks_are_native_asyncios(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    await _check_arguments(asyncio.get_running_loop(), kwargs, error, message)


async def test_reuse_address_is_rejected() -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(
            TypeError, match="unexpected keyword argument 'reuse_address'"
        ):
            await loop.create_datagram_endpoint(  # type: ignore[call-arg]
                Datagrams, local_addr=("127.0.0.1", 0), reuse_address=True
            )


async def test_factory_raising_closes_the_socket() -> None:
    before = open_fds()

    def factory() -> Datagrams:
        raise ZeroDivisionError

    async with protoport.open_loop() as loop:
        with pytest.raises(ZeroDivisionError):
            await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))
    assert open_fds() <= before


# -- sendto ---------------------------------------------------------------------------

#: Where a sendto() check runs: protoport on both runtimes, and native asyncio.
IMPLEMENTATIONS = [
    pytest.param("protoport", "trio", id="protoport-trio"),
    pytest.param("protoport", "asyncio", id="protoport-asyncio"),
    pytest.param("native", "asyncio", id="native-asyncio"),
]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("text", "data argument must be a bytes-like object, not 'str'"),
        (1, "data argument must be a bytes-like object, not 'int'"),
        (None, "data argument must be a bytes-like object, not 'NoneType'"),
    ],
)
@pytest.mark.parametrize(("implementation", "anyio_backend"), IMPLEMENTATIONS)
async def test_sendto_rejects_what_is_not_bytes(
    data: Any, message: str, implementation: str
) -> None:
    async with protoport.open_loop() as facade:
        loop = facade if implementation == "protoport" else asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0)
        )
        with pytest.raises(TypeError, match=exactly(message)):
            transport.sendto(data, ("127.0.0.1", 9))
        assert not transport.is_closing()
        transport.close()
        await protocol.wait_lost()


@pytest.mark.parametrize(("implementation", "anyio_backend"), IMPLEMENTATIONS)
async def test_sendto_another_address_on_a_connected_endpoint(
    implementation: str,
) -> None:
    async with protoport.open_loop() as facade:
        loop = facade if implementation == "protoport" else asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0)
        )
        address = server.get_extra_info("sockname")
        transport, protocol = await loop.create_datagram_endpoint(
            Datagrams, remote_addr=address
        )
        message = f"Invalid address: must be None or {address}"
        with pytest.raises(ValueError, match=exactly(message)):
            transport.sendto(b"x", ("127.0.0.1", address[1] + 1))
        # The remote address itself is accepted.
        transport.sendto(b"x", address)
        assert not transport.is_closing()
        server.close()
        transport.close()
        await protocol.wait_lost()


@pytest.mark.parametrize(("implementation", "anyio_backend"), IMPLEMENTATIONS)
async def test_sendto_without_address_on_an_unconnected_endpoint_is_fatal(
    implementation: str,
) -> None:
    async with protoport.open_loop() as facade:
        loop = facade if implementation == "protoport" else asyncio.get_running_loop()
        contexts = collect_errors(loop)
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                Datagrams, local_addr=("127.0.0.1", 0)
            )
            transport.sendto(b"where to?")
            assert transport.is_closing()
            await protocol.wait_lost()
        finally:
            loop.set_exception_handler(None)
        [context] = contexts
        assert context["message"] == "Fatal write error on datagram transport"
        assert isinstance(context["exception"], TypeError)
        assert protocol.trace == ["made", ("lost", context["exception"])]


async def test_writes_after_close_are_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop)
        client.transport.close()
        assert client.transport.is_closing()
        with caplog.at_level(logging.WARNING, logger="protoport"):
            for _ in range(6):
                client.transport.sendto(b"late")
        await client.wait_lost()
        await settle()
        assert server.received == []
    warnings = [
        r for r in caplog.records if r.getMessage() == "socket.send() raised exception."
    ]
    # As asyncio: from the fifth write after close() on.
    assert len(warnings) == 2


# -- errors ---------------------------------------------------------------------------


async def test_port_unreachable_goes_to_error_received_and_the_endpoint_lives() -> None:
    port = unused_udp_port()
    async with protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        transport, protocol = await loop.create_datagram_endpoint(
            Datagrams, remote_addr=("127.0.0.1", port)
        )
        transport.sendto(b"anyone?")
        await wait_until(lambda: protocol.errors)
        assert isinstance(protocol.errors[0], ConnectionRefusedError)
        assert not transport.is_closing()
        # Someone comes to the port: the same endpoint reaches them, both ways.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as late:
            late.bind(("127.0.0.1", port))
            late.settimeout(5)
            transport.sendto(b"now?")
            data, address = late.recvfrom(100)
            assert data == b"now?"
            late.sendto(b"yes", address)
            await wait_until(lambda: protocol.received)
        assert protocol.payloads() == [b"yes"]
        assert contexts == []
        assert "lost" not in str(protocol.trace)


async def test_raising_datagram_received_is_reported_and_reading_goes_on() -> None:
    async with protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        _, server = await loop.create_datagram_endpoint(
            lambda: Datagrams(fail_on=b"boom"), local_addr=("127.0.0.1", 0)
        )
        _, client = await loop.create_datagram_endpoint(
            Datagrams, remote_addr=server.transport.get_extra_info("sockname")
        )
        client.transport.sendto(b"boom")
        await wait_until(lambda: contexts)
        client.transport.sendto(b"after")
        await wait_until(lambda: len(server.received) == 2)
        assert server.payloads() == [b"boom", b"after"]
        [context] = contexts
        assert context["message"].startswith("Exception in callback ")
        assert "datagram_received" in context["message"]
        assert isinstance(context["exception"], RuntimeError)
        assert isinstance(context["handle"], asyncio.Handle)
        assert not server.transport.is_closing()


async def test_raising_error_received_is_reported_and_the_endpoint_lives() -> None:
    class Failing(Datagrams):
        def error_received(self, exc: Exception) -> None:
            super().error_received(exc)
            raise RuntimeError("error_received failed")

    async with protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        transport, _ = await loop.create_datagram_endpoint(
            Failing, remote_addr=("127.0.0.1", unused_udp_port())
        )
        transport.sendto(b"anyone?")
        await wait_until(lambda: contexts)
        [context] = contexts
        assert "error_received" in context["message"]
        assert str(context["exception"]) == "error_received failed"
        assert not transport.is_closing()


async def test_raising_connection_made_is_reported_and_the_endpoint_lives() -> None:
    class Failing(Datagrams):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            raise RuntimeError("connection_made failed")

    async with protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        server, _ = await udp_pair(loop)
        transport, protocol = await loop.create_datagram_endpoint(
            Failing, local_addr=("127.0.0.1", 0)
        )
        assert len(contexts) == 1
        assert str(contexts[0]["exception"]) == "connection_made failed"
        assert not transport.is_closing()
        # It reads and writes.
        server.transport.sendto(b"in", transport.get_extra_info("sockname"))
        transport.sendto(b"out", server.transport.get_extra_info("sockname"))
        await wait_until(lambda: protocol.received and server.received)
        assert protocol.payloads() == [b"in"]
        assert server.payloads() == [b"out"]


# -- the queue of refused datagrams and flow control ------------------------------


async def unix_pair(loop: protoport.Loop) -> tuple[Datagrams, Datagrams]:
    """Two endpoints over a Unix datagram socketpair: the kernel refuses to send
    once the peer's side holds what fits, until the peer reads."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    _, sender = await loop.create_datagram_endpoint(Datagrams, sock=a)
    _, receiver = await loop.create_datagram_endpoint(Datagrams, sock=b)
    return sender, receiver


async def test_refused_datagrams_are_queued_counted_and_sent_in_order() -> None:
    payload = bytearray(b"x" * 1000)
    async with protoport.open_loop() as loop:
        sender, receiver = await unix_pair(loop)
        transport = sender.transport
        sent = 0
        # Send synchronously (the receiver cannot read meanwhile) until the
        # kernel refuses and the queue pauses the protocol.
        while not sender.trace[1:]:
            payload[:8] = b"%08d" % sent
            transport.sendto(payload)
            sent += 1
        queued = transport.get_write_buffer_size()
        low, high = transport.get_write_buffer_limits()
        assert sender.trace[1] == ("pause", queued)
        assert queued > high
        assert queued % (len(payload) + OVERHEAD) == 0
        # A bytearray changed after sendto() does not change what is sent.
        payload[:] = b"changed"
        await wait_until(lambda: len(receiver.received) == sent)
        assert [data[:8] for data in receiver.payloads()] == [
            b"%08d" % i for i in range(sent)
        ]
        assert all(data[8:] == b"x" * 992 for data in receiver.payloads())
        # gh-135444: the counter comes back to zero, each datagram's header too.
        assert transport.get_write_buffer_size() == 0
        assert len(sender.trace) == 3
        event, size = sender.trace[2]
        assert event == "resume"
        assert size <= low


async def test_burst_of_10000_datagrams_over_unix_arrives_in_order() -> None:
    async with protoport.open_loop() as loop:
        sender, receiver = await unix_pair(loop)
        # In rounds, so that datagrams come while the queue drains, too.
        for start in range(0, 10_000, 500):
            for i in range(start, start + 500):
                sender.transport.sendto(b"%d" % i)
            await anyio.sleep(0)
        await wait_until(lambda: len(receiver.received) == 10_000, timeout=30)
        assert receiver.payloads() == [b"%d" % i for i in range(10_000)]
        assert sender.transport.get_write_buffer_size() == 0


async def test_burst_of_10000_datagrams_over_udp_arrives_in_order() -> None:
    # Loopback UDP drops what the receiver's buffer cannot hold instead of
    # refusing it: the burst goes in windows the buffer holds.
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop)
        for end in range(100, 10_001, 100):
            for i in range(end - 100, end):
                client.transport.sendto(b"%d" % i)
            await wait_until(lambda: len(server.received) >= end)  # noqa: B023
        assert server.payloads() == [b"%d" % i for i in range(10_000)]


async def test_close_sends_what_is_queued_then_loses_the_connection() -> None:
    async with protoport.open_loop() as loop:
        sender, receiver = await unix_pair(loop)
        count = 0
        while not sender.transport.get_write_buffer_size():
            sender.transport.sendto(b"%d" % count)
            count += 1
        sender.transport.sendto(b"last")
        sender.transport.close()
        assert sender.transport.is_closing()
        # Sent while close() still flushes: it goes out too, as in asyncio.
        sender.transport.sendto(b"after close")
        await sender.wait_lost()
        assert sender.trace[-1] == ("lost", None)
        await wait_until(lambda: len(receiver.received) == count + 2)
        assert receiver.payloads()[-2:] == [b"last", b"after close"]


async def test_abort_drops_the_queue() -> None:
    async with protoport.open_loop() as loop:
        sender, receiver = await unix_pair(loop)
        count = 0
        while not sender.transport.get_write_buffer_size():
            sender.transport.sendto(b"%d" % count)
            count += 1
        sender.transport.sendto(b"dropped")
        sender.transport.abort()
        assert sender.transport.get_write_buffer_size() == 0
        await sender.wait_lost()
        await settle()
        assert b"dropped" not in receiver.payloads()
        assert len(receiver.received) == count - 1
        assert sender.trace[-1] == ("lost", None)


async def test_write_buffer_limits() -> None:
    async with protoport.open_loop() as loop:
        server, _ = await udp_pair(loop)
        transport = server.transport
        assert transport.get_write_buffer_limits() == (16384, 65536)
        transport.set_write_buffer_limits(high=1000)
        assert transport.get_write_buffer_limits() == (250, 1000)
        transport.set_write_buffer_limits(low=100)
        assert transport.get_write_buffer_limits() == (100, 400)
        with pytest.raises(
            ValueError, match=exactly("high (10) must be >= low (20) must be >= 0")
        ):
            transport.set_write_buffer_limits(high=10, low=20)
        assert transport.get_write_buffer_size() == 0


# -- life cycle -----------------------------------------------------------------------


async def test_close_and_abort_lose_the_connection_once() -> None:
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop)
        client.transport.close()
        client.transport.close()
        client.transport.abort()
        server.transport.abort()
        server.transport.abort()
        server.transport.close()
        await client.wait_lost()
        await server.wait_lost()
        await settle()
        assert client.trace == ["made", ("lost", None)]
        assert server.trace == ["made", ("lost", None)]
        assert client.transport.get_extra_info("socket").fileno() == -1


async def test_closed_endpoint_reads_no_more() -> None:
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop)
        server.transport.close()
        client.transport.sendto(b"too late")
        await server.wait_lost()
        await settle()
        assert server.received == []


async def test_set_protocol_switches_the_receiver() -> None:
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop)
        second = Datagrams()
        server.transport.set_protocol(second)
        assert server.transport.get_protocol() is second
        client.transport.sendto(b"for the second")
        await wait_until(lambda: second.received)
        assert server.received == []
        server.transport.close()
        await second.wait_lost()
        assert second.trace == [("lost", None)]


@pytest.mark.parametrize("graceful", [True, False])
async def test_leaving_the_loop_leaves_no_fd_or_task(graceful: bool) -> None:
    fds_before = open_fds()
    tasks_before = len(anyio.get_running_tasks())
    protocols: list[Datagrams] = []
    try:
        async with protoport.open_loop() as loop:
            server, client = await udp_pair(loop)
            sender, receiver = await unix_pair(loop)
            protocols += [server, client, sender, receiver]
            # One endpoint with a writer task at work, one closed meanwhile.
            while not sender.transport.get_write_buffer_size():
                sender.transport.sendto(b"stuck")
            client.transport.close()
            if not graceful:
                raise KeyError("leaving by an exception")
    except KeyError:
        assert not graceful
    assert len(anyio.get_running_tasks()) == tasks_before
    for protocol in protocols:
        assert protocol.trace.count(("lost", None)) == 1
        assert protocol.trace[-1] == ("lost", None)
    assert open_fds() == fds_before


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_reading_in_a_task_where_the_loop_has_no_reactor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from protoport._backends import _asyncio

    monkeypatch.setattr(_asyncio.AsyncioBackend, "readers", lambda self: None)
    fds_before = open_fds()
    tasks_before = len(anyio.get_running_tasks())
    async with protoport.open_loop() as loop:
        server, client = await udp_pair(loop)
        assert len(anyio.get_running_tasks()) == tasks_before + 2
        for i in range(3):
            client.transport.sendto(b"%d" % i)
        await wait_until(lambda: len(server.received) == 3)
        assert server.payloads() == [b"0", b"1", b"2"]
        server.transport.close()
        await server.wait_lost()
    assert len(anyio.get_running_tasks()) == tasks_before
    assert open_fds() == fds_before


def test_closing_under_asyncio_run() -> None:
    # The transport is released by a loop callback, where no task runs and
    # sniffio cannot tell which library does: closing must work all the same.
    async def main() -> list[Any]:
        async with protoport.open_loop() as loop:
            contexts = collect_errors(loop)
            server, client = await udp_pair(loop)
            client.transport.sendto(b"ping")
            await wait_until(lambda: server.received)
            client.transport.close()
            await client.wait_lost()
            server.transport.abort()
            await server.wait_lost()
            return contexts

    assert asyncio.run(main()) == []
