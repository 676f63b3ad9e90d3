"""Inside the loop's callbacks and tasks sniffio names asyncio, on both runtimes,
so that AnyIO code (and every library that dispatches on sniffio, such as httpx)
takes its asyncio path there and works; in Trio code it names Trio, also after a
callback of the loop has run.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import sniffio

import protoport
from _helpers import Recorder, port_of, wait_until

pytestmark = pytest.mark.anyio


async def in_loop_task(loop: protoport.Loop, coro: Any) -> Any:
    with anyio.fail_after(10):
        return await loop.create_task(coro)


async def test_sniffio_names_asyncio_in_callbacks_and_tasks_and_trio_outside(
    anyio_backend: str,
) -> None:
    seen: dict[str, str] = {}

    class Named(Recorder):
        def data_received(self, data: bytes) -> None:
            seen["data_received"] = sniffio.current_async_library()
            super().data_received(data)

    async def task() -> None:
        seen["task"] = sniffio.current_async_library()
        await asyncio.sleep(0)
        seen["task after a wake-up"] = sniffio.current_async_library()

    async with protoport.open_loop() as loop:
        loop.call_soon(
            lambda: seen.setdefault("call_soon", sniffio.current_async_library())
        )
        loop.call_later(
            0.001,
            lambda: seen.setdefault("call_later", sniffio.current_async_library()),
        )
        await in_loop_task(loop, task())
        server = await loop.create_server(Named, "127.0.0.1", 0)
        async with await anyio.connect_tcp("127.0.0.1", port_of(server)) as client:
            await client.send(b"x")
            await wait_until(lambda: "data_received" in seen)
        await wait_until(lambda: "call_later" in seen)
        assert sniffio.current_async_library() == anyio_backend
    assert seen == dict.fromkeys(
        ["call_soon", "call_later", "task", "task after a wake-up", "data_received"],
        "asyncio",
    )


async def test_anyio_code_works_in_a_loop_task() -> None:
    async def anyio_code() -> list[Any]:
        done: list[Any] = []
        await anyio.sleep(0.001)
        lock = anyio.Lock()
        async with lock:
            done.append("lock")
        event = anyio.Event()

        async def child(value: int) -> None:
            await event.wait()
            done.append(value)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(child, 1)
                group.start_soon(child, 2)
                await anyio.sleep(0)
                event.set()
        with anyio.move_on_after(0.001) as scope:
            await anyio.sleep(10)
        done.append(scope.cancelled_caught)
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.001):
                await anyio.sleep(10)
        done.append(await anyio.to_thread.run_sync(threading.current_thread))
        return done

    async with protoport.open_loop() as loop:
        done = await in_loop_task(loop, anyio_code())
    assert done[:4] == ["lock", 1, 2, True] or done[:4] == ["lock", 2, 1, True]
    assert done[4] is not threading.current_thread()


async def test_anyio_sockets_work_in_a_loop_task() -> None:
    async def echo(client: anyio.abc.SocketStream) -> None:
        async with client:
            async for data in client:
                await client.send(data.upper())

    async def anyio_client(port: int) -> bytes:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"hello")
            received = b""
            while len(received) < 5:
                received += await stream.receive()
            return received

    # The server is Trio code (AnyIO on the run's own runtime); the client runs
    # as asyncio code in a task of the loop.
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as group,
    ):
        group.start_soon(listener.serve, echo)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with protoport.open_loop() as loop:
            assert await in_loop_task(loop, anyio_client(port)) == b"HELLO"
        group.cancel_scope.cancel()


@pytest.fixture
def http_server() -> Iterator[int]:
    """A plain HTTP/1.1 server in a thread of its own, answering every request
    with its path; yields its port."""
    listening = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listening.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listening.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                buffered = b""
                while True:
                    while b"\r\n\r\n" not in buffered:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        buffered += chunk
                    if b"\r\n\r\n" not in buffered:
                        break
                    head, _, buffered = buffered.partition(b"\r\n\r\n")
                    path = head.split(b" ")[1]
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
                        % (len(path), path)
                    )

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield port_of(listening)
    finally:
        stop.set()
        thread.join()
        listening.close()


async def test_httpx_works_in_a_loop_task(http_server: int) -> None:
    async def fetch() -> list[str]:
        # httpx's connection pool takes a lock of the library sniffio names, and
        # opens its connections with AnyIO.
        async with httpx.AsyncClient() as client:
            first = await client.get(f"http://127.0.0.1:{http_server}/first")
            second = await client.get(f"http://127.0.0.1:{http_server}/second")
            return [first.text, second.text]

    async with protoport.open_loop() as loop:
        assert await in_loop_task(loop, fetch()) == ["/first", "/second"]
