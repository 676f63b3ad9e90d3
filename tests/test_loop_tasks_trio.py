"""Loop tasks under Trio only: what they may not await, and Trio's clock.

pytest-trio runs these (explicit marks), the virtual-clock one on an autojump
clock.
"""

from __future__ import annotations

import asyncio

import pytest
import trio
import trio.testing

import protoport


@pytest.mark.trio
async def test_awaiting_trio_in_a_loop_task_fails_as_under_asyncio() -> None:
    async def work() -> None:
        await trio.sleep(0)

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        with pytest.raises(RuntimeError, match="bad yield"):
            await task


@pytest.mark.trio
async def test_a_trio_task_awaits_a_loop_task_and_its_cancellation() -> None:
    async def work() -> None:
        await asyncio.sleep(3600)

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        with trio.move_on_after(0.01):
            await task  # cancelling the Trio wait cancels the task, as in asyncio
        with pytest.raises(asyncio.CancelledError):
            await task
    assert task.cancelled()


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.mark.trio
async def test_asyncio_timeouts_in_a_loop_task_follow_trios_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def work() -> float:
        start = asyncio.get_running_loop().time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(7200), 3600)
        return asyncio.get_running_loop().time() - start

    async with protoport.open_loop() as loop:
        assert await loop.create_task(work()) == pytest.approx(3600)
