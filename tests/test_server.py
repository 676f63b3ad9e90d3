"""Servers made by ``loop.create_server()`` and ``loop.create_unix_server()``:
binding, argument checks, serving and not serving, closing (with and without
clients), the exception handler on accept-side failures, running out of file
descriptors, many concurrent clients, and Unix socket files."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import socket
import stat
import uuid
from asyncio.trsock import TransportSocket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import ByteStream, SocketStream

import protoport
from _helpers import (
    Factory,
    Recorder,
    collect_errors,
    exactly,
    needs_ipv6,
    port_of,
    read_exactly,
    read_until_closed,
    wait_until,
)
from conftest import open_fds
from protoport._loop import _servers as _server

pytestmark = pytest.mark.anyio


# -- helpers -----------------------------------------------------------------------


class Echo(Recorder):
    """Echoes what it receives and records every callback. ``b"boom"`` makes
    ``data_received()`` raise."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if data == b"boom":
            raise ZeroDivisionError("boom")
        self.transport.write(data)


async def connect(port: int, host: str = "127.0.0.1") -> SocketStream:
    with anyio.fail_after(5):
        return await anyio.connect_tcp(host, port)


async def connect_unix(path: str | bytes) -> SocketStream:
    """Connect to a Unix socket, abstract names included (a listening socket
    takes the connection at once, so a blocking connect() does not wait)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return await SocketStream.from_socket(sock)


async def wait_closed(server: asyncio.AbstractServer) -> None:
    with anyio.fail_after(5):
        await server.wait_closed()


async def echo(stream: ByteStream, data: bytes) -> bytes:
    await stream.send(data)
    return await read_exactly(stream, len(data))


def task_ids() -> set[int]:
    return {task.id for task in anyio.get_running_tasks()}


def lowest_free_fd() -> int:
    """The descriptor number the next open() would get."""
    fd = 0
    while True:
        try:
            os.fstat(fd)
        except OSError:
            return fd
        fd += 1


def assert_refused(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        assert probe.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED


@contextmanager
def nofile_soft_limit(limit: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- binding -----------------------------------------------------------------------


async def test_echo_server_on_loopback() -> None:
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        assert server.get_loop() is loop
        assert server.is_serving()
        (listening,) = server.sockets
        assert isinstance(listening, TransportSocket)
        assert listening.family == socket.AF_INET
        assert listening.type == socket.SOCK_STREAM
        host, port = listening.getsockname()
        assert host == "127.0.0.1"
        assert port != 0
        assert repr(server) == f"<Server sockets={server.sockets!r}>"

        client = await connect(port)
        client_address = client.extra(anyio.abc.SocketAttribute.local_address)
        assert await echo(client, b"ping") == b"ping"
        await client.send_eof()
        assert await read_until_closed(client) == b""
        await client.aclose()
        await wait_until(factory.lost_count)

        (protocol,) = factory.made
        assert protocol.trace == ["made", ("data", b"ping"), "eof", ("lost", None)]
        transport = protocol.transport
        assert transport.get_extra_info("peername") == client_address
        assert transport.get_extra_info("sockname") == ("127.0.0.1", port)
        server.close()
        await wait_closed(server)


@pytest.mark.parametrize("host", [None, ""])
async def test_no_host_listens_on_every_interface(host: str | None) -> None:
    expected = {
        (info[0], info[4][0])
        for info in socket.getaddrinfo(
            None, 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    }
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Factory(Echo), host, 0)
        got = {(s.family, s.getsockname()[0]) for s in server.sockets}
        assert got == expected
        assert (socket.AF_INET, "0.0.0.0") in got
        for listening in server.sockets:
            if listening.family == socket.AF_INET6:
                # One socket per family, as asyncio does.
                assert listening.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        ipv4 = next(s for s in server.sockets if s.family == socket.AF_INET)
        client = await connect(ipv4.getsockname()[1])
        assert await echo(client, b"any") == b"any"
        await client.aclose()
        server.close()


async def test_family_limits_the_addresses() -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Factory(Echo), None, 0, family=socket.AF_INET)
        assert [(s.family, s.getsockname()[0]) for s in server.sockets] == [
            (socket.AF_INET, "0.0.0.0")
        ]
        server.close()


@needs_ipv6
async def test_sequence_of_hosts() -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Factory(Echo), ["127.0.0.1", "::1"], 0)
        by_family = {s.family: s for s in server.sockets}
        assert set(by_family) == {socket.AF_INET, socket.AF_INET6}
        assert by_family[socket.AF_INET6].getsockname()[0] == "::1"
        v4 = await connect(by_family[socket.AF_INET].getsockname()[1])
        v6 = await connect(by_family[socket.AF_INET6].getsockname()[1], "::1")
        assert await echo(v4, b"four") == b"four"
        assert await echo(v6, b"six") == b"six"
        await v4.aclose()
        await v6.aclose()
        server.close()


async def test_repeated_hosts_are_bound_once() -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Factory(Echo), ["127.0.0.1", "127.0.0.1"], 0)
        assert len(server.sockets) == 1
        server.close()


async def test_socket_options() -> None:
    async with protoport.open_loop() as loop:
        default = await loop.create_server(Factory(Echo), "127.0.0.1", 0)
        listening = default.sockets[0]
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert not listening.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        assert not listening.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)

        tuned = await loop.create_server(
            Factory(Echo),
            "127.0.0.1",
            0,
            reuse_address=False,
            reuse_port=True,
            keep_alive=True,
        )
        listening = tuned.sockets[0]
        assert not listening.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        default.close()
        tuned.close()


async def test_reuse_port_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(
            ValueError, match=r"^reuse_port not supported by socket module$"
        ):
            await loop.create_server(Factory(Echo), "127.0.0.1", 0, reuse_port=True)
    assert open_fds() == before


async def test_existing_socket() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Factory(Echo), sock=sock)
        (listening,) = server.sockets
        assert listening.fileno() == sock.fileno()
        client = await connect(sock.getsockname()[1])
        assert await echo(client, b"given") == b"given"
        await client.aclose()
        server.close()
        assert sock.fileno() == -1  # the server owns it


async def test_bind_conflict() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    message = (
        f"[Errno {errno.EADDRINUSE}] error while attempting to bind on "
        f"address ('127.0.0.1', {port}): [errno 98] address already in use"
    )
    try:
        async with protoport.open_loop() as loop:
            before = open_fds()
            with pytest.raises(OSError, match=exactly(message)) as info:
                await loop.create_server(Factory(Echo), "127.0.0.1", port)
            assert info.value.errno == errno.EADDRINUSE
            # The first address binds, the second fails: the first socket is
            # closed again.
            with pytest.raises(OSError, match=exactly(message)):
                await loop.create_server(
                    Factory(Echo), ["127.0.0.2", "127.0.0.1"], port
                )
            assert open_fds() == before
            assert not loop._servers
    finally:
        taken.close()


async def test_host_name_is_resolved() -> None:
    expected = {
        (info[0], info[4][0])
        for info in socket.getaddrinfo(
            "localhost", 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    }
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Factory(Echo), "localhost", 0)
        got = {(s.family, s.getsockname()[0]) for s in server.sockets}
        # Every address the stdlib gives (an IPv6 one may be skipped when the
        # family is not enabled, as asyncio does).
        assert (socket.AF_INET, "127.0.0.1") in got
        assert got <= expected
        client = await connect(
            port_of(server, [s.family for s in server.sockets].index(socket.AF_INET))
        )
        assert await echo(client, b"named") == b"named"
        await client.aclose()
        server.close()


# -- argument checks ---------------------------------------------------------------


def ssl_without_context_errors(**where: Any) -> list[Any]:
    """The ssl arguments refused without an SSL context, given *where* the server
    would listen."""
    return [
        pytest.param(
            {**where, "ssl": True},
            TypeError,
            "ssl argument must be an SSLContext or None",
            id="ssl-bool",
        ),
        pytest.param(
            {**where, "ssl_handshake_timeout": 1.0},
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
            id="handshake-timeout",
        ),
        pytest.param(
            {**where, "ssl_shutdown_timeout": 1.0},
            ValueError,
            "ssl_shutdown_timeout is only meaningful with ssl",
            id="shutdown-timeout",
        ),
    ]


def tcp_argument_errors() -> list[Any]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    return [
        pytest.param(
            {"host": "127.0.0.1", "port": 0, "sock": tcp},
            ValueError,
            "host/port and sock can not be specified at the same time",
            id="host-and-sock",
        ),
        pytest.param(
            {}, ValueError, "Neither host/port nor sock were specified", id="nothing"
        ),
        pytest.param(
            {"sock": udp},
            ValueError,
            f"A Stream Socket was expected, got {udp!r}",
            id="datagram-sock",
        ),
        *ssl_without_context_errors(host="127.0.0.1", port=0),
    ]


@pytest.mark.parametrize(("kwargs", "error", "message"), tcp_argument_errors())
async def test_create_server_argument_checks(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(error, match=exactly(message)):
            await loop.create_server(Factory(Echo), **kwargs)
        assert not loop._servers
    assert open_fds() == before


@pytest.mark.parametrize("family", ["tcp", "unix"])
async def test_a_backlog_listen_rejects_closes_the_sockets_at_once(
    family: str, tmp_path: Path
) -> None:
    # As asyncio, listen() raises its TypeError; the listening sockets were left
    # open until the loop closed (or the garbage collector came: the error is
    # kept here, and its traceback with it).
    path = tmp_path / "server.sock"
    async with protoport.open_loop() as loop:
        before = open_fds()
        if family == "tcp":  # every interface: one socket per family
            create = partial(loop.create_server, Factory(Echo), None, 0)
        else:
            create = partial(loop.create_unix_server, Factory(Echo), path)
        with pytest.raises(
            TypeError, match=exactly("'str' object cannot be interpreted as an integer")
        ) as info:
            await create(backlog="x")
        assert open_fds() == before
        assert not loop._servers
        assert not path.exists()
        del info


def unix_argument_errors() -> list[Any]:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    unix_dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    return [
        pytest.param(
            {"path": "\0protoport-unused", "sock": unix},
            ValueError,
            "path and sock can not be specified at the same time",
            id="path-and-sock",
        ),
        pytest.param(
            {},
            ValueError,
            "path was not specified, and no sock specified",
            id="nothing",
        ),
        pytest.param(
            {"sock": tcp},
            ValueError,
            f"A UNIX Domain Stream Socket was expected, got {tcp!r}",
            id="tcp-sock",
        ),
        pytest.param(
            {"sock": unix_dgram},
            ValueError,
            f"A UNIX Domain Stream Socket was expected, got {unix_dgram!r}",
            id="datagram-sock",
        ),
        *ssl_without_context_errors(path="\0protoport-unused"),
    ]


@pytest.mark.parametrize(("kwargs", "error", "message"), unix_argument_errors())
async def test_create_unix_server_argument_checks(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        with pytest.raises(error, match=exactly(message)):
            await loop.create_unix_server(Factory(Echo), **kwargs)
        assert not loop._servers
    assert open_fds() == before


# -- serving -----------------------------------------------------------------------


async def test_start_serving_false_does_not_listen() -> None:
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0, start_serving=False)
        assert not server.is_serving()
        port = port_of(server)
        # As in asyncio, the socket is bound but listen() waits for start_serving().
        assert_refused(port)

        await server.start_serving()
        assert server.is_serving()
        await server.start_serving()  # again: nothing changes
        client = await connect(port)
        assert await echo(client, b"now") == b"now"
        await client.aclose()
        await wait_until(factory.lost_count)
        assert len(factory.made) == 1
        server.close()


async def test_start_serving_false_with_listening_socket() -> None:
    """Connections the kernel queued before start_serving() are served once it
    is called; the protocol factory is not called before."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, sock=sock, start_serving=False)
        client = await connect(sock.getsockname()[1])
        await client.send(b"early")
        await anyio.sleep(0.05)  # a chance for a (wrong) accept to happen
        assert factory.made == []
        assert not server.is_serving()

        await server.start_serving()
        assert await read_exactly(client, 5) == b"early"
        assert len(factory.made) == 1
        await client.aclose()
        server.close()
        await wait_closed(server)


async def test_serve_forever_twice_and_cancel() -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(
            Factory(Echo), "127.0.0.1", 0, start_serving=False
        )
        port = port_of(server)
        outcome: list[str] = []

        async def serve() -> None:
            try:
                await server.serve_forever()
            except anyio.get_cancelled_exc_class():
                outcome.append("cancelled")
                raise

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            await wait_until(server.is_serving)
            client = await connect(port)
            assert await echo(client, b"x") == b"x"
            await client.aclose()
            expected = f"server {server!r} is already being awaited on serve_forever()"
            with pytest.raises(RuntimeError, match=exactly(expected)):
                await server.serve_forever()
            tg.cancel_scope.cancel()

        assert outcome == ["cancelled"]
        # Cancelling serve_forever() closed the server.
        assert not server.is_serving()
        assert server.sockets == ()
        assert_refused(port)


async def test_serve_forever_after_close() -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Factory(Echo), "127.0.0.1", 0)
        server.close()
        expected = f"server {server!r} is closed"
        assert expected == "server <Server sockets=()> is closed"
        with pytest.raises(RuntimeError, match=exactly(expected)):
            await server.serve_forever()
        with pytest.raises(RuntimeError, match=exactly(expected)):
            await server.start_serving()


async def test_cancelled_serve_forever_closes_the_server_and_returns_at_once() -> None:
    """Cancelling serve_forever() closes the server and propagates at once; the
    connected clients stay connected (waiting for them could hang forever)."""
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        client = await connect(port_of(server))
        assert await echo(client, b"a") == b"a"
        with anyio.fail_after(5):
            with anyio.CancelScope() as scope:
                loop.call_later(0.01, scope.cancel)
                await server.serve_forever()
        assert scope.cancelled_caught
        assert server.sockets == ()
        assert not server.is_serving()
        # Closed, but the client is still connected and served.
        assert await echo(client, b"still") == b"still"
        await client.aclose()
        with anyio.fail_after(5):
            await server.wait_closed()
        assert factory.made[0].trace[-1] == ("lost", None)


async def test_close_ends_serve_forever_once_clients_are_gone() -> None:
    """close() from elsewhere ends serve_forever() after the last client is gone.
    (asyncio raises CancelledError there without being cancelled; protoport
    returns normally, which both runtimes can express.)"""
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0, start_serving=False)
        returned = anyio.Event()

        async def serve() -> None:
            await server.serve_forever()
            returned.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            await wait_until(server.is_serving)
            client = await connect(port_of(server))
            assert await echo(client, b"a") == b"a"
            server.close()
            assert await echo(client, b"b") == b"b"
            assert not returned.is_set()
            await client.aclose()
            with anyio.fail_after(5):
                await returned.wait()
        assert factory.made[0].trace[-1] == ("lost", None)


# -- closing -----------------------------------------------------------------------


async def test_close_keeps_clients_and_wait_closed_waits_for_them() -> None:
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = port_of(server)
        first = await connect(port)
        second = await connect(port)
        assert await echo(first, b"1") == b"1"
        assert await echo(second, b"2") == b"2"
        waited = anyio.Event()

        async def waiter() -> None:
            await server.wait_closed()
            waited.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            server.close()
            server.close()  # idempotent
            assert not server.is_serving()
            assert server.sockets == ()
            assert_refused(port)

            # Clients keep working after close().
            assert await echo(first, b"still one") == b"still one"
            assert await echo(second, b"still two") == b"still two"

            await first.aclose()
            await factory.made[0].lost.wait()
            await anyio.sleep(0.01)
            assert not waited.is_set()
            await second.aclose()
            with anyio.fail_after(5):
                await waited.wait()
        # Returns at once from now on.
        with anyio.fail_after(1):
            await server.wait_closed()
        assert [p.trace[-1] for p in factory.made] == [("lost", None)] * 2


async def test_wait_closed_before_close_waits_for_close() -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Factory(Echo), "127.0.0.1", 0)
        waited = anyio.Event()

        async def waiter() -> None:
            await server.wait_closed()
            waited.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            # Open and without clients: still waits (asyncio 3.12.1+).
            assert not waited.is_set()
            server.close()
            with anyio.fail_after(5):
                await waited.wait()


async def test_close_clients() -> None:
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        clients = [await connect(port_of(server)) for _ in range(3)]
        for client in clients:
            assert await echo(client, b"hi") == b"hi"
        server.close()
        server.close_clients()
        await wait_closed(server)
        for client in clients:
            assert await read_until_closed(client) == b""
            await client.aclose()
        assert [p.trace for p in factory.made] == [
            ["made", ("data", b"hi"), ("lost", None)]
        ] * 3


async def test_abort_clients() -> None:
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        clients = [await connect(port_of(server)) for _ in range(3)]
        for client in clients:
            assert await echo(client, b"hi") == b"hi"
        server.abort_clients()
        await wait_until(lambda: factory.lost_count() == 3)
        # The server itself keeps serving.
        assert server.is_serving()
        late = await connect(port_of(server))
        assert await echo(late, b"late") == b"late"
        for client in clients:
            assert await read_until_closed(client) == b""
            await client.aclose()
        await late.aclose()
        assert [p.trace for p in factory.made[:3]] == [
            ["made", ("data", b"hi"), ("lost", None)]
        ] * 3
        server.close()
        await wait_closed(server)


async def test_async_with_server() -> None:
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        async with server as entered:
            assert entered is server
            client = await connect(port_of(server))
            assert await echo(client, b"ctx") == b"ctx"
            await client.aclose()
        assert server.sockets == ()
        assert not server.is_serving()
        assert factory.made[0].trace[-1] == ("lost", None)


async def test_leaving_open_loop_closes_servers_and_clients() -> None:
    factory = Factory(Echo)
    fds = open_fds()
    tasks = task_ids()
    clients: list[SocketStream] = []
    async with protoport.open_loop() as loop:
        servers = [await loop.create_server(factory, "127.0.0.1", 0) for _ in "ab"]
        unix = await loop.create_unix_server(factory, f"\0protoport-{uuid.uuid4().hex}")
        for server in servers:
            for _ in range(2):
                client = await connect(port_of(server))
                assert await echo(client, b"x") == b"x"
                clients.append(client)
        # A connection the server has queued but not served yet.
        half = await connect(port_of(servers[0]))
    assert all(not s.is_serving() and s.sockets == () for s in [*servers, unix])
    assert len(factory.made) >= 4
    for protocol in factory.made:
        assert protocol.trace.count(("lost", None)) == 1
        assert protocol.trace[-1] == ("lost", None)
    for client in [*clients, half]:
        assert await read_until_closed(client) == b""
        await client.aclose()
    assert open_fds() == fds
    assert task_ids() == tasks


# -- failures ----------------------------------------------------------------------


async def test_failing_protocol_does_not_disturb_other_clients() -> None:
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)
        server = await loop.create_server(factory, "127.0.0.1", 0)
        good = await connect(port_of(server))
        bad = await connect(port_of(server))
        assert await echo(good, b"one") == b"one"
        await bad.send(b"boom")
        assert await read_until_closed(bad) == b""
        await wait_until(factory.lost_count)
        assert [e["message"] for e in errors] == [
            "Fatal error: protocol.data_received() call failed."
        ]
        assert isinstance(errors[0]["exception"], ZeroDivisionError)
        assert await echo(good, b"two") == b"two"
        await good.aclose()
        await bad.aclose()
        server.close()
        await wait_closed(server)
        bad_protocol = factory.made[1]
        assert bad_protocol.trace[:2] == ["made", ("data", b"boom")]
        assert isinstance(bad_protocol.trace[-1][1], ZeroDivisionError)


async def test_failing_protocol_factory_is_reported_and_serving_goes_on() -> None:
    calls = 0
    protocols: list[Echo] = []

    def factory() -> Echo:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ZeroDivisionError("no protocol")
        protocols.append(Echo())
        return protocols[-1]

    async with protoport.open_loop() as loop:
        fds = open_fds()
        errors = collect_errors(loop)
        server = await loop.create_server(factory, "127.0.0.1", 0)
        refused = await connect(port_of(server))
        assert await read_until_closed(refused) == b""
        await refused.aclose()
        assert len(errors) == 1
        (context,) = errors
        assert context["message"] == (
            "Error on transport creation for incoming connection"
        )
        assert isinstance(context["exception"], ZeroDivisionError)
        assert isinstance(context["socket"], TransportSocket)
        assert context["socket"].fileno() == -1  # the connection was closed

        served = await connect(port_of(server))
        assert await echo(served, b"ok") == b"ok"
        await served.aclose()
        server.close()
        await wait_closed(server)
        assert protocols[0].trace == [
            "made",
            ("data", b"ok"),
            "eof",
            ("lost", None),
        ]
        assert open_fds() == fds


async def test_a_factory_returning_none_leaves_nothing_behind() -> None:
    # Its transport is neither registered nor started: the loop's exit later
    # had it fail, tearing every connection down.
    async with protoport.open_loop() as loop:
        fds = open_fds()
        tasks = len(anyio.get_running_tasks())
        errors = collect_errors(loop)
        server = await loop.create_server(lambda: None, "127.0.0.1", 0)  # type: ignore[arg-type,return-value]
        tasks_serving = len(anyio.get_running_tasks())
        for _ in range(3):
            refused = await connect(port_of(server))
            assert await read_until_closed(refused) == b""
            await refused.aclose()
        await wait_until(lambda: len(errors) == 3)
        assert len(anyio.get_running_tasks()) == tasks_serving
        for context in errors:
            assert context["message"] == (
                "Error on transport creation for incoming connection"
            )
            assert isinstance(context["exception"], AttributeError)
            assert context["socket"].fileno() == -1
        server.close()
        await wait_closed(server)
        assert open_fds() == fds
        # (the accept task ends once it sees the close)
        await wait_until(lambda: len(anyio.get_running_tasks()) == tasks)


class FlakySocket(socket.socket):
    """A listening socket whose next accept() calls fail with given errors."""

    failures: list[OSError]

    def accept(self) -> tuple[socket.socket, Any]:
        if self.failures:
            raise self.failures.pop(0)
        return super().accept()


async def test_accept_errors_of_one_connection_are_skipped() -> None:
    sock = FlakySocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.failures = [
        ConnectionAbortedError(errno.ECONNABORTED, "aborted"),
        OSError(errno.EPROTO, "protocol error"),
    ]
    sock.bind(("127.0.0.1", 0))
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)
        server = await loop.create_server(factory, sock=sock)
        client = await connect(port_of(server))
        assert await echo(client, b"fine") == b"fine"
        await client.aclose()
        assert sock.failures == []
        assert errors == []
        server.close()
        await wait_closed(server)
        assert len(factory.made) == 1


async def test_other_accept_errors_are_reported_and_serving_goes_on() -> None:
    sock = FlakySocket(socket.AF_INET, socket.SOCK_STREAM)
    failure = PermissionError(errno.EPERM, "not permitted")
    sock.failures = [failure]
    sock.bind(("127.0.0.1", 0))
    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)
        server = await loop.create_server(Factory(Echo), sock=sock)
        client = await connect(port_of(server))
        assert await echo(client, b"fine") == b"fine"
        await client.aclose()
        (context,) = errors
        assert context["message"] == "socket.accept() failed"
        assert context["exception"] is failure
        assert isinstance(context["socket"], TransportSocket)
        server.close()
        await wait_closed(server)


async def test_protocol_factory_closing_the_server() -> None:
    """A connection accepted as the server closes still counts for
    wait_closed()."""
    servers: list[Any] = []
    protocols: list[Echo] = []

    def factory() -> Echo:
        servers[0].close()
        protocols.append(Echo())
        return protocols[-1]

    async with protoport.open_loop() as loop:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        servers.append(server)
        client = await connect(port_of(server))
        assert await echo(client, b"last") == b"last"
        assert server.sockets == ()
        waited = anyio.Event()

        async def waiter() -> None:
            await server.wait_closed()
            waited.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            assert not waited.is_set()
            await client.aclose()
            with anyio.fail_after(5):
                await waited.wait()
        assert protocols[0].trace[-1] == ("lost", None)


async def test_accept_survives_running_out_of_file_descriptors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delay = 0.2
    monkeypatch.setattr(_server, "ACCEPT_RETRY_DELAY", delay)
    factory = Factory(Echo)
    made_at: list[float] = []
    failed_at: list[float] = []

    def timed_factory() -> Echo:
        made_at.append(anyio.current_time())
        return factory()

    async with protoport.open_loop() as loop:
        errors: list[dict[str, Any]] = []

        def handler(_loop: object, context: dict[str, Any]) -> None:
            failed_at.append(anyio.current_time())
            errors.append(context)

        loop.set_exception_handler(handler)
        server = await loop.create_server(timed_factory, "127.0.0.1", 0)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setblocking(False)
        # Every descriptor below the limit is taken: accept() gets EMFILE.
        with nofile_soft_limit(lowest_free_fd()):
            assert raw.connect_ex(("127.0.0.1", port_of(server))) in (
                0,
                errno.EINPROGRESS,
            )
            await wait_until(lambda: errors)
        client = await SocketStream.from_socket(raw)
        assert await echo(client, b"later") == b"later"
        await client.aclose()

        (context,) = errors
        assert context["message"] == "socket.accept() out of system resource"
        assert context["exception"].errno == errno.EMFILE
        assert isinstance(context["socket"], TransportSocket)
        assert context["socket"].getsockname() == server.sockets[0].getsockname()
        # Accepting paused for the retry delay, then resumed.
        assert made_at[0] - failed_at[0] >= delay * 0.9
        server.close()
        await wait_closed(server)
        assert factory.made[0].trace[-1] == ("lost", None)


async def test_hundreds_of_concurrent_clients() -> None:
    n = 500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 2200:
        if hard != resource.RLIM_INFINITY and hard < 2 * n + 100:
            pytest.skip(f"needs {2 * n + 100} file descriptors, hard limit {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        fds = open_fds()
        tasks = task_ids()
        factory = Factory(Echo)
        connected = 0
        all_connected = anyio.Event()
        release = anyio.Event()
        replies: dict[int, bytes] = {}

        def message(i: int) -> bytes:
            return f"client {i} says hello ".encode() * 3

        async def client(port: int, i: int) -> None:
            nonlocal connected
            async with await connect(port) as stream:
                connected += 1
                if connected == n:
                    all_connected.set()
                await release.wait()
                replies[i] = await echo(stream, message(i))

        async with protoport.open_loop() as loop:
            # The clients connect in one burst, before the server's accept task
            # runs: the kernel's queue must hold them all (as with asyncio).
            server = await loop.create_server(factory, "127.0.0.1", 0, backlog=n)
            port = port_of(server)
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    for i in range(n):
                        tg.start_soon(client, port, i)
                    await all_connected.wait()
                    await wait_until(lambda: len(factory.made) == n)
                    # All of them are connected at the same time.
                    assert factory.lost_count() == 0
                    release.set()
                await wait_until(lambda: factory.lost_count() == n)
            assert replies == {i: message(i) for i in range(n)}
            assert all(p.trace[-2:] == ["eof", ("lost", None)] for p in factory.made)
        assert open_fds() == fds
        assert task_ids() == tasks
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- Unix sockets ------------------------------------------------------------------


async def test_unix_server_removes_its_socket_file(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    factory = Factory(Echo)
    async with protoport.open_loop() as loop:
        server = await loop.create_unix_server(factory, path)
        (listening,) = server.sockets
        assert isinstance(listening, TransportSocket)
        assert listening.family == socket.AF_UNIX
        assert listening.getsockname() == path
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        client = await connect_unix(path)
        assert await echo(client, b"unix") == b"unix"
        await client.aclose()
        server.close()
        assert not os.path.exists(path)
        await wait_closed(server)
        assert factory.made[0].trace == [
            "made",
            ("data", b"unix"),
            "eof",
            ("lost", None),
        ]


async def test_unix_server_keeps_its_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "kept.sock"
    async with protoport.open_loop() as loop:
        server = await loop.create_unix_server(
            Factory(Echo), path, cleanup_socket=False
        )
        server.close()
        assert stat.S_ISSOCK(os.stat(path).st_mode)


async def test_unix_server_on_given_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "given.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    async with protoport.open_loop() as loop:
        server = await loop.create_unix_server(Factory(Echo), sock=sock)
        client = await connect_unix(path)
        assert await echo(client, b"given") == b"given"
        await client.aclose()
        server.close()
        assert not os.path.exists(path)  # cleanup_socket applies here too


async def test_unix_server_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays behind
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    async with protoport.open_loop() as loop:
        server = await loop.create_unix_server(Factory(Echo), path)
        client = await connect_unix(path)
        assert await echo(client, b"fresh") == b"fresh"
        await client.aclose()
        server.close()


async def test_unix_server_leaves_other_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_bytes(b"precious")
    async with protoport.open_loop() as loop:
        message = f"[Errno {errno.EADDRINUSE}] Address {str(path)!r} is already in use"
        with pytest.raises(OSError, match=exactly(message)) as info:
            await loop.create_unix_server(Factory(Echo), path)
        assert info.value.errno == errno.EADDRINUSE
    assert path.read_bytes() == b"precious"


async def test_unix_cleanup_spares_a_replaced_file(tmp_path: Path) -> None:
    path = str(tmp_path / "moved.sock")
    async with protoport.open_loop() as loop:
        server = await loop.create_unix_server(Factory(Echo), path)
        os.unlink(path)
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.bind(path)  # a new file, with another inode, at the same path
        try:
            server.close()
            assert stat.S_ISSOCK(os.stat(path).st_mode)
        finally:
            other.close()


async def test_unix_server_in_the_abstract_namespace() -> None:
    name = f"\0protoport-{uuid.uuid4().hex}"
    async with protoport.open_loop() as loop:
        server = await loop.create_unix_server(Factory(Echo), name)
        assert server.sockets[0].getsockname() == name.encode()
        client = await connect_unix(name)
        assert await echo(client, b"abstract") == b"abstract"
        await client.aclose()
        message = f"[Errno {errno.EADDRINUSE}] Address {name!r} is already in use"
        with pytest.raises(OSError, match=exactly(message)):
            await loop.create_unix_server(Factory(Echo), name)
        server.close()
        await wait_closed(server)
