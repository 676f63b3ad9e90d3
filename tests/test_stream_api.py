"""open_connection, start_server, open_unix_connection and start_unix_server:
round trips, plain and coroutine callbacks, failing callbacks, limits and the
arguments passed through to the loop."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

import anyio
import pytest

import protoport
from _helpers import collect_errors, port_of, wait_until
from conftest import open_fds
from protoport import (
    StreamReader,
    StreamWriter,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)

pytestmark = pytest.mark.anyio


async def echo_upper(reader: StreamReader, writer: StreamWriter) -> None:
    async for line in reader:
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


# -- TCP -------------------------------------------------------------------------


async def test_round_trip_with_a_coroutine_callback() -> None:
    async with protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        server = await start_server(echo_upper, "127.0.0.1", 0)
        assert server.is_serving()
        reader, writer = await open_connection("127.0.0.1", port_of(server))
        assert isinstance(reader, StreamReader)
        assert isinstance(writer, StreamWriter)
        writer.write(b"hello\nworld\n")
        await writer.drain()
        assert await reader.readline() == b"HELLO\n"
        assert await reader.readline() == b"WORLD\n"
        writer.write_eof()
        assert await reader.read() == b""  # the handler closed after our EOF
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        assert contexts == []


async def test_many_clients_at_once() -> None:
    async with protoport.open_loop():
        server = await start_server(echo_upper, "127.0.0.1", 0)
        port = port_of(server)
        results: dict[int, bytes] = {}

        async def client(i: int) -> None:
            reader, writer = await open_connection("127.0.0.1", port)
            writer.write(b"client %d\n" % i)
            results[i] = await reader.readline()
            writer.close()
            await writer.wait_closed()

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(client, i)
        assert results == {i: b"CLIENT %d\n" % i for i in range(20)}
        server.close()
        await server.wait_closed()


async def test_plain_function_callback() -> None:
    async with protoport.open_loop():
        accepted: list[tuple[StreamReader, StreamWriter]] = []

        def greet(reader: StreamReader, writer: StreamWriter) -> None:
            accepted.append((reader, writer))
            writer.write(b"welcome\n")

        server = await start_server(greet, "127.0.0.1", 0)
        reader, writer = await open_connection("127.0.0.1", port_of(server))
        assert await reader.readline() == b"welcome\n"
        [(server_reader, server_writer)] = accepted
        assert isinstance(server_reader, StreamReader)
        # Each side sees the other's address.
        assert server_writer.get_extra_info("peername") == writer.get_extra_info(
            "sockname"
        )
        writer.write(b"ping\n")
        assert await server_reader.readline() == b"ping\n"
        server_writer.close()
        assert await reader.read() == b""
        writer.close()
        server.close()
        await server.wait_closed()


async def test_failing_coroutine_callback_is_reported_and_closes() -> None:
    async with protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        error = RuntimeError("handler failed")

        async def failing(reader: StreamReader, writer: StreamWriter) -> None:
            await reader.readline()
            raise error

        server = await start_server(failing, "127.0.0.1", 0)
        reader, writer = await open_connection("127.0.0.1", port_of(server))
        writer.write(b"go\n")
        with anyio.fail_after(5):
            assert await reader.read() == b""  # the server closed the connection
        await wait_until(lambda: bool(contexts))
        [context] = contexts
        assert context["message"] == "Unhandled exception in client_connected_cb"
        assert context["exception"] is error
        assert context["transport"].get_extra_info("peername") == (
            writer.get_extra_info("sockname")
        )
        assert set(context) == {"message", "exception", "transport"}
        writer.close()
        server.close()
        await server.wait_closed()


async def test_failing_plain_callback_is_reported() -> None:
    # As in asyncio: the exception escapes connection_made() and reaches the
    # exception handler as a failed callback.
    async with protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        error = KeyError("plain")

        def failing(reader: StreamReader, writer: StreamWriter) -> None:
            writer.close()
            raise error

        server = await start_server(failing, "127.0.0.1", 0)
        reader, writer = await open_connection("127.0.0.1", port_of(server))
        with anyio.fail_after(5):
            assert await reader.read() == b""
        await wait_until(lambda: bool(contexts))
        [context] = contexts
        assert context["exception"] is error
        assert context["message"].startswith("Exception in callback ")
        writer.close()
        server.close()
        await server.wait_closed()


async def test_limit_applies_to_both_sides() -> None:
    async with protoport.open_loop():
        outcomes: list[BaseException] = []

        async def strict(reader: StreamReader, writer: StreamWriter) -> None:
            try:
                await reader.readline()
            except ValueError as exc:
                outcomes.append(exc)
            writer.write(b"0123456789\n")
            writer.close()

        server = await start_server(strict, "127.0.0.1", 0, limit=5)
        reader, writer = await open_connection("127.0.0.1", port_of(server), limit=4)
        writer.write(b"a line that is too long\n")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await reader.readuntil(b"\n")
        assert info.value.args[0] == (
            "Separator is found, but chunk is longer than limit"
        )
        assert [str(exc) for exc in outcomes] == [
            "Separator is found, but chunk is longer than limit"
        ]
        writer.close()
        server.close()
        await server.wait_closed()


async def test_arguments_pass_through_to_the_loop() -> None:
    async with protoport.open_loop():
        listener = socket.create_server(("127.0.0.1", 0))
        server = await start_server(echo_upper, sock=listener, start_serving=False)
        assert not server.is_serving()
        await server.start_serving()
        ours = socket.create_connection(listener.getsockname())
        reader, writer = await open_connection(sock=ours)
        writer.write(b"via sock\n")
        assert await reader.readline() == b"VIA SOCK\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def test_loop_argument_errors_pass_through() -> None:
    async with protoport.open_loop():
        with pytest.raises(
            ValueError, match=r"^host and port was not specified and no sock specified$"
        ):
            await open_connection()
        with pytest.raises(
            ValueError, match=r"^Neither host/port nor sock were specified$"
        ):
            await start_server(echo_upper)


async def test_tls_round_trip(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls_contexts
    async with protoport.open_loop():
        server = await start_server(
            echo_upper, "127.0.0.1", 0, ssl=server_context, limit=100
        )
        reader, writer = await open_connection(
            "127.0.0.1",
            port_of(server),
            ssl=client_context,
            server_hostname="localhost",
        )
        assert writer.get_extra_info("ssl_object") is not None
        assert writer.get_extra_info("sslcontext") is client_context
        writer.write(b"over tls\n")
        assert await reader.readline() == b"OVER TLS\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def test_start_tls_on_both_sides(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    # A STARTTLS-style exchange: clear text first, then both sides upgrade.
    server_context, client_context = tls_contexts
    peers: list[Any] = []

    async def upgrade_then_echo(reader: StreamReader, writer: StreamWriter) -> None:
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.drain()
        await writer.start_tls(server_context)  # the server side: from the callback
        peers.append(writer.get_extra_info("peercert"))
        await echo_upper(reader, writer)

    async with protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        server = await start_server(upgrade_then_echo, "127.0.0.1", 0)
        reader, writer = await open_connection("127.0.0.1", port_of(server))
        clear_transport = writer.transport
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        assert writer.get_extra_info("ssl_object") is None
        with anyio.fail_after(5):
            await writer.start_tls(client_context, server_hostname="localhost")
        assert writer.transport is not clear_transport
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret\n")
        assert await reader.readline() == b"SECRET\n"
        assert peers == [None]  # the client sent no certificate
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        assert contexts == []


async def test_connection_refused() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        async with protoport.open_loop():
            with pytest.raises(ConnectionRefusedError):
                await open_connection("127.0.0.1", port)


async def test_without_open_loop_the_default_loop_serves() -> None:
    server = await start_server(echo_upper, "127.0.0.1", 0)
    reader, writer = await open_connection("127.0.0.1", port_of(server))
    writer.write(b"default\n")
    assert await reader.readline() == b"DEFAULT\n"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


async def test_leaving_the_loop_ends_handlers_and_closes_everything() -> None:
    before = open_fds()
    started = anyio.Event()

    async def waits(reader: StreamReader, writer: StreamWriter) -> None:
        started.set()
        await reader.read()

    async with protoport.open_loop():
        server = await start_server(waits, "127.0.0.1", 0)
        _reader, writer = await open_connection("127.0.0.1", port_of(server))
        with anyio.fail_after(5):
            await started.wait()
    assert writer.is_closing()
    assert open_fds() == before


async def test_server_as_context_manager_and_serve_forever() -> None:
    async with protoport.open_loop():
        server = await start_server(echo_upper, "127.0.0.1", 0)
        port = port_of(server)
        async with server, anyio.create_task_group() as tg:
            tg.start_soon(server.serve_forever)
            reader, writer = await open_connection("127.0.0.1", port)
            writer.write(b"served\n")
            assert await reader.readline() == b"SERVED\n"
            writer.close()
            await writer.wait_closed()
            tg.cancel_scope.cancel()
        assert not server.is_serving()
        assert server.sockets == ()


# -- Unix ------------------------------------------------------------------------


async def test_unix_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "echo.sock"
    async with protoport.open_loop():
        server = await start_unix_server(echo_upper, path, limit=100)
        reader, writer = await open_unix_connection(path)
        writer.write(b"over unix\n")
        assert await reader.readline() == b"OVER UNIX\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
    assert not path.exists()


async def test_unix_plain_callback_and_sock_argument() -> None:
    async with protoport.open_loop():
        accepted: list[StreamWriter] = []

        def accept(reader: StreamReader, writer: StreamWriter) -> None:
            accepted.append(writer)
            writer.write(b"hi")
            writer.write_eof()

        listener = socket.socket(socket.AF_UNIX)
        listener.bind("")  # an abstract address, Linux only
        server = await start_unix_server(accept, sock=listener)
        client = socket.socket(socket.AF_UNIX)
        client.connect(listener.getsockname())
        reader, writer = await open_unix_connection(sock=client, limit=1)
        assert await reader.read() == b"hi"
        [server_writer] = accepted
        server_writer.close()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def test_unix_tls(
    tmp_path: Path, tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_context, client_context = tls_contexts
    path = tmp_path / "tls.sock"
    async with protoport.open_loop():
        server = await start_unix_server(echo_upper, path, ssl=server_context)
        reader, writer = await open_unix_connection(
            path, ssl=client_context, server_hostname="localhost"
        )
        writer.write(b"unix and tls\n")
        assert await reader.readline() == b"UNIX AND TLS\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
