"""``loop.sendfile()``: ``os.sendfile()`` on plain socket transports, the
fallback (read and write) on the others, asyncio's checks and errors, and
asyncio's own ``loop.sendfile()`` given one of protoport's transports."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import pytest

import protoport
from _helpers import JoiningRecorder, run_soon_callbacks, wait_until
from _streams import memory_stream_pair

pytestmark = pytest.mark.anyio

#: Large enough that the kernel's buffers cannot take it at once.
CONTENT = bytes(range(256)) * 8000


@pytest.fixture
def on_disk() -> Iterator[Any]:
    with tempfile.TemporaryFile() as file:
        file.write(CONTENT)
        file.seek(0)
        yield file


@contextmanager
def counting_sendfile(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count the bytes ``os.sendfile()`` sends, call by call."""
    calls: list[int] = []
    real = os.sendfile

    def spy(*args: Any) -> int:
        sent = real(*args)
        calls.append(sent)
        return sent

    monkeypatch.setattr(os, "sendfile", spy)
    yield calls


def told_at_most_once(trace: list[Any]) -> bool:
    """Whether the protocol's flow-control calls were one pause and one resume
    at most: the fallback took those of its writes, and told the protocol only
    of a buffer left above the high watermark at the end."""
    flow = [entry for entry in trace if entry in ("pause", "resume")]
    return flow in ([], ["pause", "resume"])


async def read_until_eof(loop: protoport.Loop, sock: socket.socket) -> bytes:
    got = bytearray()
    while chunk := await loop.sock_recv(sock, 65536):
        got += chunk
    return bytes(got)


@asynccontextmanager
async def socket_transport(
    loop: protoport.Loop,
) -> AsyncIterator[tuple[Any, JoiningRecorder, socket.socket]]:
    """A transport over protoport's own socket stream, its protocol, and the
    peer's end (non-blocking, closed on exit)."""
    mine, peer = socket.socketpair()
    peer.setblocking(False)
    with peer:
        transport, protocol = await loop.connect_stream(
            JoiningRecorder, protoport.SocketStream(mine)
        )
        yield transport, protocol, peer
        transport.close()


async def send_and_receive(
    loop: protoport.Loop,
    transport: Any,
    peer: socket.socket,
    call: Callable[[], Awaitable[int]],
) -> tuple[int, bytes]:
    """Run *call* while the peer reads; close the transport once it returned and
    return its result and what the peer received."""
    received = b""

    async def read() -> None:
        nonlocal received
        received = await read_until_eof(loop, peer)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        sent = await call()
        transport.close()
    return sent, received


# -- os.sendfile() on socket transports ------------------------------------------------


async def test_native_sendfile_keeps_the_order_of_writes(
    on_disk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, _protocol, peer = conn

        async def call() -> int:
            # More than the kernel takes at once: the rest waits in the buffer.
            transport.write(b"b" * 1_000_000)
            sent = await loop.sendfile(transport, on_disk, 10)
            transport.write(b"after")
            return sent

        with counting_sendfile(monkeypatch) as calls:
            sent, received = await send_and_receive(loop, transport, peer, call)
    assert sent == len(CONTENT) - 10
    assert received == b"b" * 1_000_000 + CONTENT[10:] + b"after"
    # The kernel sent the file, and the file's position is after it.
    assert sum(calls) == sent
    assert on_disk.tell() == len(CONTENT)


async def test_native_sendfile_pauses_reading_and_refuses_writes(
    on_disk: Any,
) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, protocol, peer = conn
        task = loop.create_task(loop.sendfile(transport, on_disk, 0, 300_000))
        # Decided in the call's first step, as in asyncio.
        await run_soon_callbacks(loop)
        assert not transport.is_reading()
        with pytest.raises(RuntimeError, match=r"^unable to write; sendfile is in"):
            transport.write(b"x")
        with pytest.raises(RuntimeError, match=r"^unable to writelines; sendfile is"):
            transport.writelines([b"x"])
        peer.send(b"held back")
        got = bytearray()
        while len(got) < 300_000:
            got += await loop.sock_recv(peer, 65536)
        assert await task == 300_000
        assert bytes(got) == CONTENT[:300_000]
        assert on_disk.tell() == 300_000
        # Reading resumes, and what came meanwhile is delivered then.
        assert transport.is_reading()
        await wait_until(lambda: protocol.received() == b"held back")
        transport.write(b"again")
        assert await loop.sock_recv(peer, 100) == b"again"


async def test_native_sendfile_leaves_paused_reading_paused(on_disk: Any) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, _protocol, peer = conn
        transport.pause_reading()
        async with anyio.create_task_group() as tg:
            tg.start_soon(loop.sock_recv, peer, 1000)
            assert await loop.sendfile(transport, on_disk, 0, 1000) == 1000
        assert not transport.is_reading()
        transport.resume_reading()
        assert transport.is_reading()


async def test_a_second_sendfile_at_once_is_refused(on_disk: Any) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, _protocol, _peer = conn
        first = loop.create_task(loop.sendfile(transport, on_disk))
        await run_soon_callbacks(loop)
        with pytest.raises(RuntimeError, match="Empty waiter is already set"):
            await loop.sendfile(transport, on_disk)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        # The transport works as before.
        assert transport.is_reading()
        transport.write(b"x")


async def test_a_file_without_descriptor_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, _protocol, peer = conn
        file = io.BytesIO(CONTENT)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sendfile(transport, file, fallback=False)
        with counting_sendfile(monkeypatch) as calls:
            sent, received = await send_and_receive(
                loop, transport, peer, lambda: loop.sendfile(transport, file, 5)
            )
    assert calls == []
    assert sent == len(CONTENT) - 5
    assert received == CONTENT[5:]
    assert file.tell() == len(CONTENT)


async def test_the_peer_leaving_ends_sendfile_with_connection_error(
    on_disk: Any,
) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, protocol, peer = conn
        task = loop.create_task(loop.sendfile(transport, on_disk))
        # Read some, then close with unread bytes: the kernel resets.
        await loop.sock_recv(peer, 1024)
        peer.close()
        with pytest.raises(ConnectionError):
            await task
        await protocol.wait_lost()
        assert 0 < on_disk.tell() < len(CONTENT)


# -- the fallback ----------------------------------------------------------------------


async def test_tls_transports_fall_back(
    on_disk: Any,
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_ctx, client_ctx = tls_contexts
    async with protoport.open_loop() as loop:
        done = loop.create_future()
        got = bytearray()

        class Receiver(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                got.extend(data)

            def connection_lost(self, exc: BaseException | None) -> None:
                done.set_result(None)

        server = await loop.create_server(Receiver, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        transport, protocol = await loop.create_connection(
            JoiningRecorder,
            "127.0.0.1",
            port,
            ssl=client_ctx,
            server_hostname="localhost",
        )
        transport.set_write_buffer_limits(high=4096)
        with pytest.raises(RuntimeError) as refused:
            await loop.sendfile(transport, on_disk, fallback=False)
        assert str(refused.value) == (
            "fallback is disabled and native sendfile is not supported for "
            f"transport {transport!r}"
        )
        transport.write(b"before")
        with counting_sendfile(monkeypatch) as calls:
            sent = await loop.sendfile(transport, on_disk, 100, 200_000)
        transport.write(b"after")
        transport.close()
        with anyio.fail_after(10):
            await done
        server.close()
    assert calls == []
    assert sent == 200_000
    assert bytes(got) == b"before" + CONTENT[100:200_100] + b"after"
    assert on_disk.tell() == 200_100
    assert told_at_most_once(protocol.trace)


async def test_other_streams_fall_back_with_flow_control(on_disk: Any) -> None:
    local, peer = memory_stream_pair(capacity=10_000)
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_stream(JoiningRecorder, local)
        transport.set_write_buffer_limits(high=20_000)
        received = bytearray()

        async def read() -> None:
            async for chunk in peer:
                received.extend(chunk)
                # The writer waits for this slow peer; memory stays bounded.
                assert transport.get_write_buffer_size() <= 20_000 + 16 * 1024
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            sent = await loop.sendfile(transport, on_disk)
            transport.close()
            await protocol.wait_lost()
    assert sent == len(CONTENT)
    assert bytes(received) == CONTENT
    assert told_at_most_once(protocol.trace)


@pytest.mark.parametrize("paused_before", [True, False])
async def test_fallback_tells_the_protocol_where_flow_control_stands(
    on_disk: Any, paused_before: bool
) -> None:
    local, peer = memory_stream_pair(capacity=10)
    before = b"x" * 1000 if paused_before else b""
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.connect_stream(JoiningRecorder, local)
        transport.set_write_buffer_limits(high=100)
        transport.write(before)
        task = loop.create_task(loop.sendfile(transport, on_disk, 0, 5000))
        await run_soon_callbacks(loop)
        # The fallback stands in for the protocol meanwhile.
        assert transport.get_protocol() is not protocol

        received = bytearray()
        while len(received) < len(before) + 5000:
            received.extend(await peer.receive())
        assert await task == 5000
        assert bytes(received) == before + CONTENT[:5000]
        assert transport.get_protocol() is protocol
        await wait_until(lambda: transport.get_write_buffer_size() == 0)
        await run_soon_callbacks(loop)
        # Once pause, once resume, as the buffer went: the file's last bytes
        # went to the buffer above its high watermark (asyncio would not tell
        # the protocol, then resume it; and would resume one paused before
        # twice).
        assert protocol.trace == ["made", "pause", "resume"]
        transport.close()


# -- what sendfile refuses -------------------------------------------------------------


async def test_refusals_as_asyncio(on_disk: Any) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, _protocol, _peer = conn
        datagram, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        with pytest.raises(RuntimeError) as unsupported:
            await loop.sendfile(datagram, on_disk)
        assert str(unsupported.value) == (
            f"sendfile is not supported for transport {datagram!r}"
        )
        datagram.close()
        transport.close()
        with pytest.raises(RuntimeError, match=r"^Transport is closing$"):
            await loop.sendfile(transport, on_disk)
    assert on_disk.tell() == 0


async def _native_outcome(kwargs: dict[str, Any], text: bool) -> Any:
    """What asyncio's own loop.sendfile() does with *kwargs* on a TCP transport."""

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        try:
            with tempfile.TemporaryFile("w+" if text else "w+b") as file:
                return await outcome(loop.sendfile(transport, file, **kwargs))
        finally:
            transport.close()
            server.close()

    return await anyio.to_thread.run_sync(asyncio.run, main())


async def outcome(awaitable: Awaitable[Any]) -> Any:
    try:
        return ("returned", await awaitable)
    except Exception as exc:
        return ("raised", type(exc), str(exc))


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"offset": -1}, False),
        ({"offset": "0"}, False),
        ({"count": 0}, False),
        ({"count": 1.5}, False),
        ({}, True),
    ],
)
async def test_argument_checks_as_asyncio(kwargs: dict[str, Any], text: bool) -> None:
    expected = await _native_outcome(kwargs, text)
    assert expected[0] == "raised"
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, _protocol, _peer = conn
        with tempfile.TemporaryFile("w+" if text else "w+b") as file:
            assert await outcome(loop.sendfile(transport, file, **kwargs)) == expected
        # The transport reads again.
        assert transport.is_reading()


# -- asyncio's own loop.sendfile() -----------------------------------------------------


async def send_like_a_library(transport: Any, file: Any) -> str:
    """Send *file* as aiohttp's FileResponse does: with the running asyncio loop's
    sendfile(), or by writing the file's bytes where it raises
    NotImplementedError. Return which way it went."""
    loop = asyncio.get_running_loop()
    try:
        await loop.sendfile(transport, file)
    except NotImplementedError:
        while chunk := file.read(65536):
            transport.write(chunk)
        return "written"
    return "sendfile"


async def test_libraries_holding_the_asyncio_loop_can_send_files(
    on_disk: Any, anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, _protocol, peer = conn

        async def call() -> int:
            # A library's code runs in a task of the loop (a protocol's task).
            how = await loop.create_task(send_like_a_library(transport, on_disk))
            # Under Trio the running asyncio loop is protoport's, which sends
            # with os.sendfile(); under asyncio it is asyncio's, which declines
            # protoport's transports with NotImplementedError.
            assert how == ("sendfile" if anyio_backend == "trio" else "written")
            return len(CONTENT)

        with counting_sendfile(monkeypatch) as calls:
            _, received = await send_and_receive(loop, transport, peer, call)
    assert received == CONTENT
    assert (sum(calls) == len(CONTENT)) == (anyio_backend == "trio")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_s_own_sendfile_declines_with_not_implemented_error(
    on_disk: Any,
) -> None:
    async with protoport.open_loop() as loop, socket_transport(loop) as conn:
        transport, _protocol, _peer = conn
        with pytest.raises(NotImplementedError, match=r"protoport\.get_running_loop"):
            await asyncio.get_running_loop().sendfile(transport, on_disk)
        # Nothing was sent or changed.
        assert on_disk.tell() == 0
        assert transport.is_reading()
        # A closing transport gets asyncio's own error first.
        transport.close()
        with pytest.raises(RuntimeError, match=r"^Transport is closing$"):
            await asyncio.get_running_loop().sendfile(transport, on_disk)
