"""open_stream_pair() (AnyIO byte stream -> asyncio streams) and
as_anyio_stream() (asyncio streams -> AnyIO byte stream)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import anyio
import pytest
from anyio import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    EndOfStream,
    TypedAttributeLookupError,
)
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSAttribute, TLSStream

import protoport
from _helpers import read_to_eof, wait_until
from _streams import memory_stream_pair, socket_stream_pair
from protoport import (
    StreamReader,
    StreamReaderProtocol,
    StreamWriter,
    as_anyio_stream,
    open_stream_pair,
)

pytestmark = pytest.mark.anyio


async def tls_pair(
    a: ByteStream, b: ByteStream, contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> tuple[TLSStream, TLSStream]:
    """Wrap *a* as a TLS client and *b* as a TLS server (handshakes run together)."""
    server_context, client_context = contexts
    wrapped: dict[str, TLSStream] = {}

    async def client() -> None:
        wrapped["client"] = await TLSStream.wrap(
            a, hostname="localhost", ssl_context=client_context
        )

    async def server() -> None:
        wrapped["server"] = await TLSStream.wrap(
            b, server_side=True, ssl_context=server_context
        )

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client)
            tg.start_soon(server)
    return wrapped["client"], wrapped["server"]


# -- open_stream_pair ------------------------------------------------------------


async def test_open_stream_pair_over_memory() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        assert isinstance(reader, StreamReader)
        assert isinstance(writer, StreamWriter)
        assert isinstance(writer.transport, protoport.StreamTransport)
        await peer.send(b"request\n")
        assert await reader.readline() == b"request\n"
        writer.write(b"response")
        writer.write_eof()
        assert await read_to_eof(peer) == b"response"
        assert peer.sent_eof is False
        await peer.send_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()


async def test_open_stream_pair_limit() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local, limit=4)
        await peer.send(b"too long\n")
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await reader.readuntil(b"\n")
        assert info.value.consumed == 8
        writer.close()


async def test_open_stream_pair_is_owned_by_the_loop() -> None:
    local, peer = memory_stream_pair()
    async with peer:
        async with protoport.open_loop():
            _reader, writer = await open_stream_pair(local)
            writer.write(b"last words")
            writer.close()
            other_local, other_peer = memory_stream_pair()
            _other_reader, other_writer = await open_stream_pair(other_local)
        # Leaving the loop let the closing transport flush its bytes, and closed
        # the stream of the open one.
        assert await read_to_eof(peer) == b"last words"
        assert other_writer.is_closing()
        assert await read_to_eof(other_peer) == b""


async def test_open_stream_pair_over_tls(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    a, b = memory_stream_pair()
    client, server = await tls_pair(a, b, tls_contexts)
    async with server, protoport.open_loop():
        reader, writer = await open_stream_pair(client)
        assert writer.get_extra_info("ssl_object") is client.extra(
            TLSAttribute.ssl_object
        )
        writer.write(b"secret\n")
        await writer.drain()
        assert await server.receive() == b"secret\n"
        await server.send(b"answer\n")
        assert await reader.readline() == b"answer\n"
        writer.close()
        # The TLS shutdown needs the peer's answer.
        with pytest.raises(EndOfStream):
            await server.receive()
        await server.aclose()
        with anyio.fail_after(5):
            await writer.wait_closed()


# -- as_anyio_stream -------------------------------------------------------------


async def test_as_anyio_stream_send_receive_eof() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        stream = as_anyio_stream(*await open_stream_pair(local))
        assert isinstance(stream, ByteStream)
        await stream.send(b"to peer")
        assert await peer.receive() == b"to peer"
        await peer.send(b"0123456789")
        assert await stream.receive(4) == b"0123"
        assert await stream.receive() == b"456789"
        await peer.send_eof()
        with pytest.raises(EndOfStream):
            await stream.receive()
        with pytest.raises(EndOfStream):
            await stream.receive()
        # Our side is still open for sending, until send_eof().
        await stream.send(b"more")
        await stream.send_eof()
        await stream.send_eof()  # idempotent
        assert await read_to_eof(peer) == b"more"
        with pytest.raises(ClosedResourceError):
            await stream.send(b"after eof")
        await stream.aclose()


async def test_as_anyio_stream_receive_rejects_nonpositive_max_bytes() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        stream = as_anyio_stream(*await open_stream_pair(local))
        with pytest.raises(ValueError, match=r"^max_bytes must be a positive integer$"):
            await stream.receive(0)
        await stream.aclose()


async def test_as_anyio_stream_aclose() -> None:
    local, peer = memory_stream_pair(capacity=10)
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        stream = as_anyio_stream(reader, writer)
        writer.write(b"buffered " * 1000)
        async with anyio.create_task_group() as tg:
            tg.start_soon(stream.aclose)
            # aclose() waits until the buffered bytes are sent and it is closed.
            assert await read_to_eof(peer) == b"buffered " * 1000
        assert writer.is_closing()
        await stream.aclose()  # again: nothing to do
        with pytest.raises(ClosedResourceError):
            await stream.receive()
        with pytest.raises(ClosedResourceError):
            await stream.send(b"x")
        with pytest.raises(ClosedResourceError):
            await stream.send_eof()


async def test_as_anyio_stream_cancelled_aclose_aborts() -> None:
    local, peer = memory_stream_pair(capacity=10)
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        stream = as_anyio_stream(reader, writer)
        writer.write(b"never read " * 1000)
        with anyio.move_on_after(0.01):
            await stream.aclose()
        await writer.wait_closed()  # aborted: no need to wait for the peer
        assert len(await read_to_eof(peer)) < len(b"never read " * 1000)


async def test_as_anyio_stream_concurrent_receive_is_busy() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        stream = as_anyio_stream(reader, writer)
        got: list[bytes] = []

        async def receive() -> None:
            got.append(await stream.receive())

        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            await wait_until(lambda: "waiter=" in repr(reader))
            with pytest.raises(BusyResourceError):
                await stream.receive()
            await peer.send(b"first")
        assert got == [b"first"]
        await stream.aclose()


async def test_as_anyio_stream_broken_connection() -> None:
    local, peer = memory_stream_pair()
    async with protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        stream = as_anyio_stream(reader, writer)
        peer.reset()
        with pytest.raises(BrokenResourceError) as info:
            await stream.receive()
        assert isinstance(info.value.__cause__, ConnectionResetError)
        with pytest.raises(BrokenResourceError):
            await stream.send(b"x")
        await stream.aclose()  # the connection error is not raised again


async def test_as_anyio_stream_send_waits_for_the_peer() -> None:
    # send() is write() + drain(): it returns once the buffer is below its high
    # watermark again, so a slow peer slows the sender down.
    local, peer = memory_stream_pair(capacity=100)
    async with peer, protoport.open_loop():
        reader, writer = await open_stream_pair(local)
        writer.transport.set_write_buffer_limits(high=1000)
        stream = as_anyio_stream(reader, writer)
        sizes: list[int] = []

        async def send() -> None:
            await stream.send(b"s" * 50_000)
            sizes.append(writer.transport.get_write_buffer_size())

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            await wait_until(lambda: len(writer._protocol._drain_waiters) == 1)
            assert sizes == []  # the peer has not read: send() still waits
            received = bytearray()
            with anyio.fail_after(5):
                while len(received) < 50_000:
                    received += await peer.receive()
        assert received == b"s" * 50_000
        # send() returned once the buffer was at the low watermark (250) or below.
        [size] = sizes
        assert size <= 250
        await stream.aclose()


async def test_as_anyio_stream_typed_attributes_pass_through() -> None:
    local, peer = await socket_stream_pair(socket.AF_INET)
    async with peer, protoport.open_loop():
        stream = as_anyio_stream(*await open_stream_pair(local))
        assert stream.extra(SocketAttribute.remote_address) == peer.extra(
            SocketAttribute.local_address
        )
        assert stream.extra(SocketAttribute.family) == socket.AF_INET
        assert stream.extra(SocketAttribute.raw_socket) is local.extra(
            SocketAttribute.raw_socket
        )
        await stream.aclose()


async def test_as_anyio_stream_without_typed_attributes() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        stream = as_anyio_stream(*await open_stream_pair(local))
        with pytest.raises(TypedAttributeLookupError):
            stream.extra(SocketAttribute.remote_address)
        assert stream.extra(SocketAttribute.remote_address, None) is None
        await stream.aclose()


async def test_as_anyio_stream_with_anyio_helpers() -> None:
    local, peer = memory_stream_pair()
    async with peer, protoport.open_loop():
        stream = as_anyio_stream(*await open_stream_pair(local))
        buffered = BufferedByteReceiveStream(stream)
        await peer.send(b"header: 1\r\n\r\nbody")
        assert await buffered.receive_until(b"\r\n\r\n", 100) == b"header: 1"
        assert await buffered.receive_exactly(4) == b"body"
        await stream.aclose()


async def test_tls_on_top_of_adapted_streams(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    # AnyIO stream -> asyncio streams -> AnyIO stream -> TLS, on both ends.
    a, b = memory_stream_pair()
    async with protoport.open_loop():
        left = as_anyio_stream(*await open_stream_pair(a))
        right = as_anyio_stream(*await open_stream_pair(b))
        client, server = await tls_pair(left, right, tls_contexts)
        await client.send(b"hello over tls")
        assert await server.receive() == b"hello over tls"
        await server.send(b"and back")
        assert await client.receive() == b"and back"
        # Each side's TLS shutdown waits for the other's close_notify.
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.aclose)
                tg.start_soon(server.aclose)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_with_asyncio_own_transport() -> None:
    # The stream classes also run on asyncio's own transports, with asyncio's
    # flow control; as_anyio_stream() then takes its attributes from
    # get_extra_info().
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    aio = asyncio.get_running_loop()
    reader = StreamReader(loop=aio)
    protocol = StreamReaderProtocol(reader, loop=aio)
    transport, _ = await aio.create_connection(lambda: protocol, sock=client)
    writer = StreamWriter(transport, protocol, reader, aio)
    stream = as_anyio_stream(reader, writer)
    assert stream.extra(SocketAttribute.family) == socket.AF_INET
    assert stream.extra(SocketAttribute.remote_address) == accepted.getsockname()
    assert stream.extra(SocketAttribute.remote_port) == accepted.getsockname()[1]
    assert stream.extra(SocketAttribute.local_address) == client.getsockname()
    assert stream.extra(SocketAttribute.local_port) == client.getsockname()[1]
    with accepted:
        accepted.setblocking(False)
        payload = b"z" * 3_000_000
        transport.set_write_buffer_limits(high=10_000)  # type: ignore[attr-defined]
        sender = aio.create_task(stream.send(payload))
        received = bytearray()
        with anyio.fail_after(5):
            while len(received) < len(payload):
                await anyio.wait_readable(accepted)
                received += accepted.recv(1 << 20)
            await sender
        assert received == payload
        accepted.sendall(b"reply\n")
        assert await reader.readline() == b"reply\n"
    await stream.aclose()
    assert await reader.read() == b""
