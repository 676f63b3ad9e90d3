"""The bridge between Trio code and asyncio code, both ways, on both runtimes.

asyncio code (callbacks and tasks of the loop) starts Trio work with
``loop.start_trio()`` and awaits it with ``loop.run_trio()``; Trio code awaits
the loop's futures and tasks directly and asyncio coroutine functions with
``loop.run_asyncio()``. Results, exceptions and cancellation cross as each side
expects. The Trio side here is AnyIO code, which runs on the run's own runtime
(and is plain Trio code under Trio: sniffio names it there).
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
import sniffio

import protoport
from _helpers import port_of, receive_exactly, wait_until

pytestmark = pytest.mark.anyio


async def trio_double(value: int) -> tuple[int, str]:
    await anyio.sleep(0.001)
    return 2 * value, sniffio.current_async_library()


async def trio_fail() -> None:
    await anyio.sleep(0)
    raise KeyError("from Trio")


async def test_a_protocol_callback_starts_trio_work(anyio_backend: str) -> None:
    class Doubler(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            loop = protoport.get_running_loop()
            future = loop.start_trio(trio_double, int(data))
            future.add_done_callback(self.reply)

        def reply(self, future: asyncio.Future[tuple[int, str]]) -> None:
            value, library = future.result()
            self.transport.write(b"%d %s" % (value, library.encode()))

    async with protoport.open_loop() as loop:
        server = await loop.create_server(Doubler, "127.0.0.1", 0)
        async with await anyio.connect_tcp("127.0.0.1", port_of(server)) as client:
            await client.send(b"21")
            expected = f"42 {anyio_backend}".encode()
            with anyio.fail_after(5):
                assert await receive_exactly(client, len(expected)) == expected


async def test_a_loop_task_awaits_trio_code(anyio_backend: str) -> None:
    async def asyncio_code(loop: protoport.Loop) -> Any:
        result = await loop.run_trio(trio_double, 4)
        with pytest.raises(KeyError, match="from Trio"):
            await loop.run_trio(trio_fail)
        return result

    async with protoport.open_loop() as loop:
        with anyio.fail_after(5):
            assert await loop.create_task(asyncio_code(loop)) == (8, anyio_backend)
        # From Trio code it is a plain call.
        assert await loop.run_trio(trio_double, 1) == (2, anyio_backend)


async def test_start_trio_passes_exceptions_with_their_type() -> None:
    async with protoport.open_loop() as loop:
        future = loop.start_trio(trio_fail)
        with anyio.fail_after(5):
            await wait_until(future.done)
        assert isinstance(future.exception(), KeyError)


async def test_cancelling_the_loop_task_cancels_the_trio_work_and_waits() -> None:
    events: list[str] = []

    async def trio_work() -> None:
        events.append("started")
        try:
            await anyio.sleep(3600)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)
            events.append("cleaned up")

    async def asyncio_code(loop: protoport.Loop) -> None:
        try:
            await loop.run_trio(trio_work)
        except asyncio.CancelledError:
            events.append("task cancelled")
            raise

    async with protoport.open_loop() as loop:
        task = loop.create_task(asyncio_code(loop))
        await wait_until(lambda: events == ["started"])
        task.cancel()
        with anyio.fail_after(5):
            await wait_until(task.done)
        assert task.cancelled()
    assert events == ["started", "cleaned up", "task cancelled"]


async def test_cancelling_the_future_of_start_trio_cancels_the_work() -> None:
    events: list[str] = []

    async def trio_work() -> None:
        events.append("started")
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            events.append("cancelled")
            raise

    async with protoport.open_loop() as loop:
        future = loop.start_trio(trio_work)
        await wait_until(lambda: events == ["started"])
        future.cancel()
        with anyio.fail_after(5):
            await wait_until(lambda: events == ["started", "cancelled"])


async def test_a_future_cancelled_before_the_work_starts_skips_it() -> None:
    started: list[bool] = []

    async def trio_work() -> None:
        started.append(True)

    async with protoport.open_loop() as loop:
        future = loop.start_trio(trio_work)
        future.cancel()
        await anyio.sleep(0.01)
    assert not started


async def test_leaving_the_loop_cancels_trio_work_and_its_future() -> None:
    async with protoport.open_loop() as loop:
        future = loop.start_trio(anyio.sleep, 3600)
        await anyio.sleep(0.001)
    assert future.cancelled()


async def test_trio_code_awaits_the_loops_tasks_and_futures() -> None:
    async with protoport.open_loop() as loop:

        async def asyncio_code() -> str:
            await asyncio.sleep(0.001)
            return "done"

        future = loop.create_future()
        loop.call_later(0.001, future.set_result, 7)
        with anyio.fail_after(5):
            assert await loop.create_task(asyncio_code()) == "done"
            assert await future == 7


async def test_trio_code_runs_an_asyncio_coroutine_function() -> None:
    async def asyncio_code(value: int) -> tuple[int, bool]:
        await asyncio.sleep(0.001)
        return value + 1, asyncio.current_task() is not None

    async def asyncio_fail() -> None:
        await asyncio.sleep(0)
        raise LookupError("from asyncio")

    async with protoport.open_loop() as loop:
        with anyio.fail_after(5):
            assert await loop.run_asyncio(asyncio_code, 1) == (2, True)
            with pytest.raises(LookupError, match="from asyncio"):
                await loop.run_asyncio(asyncio_fail)
            # Any awaitable: here a future of the loop, through a task.
            future = loop.create_future()
            loop.call_soon(future.set_result, "value")
            assert await loop.run_asyncio(lambda: future) == "value"


async def test_trio_cancellation_cancels_the_asyncio_task_and_waits() -> None:
    events: list[str] = []

    async def asyncio_code() -> None:
        events.append("started")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)
            events.append("cleaned up")
            raise

    async with protoport.open_loop() as loop:
        with anyio.move_on_after(0.05) as scope:
            await loop.run_asyncio(asyncio_code)
        assert scope.cancelled_caught
        assert events == ["started", "cleaned up"]


async def test_an_asyncio_task_cancelled_on_its_side_raises_cancelled_error() -> None:
    async def asyncio_code() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    async with protoport.open_loop() as loop:
        with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
            await loop.run_asyncio(asyncio_code)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_loop_task_cancelled_before_its_trio_work_starts_ends() -> None:
    started: list[bool] = []

    async def trio_work() -> None:
        started.append(True)

    async def asyncio_code(loop: protoport.Loop) -> None:
        await loop.run_trio(trio_work)

    async with protoport.open_loop() as loop:
        task = loop.create_task(asyncio_code(loop))
        # Cancelled on the loop's round that starts it, before Trio runs.
        loop.call_soon(task.cancel)
        with anyio.fail_after(5):
            await wait_until(task.done)
        assert task.cancelled()
    assert not started
