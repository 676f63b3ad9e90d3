"""TLS: ``ssl=`` on connections and servers, ``loop.start_tls()``, and the TLS
transport (extra info, no half-close, flow control, shutdown), against asyncio's
rules, defaults and messages. Certificates come from trustme; every connection
stays on the loopback interface or a Unix socket."""

from __future__ import annotations

import asyncio
import contextvars
import fcntl
import hashlib
import logging
import select
import socket
import ssl
import struct
import termios
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
import trio.testing
import trustme
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

import protoport
from _helpers import (
    Factory,
    Flag,
    JoiningRecorder,
    Recorder,
    check_writelines,
    collect_errors,
    exactly,
    listener,
    port_of,
    settle,
    wait_until,
)
from _streams import memory_stream_pair
from conftest import open_fds

pytestmark = pytest.mark.anyio

HOST = "127.0.0.1"


# -- certificates -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", HOST)


@pytest.fixture
def server_context(server_cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return context


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


# -- helpers ----------------------------------------------------------------------


async def serve_accepted(
    loop: protoport.Loop,
    lsock: socket.socket,
    factory: Callable[[], asyncio.Protocol],
    context: ssl.SSLContext,
    outcome: list[Any],
) -> None:
    """Accept one connection and run *factory* over it with TLS, through
    connect_accepted_socket(); append ``(transport, protocol)`` or the error."""
    conn, _ = await anyio.to_thread.run_sync(lsock.accept)
    try:
        outcome.append(await loop.connect_accepted_socket(factory, conn, ssl=context))
    except OSError as exc:
        outcome.append(exc)


async def in_thread(
    task_group: anyio.abc.TaskGroup, fn: Callable[..., object], *args: Any
) -> None:
    """Run a blocking peer (bounded by socket timeouts) in a worker thread."""
    task_group.start_soon(partial(anyio.to_thread.run_sync, fn, *args))


def tls_record_types(data: bytes) -> list[int]:
    """The content types of the TLS records that make up *data* exactly."""
    types = []
    i = 0
    while i < len(data):
        assert len(data) - i >= 5, "a truncated TLS record header"
        content_type, major = data[i], data[i + 1]
        assert content_type in (20, 21, 22, 23), f"not a TLS record: {data[i:]!r}"
        assert major == 3
        types.append(content_type)
        i += 5 + int.from_bytes(data[i + 3 : i + 5], "big")
    assert i == len(data)
    return types


def recv_all(sock: socket.socket) -> bytes:
    """Read until EOF (a reset counts as the end too)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# -- ssl= on connections and servers ----------------------------------------------


async def test_client_and_server_exchange_bytes_and_close_cleanly(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    before = open_fds()
    servers = Factory(partial(JoiningRecorder, echo=True))
    async with protoport.open_loop() as loop:
        calls = collect_errors(loop)
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        port = port_of(server)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port, ssl=client_context
        )
        assert client.trace == ["made"]
        transport.write(b"hello ")
        transport.writelines([b"over ", bytearray(b"TLS")])
        await wait_until(lambda: client.received() == b"hello over TLS")
        transport.close()
        assert transport.is_closing()
        await wait_until(lambda: client.lost.is_set() and servers.made[0].lost.is_set())
        server.close()
        await server.wait_closed()
    # As asyncio: the side that closes also gets eof_received() once the TLS
    # shutdown is complete.
    assert client.trace == ["made", ("data", b"hello over TLS"), "eof", ("lost", None)]
    assert servers.made[0].trace == [
        "made",
        ("data", b"hello over TLS"),
        "eof",
        ("lost", None),
    ]
    assert calls == []
    assert open_fds() <= before


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_server_under_a_bare_asyncio_run(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Under ``asyncio.run()`` in a program that never told sniffio which
    library runs, a TLS server and a plain one serve clients (what a server sets
    up must not need a task where it runs in a callback)."""

    async def main() -> list[bytes]:
        received = []
        async with protoport.open_loop() as loop:
            for ssl_context in (server_context, None):
                servers = Factory(partial(JoiningRecorder, echo=True))
                server = await loop.create_server(servers, HOST, 0, ssl=ssl_context)
                transport, client = await loop.create_connection(
                    JoiningRecorder,
                    HOST,
                    port_of(server),
                    ssl=client_context if ssl_context else None,
                )
                transport.write(b"ping")
                for _ in range(500):
                    if client.received() == b"ping":
                        break
                    await asyncio.sleep(0.01)
                received.append(client.received())
                transport.close()
                server.close()
        return received

    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(contextvars.Context().run(asyncio.run, main()))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    await anyio.to_thread.run_sync(thread.join, 30)
    assert outcome == [[b"ping", b"ping"]]


async def test_server_closing_first(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    servers = Factory(JoiningRecorder)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        _, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server), ssl=client_context
        )
        await wait_until(lambda: servers.made)
        servers.made[0].transport.write(b"bye")
        servers.made[0].transport.close()
        await wait_until(lambda: client.lost.is_set() and servers.made[0].lost.is_set())
        server.close()
    assert client.trace == ["made", ("data", b"bye"), "eof", ("lost", None)]
    assert servers.made[0].trace == ["made", "eof", ("lost", None)]


async def test_ssl_true_verifies_the_certificate_and_the_host_name(
    ca: trustme.CA,
    server_context: ssl.SSLContext,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ssl=True makes ssl.create_default_context(), which trusts what OpenSSL's
    # default locations say: point them at the test CA.
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
    async with protoport.open_loop() as loop:
        server = await loop.create_server(JoiningRecorder, HOST, 0, ssl=server_context)
        port = port_of(server)

        # The host is the name checked by default.
        transport, _ = await loop.create_connection(
            JoiningRecorder, HOST, port, ssl=True
        )
        context = transport.get_extra_info("sslcontext")
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert transport.get_extra_info("ssl_object").server_hostname == HOST
        transport.close()

        transport, _ = await loop.create_connection(
            JoiningRecorder, HOST, port, ssl=True, server_hostname="localhost"
        )
        assert transport.get_extra_info("ssl_object").server_hostname == "localhost"
        transport.close()

        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await loop.create_connection(
                JoiningRecorder, HOST, port, ssl=True, server_hostname="example.com"
            )
        assert info.value.verify_message == (
            "Hostname mismatch, certificate is not valid for 'example.com'."
        )

        # As asyncio: an empty server_hostname turns the host name check off,
        # the certificate is still verified.
        transport, _ = await loop.create_connection(
            JoiningRecorder, HOST, port, ssl=True, server_hostname=""
        )
        assert transport.get_extra_info("ssl_object").server_hostname is None
        assert not transport.get_extra_info("sslcontext").check_hostname
        transport.close()
        server.close()


async def test_ssl_true_rejects_an_unknown_issuer(
    server_context: ssl.SSLContext,
) -> None:
    # The system's trusted CAs do not include the test CA.
    lsock = listener()
    before = open_fds()
    async with protoport.open_loop() as loop:
        calls = collect_errors(loop)
        for hostname in (None, ""):
            made = Factory(JoiningRecorder)
            servers = Factory(JoiningRecorder)
            outcome: list[Any] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    serve_accepted, loop, lsock, servers, server_context, outcome
                )
                with pytest.raises(ssl.SSLCertVerificationError) as info:
                    await loop.create_connection(
                        made, HOST, port_of(lsock), ssl=True, server_hostname=hostname
                    )
            assert info.value.reason == "CERTIFICATE_VERIFY_FAILED"
            assert info.value.verify_message == "unable to get local issuer certificate"
            assert made.made == []
            # The server side sees the client leave in the middle of its
            # handshake, and never runs a protocol.
            assert len(outcome) == 1
            assert isinstance(outcome[0], ConnectionResetError)
            assert servers.made == []
    lsock.close()
    # A failed handshake is an error for the caller, not for the loop.
    assert calls == []
    assert open_fds() <= before


async def test_host_name_mismatch_with_a_context(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(JoiningRecorder, HOST, 0, ssl=server_context)
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await loop.create_connection(
                JoiningRecorder,
                HOST,
                port_of(server),
                ssl=client_context,
                server_hostname="example.com",
            )
        assert info.value.verify_message == (
            "Hostname mismatch, certificate is not valid for 'example.com'."
        )
        server.close()


async def test_a_stalled_handshake_times_out() -> None:
    # A plain TCP listener: the kernel accepts the connection, nobody answers.
    lsock = listener()
    before = open_fds()
    async with protoport.open_loop() as loop:
        start = time.monotonic()
        made = Factory(JoiningRecorder)
        with pytest.raises(ConnectionAbortedError) as info:
            await loop.create_connection(
                made,
                HOST,
                port_of(lsock),
                ssl=ssl.create_default_context(),
                ssl_handshake_timeout=0.2,
            )
        elapsed = time.monotonic() - start
    assert str(info.value) == (
        "SSL handshake is taking longer than 0.2 seconds: aborting the connection"
    )
    assert 0.15 < elapsed < 2
    assert made.made == []
    assert open_fds() <= before
    lsock.close()


async def test_a_server_drops_a_client_that_never_starts_the_handshake(
    server_context: ssl.SSLContext,
) -> None:
    servers = Factory(JoiningRecorder)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(
            servers, HOST, 0, ssl=server_context, ssl_handshake_timeout=0.2
        )
        raw = await anyio.connect_tcp(HOST, port_of(server))
        start = time.monotonic()
        with anyio.fail_after(5):
            try:
                data = await raw.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = b""
        elapsed = time.monotonic() - start
        await raw.aclose()
        server.close()
    assert data == b""
    assert 0.15 < elapsed < 2
    assert servers.made == []


async def test_tls_over_a_unix_socket(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    path = str(tmp_path / "tls.sock")
    servers = Factory(partial(JoiningRecorder, echo=True))
    async with protoport.open_loop() as loop:
        server = await loop.create_unix_server(servers, path, ssl=server_context)
        transport, client = await loop.create_unix_connection(
            JoiningRecorder, path, ssl=client_context, server_hostname="localhost"
        )
        assert transport.get_extra_info("ssl_object") is not None
        transport.write(b"unix")
        await wait_until(lambda: client.received() == b"unix")
        transport.close()
        await client.wait_lost()
        server.close()
    assert client.trace == ["made", ("data", b"unix"), "eof", ("lost", None)]


async def test_connect_accepted_socket_with_tls(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    lsock = listener()
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        accepted: list[Any] = []

        async def serve() -> None:
            conn, _ = await anyio.to_thread.run_sync(lsock.accept)
            accepted.append(
                await loop.connect_accepted_socket(
                    partial(JoiningRecorder, echo=True), conn, ssl=server_context
                )
            )

        tg.start_soon(serve)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(lsock), ssl=client_context
        )
        transport.write(b"accepted")
        await wait_until(lambda: client.received() == b"accepted")
        server_transport, _ = accepted[0]
        assert server_transport.get_extra_info("sslcontext") is server_context
        transport.close()
        await client.wait_lost()
    lsock.close()


def _tls_argument_error_calls() -> list[Any]:
    """(id, call(loop, port, sock, client_context, path), error, message)"""
    return [
        pytest.param(
            lambda loop, port, sock, context, path: loop.create_connection(
                JoiningRecorder, HOST, port, ssl=context, ssl_handshake_timeout=0
            ),
            ValueError,
            "ssl_handshake_timeout should be a positive number, got 0",
            id="connection-handshake-timeout",
        ),
        pytest.param(
            lambda loop, port, sock, context, path: loop.create_connection(
                JoiningRecorder, HOST, port, ssl=context, ssl_shutdown_timeout=-1
            ),
            ValueError,
            "ssl_shutdown_timeout should be a positive number, got -1",
            id="connection-shutdown-timeout",
        ),
        pytest.param(
            lambda loop, port, sock, context, path: loop.create_connection(
                JoiningRecorder, sock=sock, ssl=context
            ),
            ValueError,
            "You must set server_hostname when using ssl without a host",
            id="connection-sock-without-name",
        ),
        pytest.param(
            lambda loop, port, sock, context, path: loop.create_unix_connection(
                JoiningRecorder, path, ssl=context
            ),
            ValueError,
            "you have to pass server_hostname when using ssl",
            id="unix-without-name",
        ),
        pytest.param(
            lambda loop, port, sock, context, path: loop.create_server(
                JoiningRecorder, HOST, 0, ssl=True
            ),
            TypeError,
            "ssl argument must be an SSLContext or None",
            id="server-ssl-true",
        ),
        pytest.param(
            lambda loop, port, sock, context, path: loop.create_unix_server(
                JoiningRecorder, path, ssl=True
            ),
            TypeError,
            "ssl argument must be an SSLContext or None",
            id="unix-server-ssl-true",
        ),
        pytest.param(
            lambda loop, port, sock, context, path: loop.connect_accepted_socket(
                JoiningRecorder, sock, ssl=True
            ),
            ValueError,
            "Server side SSL needs a valid SSLContext",
            id="accepted-ssl-true",
        ),
    ]


@pytest.mark.parametrize(("call", "error", "message"), _tls_argument_error_calls())
async def test_tls_argument_errors(
    call: Callable[..., Any],
    error: type[Exception],
    message: str,
    client_context: ssl.SSLContext,
    tmp_path: Path,
) -> None:
    lsock = listener()
    mine, theirs = socket.socketpair()
    before = open_fds()
    try:
        async with protoport.open_loop() as loop:
            with pytest.raises(error, match=exactly(message)):
                await call(
                    loop, port_of(lsock), mine, client_context, str(tmp_path / "s")
                )
        # Nothing was left open.
        assert open_fds() <= before
    finally:
        lsock.close()
        mine.close()
        theirs.close()


async def test_server_rejects_non_positive_timeouts_when_created(
    server_context: ssl.SSLContext,
) -> None:
    # asyncio checks these when a connection comes in (and reports the error to
    # the exception handler each time); protoport raises them at once.
    async with protoport.open_loop() as loop:
        with pytest.raises(
            ValueError,
            match=exactly("ssl_handshake_timeout should be a positive number, got 0"),
        ):
            await loop.create_server(
                JoiningRecorder, HOST, 0, ssl=server_context, ssl_handshake_timeout=0
            )
        with pytest.raises(
            ValueError,
            match=exactly("ssl_shutdown_timeout should be a positive number, got -5"),
        ):
            await loop.create_server(
                JoiningRecorder, HOST, 0, ssl=server_context, ssl_shutdown_timeout=-5
            )


async def test_leaving_the_loop_during_a_server_handshake_reports_nothing(
    server_context: ssl.SSLContext,
) -> None:
    servers = Factory(JoiningRecorder)
    raw = None
    async with protoport.open_loop() as loop:
        calls = collect_errors(loop)
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        raw = socket.create_connection((HOST, port_of(server)))
        # Let the server accept and start the handshake, which waits for a
        # ClientHello that never comes.
        await wait_until(lambda: _accept_queue_is_empty(server))
        server.close()
    raw.close()
    assert servers.made == []
    assert calls == []


def _accept_queue_is_empty(server: protoport.Server) -> bool:
    # A listening socket is readable while a connection waits to be accepted.
    readable, _, _ = select.select(list(server.sockets), [], [], 0)
    return not readable


# -- the TLS transport ----------------------------------------------------------------


async def test_extra_info(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    servers = Factory(JoiningRecorder)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        port = port_of(server)
        transport, _ = await loop.create_connection(
            JoiningRecorder, HOST, port, ssl=client_context
        )
        await wait_until(lambda: servers.made)
        server_transport = servers.made[0].transport

        assert transport.get_extra_info("sslcontext") is client_context
        ssl_object = transport.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        assert not ssl_object.server_side
        peercert = transport.get_extra_info("peercert")
        assert peercert == ssl_object.getpeercert()
        assert ("DNS", "localhost") in peercert["subjectAltName"]
        assert ("IP Address", HOST) in peercert["subjectAltName"]
        cipher = transport.get_extra_info("cipher")
        assert cipher == ssl_object.cipher()
        assert isinstance(cipher, tuple)
        assert len(cipher) == 3
        assert transport.get_extra_info("compression") == ssl_object.compression()
        # The keys of the connection underneath.
        sock = transport.get_extra_info("socket")
        assert isinstance(sock, asyncio.trsock.TransportSocket)
        assert transport.get_extra_info("peername") == (HOST, port)
        assert transport.get_extra_info("sockname") == sock.getsockname()
        assert transport.get_extra_info("no such key") is None
        assert transport.get_extra_info("no such key", "default") == "default"

        assert server_transport.get_extra_info("sslcontext") is server_context
        assert server_transport.get_extra_info("ssl_object").server_side
        # No client certificate was asked for.
        assert server_transport.get_extra_info("peercert") is None
        assert server_transport.get_extra_info("sockname") == (HOST, port)
        assert server_transport.get_extra_info("peername") == (
            transport.get_extra_info("sockname")
        )
        transport.close()
        await servers.made[0].wait_lost()
        # Still readable after the end, as asyncio's.
        assert transport.get_extra_info("cipher") == cipher
        server.close()


async def test_no_half_close_and_asyncio_s_write_errors(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    servers = Factory(partial(JoiningRecorder, echo=True))
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server), ssl=client_context
        )
        assert transport.can_write_eof() is False
        with pytest.raises(NotImplementedError) as info:
            transport.write_eof()
        assert str(info.value) == ""  # as asyncio's: no message
        with pytest.raises(TypeError) as type_info:
            transport.write("text")  # type: ignore[arg-type]
        assert str(type_info.value) == "data: expecting a bytes-like instance, got str"
        # As asyncio's socket transports (its TLS transport fails later, on
        # len(), takes str, and ends the connection on a bad item).
        written = check_writelines(transport.writelines)
        transport.write(b"")
        # Still open and working.
        assert not transport.is_closing()
        transport.write(memoryview(b"still working"))
        await wait_until(lambda: client.received() == written + b"still working")
        transport.close()
        await client.wait_lost()
        server.close()


async def test_writes_after_the_end_are_dropped_with_asyncio_s_warning(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(JoiningRecorder, HOST, 0, ssl=server_context)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server), ssl=client_context
        )
        transport.close()
        await client.wait_lost()
        with caplog.at_level(logging.WARNING, logger="protoport"):
            for _ in range(4):
                transport.write(b"late")
            assert [r.getMessage() for r in caplog.records] == []
            transport.write(b"late")
            transport.write(b"late")
        server.close()
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("protoport", "SSL connection is closed"),
        ("protoport", "SSL connection is closed"),
    ]


def _serve_one_tls_peer(
    lsock: socket.socket,
    context: ssl.SSLContext,
    behaviour: str,
    out: list[Any],
    done: Any = None,
) -> None:
    """A stdlib ssl server for one connection, in a worker thread."""
    conn, _ = lsock.accept()
    conn.settimeout(5)
    with context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as tls:
        if behaviour == "send-and-drop":
            # Data, then a TCP close without a TLS close_notify.
            tls.sendall(b"bye")
        elif behaviour == "silent":
            done.wait(5)
        elif behaviour == "read":
            data = b""
            try:
                while chunk := tls.recv(65536):
                    data += chunk
                out.append(("eof", data))
                tls.unwrap()
                out.append("unwrapped")
            except OSError as exc:
                out.append(("error", exc))


async def test_close_sends_close_notify(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    lsock = listener()
    out: list[Any] = []
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        await in_thread(tg, _serve_one_tls_peer, lsock, server_context, "read", out)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(lsock), ssl=client_context
        )
        transport.write(b"last words")
        transport.close()
        await client.wait_lost()
    lsock.close()
    # The peer read a clean TLS end (b"", not an SSLEOFError), then its own
    # shutdown completed.
    assert out == [("eof", b"last words"), "unwrapped"]
    assert client.trace == ["made", "eof", ("lost", None)]


async def test_abort_sends_no_close_notify(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    lsock = listener()
    out: list[Any] = []
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        await in_thread(tg, _serve_one_tls_peer, lsock, server_context, "read", out)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(lsock), ssl=client_context
        )
        transport.write(b"unsent?")
        transport.abort()
        await client.wait_lost()
    lsock.close()
    assert client.trace == ["made", ("lost", None)]
    assert len(out) == 1
    assert out[0][0] == "error"
    assert isinstance(out[0][1], OSError)


async def test_shutdown_timeout(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    lsock = listener()
    done = threading.Event()
    out: list[Any] = []
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        await in_thread(
            tg, _serve_one_tls_peer, lsock, server_context, "silent", out, done
        )
        transport, client = await loop.create_connection(
            JoiningRecorder,
            HOST,
            port_of(lsock),
            ssl=client_context,
            ssl_shutdown_timeout=0.2,
        )
        start = time.monotonic()
        transport.close()
        await client.wait_lost()
        elapsed = time.monotonic() - start
        done.set()
    lsock.close()
    assert 0.15 < elapsed < 2
    assert client.trace[:-1] == ["made"]
    exc = client.trace[-1][1]
    assert type(exc) is TimeoutError
    assert str(exc) == "SSL shutdown timed out"


@pytest.mark.parametrize("keep_open", [False, True])
async def test_peer_closing_without_close_notify(
    keep_open: bool,
    client_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
    server_context: ssl.SSLContext,
) -> None:
    lsock = listener()
    out: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="protoport"):
        async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
            await in_thread(
                tg, _serve_one_tls_peer, lsock, server_context, "send-and-drop", out
            )
            _, client = await loop.create_connection(
                partial(JoiningRecorder, keep_open=keep_open),
                HOST,
                port_of(lsock),
                ssl=client_context,
            )
            await client.wait_lost()
    lsock.close()
    # An end of the TCP stream counts as the end, as in asyncio; returning True
    # from eof_received() does not keep a TLS transport open.
    assert client.trace == ["made", ("data", b"bye"), "eof", ("lost", None)]
    warnings = [(r.name, r.getMessage()) for r in caplog.records]
    if keep_open:
        assert warnings == [
            (
                "protoport",
                "returning true from eof_received() has no effect when using ssl",
            )
        ]
    else:
        assert warnings == []


async def test_nothing_is_sent_in_clear_when_the_client_handshake_fails() -> None:
    lsock = listener()
    received: list[bytes] = []

    def raw_peer() -> None:
        conn, _ = lsock.accept()
        with conn:
            conn.settimeout(5)
            data = conn.recv(65536)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            received.append(data + recv_all(conn))

    class Eager(JoiningRecorder):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            transport.write(b"SECRET")  # type: ignore[attr-defined]

    made = Factory(Eager)
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        calls = collect_errors(loop)
        await in_thread(tg, raw_peer)
        with pytest.raises(ssl.SSLError):
            await loop.create_connection(
                made, HOST, port_of(lsock), ssl=ssl.create_default_context()
            )
    lsock.close()
    assert made.made == []
    assert calls == []
    (data,) = received
    assert data[0] == 0x16  # a TLS handshake record: the ClientHello
    assert set(tls_record_types(data)) <= {21, 22}
    assert b"SECRET" not in data


async def test_nothing_is_sent_in_clear_when_the_server_handshake_fails(
    server_context: ssl.SSLContext,
) -> None:
    class Welcoming(JoiningRecorder):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            transport.write(b"WELCOME")  # type: ignore[attr-defined]

    servers = Factory(Welcoming)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        port = port_of(server)

        def raw_client() -> bytes:
            with socket.create_connection((HOST, port), timeout=5) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return recv_all(conn)

        data = await anyio.to_thread.run_sync(raw_client)
        server.close()
        await server.wait_closed()
    assert servers.made == []
    assert b"WELCOME" not in data
    # Nothing, or TLS alerts only.
    assert set(tls_record_types(data)) <= {21}


async def test_mutual_tls(
    ca: trustme.CA, server_cert: trustme.LeafCert, client_context: ssl.SSLContext
) -> None:
    requiring = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(requiring)
    requiring.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(requiring)
    client_cert = ca.issue_cert("client@example.com")
    with_cert = ssl.create_default_context()
    ca.configure_trust(with_cert)
    client_cert.configure_cert(with_cert)

    lsock = listener()
    async with protoport.open_loop() as loop:

        async def one_connection(
            context: ssl.SSLContext,
        ) -> tuple[Any, BaseException | None, JoiningRecorder | None]:
            """Serve one connection with connect_accepted_socket() while a
            protoport client connects with *context*."""
            server_side: list[Any] = []

            async def serve() -> None:
                conn, _ = await anyio.to_thread.run_sync(lsock.accept)
                try:
                    server_side.append(
                        await loop.connect_accepted_socket(
                            partial(JoiningRecorder, echo=True), conn, ssl=requiring
                        )
                    )
                except OSError as exc:
                    server_side.append(exc)

            client: JoiningRecorder | None = None
            client_error: BaseException | None = None
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve)
                try:
                    transport, client = await loop.create_connection(
                        JoiningRecorder, HOST, port_of(lsock), ssl=context
                    )
                except OSError as exc:
                    client_error = exc
                else:
                    transport.write(b"who am I?")
                    await wait_until(
                        lambda: (
                            client is not None
                            and (
                                client.lost.is_set()
                                or client.received() == b"who am I?"
                            )
                        )
                    )
                    transport.close()
                    await wait_until(
                        lambda: client is not None and client.lost.is_set()
                    )
            return server_side[0], client_error, client

        server_side, client_error, client = await one_connection(with_cert)
        assert client_error is None
        assert client is not None
        assert client.trace == ["made", ("data", b"who am I?"), "eof", ("lost", None)]
        server_transport, _ = server_side
        assert server_transport.get_extra_info("peercert")["subjectAltName"] == (
            ("email", "client@example.com"),
        )

        server_side, client_error, client = await one_connection(client_context)
        # The server refuses the handshake; the client learns it as the end of
        # the connection (TLS 1.3, where its own handshake is already over) or
        # as a failed handshake (TLS 1.2).
        assert isinstance(server_side, ssl.SSLError)
        assert server_side.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        if client_error is None:
            assert client is not None
            assert ("data", b"who am I?") not in client.trace
            assert client.trace[0] == "made"
            assert client.lost.is_set()
        else:
            assert isinstance(client_error, (ConnectionResetError, ssl.SSLError))
    lsock.close()


# -- flow control ------------------------------------------------------------------


async def test_write_buffer_limits(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    servers = Factory(JoiningRecorder)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server), ssl=client_context
        )
        # asyncio's TLS defaults: 512 KiB high, a quarter of it low.
        assert transport.get_write_buffer_limits() == (131072, 524288)
        transport.set_write_buffer_limits(high=1000)
        assert transport.get_write_buffer_limits() == (250, 1000)
        transport.set_write_buffer_limits(low=100)
        assert transport.get_write_buffer_limits() == (100, 400)
        with pytest.raises(
            ValueError, match=exactly("high (10) must be >= low (20) must be >= 0")
        ):
            transport.set_write_buffer_limits(high=10, low=20)

        # A TLS transport pauses when the buffer reaches the high watermark (a
        # socket transport only above it). Nothing is sent between two writes
        # made in one go.
        transport.set_write_buffer_limits(high=1000, low=0)
        transport.write(b"a" * 999)
        assert transport.get_write_buffer_size() == 999
        assert client.trace == ["made"]
        transport.write(b"b")
        assert client.trace == ["made", "pause"]
        await wait_until(lambda: transport.get_write_buffer_size() == 0)
        assert client.trace == ["made", "pause", "resume"]
        await wait_until(
            lambda: servers.made and len(servers.made[0].received()) == 1000
        )
        assert servers.made[0].received() == b"a" * 999 + b"b"
        transport.close()
        await client.wait_lost()
        server.close()


class Sender(JoiningRecorder):
    """Writes *total* bytes in *chunk*-sized writes as long as it is not paused,
    as a protocol that honours pause_writing() does."""

    def __init__(self, total: int, chunk: int) -> None:
        super().__init__()
        self.remaining = total
        self.chunk = chunk
        self.paused = False
        self.digest = hashlib.sha256()
        self.max_buffered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.pump()

    def pump(self) -> None:
        while self.remaining and not self.paused:
            n = min(self.chunk, self.remaining)
            data = (b"%08d" % self.remaining) * (n // 8) + b"x" * (n % 8)
            self.digest.update(data)
            self.remaining -= n
            self.transport.write(data)
            self.max_buffered = max(
                self.max_buffered, self.transport.get_write_buffer_size()
            )

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        self.paused = False
        self.pump()


class Sink(asyncio.Protocol):
    """Counts and hashes what it gets; reading starts paused."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.count = 0
        self.transport: Any = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.pause_reading()  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.digest.update(data)
        self.count += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


async def test_large_transfer_with_backpressure(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    total = 8 * 1024 * 1024
    chunk = 64 * 1024
    sinks: list[Sink] = []

    def sink() -> Sink:
        sinks.append(Sink())
        return sinks[-1]

    async with protoport.open_loop() as loop:
        server = await loop.create_server(sink, HOST, 0, ssl=server_context)
        transport, sender = await loop.create_connection(
            lambda: Sender(total, chunk),
            HOST,
            port_of(server),
            ssl=client_context,
        )
        # The sender wrote until its buffer reached the TLS high watermark, and
        # was paused there.
        high = transport.get_write_buffer_limits()[1]
        assert sender.trace == ["made", "pause"]
        assert transport.get_write_buffer_size() >= high
        # Small kernel buffers, so that a peer that does not read holds the
        # sender back for good.
        transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024
        )
        await wait_until(lambda: sinks)
        sinks[0].transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024
        )
        # The server does not read: bytes pile up in its kernel, the sender
        # stays paused with most of its data unwritten.
        await wait_until(lambda: unread_bytes(sinks[0].transport) > 0)
        assert sender.paused
        assert sender.remaining > total // 2
        assert sinks[0].count == 0

        sinks[0].transport.resume_reading()
        await wait_until(lambda: sinks[0].count == total)
        assert sinks[0].digest.hexdigest() == sender.digest.hexdigest()
        # Paused and resumed over and over, as the buffer filled and drained.
        assert sender.trace.count("pause") >= 2
        assert sender.trace.count("pause") == sender.trace.count("resume")
        # Memory stays bounded by the watermark plus one write.
        assert sender.max_buffered < high + chunk
        transport.close()
        await wait_until(lambda: sinks[0].lost)
        server.close()


async def test_echo_of_a_large_transfer(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    # Both directions busy at once: the server writes while it reads.
    payload = bytes(range(256)) * 4096  # 1 MiB
    servers = Factory(partial(JoiningRecorder, echo=True))
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server), ssl=client_context
        )
        for i in range(0, len(payload), 100_000):
            transport.write(payload[i : i + 100_000])
        await wait_until(lambda: len(client.received()) == len(payload))
        assert client.received() == payload
        transport.close()
        await client.wait_lost()
        server.close()


# -- start_tls ------------------------------------------------------------------------


class StartTLSServer(JoiningRecorder):
    """Plain until it reads b"STARTTLS\\n": then answers b"OK\\n" and upgrades."""

    def __init__(self, loop: protoport.Loop, context: ssl.SSLContext) -> None:
        super().__init__()
        self.loop = loop
        self.context = context
        self.tls: Any = None
        self.error: BaseException | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if data == b"STARTTLS\n":
            self.transport.write(b"OK\n")
            self.loop.create_task(self.upgrade())
        elif data == b"ping" and self.tls is not None:
            self.tls.write(b"pong")

    async def upgrade(self) -> None:
        try:
            self.tls = await self.loop.start_tls(
                self.transport, self, self.context, server_side=True
            )
        except OSError as exc:
            self.error = exc
        else:
            self.trace.append("upgraded")


async def test_start_tls_on_both_sides(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    servers: list[StartTLSServer] = []
    async with protoport.open_loop() as loop:
        calls = collect_errors(loop)

        def factory() -> StartTLSServer:
            servers.append(StartTLSServer(loop, server_context))
            return servers[-1]

        server = await loop.create_server(factory, HOST, 0)
        plain, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server)
        )
        assert plain.get_extra_info("ssl_object") is None
        plain.write(b"STARTTLS\n")
        await wait_until(lambda: client.received() == b"OK\n")
        tls = await loop.start_tls(
            plain, client, client_context, server_hostname="localhost"
        )
        assert tls is not plain
        assert plain.is_closing()
        assert tls.get_protocol() is client
        assert isinstance(tls.get_extra_info("ssl_object"), ssl.SSLObject)
        assert tls.get_extra_info("sslcontext") is client_context
        assert tls.get_extra_info("peername") == plain.get_extra_info("peername")
        tls.write(b"ping")
        await wait_until(lambda: client.received() == b"OK\npong")
        await wait_until(lambda: servers[0].tls is not None)
        assert servers[0].transport.is_closing()
        assert servers[0].tls.get_extra_info("ssl_object").server_side
        tls.close()
        await wait_until(lambda: client.lost.is_set() and servers[0].lost.is_set())
        server.close()
        await server.wait_closed()
    # connection_made() is not called again.
    assert client.trace == ["made", ("data", b"OK\npong"), "eof", ("lost", None)]
    assert servers[0].trace == [
        "made",
        ("data", b"STARTTLS\n"),
        "upgraded",
        ("data", b"ping"),
        "eof",
        ("lost", None),
    ]
    assert calls == []


def _stdlib_starttls_server(
    lsock: socket.socket, context: ssl.SSLContext, out: list[Any]
) -> None:
    conn, _ = lsock.accept()
    conn.settimeout(5)
    with conn:
        request = b""
        while not request.endswith(b"\n"):
            request += conn.recv(1)
        out.append(request)
        conn.sendall(b"OK\n")
        with context.wrap_socket(
            conn, server_side=True, suppress_ragged_eofs=False
        ) as tls:
            data = tls.recv(100)
            tls.sendall(data.upper())
            out.append(tls.recv(100))  # b"" at a clean TLS end
            tls.unwrap()


async def test_start_tls_client_side_against_a_stdlib_server(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    # The peer speaks ssl.SSLSocket, the connection starts plain.
    lsock = listener()
    out: list[Any] = []
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        await in_thread(tg, _stdlib_starttls_server, lsock, server_context, out)
        plain, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(lsock)
        )
        plain.write(b"STARTTLS\n")
        await wait_until(lambda: client.received() == b"OK\n")
        tls = await loop.start_tls(plain, client, client_context, server_hostname=HOST)
        tls.write(b"shout")
        await wait_until(lambda: client.received() == b"OK\nSHOUT")
        tls.close()
        await client.wait_lost()
    lsock.close()
    assert out == [b"STARTTLS\n", b""]
    assert client.trace == ["made", ("data", b"OK\nSHOUT"), "eof", ("lost", None)]


class SendNotifying(ByteStream):
    """A byte stream that sets an event once its first send() has returned."""

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner
        self.sent = Flag()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self.inner.send(item)
        self.sent.set()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """How many bytes wait in the kernel's receive queue of *transport*'s socket."""
    fd = transport.get_extra_info("socket").fileno()
    result = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", result)[0])


async def test_start_tls_uses_bytes_read_while_reading_was_paused(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    # The peer starts its handshake at once; the ClientHello reaches our reader
    # while reading is paused, before start_tls() is called. Those bytes must
    # go to the TLS layer, or the handshake would stall.
    got_request = anyio.Event()

    class Plain(JoiningRecorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            got_request.set()

    servers = Factory(Plain)
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        server = await loop.create_server(servers, HOST, 0)
        raw = await anyio.connect_tcp(HOST, port_of(server))
        await raw.send(b"STARTTLS\n")
        with anyio.fail_after(5):
            await got_request.wait()
        protocol = servers.made[0]
        plain = protocol.transport
        # The reader is back waiting inside receive(): what comes now is read
        # and held, not delivered.
        plain.pause_reading()
        peer = SendNotifying(raw)
        peer_tls: list[TLSStream] = []

        async def client_handshake() -> None:
            peer_tls.append(
                await TLSStream.wrap(
                    peer,
                    hostname="localhost",
                    ssl_context=client_context,
                    standard_compatible=False,
                )
            )

        tg.start_soon(client_handshake)
        with anyio.fail_after(5):
            await peer.sent.wait()
        # Either our side read the ClientHello and holds it (a reader task), or
        # it waits in the kernel (the reactor does not read while paused); both
        # must reach the TLS layer. Nothing was delivered meanwhile.
        await settle()
        assert protocol.trace == ["made", ("data", b"STARTTLS\n")]

        tls = await loop.start_tls(
            plain, protocol, server_context, server_side=True, ssl_handshake_timeout=3
        )
        assert plain.is_closing()
        await wait_until(lambda: peer_tls)
        await peer_tls[0].send(b"hello")
        await wait_until(lambda: protocol.received() == b"STARTTLS\nhello")
        tls.write(b"world")
        with anyio.fail_after(5):
            assert await peer_tls[0].receive() == b"world"
        await peer_tls[0].aclose()
        await protocol.wait_lost()
        server.close()
    assert protocol.trace == [
        "made",
        ("data", b"STARTTLS\nhello"),
        "eof",
        ("lost", None),
    ]


async def test_start_tls_handshake_failure(server_context: ssl.SSLContext) -> None:
    servers: list[StartTLSServer] = []
    async with protoport.open_loop() as loop:
        calls = collect_errors(loop)

        def factory() -> StartTLSServer:
            servers.append(StartTLSServer(loop, server_context))
            return servers[-1]

        server = await loop.create_server(factory, HOST, 0)
        plain, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server)
        )
        plain.write(b"STARTTLS\n")
        await wait_until(lambda: client.received() == b"OK\n")
        untrusting = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await loop.start_tls(plain, client, untrusting, server_hostname="localhost")
        # The server's task hears of its start_tls() failing after its protocol
        # heard of the connection's end.
        await wait_until(
            lambda: (
                client.lost.is_set()
                and servers[0].lost.is_set()
                and servers[0].error is not None
            )
        )
        server.close()
    assert plain.is_closing()
    # The protocol is told: the connection is lost with the handshake's error.
    assert client.trace == ["made", ("data", b"OK\n"), ("lost", info.value)]
    # The server's start_tls() fails as the peer leaves.
    assert isinstance(servers[0].error, ConnectionResetError)
    assert servers[0].trace == [
        "made",
        ("data", b"STARTTLS\n"),
        ("lost", servers[0].error),
    ]
    assert calls == []


async def test_start_tls_handshake_timeout() -> None:
    lsock = listener()
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        accepted: list[socket.socket] = []

        def accept() -> None:
            accepted.append(lsock.accept()[0])

        await in_thread(tg, accept)
        plain, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(lsock)
        )
        start = time.monotonic()
        with pytest.raises(ConnectionAbortedError) as info:
            await loop.start_tls(
                plain,
                client,
                ssl.create_default_context(),
                server_hostname="localhost",
                ssl_handshake_timeout=0.2,
            )
        assert 0.15 < time.monotonic() - start < 2
        await client.wait_lost()
    for sock in accepted:
        sock.close()
    lsock.close()
    assert str(info.value) == (
        "SSL handshake is taking longer than 0.2 seconds: aborting the connection"
    )
    assert client.trace == ["made", ("lost", info.value)]


async def test_start_tls_after_close_does_not_upgrade(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    # The peer is ready to upgrade: the closed transport was upgraded anyway,
    # its protocol told connection_lost(None), then data_received(), then
    # connection_lost() again.
    servers: list[StartTLSServer] = []
    async with protoport.open_loop() as loop:
        calls = collect_errors(loop)

        def factory() -> StartTLSServer:
            servers.append(StartTLSServer(loop, server_context))
            return servers[-1]

        server = await loop.create_server(factory, HOST, 0)
        plain, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server)
        )
        plain.write(b"STARTTLS\n")
        await wait_until(lambda: client.received() == b"OK\n")
        plain.close()
        with pytest.raises(ConnectionResetError, match=exactly("Connection lost")):
            await loop.start_tls(
                plain, client, client_context, server_hostname="localhost"
            )
        await client.wait_lost()
        await wait_until(lambda: servers[0].lost.is_set())
        await settle()
        server.close()
    assert client.trace == ["made", ("data", b"OK\n"), ("lost", None)]
    assert calls == []


def _recv_until_closed(sock: socket.socket) -> int:
    """Read *sock* until its peer is gone; return how many bytes came."""
    sock.settimeout(5)
    total = 0
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            return total
        if not chunk:
            return total
        total += len(chunk)


@pytest.mark.parametrize("end", ["close", "abort"])
@pytest.mark.parametrize("when", ["before", "during the hand-over"])
async def test_start_tls_on_a_transport_that_ends_refuses_and_leaves_nothing(
    client_context: ssl.SSLContext, end: str, when: str
) -> None:
    # start_tls() raises, the protocol is told connection_lost() once, and the
    # socket is closed at once (after abort() it stayed open, with a task, until
    # the loop closed). The peer never speaks TLS: an upgrade would time out.
    payload = b"x" * (4 << 20)  # more than the socket takes at once
    async with protoport.open_loop() as loop:
        calls = collect_errors(loop)
        fds = open_fds()
        tasks = len(anyio.get_running_tasks())
        local, peer = socket.socketpair()
        plain, client = await loop.connect_accepted_socket(Recorder, local)
        received: list[int] = []

        async def upgrade() -> None:
            with pytest.raises(ConnectionResetError, match=exactly("Connection lost")):
                await loop.start_tls(
                    plain,
                    client,
                    client_context,
                    server_hostname="localhost",
                    ssl_handshake_timeout=1,
                )

        async def read_peer() -> None:
            received.append(await anyio.to_thread.run_sync(_recv_until_closed, peer))

        async with anyio.create_task_group() as tg:
            if when == "before":
                getattr(plain, end)()
                await upgrade()
            else:
                plain.write(payload)
                tg.start_soon(upgrade)
                await settle()  # the hand-over waits for the writer
                getattr(plain, end)()
            tg.start_soon(read_peer)
        await client.wait_lost()
        peer.close()
        await settle()
        assert open_fds() == fds
        assert len(anyio.get_running_tasks()) == tasks
    assert client.trace == ["made", ("lost", None)]
    if when == "before":
        assert received == [0]
    elif end == "close":
        assert received == [len(payload)]  # close() sent what was buffered
    assert calls == []


async def test_a_cancelled_start_tls_hand_over_loses_the_connection_once(
    client_context: ssl.SSLContext,
) -> None:
    async with protoport.open_loop() as loop:
        fds = open_fds()
        local, peer = socket.socketpair()
        plain, client = await loop.connect_accepted_socket(Recorder, local)
        plain.write(b"x" * (4 << 20))  # the hand-over waits for the writer
        with anyio.move_on_after(0.1) as scope:
            await loop.start_tls(plain, client, client_context)
        assert scope.cancelled_caught
        await client.wait_lost()
        peer.close()
        assert open_fds() == fds
    assert client.trace == ["made", ("lost", None)]


async def test_start_tls_argument_errors(client_context: ssl.SSLContext) -> None:
    servers = Factory(partial(JoiningRecorder, echo=True))
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0)
        plain, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server)
        )
        with pytest.raises(TypeError) as info:
            await loop.start_tls(plain, client, True)  # type: ignore[arg-type]
        assert str(info.value) == (
            "sslcontext is expected to be an instance of ssl.SSLContext, got True"
        )
        foreign = object()
        with pytest.raises(TypeError) as info:
            await loop.start_tls(foreign, client, client_context)  # type: ignore[arg-type]
        assert str(info.value) == (
            f"transport {foreign!r} is not supported by start_tls()"
        )
        with pytest.raises(
            ValueError,
            match=exactly("ssl_handshake_timeout should be a positive number, got 0"),
        ):
            await loop.start_tls(plain, client, client_context, ssl_handshake_timeout=0)
        with pytest.raises(
            ValueError,
            match=exactly("ssl_shutdown_timeout should be a positive number, got -1.5"),
        ):
            await loop.start_tls(
                plain, client, client_context, ssl_shutdown_timeout=-1.5
            )
        # The transport was left alone.
        assert not plain.is_closing()
        plain.write(b"still plain")
        await wait_until(lambda: client.received() == b"still plain")
        plain.close()
        await client.wait_lost()
        server.close()
    assert client.trace == ["made", ("data", b"still plain"), ("lost", None)]


# -- asyncio's default timeouts, on Trio's virtual clock ---------------------------


def _virtual_trio() -> Any:
    # Jump the clock only after a real pause, so that loopback I/O in flight
    # does not count as idleness.
    clock = trio.testing.MockClock(autojump_threshold=0.05)
    return pytest.param(("trio", {"clock": clock}), id="trio-virtual-clock")


@pytest.mark.parametrize("anyio_backend", [_virtual_trio()])
async def test_default_handshake_timeout_is_60_seconds() -> None:
    lsock = listener()
    async with protoport.open_loop() as loop:
        start = trio.current_time()
        with pytest.raises(ConnectionAbortedError) as info:
            await loop.create_connection(
                JoiningRecorder, HOST, port_of(lsock), ssl=ssl.create_default_context()
            )
        assert trio.current_time() - start == pytest.approx(60, abs=1)
    lsock.close()
    assert str(info.value) == (
        "SSL handshake is taking longer than 60.0 seconds: aborting the connection"
    )


@pytest.mark.parametrize("anyio_backend", [_virtual_trio()])
async def test_default_shutdown_timeout_is_30_seconds(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    lsock = listener()
    done = threading.Event()
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        await in_thread(
            tg, _serve_one_tls_peer, lsock, server_context, "silent", [], done
        )
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(lsock), ssl=client_context
        )
        start = trio.current_time()
        transport.close()
        # No fail_after() here: the deadline would be on the virtual clock too.
        await client.lost.wait()
        assert trio.current_time() - start == pytest.approx(30, abs=1)
        done.set()
    lsock.close()
    assert str(client.trace[-1][1]) == "SSL shutdown timed out"


async def test_exit_timeout_cuts_a_tls_shutdown_short(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    # The peer never answers close_notify: the shutdown would wait 30 seconds.
    lsock = listener()
    done = threading.Event()
    async with anyio.create_task_group() as tg:
        await in_thread(
            tg, _serve_one_tls_peer, lsock, server_context, "silent", [], done
        )
        with anyio.fail_after(5):
            async with protoport.open_loop(exit_timeout=0.2) as loop:
                transport, client = await loop.create_connection(
                    JoiningRecorder, HOST, port_of(lsock), ssl=client_context
                )
                transport.close()
                start = time.monotonic()
        assert 0.15 < time.monotonic() - start < 2
        done.set()
    lsock.close()
    assert client.trace == ["made", ("lost", None)]


# -- callback errors ------------------------------------------------------------------


async def test_a_failing_data_received_is_reported_as_asyncio_reports_it(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    class Failing(JoiningRecorder):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            raise ZeroDivisionError

    servers = Factory(partial(JoiningRecorder, echo=True))
    async with protoport.open_loop() as loop:
        calls = collect_errors(loop)
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        transport, client = await loop.create_connection(
            Failing, HOST, port_of(server), ssl=client_context
        )
        transport.write(b"boom")
        await client.wait_lost()
        server.close()
    exc = client.trace[-1][1]
    assert isinstance(exc, ZeroDivisionError)
    assert client.trace == ["made", ("data", b"boom"), ("lost", exc)]
    assert [(c["message"], c["exception"]) for c in calls] == [
        ("Fatal error on SSL protocol", exc)
    ]


async def test_a_failing_eof_received_is_reported_as_asyncio_reports_it(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    class Failing(JoiningRecorder):
        def eof_received(self) -> bool:
            super().eof_received()
            raise ZeroDivisionError

    lsock = listener()
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        calls = collect_errors(loop)
        await in_thread(
            tg, _serve_one_tls_peer, lsock, server_context, "send-and-drop", []
        )
        _, client = await loop.create_connection(
            Failing, HOST, port_of(lsock), ssl=client_context
        )
        await client.wait_lost()
    lsock.close()
    exc = client.trace[-1][1]
    assert isinstance(exc, ZeroDivisionError)
    assert client.trace == ["made", ("data", b"bye"), "eof", ("lost", exc)]
    assert [(c["message"], c["exception"]) for c in calls] == [
        ("Error calling eof_received()", exc)
    ]


def _stdlib_client_half_closing(
    port: int, context: ssl.SSLContext, out: list[Any]
) -> None:
    """Send b"hi", end the TCP stream without a TLS shutdown, then read."""
    with socket.create_connection((HOST, port), timeout=5) as raw:
        tls = context.wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False
        )
        with tls:
            tls.sendall(b"hi")
            # The socket's own shutdown(), not SSLSocket's (which drops TLS).
            socket.socket.shutdown(tls, socket.SHUT_WR)
            try:
                out.append(tls.recv(100))
            except OSError as exc:
                out.append(exc)


async def test_no_close_notify_after_the_peer_ended_the_tcp_stream(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    # As asyncio: a TCP end from the peer is answered by closing the socket,
    # not with a TLS shutdown the peer can no longer answer.
    servers = Factory(JoiningRecorder)
    out: list[Any] = []
    async with protoport.open_loop() as loop, anyio.create_task_group() as tg:
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        port = port_of(server)
        await in_thread(tg, _stdlib_client_half_closing, port, client_context, out)
        await wait_until(lambda: servers.made and servers.made[0].lost.is_set())
        server.close()
    assert servers.made[0].trace == ["made", ("data", b"hi"), "eof", ("lost", None)]
    assert len(out) == 1
    assert isinstance(out[0], ssl.SSLEOFError)


async def test_data_arriving_after_close_ends_the_shutdown_with_an_error(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    # The echo of the last write comes back after our close_notify: the TLS
    # shutdown fails, and (as in asyncio) connection_lost() gets the SSLError.
    servers = Factory(partial(JoiningRecorder, echo=True))
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0, ssl=server_context)
        transport, client = await loop.create_connection(
            JoiningRecorder, HOST, port_of(server), ssl=client_context
        )
        transport.write(b"ping")
        transport.close()
        await client.wait_lost()
        server.close()
    exc = client.trace[-1][1]
    assert client.trace == ["made", ("lost", exc)]
    assert isinstance(exc, ssl.SSLError)
    assert exc.reason == "APPLICATION_DATA_AFTER_CLOSE_NOTIFY"


async def test_start_tls_takes_bytes_a_reader_task_held_while_paused(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Over a stream read by a reader task (here an in-memory one), bytes that
    task received while reading was paused are handed to the TLS layer."""
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop, anyio.create_task_group() as tg:
        transport, protocol = await loop.connect_stream(JoiningRecorder, local)
        # Pause only once the reader task waits inside receive(): what arrives
        # next is read, then held.
        await anyio.wait_all_tasks_blocked()
        transport.pause_reading()
        peer_tls: list[TLSStream] = []

        async def client_handshake() -> None:
            peer_tls.append(
                await TLSStream.wrap(
                    peer,
                    hostname="localhost",
                    ssl_context=client_context,
                    standard_compatible=False,
                )
            )

        tg.start_soon(client_handshake)
        # The ClientHello is read by the reader task and held, not delivered.
        await wait_until(lambda: transport._held is not None)
        assert protocol.trace == ["made"]
        tls = await loop.start_tls(
            transport, protocol, server_context, server_side=True
        )
        await wait_until(lambda: peer_tls)
        await peer_tls[0].send(b"hello")
        await wait_until(lambda: protocol.received() == b"hello")
        tls.write(b"back")
        with anyio.fail_after(5):
            assert await peer_tls[0].receive() == b"back"
        tls.abort()
        await protocol.wait_lost()


async def test_an_accepted_connection_runs_one_task_and_a_writer_only_while_sending(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with protoport.open_loop() as loop:
        accepted = Factory(Recorder)
        server = await loop.create_server(accepted, "127.0.0.1", 0, ssl=server_context)
        serving = len(anyio.get_running_tasks())
        client = await anyio.connect_tcp(
            "127.0.0.1",
            port_of(server),
            ssl_context=client_context,
            tls_hostname="localhost",
            tls_standard_compatible=False,
        )
        await client.send(b"ping")
        await wait_until(lambda: accepted.made and accepted.made[0].received())
        accepted.made[0].transport.write(b"pong")
        assert await client.receive() == b"pong"
        # The handshake ran in the task that reads; the writer task that sent
        # the answer is gone once it is sent.
        await wait_until(lambda: len(anyio.get_running_tasks()) == serving + 1)
        await settle()
        assert len(anyio.get_running_tasks()) == serving + 1
        await client.aclose()
        await accepted.made[0].wait_lost()
        await wait_until(lambda: len(anyio.get_running_tasks()) == serving)
        assert accepted.made[0].trace == [
            "made",
            ("data", b"ping"),
            "eof",
            ("lost", None),
        ]
        server.close()
        await server.wait_closed()
