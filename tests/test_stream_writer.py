"""StreamWriter and StreamReaderProtocol over protoport transports: writing,
half-close, closing, every case of drain(), the client_connected_cb of the
protocol, and the writer's finaliser."""

from __future__ import annotations

import gc
import socket
import ssl
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from anyio.streams.tls import TLSStream

import protoport
from _helpers import (
    check_writelines,
    collect_errors,
    open_pair,
    read_exactly,
    read_to_eof,
    receive_exactly,
    wait_until,
)
from _streams import memory_stream_pair, socket_stream_pair
from protoport import (
    StreamReader,
    StreamReaderProtocol,
    StreamWriter,
    open_connection,
    open_stream_pair,
)

pytestmark = pytest.mark.anyio


def drain_waiters(writer: StreamWriter) -> int:
    """How many drain() calls wait for writing to resume."""
    return len(writer._protocol._drain_waiters)


# -- writing ---------------------------------------------------------------------


async def test_write_writelines_write_eof(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        assert writer.can_write_eof() is True
        writer.write(b"hello ")
        writer.write(bytearray(b"big "))
        writer.writelines([b"wide ", memoryview(b"world")])
        writer.write_eof()
        assert await read_to_eof(peer) == b"hello big wide world"
        # Half-closed: the other direction still works.
        await peer.send(b"reply")
        await peer.send_eof()
        assert await reader.read() == b"reply"
        writer.close()
        await writer.wait_closed()


async def test_writelines_takes_and_refuses_what_asyncio_does(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        expected = check_writelines(writer.writelines) + b"end"
        writer.write(b"end")
        assert await read_exactly(peer, len(expected)) == expected
        writer.close()


async def test_write_errors_are_the_transports() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        with pytest.raises(
            TypeError,
            match=r"^data argument must be a bytes-like object, not 'str'$",
        ):
            writer.write("text")  # type: ignore[arg-type]
        writer.write_eof()
        with pytest.raises(
            RuntimeError, match=r"^Cannot call write\(\) after write_eof\(\)$"
        ):
            writer.write(b"late")
        with pytest.raises(
            RuntimeError, match=r"^Cannot call writelines\(\) after write_eof\(\)$"
        ):
            writer.writelines([b"late"])
        writer.close()


async def test_transport_and_extra_info() -> None:
    local, peer = await socket_stream_pair(socket.AF_INET)
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        assert isinstance(writer.transport, protoport.StreamTransport)
        assert writer.get_extra_info("peername") == peer.extra(
            anyio.abc.SocketAttribute.local_address
        )
        assert writer.get_extra_info("sockname") == writer.transport.get_extra_info(
            "sockname"
        )
        assert writer.get_extra_info("no such key") is None
        assert writer.get_extra_info("no such key", 42) == 42
        writer.close()


async def test_repr() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        assert repr(writer) == (
            f"<StreamWriter transport={writer.transport!r} reader={reader!r}>"
        )
        bare = StreamWriter(writer.transport, writer._protocol, None, writer._loop)
        assert repr(bare) == f"<StreamWriter transport={writer.transport!r}>"
        writer.close()


async def test_start_tls_moves_everything_to_the_new_transport(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls_contexts
    local, peer = memory_stream_pair()
    async with protoport.open_loop():
        reader, writer = await open_stream_pair(local, limit=10)
        clear = writer.transport
        writer.write(b"in clear")  # sent before the handshake
        assert await receive_exactly(peer, 8) == b"in clear"
        wrapped: list[TLSStream] = []

        async def accept_tls() -> None:
            wrapped.append(
                await TLSStream.wrap(peer, server_side=True, ssl_context=server_context)
            )

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(accept_tls)
                await writer.start_tls(client_context, server_hostname="localhost")
        [tls_peer] = wrapped
        transport = writer.transport
        assert transport is not clear
        assert writer.get_extra_info("ssl_object") is not None
        # The reader's limit pauses and resumes the new transport.
        await tls_peer.send(b"x" * 100)
        await wait_until(lambda: not transport.is_reading())  # type: ignore[attr-defined]
        assert await reader.readexactly(100) == b"x" * 100
        assert transport.is_reading()  # type: ignore[attr-defined]
        writer.write(b"protected")
        await writer.drain()
        assert await tls_peer.receive() == b"protected"
        writer.close()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer.wait_closed)
                with pytest.raises(anyio.EndOfStream):
                    await tls_peer.receive()
                await tls_peer.aclose()


# -- closing ---------------------------------------------------------------------


async def test_close_flushes_then_wait_closed_returns(kind: str) -> None:
    local, peer = await open_pair(kind, capacity=100)
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        payload = bytes(range(256)) * 400
        writer.write(payload)
        assert not writer.is_closing()
        writer.close()
        assert writer.is_closing()
        writer.close()  # idempotent
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.wait_closed)
            tg.start_soon(writer.wait_closed)  # any number of waiters
            assert await receive_exactly(peer, len(payload)) == payload
        await writer.wait_closed()  # and again, once closed
        assert reader.at_eof()


async def test_wait_closed_raises_the_connection_error() -> None:
    local, peer = memory_stream_pair()
    async with protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        peer.reset()
        with pytest.raises(ConnectionResetError, match=r"^Connection lost$"):
            await writer.wait_closed()
        with pytest.raises(ConnectionResetError, match=r"^Connection lost$"):
            await reader.read()
        assert writer.is_closing()


async def test_peer_eof_keeps_the_write_side_open(kind: str) -> None:
    # StreamReaderProtocol.eof_received() returns True: a half-close.
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        await peer.send_eof()
        assert await reader.read() == b""
        assert reader.at_eof()
        assert not writer.is_closing()
        writer.write(b"still here")
        await writer.drain()
        assert await receive_exactly(peer, 10) == b"still here"
        writer.close()
        await writer.wait_closed()


async def test_dropped_open_writer_closes_its_transport() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        transport = writer.transport
        # The transport is closed first, then the warning names the writer.
        expected = f"unclosed <StreamWriter transport={transport!r}"
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            del writer
            gc.collect()
        assert transport.is_closing()
        [warning] = [w for w in warned if issubclass(w.category, ResourceWarning)]
        assert str(warning.message).startswith(expected.replace(" open ", " closing "))


async def test_dropped_closed_writer_does_not_warn() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        writer.close()
        await writer.wait_closed()
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            del writer
            gc.collect()
        assert [w for w in warned if issubclass(w.category, ResourceWarning)] == []


# -- drain -----------------------------------------------------------------------


async def test_drain_without_pressure_does_not_yield() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        writer.write(b"x")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await writer.drain()  # returns without a checkpoint
        assert not scope.cancelled_caught
        writer.close()


async def test_drain_raises_the_readers_exception() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        exc = ValueError("reader failed")
        reader.set_exception(exc)
        with pytest.raises(ValueError, match=r"^reader failed$") as info:
            await writer.drain()
        assert info.value is exc
        writer.close()


async def test_drain_on_closing_transport_yields_once() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        writer.close()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await writer.drain()
        assert scope.cancelled_caught
        await writer.wait_closed()


async def test_drain_after_connection_lost() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        writer.close()
        await writer.wait_closed()
        with pytest.raises(ConnectionResetError, match=r"^Connection lost$"):
            await writer.drain()


async def fill_until_paused(writer: StreamWriter) -> bytes:
    """Write until the transport's buffer is above its high watermark (5000),
    with the peer not reading; then 1 MiB more. Return everything written."""
    transport = writer.transport
    transport.set_write_buffer_limits(high=5000, low=1000)
    chunk = b"p" * 65536
    written = bytearray()
    with anyio.fail_after(5):
        while transport.get_write_buffer_size() <= 5000:
            writer.write(chunk)
            written += chunk
            await anyio.sleep(0.001)
    writer.write(b"q" * (1 << 20))
    return bytes(written) + b"q" * (1 << 20)


async def check_drains_wait(
    writer: StreamWriter, receive: Callable[[int], Awaitable[bytes]]
) -> None:
    payload = await fill_until_paused(writer)
    drained: list[int] = []

    async def drain(i: int) -> None:
        await writer.drain()
        drained.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(drain, i)
        await wait_until(lambda: drain_waiters(writer) == 5)
        assert drained == []  # nobody reads: all of them wait
        received = await receive(len(payload))
    assert received == payload
    assert sorted(drained) == [0, 1, 2, 3, 4]
    writer.close()
    await writer.wait_closed()


async def test_drain_waits_while_paused_and_many_may_wait() -> None:
    local, peer = memory_stream_pair(capacity=1000)
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        await check_drains_wait(writer, lambda n: receive_exactly(peer, n))


@pytest.mark.parametrize(
    "family", [socket.AF_UNIX, socket.AF_INET], ids=["unix", "tcp"]
)
async def test_drain_waits_on_a_full_socket(family: socket.AddressFamily) -> None:
    # The peer is a bare socket: nothing reads from it until we say so.
    ours, theirs = raw_socket_pair(family)
    with theirs:
        async with protoport.open_loop():
            _reader, writer = await open_connection(sock=ours)
            await check_drains_wait(writer, lambda n: recv_exactly(theirs, n))


def raw_socket_pair(
    family: socket.AddressFamily,
) -> tuple[socket.socket, socket.socket]:
    if family == socket.AF_UNIX:
        return socket.socketpair()
    with socket.socket(family) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ours = socket.create_connection(listener.getsockname())
        theirs, _ = listener.accept()
    return ours, theirs


async def recv_exactly(sock: socket.socket, n: int) -> bytes:
    sock.setblocking(False)
    buf = bytearray()
    with anyio.fail_after(5):
        while len(buf) < n:
            await anyio.wait_readable(sock)
            try:
                buf += sock.recv(n - len(buf))
            except BlockingIOError:
                continue
    return bytes(buf)


async def test_drain_waiting_when_connection_breaks() -> None:
    local, peer = memory_stream_pair(capacity=10)
    async with protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        writer.write(b"x" * 200_000)
        async with anyio.create_task_group() as tg:
            outcome: list[BaseException] = []

            async def drain() -> None:
                try:
                    await writer.drain()
                except ConnectionResetError as exc:
                    outcome.append(exc)

            tg.start_soon(drain)
            await wait_until(lambda: drain_waiters(writer) == 1)
            assert outcome == []
            peer.reset()
        assert [str(exc) for exc in outcome] == ["Connection lost"]


async def test_drain_waiting_when_aborted() -> None:
    # connection_lost(None) releases a paused drain() without an error.
    local, peer = memory_stream_pair(capacity=10)
    async with peer, protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        writer.write(b"x" * 200_000)
        done = anyio.Event()

        async def drain() -> None:
            await writer.drain()
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            await wait_until(lambda: drain_waiters(writer) == 1)
            assert not done.is_set()
            writer.transport.abort()
        assert done.is_set()
        await writer.wait_closed()


async def test_write_and_drain_loop_ends_when_the_peer_goes() -> None:
    # A write()/drain() loop must notice a closed peer instead of spinning.
    local, peer = await socket_stream_pair(socket.AF_INET)
    async with protoport.open_loop():
        _reader, writer = await open_stream_pair(local)
        await peer.aclose()

        async def write_forever() -> None:
            while True:
                writer.write(b"foo\n")
                await writer.drain()

        with (
            anyio.fail_after(5),
            pytest.raises((ConnectionResetError, BrokenPipeError)),
        ):
            await write_forever()


# -- StreamReaderProtocol ----------------------------------------------------------


async def test_protocol_feeds_the_reader(kind: str) -> None:
    local, peer = await open_pair(kind)
    async with peer, protoport.open_loop() as loop:
        reader = StreamReader(loop=loop)
        protocol = StreamReaderProtocol(reader, loop=loop)
        transport, got = await loop.connect_stream(lambda: protocol, local)
        assert got is protocol
        writer = StreamWriter(transport, protocol, reader, loop)
        await peer.send(b"one\ntwo\n")
        await peer.send_eof()
        assert [line async for line in reader] == [b"one\n", b"two\n"]
        writer.close()
        await writer.wait_closed()


async def test_protocol_without_a_reader() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        protocol = StreamReaderProtocol(None, loop=loop)
        transport, _ = await loop.connect_stream(lambda: protocol, local)
        writer = StreamWriter(transport, protocol, None, loop)
        await peer.send(b"ignored")
        await peer.send_eof()
        writer.write(b"out")
        await writer.drain()
        assert await receive_exactly(peer, 3) == b"out"
        writer.close()
        await writer.wait_closed()


async def test_client_connected_cb_plain_function() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        calls: list[tuple[Any, Any]] = []
        reader = StreamReader(loop=loop)

        def connected(r: StreamReader, w: StreamWriter) -> None:
            calls.append((r, w))
            w.write(b"welcome")

        protocol = StreamReaderProtocol(reader, connected, loop=loop)
        transport, _ = await loop.connect_stream(lambda: protocol, local)
        [(r, w)] = calls
        assert r is reader
        assert isinstance(w, StreamWriter)
        assert w.transport is transport
        assert await receive_exactly(peer, 7) == b"welcome"
        w.close()
        await w.wait_closed()


async def test_client_connected_cb_coroutine_runs_as_a_task() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        contexts = collect_errors(loop)

        async def echo_line(r: StreamReader, w: StreamWriter) -> None:
            line = await r.readline()
            w.write(line.upper())
            await w.drain()
            w.close()
            await w.wait_closed()

        protocol = StreamReaderProtocol(StreamReader(loop=loop), echo_line, loop=loop)
        await loop.connect_stream(lambda: protocol, local)
        await peer.send(b"hello\n")
        assert await read_to_eof(peer) == b"HELLO\n"
        with anyio.fail_after(5):
            await protocol._closed
        assert contexts == []


async def test_client_connected_cb_failure_is_reported_and_closes() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        error = ZeroDivisionError("bad handler")

        async def failing(r: StreamReader, w: StreamWriter) -> None:
            await r.readexactly(2)
            raise error

        protocol = StreamReaderProtocol(StreamReader(loop=loop), failing, loop=loop)
        transport, _ = await loop.connect_stream(lambda: protocol, local)
        await peer.send(b"go")
        assert await read_to_eof(peer) == b""  # closed by the failure
        await wait_until(lambda: bool(contexts))
        assert contexts == [
            {
                "message": "Unhandled exception in client_connected_cb",
                "exception": error,
                "transport": transport,
            }
        ]
        assert transport.is_closing()


async def test_client_connected_cb_cancelled_closes_the_transport() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop() as loop:
        contexts = collect_errors(loop)
        started = anyio.Event()

        async def waits_forever(r: StreamReader, w: StreamWriter) -> None:
            started.set()
            await r.read()

        protocol = StreamReaderProtocol(
            StreamReader(loop=loop), waits_forever, loop=loop
        )
        transport, _ = await loop.connect_stream(lambda: protocol, local)
        with anyio.fail_after(5):
            await started.wait()
        assert protocol._task is not None
        protocol._task.cancel()
        assert await read_to_eof(peer) == b""
        assert transport.is_closing()
        assert contexts == []


async def test_connection_lost_with_error_reaches_reader_and_writer() -> None:
    local, peer = memory_stream_pair()
    async with protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        await peer.send(b"partial")
        assert await reader.read(7) == b"partial"
        peer.reset()
        with pytest.raises(ConnectionResetError):
            await reader.readline()
        with pytest.raises(ConnectionResetError):
            await writer.drain()
        with pytest.raises(ConnectionResetError):
            await writer.wait_closed()
