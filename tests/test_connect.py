"""Opening connections: ``create_connection`` (resolution, several addresses,
Happy Eyeballs, local binding, ``sock=``), ``create_unix_connection``,
``connect_accepted_socket``, ``getaddrinfo`` and ``getnameinfo`` — with asyncio's
argument checks and error messages. Traffic goes only to loopback addresses and
Unix sockets."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream

import protoport
from _helpers import (
    JoiningRecorder,
    exactly,
    free_port,
    listener,
    needs_ipv6,
    read_exactly,
    wait_until,
)
from conftest import open_fds
from protoport._loop import _connections as _connect

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio

REFUSED = errno.ECONNREFUSED


@pytest.fixture(params=["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def loopback(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def refused_port(host: str = "127.0.0.1") -> tuple[socket.socket, int]:
    """A socket bound to a port that does not listen: connecting to it is
    refused. The caller keeps the socket (so the port stays taken) and closes it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    return sock, sock.getsockname()[1]


async def accept(sock: socket.socket) -> tuple[SocketStream, Any]:
    conn, address = await anyio.to_thread.run_sync(sock.accept)
    return await SocketStream.from_socket(conn), address


def info_for(host: str, port: int) -> tuple[Any, ...]:
    """One getaddrinfo() entry for a numeric loopback address."""
    if ":" in host:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                (host, port, 0, 0))  # fmt: skip
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))


def refused_message(host: str, port: int) -> str:
    address = (host, port, 0, 0) if ":" in host else (host, port)
    return f"[Errno {REFUSED}] Connect call failed {address}"


class FakeResolver:
    """Stands in for ``loop.getaddrinfo``: answers with fixed entries and records
    how it was called."""

    def __init__(self, infos: list[tuple[Any, ...]]) -> None:
        self.infos = infos
        self.calls: list[tuple[Any, ...]] = []

    async def __call__(
        self,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        self.calls.append((host, port, family, type, proto, flags))
        await anyio.lowlevel.checkpoint()
        return list(self.infos)


class ConnectSpy:
    """Wraps the per-attempt connect: records the addresses tried, makes the
    attempts to *hang_ports* wait forever (recording their cancellation) and
    refuses those to *refuse_ports* without sending anything."""

    def __init__(
        self, hang_ports: set[int] | None = None, refuse_ports: set[int] | None = None
    ) -> None:
        self.tried: list[Any] = []
        self.cancelled: list[Any] = []
        self.hang_ports = hang_ports or set()
        self.refuse_ports = refuse_ports or set()
        self.real = _connect._sock_connect

    async def __call__(self, loop_host: Any, sock: socket.socket, address: Any) -> None:
        self.tried.append(address)
        await anyio.lowlevel.checkpoint()
        if address[1] in self.refuse_ports:
            raise OSError(REFUSED, f"Connect call failed {address}")
        if address[1] in self.hang_ports:
            try:
                await anyio.sleep_forever()
            except BaseException:
                self.cancelled.append(address)
                raise
        await self.real(loop_host, sock, address)


# -- connecting over TCP ------------------------------------------------------------


async def test_data_flows_both_ways(loopback: str) -> None:
    lsock = listener(loopback)
    port = lsock.getsockname()[1]
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.create_connection(
            JoiningRecorder, loopback, port
        )
        assert protocol.trace == ["made"]
        assert protocol.transport is transport
        peer, _ = await accept(lsock)
        transport.write(b"ping")
        assert await read_exactly(peer, 4) == b"ping"
        await peer.send(b"pong")
        await peer.send_eof()
        await wait_until(lambda: "eof" in protocol.trace)
        await wait_until(lambda: len(protocol.trace) == 4)
        await peer.aclose()
    lsock.close()
    assert protocol.trace == ["made", ("data", b"pong"), "eof", ("lost", None)]


async def test_socket_info_and_tcp_nodelay(loopback: str) -> None:
    lsock = listener(loopback)
    port = lsock.getsockname()[1]
    async with protoport.open_loop() as loop:
        transport, _ = await loop.create_connection(JoiningRecorder, loopback, port)
        peer, peer_sees = await accept(lsock)
        raw = transport.get_extra_info("socket")
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert transport.get_extra_info("sockname") == raw.getsockname()
        assert transport.get_extra_info("peername") == raw.getpeername()
        assert transport.get_extra_info("peername") == lsock.getsockname()
        assert transport.get_extra_info("sockname") == peer_sees
        assert raw.family == lsock.family
        transport.close()
        await peer.aclose()
    lsock.close()


async def test_port_given_as_string() -> None:
    lsock = listener()
    port = lsock.getsockname()[1]
    async with protoport.open_loop() as loop:
        transport, _ = await loop.create_connection(
            JoiningRecorder, "127.0.0.1", str(port)
        )
        assert transport.get_extra_info("peername") == ("127.0.0.1", port)
        transport.close()
    lsock.close()


async def test_numeric_host_skips_the_resolver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lsock = listener()
    port = lsock.getsockname()[1]
    async with protoport.open_loop() as loop:
        resolver = FakeResolver([])
        monkeypatch.setattr(loop, "getaddrinfo", resolver)
        transport, _ = await loop.create_connection(JoiningRecorder, "127.0.0.1", port)
        transport.close()
    lsock.close()
    assert resolver.calls == []


async def test_refused_connection(loopback: str) -> None:
    bound, port = refused_port(loopback)
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(ConnectionRefusedError) as caught:
            await loop.create_connection(JoiningRecorder, loopback, port)
    bound.close()
    assert caught.value.errno == REFUSED
    assert str(caught.value) == refused_message(loopback, port)
    assert open_fds() <= before


async def test_unknown_host_raises_gaierror() -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(socket.gaierror) as caught:
            await loop.create_connection(JoiningRecorder, "no-such-host.invalid", 80)
    with pytest.raises(socket.gaierror) as expected:
        socket.getaddrinfo("no-such-host.invalid", 80, type=socket.SOCK_STREAM)
    assert caught.value.errno == expected.value.errno
    assert str(caught.value) == str(expected.value)


async def test_resolver_gets_family_proto_and_flags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lsock = listener()
    port = lsock.getsockname()[1]
    async with protoport.open_loop() as loop:
        resolver = FakeResolver([info_for("127.0.0.1", port)])
        monkeypatch.setattr(loop, "getaddrinfo", resolver)
        transport, _ = await loop.create_connection(
            JoiningRecorder,
            "server.example.invalid",
            port,
            family=socket.AF_INET,
            proto=socket.IPPROTO_TCP,
            flags=socket.AI_ADDRCONFIG,
        )
        transport.close()
    lsock.close()
    assert resolver.calls == [
        (
            "server.example.invalid",
            port,
            socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
            socket.AI_ADDRCONFIG,
        )
    ]


async def test_empty_resolver_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(loop, "getaddrinfo", FakeResolver([]))
        with pytest.raises(OSError, match=r"^getaddrinfo\(\) returned empty list$"):
            await loop.create_connection(JoiningRecorder, "server.example.invalid", 80)


# -- local_addr -----------------------------------------------------------------------


async def test_local_addr_is_the_source_address() -> None:
    lsock = listener()
    port = lsock.getsockname()[1]
    local = ("127.0.0.1", free_port())
    async with protoport.open_loop() as loop:
        transport, _ = await loop.create_connection(
            JoiningRecorder, "127.0.0.1", port, local_addr=local
        )
        peer, peer_sees = await accept(lsock)
        assert peer_sees == local
        assert transport.get_extra_info("sockname") == local
        transport.close()
        await peer.aclose()
    lsock.close()


async def test_local_addr_in_use() -> None:
    lsock = listener()
    taken = lsock.getsockname()
    in_use = os.strerror(errno.EADDRINUSE).lower()
    message = (
        f"[Errno {errno.EADDRINUSE}] error while attempting to bind on address "
        f"{taken!r}: [errno {errno.EADDRINUSE}] {in_use}"
    )
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(OSError, match=exactly(message)) as caught:
            await loop.create_connection(
                JoiningRecorder, "127.0.0.1", taken[1], local_addr=taken
            )
    lsock.close()
    assert type(caught.value) is OSError
    assert caught.value.errno == errno.EADDRINUSE
    assert open_fds() <= before


async def test_local_addr_of_another_family(monkeypatch: pytest.MonkeyPatch) -> None:
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(loop, "getaddrinfo", FakeResolver([info_for("::1", 9)]))
        message = f"no matching local address with family={socket.AF_INET6!r} found"
        with pytest.raises(OSError, match=exactly(message)) as caught:
            await loop.create_connection(
                JoiningRecorder,
                "v6only.example.invalid",
                9,
                local_addr=("127.0.0.1", 0),
            )
    assert type(caught.value) is OSError


# -- several addresses ----------------------------------------------------------------


async def test_first_address_refused_second_connects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound, bad = refused_port()
    lsock = listener()
    good = lsock.getsockname()[1]
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(
            loop,
            "getaddrinfo",
            FakeResolver([info_for("127.0.0.1", bad), info_for("127.0.0.1", good)]),
        )
        transport, protocol = await loop.create_connection(
            JoiningRecorder, "two.example.invalid", 80
        )
        assert transport.get_extra_info("peername") == ("127.0.0.1", good)
        assert protocol.trace == ["made"]
        transport.close()
    lsock.close()
    bound.close()


async def test_every_address_refused_multiple_exceptions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound1, port1 = refused_port()
    bound2, port2 = refused_port()
    before = open_fds()
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(
            loop,
            "getaddrinfo",
            FakeResolver([info_for("127.0.0.1", port1), info_for("127.0.0.1", port2)]),
        )
        message = (
            f"Multiple exceptions: {refused_message('127.0.0.1', port1)}, "
            f"{refused_message('127.0.0.1', port2)}"
        )
        with pytest.raises(OSError, match=exactly(message)) as caught:
            await loop.create_connection(JoiningRecorder, "two.example.invalid", 80)
    bound1.close()
    bound2.close()
    assert type(caught.value) is OSError
    assert open_fds() <= before


async def test_identical_errors_raise_one(monkeypatch: pytest.MonkeyPatch) -> None:
    bound, port = refused_port()
    async with protoport.open_loop() as loop:
        info = info_for("127.0.0.1", port)
        monkeypatch.setattr(loop, "getaddrinfo", FakeResolver([info, info]))
        with pytest.raises(ConnectionRefusedError) as caught:
            await loop.create_connection(JoiningRecorder, "twice.example.invalid", 80)
    bound.close()
    assert str(caught.value) == refused_message("127.0.0.1", port)


async def test_all_errors_gives_an_exception_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound1, port1 = refused_port()
    bound2, port2 = refused_port()
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(
            loop,
            "getaddrinfo",
            FakeResolver([info_for("127.0.0.1", port1), info_for("127.0.0.1", port2)]),
        )
        with pytest.raises(ExceptionGroup) as caught:
            await loop.create_connection(
                JoiningRecorder, "two.example.invalid", 80, all_errors=True
            )
    bound1.close()
    bound2.close()
    group = caught.value
    assert group.message == "create_connection failed"
    assert [type(exc) for exc in group.exceptions] == [ConnectionRefusedError] * 2
    assert [str(exc) for exc in group.exceptions] == [
        refused_message("127.0.0.1", port1),
        refused_message("127.0.0.1", port2),
    ]


async def test_all_errors_with_a_single_failure() -> None:
    bound, port = refused_port()
    async with protoport.open_loop() as loop:
        with pytest.raises(ExceptionGroup) as caught:
            await loop.create_connection(
                JoiningRecorder, "127.0.0.1", port, all_errors=True
            )
    bound.close()
    assert str(caught.value) == "create_connection failed (1 sub-exception)"
    (only,) = caught.value.exceptions
    assert isinstance(only, ConnectionRefusedError)


MIXED = [
    info_for("::1", 1),
    info_for("::1", 2),
    info_for("::1", 3),
    info_for("127.0.0.1", 4),
]


@pytest.mark.parametrize(
    ("kwargs", "order"),
    [
        pytest.param({}, [1, 2, 3, 4], id="no-interleave-keeps-the-order"),
        pytest.param({"interleave": 1}, [1, 4, 2, 3], id="interleave-alternates"),
        pytest.param({"interleave": 2}, [1, 2, 4, 3], id="interleave-first-count"),
        # happy_eyeballs_delay alone implies interleave=1.
        pytest.param(
            {"happy_eyeballs_delay": 5}, [1, 4, 2, 3], id="happy-eyeballs-delay-alone"
        ),
    ],
)
async def test_order_of_the_connection_attempts(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], order: list[int]
) -> None:
    # MIXED resolves port n to the address of its nth entry.
    spy = ConnectSpy(refuse_ports={1, 2, 3, 4})
    monkeypatch.setattr(_connect, "_sock_connect", spy)
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(loop, "getaddrinfo", FakeResolver(MIXED))
        with pytest.raises(OSError, match=r"^Multiple exceptions: "):
            await loop.create_connection(
                JoiningRecorder, "mixed.example.invalid", 80, **kwargs
            )
    assert spy.tried == [MIXED[port - 1][4] for port in order]


# -- Happy Eyeballs -------------------------------------------------------------------


async def test_happy_eyeballs_second_attempt_wins_after_the_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hang_port = 9  # never contacted: the spy holds this attempt
    lsock = listener()
    good = lsock.getsockname()[1]
    spy = ConnectSpy({hang_port})
    monkeypatch.setattr(_connect, "_sock_connect", spy)
    before = open_fds()
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(
            loop,
            "getaddrinfo",
            FakeResolver(
                [info_for("127.0.0.1", hang_port), info_for("127.0.0.1", good)]
            ),
        )
        started = anyio.current_time()
        with anyio.fail_after(5):
            transport, _ = await loop.create_connection(
                JoiningRecorder, "slow.example.invalid", 80, happy_eyeballs_delay=0.05
            )
        elapsed = anyio.current_time() - started
        assert transport.get_extra_info("peername") == ("127.0.0.1", good)
        transport.close()
    lsock.close()
    assert elapsed >= 0.05 - 0.005  # allow for the clock's rounding
    assert spy.tried == [("127.0.0.1", hang_port), ("127.0.0.1", good)]
    assert spy.cancelled == [("127.0.0.1", hang_port)]
    assert open_fds() <= before


async def test_happy_eyeballs_failure_starts_the_next_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound, bad = refused_port()
    lsock = listener()
    good = lsock.getsockname()[1]
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(
            loop,
            "getaddrinfo",
            FakeResolver([info_for("127.0.0.1", bad), info_for("127.0.0.1", good)]),
        )
        started = anyio.current_time()
        with anyio.fail_after(5):
            transport, _ = await loop.create_connection(
                JoiningRecorder, "two.example.invalid", 80, happy_eyeballs_delay=30
            )
        assert anyio.current_time() - started < 5
        assert transport.get_extra_info("peername") == ("127.0.0.1", good)
        transport.close()
    lsock.close()
    bound.close()


async def test_happy_eyeballs_every_attempt_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound1, port1 = refused_port()
    bound2, port2 = refused_port()
    before = open_fds()
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(
            loop,
            "getaddrinfo",
            FakeResolver([info_for("127.0.0.1", port1), info_for("127.0.0.1", port2)]),
        )
        with pytest.raises(ExceptionGroup) as caught:
            await loop.create_connection(
                JoiningRecorder,
                "two.example.invalid",
                80,
                happy_eyeballs_delay=0.25,
                all_errors=True,
            )
    bound1.close()
    bound2.close()
    assert [str(exc) for exc in caught.value.exceptions] == [
        refused_message("127.0.0.1", port1),
        refused_message("127.0.0.1", port2),
    ]
    assert open_fds() <= before


# -- sock= ----------------------------------------------------------------------------


async def test_connected_socket_given() -> None:
    lsock = listener()
    sock = socket.create_connection(lsock.getsockname(), timeout=5)
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.create_connection(JoiningRecorder, sock=sock)
        peer, _ = await accept(lsock)
        assert transport.get_extra_info("socket").fileno() == sock.fileno()
        assert transport.get_extra_info("peername") == lsock.getsockname()
        assert sock.gettimeout() == 0.0
        await peer.send(b"hello")
        await wait_until(lambda: len(protocol.trace) == 2)
        transport.write(b"back")
        assert await read_exactly(peer, 4) == b"back"
        transport.close()
        await wait_until(lambda: len(protocol.trace) == 3)
        await peer.aclose()
    lsock.close()
    assert protocol.trace == ["made", ("data", b"hello"), ("lost", None)]


# -- argument checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"host": "127.0.0.1", "port": 1, "server_hostname": "x"},
            "server_hostname is only meaningful with ssl",
        ),
        (
            {"port": 1, "ssl": True},
            "You must set server_hostname when using ssl without a host",
        ),
        (
            {"host": "127.0.0.1", "port": 1, "ssl_handshake_timeout": 1.0},
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        (
            {"host": "127.0.0.1", "port": 1, "ssl_shutdown_timeout": 1.0},
            "ssl_shutdown_timeout is only meaningful with ssl",
        ),
        (
            {"host": "127.0.0.1", "port": 1, "sock": "stream"},
            "host/port and sock can not be specified at the same time",
        ),
        (
            {"port": 1, "sock": "stream"},
            "host/port and sock can not be specified at the same time",
        ),
        ({}, "host and port was not specified and no sock specified"),
        # Checks come in asyncio's order: the first one that fails wins.
        (
            {"server_hostname": "x", "ssl_handshake_timeout": 1.0},
            "server_hostname is only meaningful with ssl",
        ),
        (
            {"ssl_shutdown_timeout": 1.0, "sock": "datagram"},
            "ssl_shutdown_timeout is only meaningful with ssl",
        ),
        (
            {"host": "127.0.0.1", "sock": "datagram"},
            "host/port and sock can not be specified at the same time",
        ),
    ],
)
async def test_create_connection_argument_checks(
    kwargs: dict[str, Any], message: str
) -> None:
    kwargs = dict(kwargs)  # the parameters are shared by both runtimes
    stream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if "sock" in kwargs:
        kwargs["sock"] = stream if kwargs["sock"] == "stream" else datagram
    try:
        async with protoport.open_loop() as loop:
            with pytest.raises(ValueError, match=exactly(message)):
                await loop.create_connection(JoiningRecorder, **kwargs)
        # The caller's sockets are left alone.
        assert stream.fileno() >= 0
        assert datagram.fileno() >= 0
    finally:
        stream.close()
        datagram.close()


async def test_create_connection_rejects_a_datagram_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        async with protoport.open_loop() as loop:
            message = f"A Stream Socket was expected, got {sock!r}"
            with pytest.raises(ValueError, match=exactly(message)):
                await loop.create_connection(JoiningRecorder, sock=sock)


async def test_create_connection_rejects_an_ssl_socket() -> None:
    context = ssl.create_default_context()
    with context.wrap_socket(
        socket.socket(), server_hostname="x", do_handshake_on_connect=False
    ) as sock:
        async with protoport.open_loop() as loop:
            with pytest.raises(
                TypeError, match=r"^Socket cannot be of type SSLSocket$"
            ):
                await loop.create_connection(JoiningRecorder, sock=sock)
            with pytest.raises(
                TypeError, match=r"^Socket cannot be of type SSLSocket$"
            ):
                await loop.connect_accepted_socket(JoiningRecorder, sock)


# -- create_unix_connection -----------------------------------------------------------


def unix_listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.fspath(path))
    sock.listen(8)
    sock.settimeout(5)
    return sock


async def test_unix_connection(tmp_path: Path) -> None:
    path = tmp_path / "s"
    lsock = unix_listener(path)
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.create_unix_connection(JoiningRecorder, path)
        peer, _ = await accept(lsock)
        assert transport.get_extra_info("peername") == os.fspath(path)
        transport.write(b"over unix")
        assert await read_exactly(peer, 9) == b"over unix"
        await peer.send(b"reply")
        await peer.aclose()
        await wait_until(lambda: len(protocol.trace) == 4)
    lsock.close()
    assert protocol.trace == ["made", ("data", b"reply"), "eof", ("lost", None)]


async def test_unix_connection_path_as_str_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "s"
    lsock = unix_listener(path)
    async with protoport.open_loop() as loop:
        for target in (str(path), os.fsencode(path)):
            transport, _ = await loop.create_unix_connection(JoiningRecorder, target)
            assert transport.get_extra_info("socket").family == socket.AF_UNIX
            transport.close()
    lsock.close()


async def test_unix_connection_missing_path(tmp_path: Path) -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(JoiningRecorder, tmp_path / "absent")
    assert open_fds() <= before


async def test_unix_connection_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound.bind(os.fspath(path))  # bound, never listening
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(ConnectionRefusedError):
            await loop.create_unix_connection(JoiningRecorder, path)
    bound.close()
    assert open_fds() <= before


async def test_unix_connection_with_a_socket() -> None:
    mine, theirs = socket.socketpair()
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.create_unix_connection(
            JoiningRecorder, sock=mine
        )
        peer = await SocketStream.from_socket(theirs)
        await peer.send(b"hi")
        transport.write(b"yo")
        assert await read_exactly(peer, 2) == b"yo"
        await wait_until(lambda: len(protocol.trace) == 2)
        transport.close()
        await wait_until(lambda: len(protocol.trace) == 3)
        await peer.aclose()
    assert protocol.trace == ["made", ("data", b"hi"), ("lost", None)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"path": "p", "server_hostname": "x"},
            "server_hostname is only meaningful with ssl",
        ),
        (
            {"path": "p", "ssl_handshake_timeout": 1.0},
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        (
            {"path": "p", "ssl_shutdown_timeout": 1.0},
            "ssl_shutdown_timeout is only meaningful with ssl",
        ),
        ({"path": "p", "ssl": True}, "you have to pass server_hostname when using ssl"),
        (
            {"path": "p", "sock": "unix"},
            "path and sock can not be specified at the same time",
        ),
        ({}, "no path and sock were specified"),
        (
            {"server_hostname": "x", "ssl_shutdown_timeout": 1.0},
            "server_hostname is only meaningful with ssl",
        ),
    ],
)
async def test_unix_connection_argument_checks(
    kwargs: dict[str, Any], message: str
) -> None:
    kwargs = dict(kwargs)  # the parameters are shared by both runtimes
    mine, theirs = socket.socketpair()
    if "sock" in kwargs:
        kwargs["sock"] = mine
    try:
        async with protoport.open_loop() as loop:
            with pytest.raises(ValueError, match=exactly(message)):
                await loop.create_unix_connection(JoiningRecorder, **kwargs)
    finally:
        mine.close()
        theirs.close()


@pytest.mark.parametrize(
    "kind",
    [(socket.AF_INET, socket.SOCK_STREAM), (socket.AF_UNIX, socket.SOCK_DGRAM)],
)
async def test_unix_connection_rejects_other_sockets(kind: tuple[int, int]) -> None:
    with socket.socket(*kind) as sock:
        async with protoport.open_loop() as loop:
            message = f"A UNIX Domain Stream Socket was expected, got {sock!r}"
            with pytest.raises(ValueError, match=exactly(message)):
                await loop.create_unix_connection(JoiningRecorder, sock=sock)


# -- connect_accepted_socket ----------------------------------------------------------


async def test_connect_accepted_socket() -> None:
    mine, theirs = socket.socketpair()
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_accepted_socket(JoiningRecorder, mine)
        peer = await SocketStream.from_socket(theirs)
        assert transport.get_extra_info("socket").fileno() == mine.fileno()
        transport.write(b"accepted")
        assert await read_exactly(peer, 8) == b"accepted"
        await peer.send(b"ok")
        await peer.send_eof()
        await wait_until(lambda: len(protocol.trace) == 4)
        await peer.aclose()
    assert protocol.trace == ["made", ("data", b"ok"), "eof", ("lost", None)]


async def test_connect_accepted_tcp_socket() -> None:
    lsock = listener()
    client = socket.create_connection(lsock.getsockname(), timeout=5)
    server_side, _ = lsock.accept()
    async with protoport.open_loop() as loop:
        transport, _ = await loop.connect_accepted_socket(JoiningRecorder, server_side)
        raw = transport.get_extra_info("socket")
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert transport.get_extra_info("peername") == client.getsockname()
        transport.close()
    client.close()
    lsock.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"ssl_handshake_timeout": 1.0},
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        (
            {"ssl_shutdown_timeout": 1.0},
            "ssl_shutdown_timeout is only meaningful with ssl",
        ),
    ],
)
async def test_connect_accepted_socket_argument_checks(
    kwargs: dict[str, Any], message: str
) -> None:
    mine, theirs = socket.socketpair()
    try:
        async with protoport.open_loop() as loop:
            with pytest.raises(ValueError, match=exactly(message)):
                await loop.connect_accepted_socket(JoiningRecorder, mine, **kwargs)
    finally:
        mine.close()
        theirs.close()


async def test_connect_accepted_socket_rejects_a_datagram_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        async with protoport.open_loop() as loop:
            # The socket type is checked before the TLS arguments.
            message = f"A Stream Socket was expected, got {sock!r}"
            with pytest.raises(ValueError, match=exactly(message)):
                await loop.connect_accepted_socket(
                    JoiningRecorder, sock, ssl_handshake_timeout=1.0
                )


# -- name resolution ------------------------------------------------------------------


async def test_getaddrinfo_matches_the_socket_module() -> None:
    async with protoport.open_loop() as loop:
        assert await loop.getaddrinfo("127.0.0.1", 80) == socket.getaddrinfo(
            "127.0.0.1", 80
        )
        got = await loop.getaddrinfo(
            "127.0.0.1", "80", family=socket.AF_INET, type=socket.SOCK_STREAM
        )
        assert got == socket.getaddrinfo(
            "127.0.0.1", "80", socket.AF_INET, socket.SOCK_STREAM
        )


async def test_getaddrinfo_errors_are_the_socket_module_errors() -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(socket.gaierror) as caught:
            await loop.getaddrinfo("127.0.0.1", 80, flags=-12345)
    with pytest.raises(socket.gaierror) as expected:
        socket.getaddrinfo("127.0.0.1", 80, flags=-12345)
    assert caught.value.args == expected.value.args


async def test_getnameinfo() -> None:
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    async with protoport.open_loop() as loop:
        assert await loop.getnameinfo(("127.0.0.1", 80), flags) == ("127.0.0.1", "80")


# -- failures and cancellation ---------------------------------------------------------


class FactoryFailed(Exception):
    pass


def failing_factory() -> asyncio.Protocol:
    raise FactoryFailed("no protocol today")


async def test_factory_raising_closes_the_socket() -> None:
    lsock = listener()
    port = lsock.getsockname()[1]
    before = open_fds()
    async with protoport.open_loop() as loop:
        inside = open_fds()  # the loop may hold a descriptor of its own
        with pytest.raises(FactoryFailed, match="no protocol today"):
            await loop.create_connection(failing_factory, "127.0.0.1", port)
        assert open_fds() <= inside
        # The peer sees the connection closed.
        peer, _ = await accept(lsock)
        with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
            await peer.receive()
        await peer.aclose()
    lsock.close()
    assert open_fds() <= before


async def test_factory_raising_on_a_unix_connection(tmp_path: Path) -> None:
    lsock = unix_listener(tmp_path / "s")
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(FactoryFailed):
            await loop.create_unix_connection(failing_factory, tmp_path / "s")
    assert open_fds() <= before
    lsock.close()


async def test_cancelled_connect_leaks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = ConnectSpy({9})
    monkeypatch.setattr(_connect, "_sock_connect", spy)
    made: list[JoiningRecorder] = []

    def factory() -> JoiningRecorder:
        made.append(JoiningRecorder())
        return made[-1]

    before = open_fds()
    async with protoport.open_loop() as loop:
        inside = open_fds()  # the loop may hold a descriptor of its own
        with anyio.move_on_after(0.02) as scope:
            await loop.create_connection(factory, "127.0.0.1", 9)
        assert scope.cancelled_caught
        assert open_fds() <= inside
    assert spy.cancelled == [("127.0.0.1", 9)]
    assert made == []
    assert open_fds() <= before


async def test_cancelled_happy_eyeballs_leaks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = ConnectSpy({7, 9})
    monkeypatch.setattr(_connect, "_sock_connect", spy)
    before = open_fds()
    async with protoport.open_loop() as loop:
        monkeypatch.setattr(
            loop,
            "getaddrinfo",
            FakeResolver([info_for("127.0.0.1", 7), info_for("127.0.0.1", 9)]),
        )
        with anyio.move_on_after(0.05) as scope:
            await loop.create_connection(
                JoiningRecorder, "hangs.example.invalid", 80, happy_eyeballs_delay=0.01
            )
        assert scope.cancelled_caught
    assert sorted(spy.cancelled) == [("127.0.0.1", 7), ("127.0.0.1", 9)]
    assert open_fds() <= before


async def closed_at_once(made: list[JoiningRecorder], lsock: socket.socket) -> None:
    """The one protocol in *made* saw its connection made and then lost at
    once, and the peer accepted from *lsock* reads the end of the stream."""
    (protocol,) = made
    await wait_until(lambda: len(protocol.trace) == 2)
    assert protocol.trace == ["made", ("lost", None)]
    peer, _ = await accept(lsock)
    with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
        await peer.receive()
    await peer.aclose()


async def test_cancelled_as_the_transport_is_made_closes_it() -> None:
    lsock = listener()
    port = lsock.getsockname()[1]
    made: list[JoiningRecorder] = []
    before = open_fds()
    async with protoport.open_loop() as loop:
        with anyio.CancelScope() as scope:

            def factory() -> JoiningRecorder:
                # The caller is cancelled while connection_made() is due.
                scope.cancel()
                made.append(JoiningRecorder())
                return made[-1]

            await loop.create_connection(factory, "127.0.0.1", port)
        assert scope.cancelled_caught
        await closed_at_once(made, lsock)
    lsock.close()
    assert open_fds() <= before


def full_listener() -> tuple[socket.socket, socket.socket]:
    """A listening socket whose backlog is full, and the connection that fills
    it: a connect to it hangs until the kernel gives up retrying (minutes)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    return lsock, socket.create_connection(lsock.getsockname())


async def test_cancelled_in_a_task_of_the_loop_leaks_nothing() -> None:
    """Cancelling the task that awaits create_connection() while the connect
    waits for the peer closes the socket, as in asyncio."""
    lsock, filler = full_listener()
    before = open_fds()
    async with protoport.open_loop() as loop:
        inside = open_fds()

        async def connect() -> Any:
            return await loop.create_connection(JoiningRecorder, *lsock.getsockname())

        task = loop.create_task(connect())
        await anyio.sleep(0.05)
        assert not task.done()
        task.cancel()
        with anyio.fail_after(5):
            await wait_until(task.done)
        assert task.cancelled()
        assert open_fds() <= inside
    filler.close()
    lsock.close()
    assert open_fds() <= before


async def test_cancelled_in_a_task_as_the_transport_is_made_closes_it() -> None:
    lsock = listener()
    port = lsock.getsockname()[1]
    made: list[JoiningRecorder] = []
    async with protoport.open_loop() as loop:

        async def connect() -> Any:
            def factory() -> JoiningRecorder:
                # The task is cancelled while connection_made() is due.
                task.cancel()
                made.append(JoiningRecorder())
                return made[-1]

            return await loop.create_connection(factory, "127.0.0.1", port)

        task = loop.create_task(connect())
        with anyio.fail_after(5):
            await wait_until(task.done)
        assert task.cancelled()
        await closed_at_once(made, lsock)
    lsock.close()


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
async def test_protocol_factory_runs_in_the_calling_task(
    tmp_path: Path, unix: bool
) -> None:
    """As in asyncio, a plain connection's protocol is made by the task that
    awaits create_connection()."""
    lsock = unix_listener(tmp_path / "s") if unix else listener()
    seen: list[Any] = []

    def factory() -> JoiningRecorder:
        seen.append(asyncio.current_task())
        return JoiningRecorder()

    async with protoport.open_loop() as loop:

        async def connect() -> asyncio.Task[Any] | None:
            if unix:
                transport, _ = await loop.create_unix_connection(
                    factory, tmp_path / "s"
                )
            else:
                transport, _ = await loop.create_connection(
                    factory, *lsock.getsockname()
                )
            transport.close()
            return asyncio.current_task()

        task = loop.create_task(connect())
        assert await task is not None
        assert seen == [task]
    lsock.close()


async def test_create_connection_accepts_a_unix_stream_socket() -> None:
    mine, theirs = socket.socketpair()
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.create_connection(JoiningRecorder, sock=mine)
        peer = await SocketStream.from_socket(theirs)
        transport.write(b"unix")
        assert await read_exactly(peer, 4) == b"unix"
        await peer.aclose()
        await wait_until(lambda: len(protocol.trace) == 3)
    assert protocol.trace == ["made", "eof", ("lost", None)]
