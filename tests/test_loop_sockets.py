"""The loop's socket and descriptor methods: ``sock_recv()`` and its kin,
``sock_sendfile()``, ``add_reader()``/``add_writer()`` and their removal."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import protoport
from _helpers import Recorder, collect_errors, wait_until
from conftest import open_fds

pytestmark = pytest.mark.anyio


def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


async def native(call: Callable[[asyncio.AbstractEventLoop], Awaitable[Any]]) -> Any:
    """What *call* gives (or raises) on a fresh native asyncio loop, in a
    thread of its own."""

    async def main() -> Any:
        return await call(asyncio.get_running_loop())

    def run() -> Any:
        try:
            return ("returned", asyncio.run(main()))
        except Exception as exc:
            return ("raised", type(exc), str(exc))

    return await anyio.to_thread.run_sync(run)


async def outcome(awaitable: Awaitable[Any]) -> Any:
    try:
        return ("returned", await awaitable)
    except Exception as exc:
        return ("raised", type(exc), str(exc))


# -- receiving and sending ---------------------------------------------------------


async def test_recv_waits_for_data_and_sendall_sends_everything() -> None:
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as loop:
            async with anyio.create_task_group() as tg:
                received: list[bytes] = []

                async def receive() -> None:
                    received.append(await loop.sock_recv(b, 100))

                tg.start_soon(receive)
                await anyio.sleep(0.05)
                assert received == []
                await loop.sock_sendall(a, b"hello")
            assert received == [b"hello"]
            # More than the kernel's buffers take at once: sendall waits.
            big = bytes(range(256)) * 8192
            got = bytearray()

            async def drain() -> None:
                while len(got) < len(big):
                    got.extend(await loop.sock_recv(b, 65536))

            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                await loop.sock_sendall(a, big)
            assert bytes(got) == big


async def test_recv_into_and_datagrams() -> None:
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as loop:
            a.send(b"abcdef")
            buf = bytearray(4)
            assert await loop.sock_recv_into(b, buf) == 4
            assert buf == b"abcd"
    udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for s in udp:
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
    one, two = udp
    with one, two:
        async with protoport.open_loop() as loop:
            sent = await loop.sock_sendto(one, b"ping", two.getsockname())
            assert sent == 4
            data, address = await loop.sock_recvfrom(two, 100)
            assert (data, address) == (b"ping", one.getsockname())
            await loop.sock_sendto(two, b"pong!", one.getsockname())
            buf = bytearray(10)
            nbytes, address = await loop.sock_recvfrom_into(one, buf)
            assert (bytes(buf[:nbytes]), address) == (b"pong!", two.getsockname())
            await loop.sock_sendto(two, b"12345", one.getsockname())
            # nbytes limits what is taken, as the socket call does.
            nbytes, _ = await loop.sock_recvfrom_into(one, buf, 2)
            assert bytes(buf[:nbytes]) == b"12"


async def test_cancelled_recv_leaves_the_bytes_for_the_next_one() -> None:
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as loop:
            with anyio.move_on_after(0.05):
                await loop.sock_recv(b, 100)
            a.send(b"kept")
            assert await loop.sock_recv(b, 100) == b"kept"


# -- connecting and accepting ------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_connect_and_accept(host: str) -> None:
    listener = socket.socket()
    listener.setblocking(False)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.socket()
    client.setblocking(False)
    with listener, client:
        async with protoport.open_loop() as loop:
            port = listener.getsockname()[1]
            async with anyio.create_task_group() as tg:
                accepted: list[Any] = []

                async def accept() -> None:
                    accepted.append(await loop.sock_accept(listener))

                tg.start_soon(accept)
                await loop.sock_connect(client, (host, port))
            conn, address = accepted[0]
            with conn:
                assert conn.gettimeout() == 0  # non-blocking, as asyncio's
                assert address == client.getsockname()
                await loop.sock_sendall(client, b"over")
                assert await loop.sock_recv(conn, 10) == b"over"


async def test_connect_refused() -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    client = socket.socket()
    client.setblocking(False)
    with client:
        async with protoport.open_loop() as loop:
            with pytest.raises(ConnectionRefusedError):
                await loop.sock_connect(client, ("127.0.0.1", port))


# -- what asyncio refuses ----------------------------------------------------------


async def test_tls_sockets_are_refused_as_asyncio_refuses_them() -> None:
    context = ssl.create_default_context()
    with context.wrap_socket(
        socket.socket(), server_hostname="x", do_handshake_on_connect=False
    ) as tls:
        calls: list[Callable[[asyncio.AbstractEventLoop], Awaitable[Any]]] = [
            lambda loop: loop.sock_recv(tls, 1),
            lambda loop: loop.sock_sendall(tls, b"x"),
            lambda loop: loop.sock_accept(tls),
            lambda loop: loop.sock_connect(tls, ("127.0.0.1", 1)),
        ]
        async with protoport.open_loop() as loop:
            for call in calls:
                expected = await native(call)
                assert expected[:2] == ("raised", TypeError)
                assert await outcome(call(loop)) == expected


async def test_blocking_sockets_are_refused_in_debug_mode() -> None:
    a, b = socket.socketpair()
    with a, b:

        def call(loop: asyncio.AbstractEventLoop) -> Awaitable[Any]:
            loop.set_debug(True)
            return loop.sock_recv(a, 1)

        expected = await native(call)
        assert expected == ("raised", ValueError, "the socket must be non-blocking")
        async with protoport.open_loop() as loop:
            assert await outcome(call(loop)) == expected


async def test_a_transports_socket_is_refused_when_a_call_must_wait() -> None:
    a, b = socket.socketpair()
    with b:
        async with protoport.open_loop() as loop:
            transport, _ = await loop.connect_accepted_socket(Recorder, a)
            with pytest.raises(RuntimeError, match="is used by transport"):
                await loop.sock_recv(a, 1)
            with pytest.raises(RuntimeError, match="is used by transport"):
                loop.add_reader(a, lambda: None)
            transport.close()


# -- sendfile ----------------------------------------------------------------------


async def test_sendfile_from_a_file_and_from_memory() -> None:
    content = bytes(range(256)) * 4000
    a, b = pair()
    with a, b, tempfile.TemporaryFile() as on_disk:
        on_disk.write(content)
        on_disk.flush()
        async with protoport.open_loop() as loop:
            for file, fallback in ((on_disk, False), (io.BytesIO(content), True)):
                got = bytearray()

                async def drain(into: bytearray, expected: int) -> None:
                    while len(into) < expected:
                        into.extend(await loop.sock_recv(b, 65536))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(drain, got, 300_000)
                    sent = await loop.sock_sendfile(
                        a, file, 1000, 300_000, fallback=fallback
                    )
                assert sent == 300_000
                assert bytes(got) == content[1000:301_000]
                # As asyncio: the file's position is after the last byte sent.
                assert file.tell() == 301_000


async def test_sendfile_without_a_descriptor_and_without_fallback() -> None:
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as loop:
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sock_sendfile(a, io.BytesIO(b"x"), fallback=False)


@pytest.mark.parametrize("fallback", [True, False])
async def test_sendfile_falls_back_where_os_sendfile_fails_at_once(
    fallback: bool,
) -> None:
    # A file whose descriptor os.sendfile() cannot read (a pipe's): asyncio then
    # reads the file and sends, or says sendfile is not available.
    async def call(loop: asyncio.AbstractEventLoop) -> Any:
        r, w = os.pipe()

        class OverAPipe(io.BytesIO):
            def fileno(self) -> int:
                return r

        a, b = pair()
        with a, b, open(r, "rb"), open(w, "wb"):
            file = OverAPipe(b"through a pipe")
            sent = await loop.sock_sendfile(a, file, 0, 7, fallback=fallback)
            return sent, b.recv(100), file.tell()

    expected = await native(call)
    assert expected == (
        ("returned", (7, b"through", 7))
        if fallback
        else ("raised", asyncio.SendfileNotAvailableError, "os.sendfile call failed")
    )
    async with protoport.open_loop() as loop:
        assert await outcome(call(loop)) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"offset": -1},
        {"offset": "0"},
        {"count": 0},
        {"count": 1.5},
        {"text": True},
        {"datagram": True},
    ],
)
async def test_sendfile_argument_checks_as_asyncio(kwargs: dict[str, Any]) -> None:
    kwargs = dict(kwargs)
    kind = socket.SOCK_DGRAM if kwargs.pop("datagram", False) else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.setblocking(False)
    mode = "w+" if kwargs.pop("text", False) else "w+b"
    with sock, tempfile.TemporaryFile(mode) as file:

        def call(loop: asyncio.AbstractEventLoop) -> Awaitable[Any]:
            return loop.sock_sendfile(sock, file, **kwargs)

        expected = await native(call)
        assert expected[0] == "raised"
        async with protoport.open_loop() as loop:
            assert await outcome(call(loop)) == expected


# -- watching descriptors ----------------------------------------------------------


async def test_add_reader_calls_back_while_readable() -> None:
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as loop:
            seen: list[Any] = []

            def on_readable(tag: str) -> None:
                seen.append((tag, b.recv(100)))

            loop.add_reader(b, on_readable, "first")
            a.send(b"one")
            await wait_until(lambda: len(seen) == 1)
            # A second add_reader() replaces the first callback.
            loop.add_reader(b.fileno(), on_readable, "second")
            a.send(b"two")
            await wait_until(lambda: len(seen) == 2)
            assert seen == [("first", b"one"), ("second", b"two")]
            assert loop.remove_reader(b) is True
            assert loop.remove_reader(b) is False
            a.send(b"unseen")
            await anyio.sleep(0.05)
            assert len(seen) == 2


async def test_add_writer_calls_back_while_writable() -> None:
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as loop:
            calls: list[int] = []

            def on_writable() -> None:
                calls.append(1)
                if len(calls) == 3:
                    loop.remove_writer(a)

            loop.add_writer(a, on_writable)
            await wait_until(lambda: len(calls) == 3)
            await anyio.sleep(0.05)
            assert len(calls) == 3
            assert loop.remove_writer(a) is False


async def test_a_failing_reader_is_reported_and_stays() -> None:
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as loop:
            errors = collect_errors(loop)
            count = 0

            def on_readable() -> None:
                nonlocal count
                count += 1
                b.recv(100)
                raise ValueError("boom")

            loop.add_reader(b, on_readable)
            a.send(b"x")
            await wait_until(lambda: count == 1)
            a.send(b"y")
            await wait_until(lambda: count == 2)
            loop.remove_reader(b)
            assert [type(e["exception"]) for e in errors] == [ValueError, ValueError]
            assert all(e["message"].startswith("Exception in callback") for e in errors)


async def test_bad_descriptors_as_asyncio() -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(ValueError, match=r"^Invalid file object: 'x'$"):
            loop.add_reader("x", lambda: None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^Invalid file descriptor: -1$"):
            loop.add_writer(-1, lambda: None)


async def test_leaving_the_loop_stops_watching() -> None:
    before = open_fds()
    a, b = pair()
    seen: list[bytes] = []
    with a, b:
        async with protoport.open_loop() as loop:
            loop.add_reader(b, lambda: seen.append(b.recv(100)))
        a.send(b"after")
        await anyio.sleep(0.05)
        assert seen == []
        assert loop.remove_reader(b) is False
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            loop.add_reader(b, lambda: None)
    assert open_fds() == before


async def test_a_pipe_transports_descriptor_is_refused() -> None:
    read_end, write_end = os.pipe()
    try:
        async with protoport.open_loop() as loop:
            transport, _ = await loop.connect_read_pipe(
                Recorder, os.fdopen(read_end, "rb", buffering=0)
            )
            with pytest.raises(RuntimeError, match="is used by transport"):
                loop.add_reader(read_end, lambda: None)
            transport.close()
    finally:
        os.close(write_end)
