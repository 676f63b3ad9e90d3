"""The loop's tasks are its own as far as asyncio's task functions go.

A library given ``loop=`` asks ``asyncio.current_task(loop=loop)`` (aiohttp's
timeouts refuse to work outside a task); ``asyncio.current_task()`` without a
loop must keep naming the task too. On both runtimes; ``all_tasks(loop=loop)``
lists them under Trio (under asyncio they are the asyncio loop's, see the
limitations page).
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

import protoport
from _helpers import port_of, wait_until

pytestmark = pytest.mark.anyio


async def test_a_loop_task_is_the_current_task_of_the_loop() -> None:
    async def work(loop: protoport.Loop) -> list[Any]:
        me = asyncio.current_task()
        seen = [asyncio.current_task(loop=loop) is me]
        await asyncio.sleep(0.001)  # a future of the running loop, either runtime
        seen.append(asyncio.current_task(loop=loop) is me)
        seen.append(asyncio.current_task() is me)
        return seen

    async with protoport.open_loop() as loop:
        with anyio.fail_after(5):
            assert await loop.create_task(work(loop)) == [True, True, True]
        # Between steps, no task of the loop is current.
        assert asyncio.current_task(loop=loop) is None


async def test_each_task_is_current_in_its_own_steps() -> None:
    async def work(loop: protoport.Loop, rounds: int) -> bool:
        me = asyncio.current_task()
        ok = True
        for _ in range(rounds):
            await asyncio.sleep(0)
            ok = ok and asyncio.current_task(loop=loop) is me
        return ok

    async with protoport.open_loop() as loop:
        tasks = [loop.create_task(work(loop, 5)) for _ in range(3)]
        with anyio.fail_after(5):
            assert [await task for task in tasks] == [True, True, True]


async def test_a_client_connected_callback_runs_in_a_task_of_the_loop() -> None:
    seen: list[bool] = []

    async def handle(reader: asyncio.StreamReader, writer: Any) -> None:
        loop = asyncio.get_running_loop()
        facade = protoport.get_running_loop()
        seen.append(asyncio.current_task(loop=facade) is asyncio.current_task(loop))
        seen.append(asyncio.current_task(loop=facade) is not None)
        writer.close()

    async with protoport.open_loop():
        server = await protoport.start_server(handle, "127.0.0.1", 0)
        async with await anyio.connect_tcp("127.0.0.1", port_of(server)):
            await wait_until(lambda: len(seen) == 2)
    assert seen == [True, True]


async def test_an_asyncio_task_made_with_the_loop_is_the_loops() -> None:
    async def work(loop: protoport.Loop) -> bool:
        return asyncio.current_task(loop=loop) is not None

    async with protoport.open_loop() as loop:
        task = asyncio.Task(work(loop), loop=loop)
        assert task.get_loop() is loop
        assert task in asyncio.all_tasks(loop=loop)
        await wait_until(task.done)
        assert task.result() is True
        assert task not in asyncio.all_tasks(loop=loop)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_all_tasks_of_the_loop_lists_its_tasks_under_trio() -> None:
    release = asyncio.Event()

    async def work() -> set[Any]:
        found = asyncio.all_tasks()
        await release.wait()
        return found

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        other = loop.create_task(work())
        await wait_until(lambda: {task, other} <= asyncio.all_tasks(loop=loop))
        loop.call_soon(release.set)
        with anyio.fail_after(5):
            assert {task, other} <= await task
            await other
        assert not asyncio.all_tasks(loop=loop)
