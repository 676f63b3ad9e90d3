"""Tasks of the loop run asyncio code as asyncio runs it, on Trio and asyncio.

A task made with ``loop.create_task()`` (and so every ``client_connected_cb`` of a
stream server) is an :class:`asyncio.Task` stepped by the loop: cancellation is
asyncio's, ``asyncio.current_task()``, ``asyncio.timeout()`` and
``asyncio.wait_for()`` work, and protoport's own coroutines (connections, servers,
name lookups, TLS upgrades) can be awaited from it.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import anyio
import pytest

import protoport
from _helpers import Recorder, collect_errors, port_of, run_soon_callbacks, wait_until

pytestmark = pytest.mark.anyio


async def run_task(coro: Any) -> Any:
    async with protoport.open_loop() as loop:
        with anyio.fail_after(5):
            return await loop.create_task(coro)


async def test_a_task_is_an_asyncio_task_and_the_current_one() -> None:
    async def work() -> tuple[Any, set[Any]]:
        return asyncio.current_task(), asyncio.all_tasks()

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        with anyio.fail_after(5):
            current, everything = await task
    assert isinstance(task, asyncio.Task)
    assert current is task
    assert task in everything


async def test_a_task_may_catch_its_cancellation_and_go_on() -> None:
    started = anyio.Event()

    async def work() -> str:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0)
            return "went on"
        return "slept"

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        with anyio.fail_after(5):
            await started.wait()
            task.cancel()
            assert await task == "went on"
    assert not task.cancelled()


async def test_wait_for_times_out_and_returns() -> None:
    async def work() -> str:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), 0.01)
        result: str = await asyncio.wait_for(asyncio.sleep(0, "in time"), 5)
        return result

    assert await run_task(work()) == "in time"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout() is 3.11+")
async def test_asyncio_timeout_cancels_what_it_bounds() -> None:
    async def work() -> list[str]:
        seen = []
        try:
            async with asyncio.timeout(0.01):  # type: ignore[attr-defined]
                await asyncio.sleep(10)
        except TimeoutError:
            seen.append("timed out")
        task = asyncio.current_task()
        assert task is not None
        seen.append(f"cancelling={task.cancelling()}")  # type: ignore[attr-defined]
        return seen

    assert await run_task(work()) == ["timed out", "cancelling=0"]


async def test_protoport_coroutines_work_inside_a_task() -> None:
    # Connections, servers and name lookups wait on the runtime; awaited from a
    # task of the loop they still work.
    async def work(loop: protoport.Loop) -> bytes:
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos[0][4] == ("127.0.0.1", 80)

        async def echo(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await protoport.start_server(echo, "127.0.0.1", 0)
        reader, writer = await protoport.open_connection("127.0.0.1", port_of(server))
        writer.write(b"through a task\n")
        line = await reader.readline()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return line

    async with protoport.open_loop() as loop:
        with anyio.fail_after(5):
            assert await loop.create_task(work(loop)) == b"through a task\n"


async def test_cancelling_a_task_cancels_the_protoport_call_it_awaits() -> None:
    async with protoport.open_loop() as loop:
        server = await loop.create_server(Recorder, "127.0.0.1", 0, start_serving=False)
        task = loop.create_task(server.serve_forever())
        with anyio.fail_after(5):
            while not server.is_serving():
                await anyio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert task.cancelled()
        assert not server.is_serving()


async def test_a_failing_protoport_call_raises_inside_the_task() -> None:
    async def work(loop: protoport.Loop) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # bound, not listening: refused
            await loop.create_connection(Recorder, "127.0.0.1", port)

    async with protoport.open_loop() as loop:
        with anyio.fail_after(5), pytest.raises(ConnectionRefusedError):
            await loop.create_task(work(loop))


async def test_exit_lets_cancelled_tasks_finish_their_cleanup() -> None:
    log: list[str] = []

    async def with_cleanup(loop: protoport.Loop) -> None:
        server = await loop.create_server(Recorder, "127.0.0.1", 0)
        try:
            await asyncio.sleep(10)
        finally:
            log.append("cancelled")
            server.close()
            await server.wait_closed()
            await asyncio.sleep(0.01)
            log.append("cleaned up")

    with anyio.fail_after(5):
        async with protoport.open_loop() as loop:
            task = loop.create_task(with_cleanup(loop))
            while not log and not loop._servers:
                await anyio.sleep(0.001)
    assert log == ["cancelled", "cleaned up"]
    assert task.cancelled()


async def test_a_task_factory_makes_the_loops_tasks() -> None:
    made: list[asyncio.Task[Any]] = []

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **options: Any
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **options)
        made.append(task)
        return task

    async def work() -> int:
        return 1

    async with protoport.open_loop() as loop:
        previous = loop.get_task_factory()
        loop.set_task_factory(factory)
        try:
            assert loop.get_task_factory() is factory
            task = loop.create_task(work(), name="made")
        finally:
            loop.set_task_factory(previous)
        assert made == [task]
        assert task.get_name() == "made"
        done = anyio.Event()
        task.add_done_callback(lambda _: done.set())
        with anyio.fail_after(5):
            await done.wait()
        assert task.result() == 1
        with pytest.raises(TypeError, match="task factory must be a callable or None"):
            loop.set_task_factory(1)  # type: ignore[arg-type]


async def test_a_tasks_wakeup_keeps_its_place_among_callbacks() -> None:
    # A task resumes in the iteration after its future is done: after the
    # callbacks queued before that, before those queued during it.
    log: list[str] = []

    async with protoport.open_loop() as loop:
        future: asyncio.Future[str] = loop.create_future()

        async def waiter() -> None:
            log.append(await future)

        task = loop.create_task(waiter())
        await run_soon_callbacks(loop)
        loop.call_soon(log.append, "before")
        loop.call_soon(future.set_result, "task")
        loop.call_soon(log.append, "after")
        loop.call_soon(loop.call_soon, log.append, "next round")
        with anyio.fail_after(5):
            await task
            await run_soon_callbacks(loop)
    assert log == ["before", "after", "task", "next round"]


async def test_a_failing_task_wakeup_is_reported_as_a_failing_callback() -> None:
    # Waking a task that is already done fails inside asyncio's task; the loop
    # reports it as it reports any callback that raises.
    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)
        future: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(wait_for(future))
        await run_soon_callbacks(loop)
        [(wakeup, context)] = future._callbacks  # type: ignore[attr-defined]
        future.set_result(None)
        with anyio.fail_after(5):
            await task
        loop.call_soon(wakeup, future, context=context)
        await wait_until(lambda: errors)
    [reported] = errors
    assert isinstance(reported["exception"], asyncio.InvalidStateError)
    handle = reported["handle"]
    assert isinstance(handle, asyncio.Handle)
    # The callback as a handle shows it: "<Handle Task.task_wakeup(<Future ...>)>".
    shown = repr(asyncio.Handle(wakeup, (future,), loop))
    assert reported["message"] == f"Exception in callback {shown[len('<Handle ') : -1]}"


async def wait_for(future: asyncio.Future[None]) -> None:
    await future
