"""The loop's socket and descriptor methods: ``sock_recv()`` and its kin,
``sock_sendfile()``, ``add_reader()``/``add_writer()`` and their removal."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import ssl
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
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


# -- waiting as asyncio's selector loop waits ---------------------------------------


async def in_loop_task(
    loop: protoport.Loop,
    call: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, Any]],
) -> Any:
    """What *call* gives (or raises) in a task of *loop*."""
    return await outcome(loop.create_task(call(loop)))


async def finish(task: asyncio.Future[Any]) -> None:
    """Cancel *task* and wait until it has ended."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def registered_at_once(loop: asyncio.AbstractEventLoop) -> Any:
    """Whether a waiting sock_recv() of a task holds the socket's reader slot
    (which remove_reader() then takes from it) once the task has had one step,
    and a sock_connect() has begun connecting."""
    listener = socket.socket()
    listener.setblocking(False)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    a, b = pair()
    client = socket.socket()
    client.setblocking(False)
    with a, b, client, listener:
        receiving = loop.create_task(loop.sock_recv(b, 10))
        connecting = loop.create_task(loop.sock_connect(client, listener.getsockname()))
        await asyncio.sleep(0)
        registered = loop.remove_reader(b)
        try:
            listener.accept()[0].close()
            began = True
        except BlockingIOError:
            began = False
        await finish(receiving)
        await finish(connecting)
        return registered, began


async def test_a_waiting_call_is_registered_before_the_tasks_next_step() -> None:
    expected = await native(registered_at_once)
    assert expected == ("returned", (True, True))
    async with protoport.open_loop() as loop:
        assert await in_loop_task(loop, registered_at_once) == expected


async def cancel_then_call_again(loop: asyncio.AbstractEventLoop) -> Any:
    """Cancel a waiting call and at once make another on the same socket, in
    each direction (CPython's racing tests do this)."""
    a, b = pair()
    with a, b:
        first = loop.create_task(loop.sock_recv(b, 100))
        await asyncio.sleep(0)
        first.cancel()
        sending = loop.create_task(loop.sock_sendall(a, b"hello"))
        received = await loop.sock_recv(b, 100)
        await sending
        # Fill the socket's buffers, then the same with sock_sendall().
        with contextlib.suppress(BlockingIOError):
            while True:
                a.send(b" " * 65536)
        first = loop.create_task(loop.sock_sendall(a, b"lost"))
        await asyncio.sleep(0)
        first.cancel()
        draining = loop.create_task(receive_until(loop, b, b"world"))
        await loop.sock_sendall(a, b"world")
        drained = await draining
        return first.cancelled(), received, drained.strip(b" ")


async def receive_until(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, end: bytes
) -> bytes:
    got = bytearray()
    while not got.endswith(end):
        got += await loop.sock_recv(sock, 65536)
    return bytes(got)


async def receive_exactly(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int
) -> int:
    """Receive *size* bytes; return how many came."""
    got = 0
    while got < size:
        got += len(await loop.sock_recv(sock, min(65536, size - got)))
    return got


async def test_a_call_cancelled_while_waiting_gives_way_to_the_next() -> None:
    expected = await native(cancel_then_call_again)
    assert expected == ("returned", (True, b"hello", b"world"))
    async with protoport.open_loop() as loop:
        assert await in_loop_task(loop, cancel_then_call_again) == expected


async def cancelled_leaves_nothing(loop: asyncio.AbstractEventLoop) -> Any:
    """After a cancelled call the socket is watched by nothing: it closes
    cleanly, and a reader added later for the same descriptor number (a new
    socket's) is called."""
    a, b = pair()
    fileno = b.fileno()
    task = loop.create_task(loop.sock_recv(b, 100))
    await asyncio.sleep(0)
    await finish(task)
    leftover = loop.remove_reader(fileno)
    a.close()
    b.close()
    c, d = pair()
    with c, d:
        seen: asyncio.Future[bytes] = loop.create_future()

        def on_readable() -> None:
            if not seen.done():
                seen.set_result(d.recv(100))

        loop.add_reader(d, on_readable)
        c.send(b"seen")
        got = await asyncio.wait_for(seen, 5)
        return leftover, got, loop.remove_reader(d), d.fileno() == fileno


async def test_a_cancelled_call_leaves_no_registration() -> None:
    expected = await native(cancelled_leaves_nothing)
    # The new socket's descriptor is the old one's: what a leftover would hit.
    assert expected == ("returned", (False, b"seen", True, True))
    async with protoport.open_loop() as loop:
        assert await in_loop_task(loop, cancelled_leaves_nothing) == expected


async def call_takes_the_readers_place(loop: asyncio.AbstractEventLoop) -> Any:
    """A waiting call replaces the socket's reader, which is gone for good once
    the call has ended; a reader added while a call waits replaces the call's
    registration."""
    a, b = pair()
    with a, b:
        calls: list[str] = []
        loop.add_reader(b, calls.append, "first reader")
        task = loop.create_task(loop.sock_recv(b, 100))
        await asyncio.sleep(0)
        a.send(b"for the call")
        received = await task
        a.send(b"for nobody")
        await asyncio.sleep(0.05)
        still_watched = loop.remove_reader(b)
        b.recv(100)
        task = loop.create_task(loop.sock_recv(b, 100))
        await asyncio.sleep(0)
        loop.add_reader(b, lambda: calls.append("second reader") or b.recv(100))
        a.send(b"for the reader")
        await asyncio.sleep(0.05)
        waiting = not task.done()
        await finish(task)
        loop.remove_reader(b)
        return received, calls, still_watched, waiting


async def test_a_waiting_call_and_add_reader_share_one_slot_as_in_asyncio() -> None:
    expected = await native(call_takes_the_readers_place)
    assert expected == ("returned", (b"for the call", ["second reader"], False, True))
    async with protoport.open_loop() as loop:
        assert await in_loop_task(loop, call_takes_the_readers_place) == expected


async def test_a_cancelled_call_of_the_tests_own_task_gives_way_to_the_next() -> None:
    # The test's task is a Trio task under Trio (whose calls wait with Trio),
    # an asyncio task that is not the loop's under asyncio (whose calls wait
    # through the loop's reactor).
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as loop:
            async with anyio.create_task_group() as tg:
                tg.start_soon(loop.sock_recv, b, 100)
                await anyio.sleep(0.01)
                assert loop.remove_writer(b) is False
                tg.cancel_scope.cancel()
                with anyio.fail_after(5):
                    async with anyio.create_task_group() as again:
                        again.start_soon(loop.sock_sendall, a, b"next")
                        assert await loop.sock_recv(b, 100) == b"next"
            loop.add_reader(b, lambda: None)
            assert loop.remove_reader(b) is True


async def test_a_call_waiting_when_the_loop_ends(anyio_backend: str) -> None:
    a, b = pair()
    with a, b:
        async with anyio.create_task_group() as tg:
            outcomes: list[Any] = []

            async def receive(loop: protoport.Loop) -> None:
                outcomes.append(await outcome(loop.sock_recv(b, 100)))

            async with protoport.open_loop() as loop:
                tg.start_soon(receive, loop)
                await anyio.sleep(0.01)
            await anyio.sleep(0.01)
            if anyio_backend == "trio":
                # A Trio task waits with Trio itself, whatever becomes of the loop.
                assert outcomes == []
                a.send(b"after")
                await wait_until(lambda: outcomes)
                assert outcomes == [("returned", b"after")]
            else:
                # Its registration was the loop's: the call fails as a call that
                # must wait on a closed loop does.
                assert outcomes == [("raised", RuntimeError, "Event loop is closed")]
                assert await outcome(loop.sock_recv(b, 100)) == outcomes[0]


async def test_a_task_of_another_loop_calls_too() -> None:
    a, b = pair()
    with a, b:
        async with protoport.open_loop() as outer, protoport.open_loop() as inner:

            async def receive() -> bytes:
                task = asyncio.get_running_loop().create_task(outer.sock_recv(b, 10))
                await asyncio.sleep(0.01)
                a.send(b"across")
                return await task

            assert await inner.create_task(receive()) == b"across"


async def round_trips(loop: asyncio.AbstractEventLoop) -> Any:
    """Every call, each made to wait."""
    listener = socket.socket()
    listener.setblocking(False)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.socket()
    client.setblocking(False)
    with listener, client, tempfile.TemporaryFile() as on_disk:
        accepting = loop.create_task(loop.sock_accept(listener))
        await asyncio.sleep(0)
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await accepting
        with conn:
            receiving = loop.create_task(loop.sock_recv(conn, 100))
            await asyncio.sleep(0)
            await loop.sock_sendall(client, b"over")
            got: list[Any] = [await receiving]
            big = bytes(range(256)) * 8192
            draining = loop.create_task(receive_exactly(loop, conn, len(big)))
            await loop.sock_sendall(client, big)
            got.append(await draining)
            on_disk.write(big)
            on_disk.flush()
            for file in (on_disk, io.BytesIO(big)):
                draining = loop.create_task(receive_exactly(loop, conn, len(big)))
                got.append(await loop.sock_sendfile(client, file, 0))
                got.append(await draining)
            buf = bytearray(10)
            receiving = loop.create_task(loop.sock_recv_into(conn, buf))
            await asyncio.sleep(0)
            await loop.sock_sendall(client, b"into")
            got.append(bytes(buf[: await receiving]))
    if sys.version_info < (3, 11):
        return got  # asyncio has the datagram calls from Python 3.11 on
    udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for s in udp:
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
    one, two = udp
    with one, two:
        receiving = loop.create_task(loop.sock_recvfrom(two, 100))
        await asyncio.sleep(0)
        await loop.sock_sendto(one, b"ping", two.getsockname())
        got.append((await receiving)[0])
        receiving = loop.create_task(loop.sock_recvfrom_into(one, buf))
        await asyncio.sleep(0)
        await loop.sock_sendto(two, b"pong", one.getsockname())
        got.append(bytes(buf[: (await receiving)[0]]))
    return got


@pytest.mark.parametrize("reactor", [True, False], ids=["reactor", "no reactor"])
async def test_every_call_waits_in_a_loop_task(
    reactor: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 256 * 8192
    expected = await native(round_trips)
    datagrams = [b"ping", b"pong"] if sys.version_info >= (3, 11) else []
    assert expected == (
        "returned",
        [b"over", size, size, size, size, size, b"into", *datagrams],
    )
    if not reactor:
        # Where the loop has none (Trio without epoll, asyncio's proactor loop)
        # the calls wait the runtime's way.
        monkeypatch.setattr(protoport.Loop, "_reader_registry", lambda self: None)
    async with protoport.open_loop() as loop:
        assert await in_loop_task(loop, round_trips) == expected


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
