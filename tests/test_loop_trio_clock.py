"""The facade's timers under Trio's virtual clock (pytest-trio, autojump clock).

Timers are driven by one scheduler task per loop, so they follow Trio's clock: with
an autojump clock, hours pass in no real time.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import anyio
import pytest
import trio
import trio.testing

import protoport


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.mark.trio
async def test_an_hour_long_timer_fires_after_exactly_an_hour(
    autojump_clock: Any,
) -> None:
    real_start = time.monotonic()
    fired: list[float] = []
    async with protoport.open_loop() as loop:
        start = trio.current_time()
        assert loop.time() == start
        done = loop.create_future()

        def callback() -> None:
            fired.append(trio.current_time())
            done.set_result(None)

        timer = loop.call_later(3600, callback)
        assert timer.when() == start + 3600
        await done
    assert fired == [start + 3600]
    assert time.monotonic() - real_start < 1


@pytest.mark.trio
async def test_call_at_fires_at_the_given_virtual_time(autojump_clock: Any) -> None:
    fired: list[float] = []
    async with protoport.open_loop() as loop:
        done = loop.create_future()
        when = loop.time() + 12.5
        loop.call_at(when, lambda: fired.append(loop.time()))
        loop.call_at(when, done.set_result, None)
        await done
    assert fired == [when]


@pytest.mark.trio
async def test_many_timers_fire_in_time_order(autojump_clock: Any) -> None:
    rng = random.Random(1234)
    fired: list[tuple[float, float, int]] = []
    async with protoport.open_loop() as loop:
        start = loop.time()
        delays = [rng.uniform(0, 1000) for _ in range(1000)]
        timers = [
            loop.call_later(
                delay, lambda i: fired.append((timers[i].when(), loop.time(), i)), i
            )
            for i, delay in enumerate(delays)
        ]
        done = loop.create_future()
        loop.call_later(1001, done.set_result, None)
        await done
    assert len(fired) == 1000
    # Each one ran exactly at its time, and in the order of their times.
    assert all(when == now for when, now, _ in fired)
    assert [i for _, _, i in fired] == sorted(range(1000), key=lambda i: delays[i])
    assert [when for when, _, _ in fired] == sorted(start + d for d in delays)


@pytest.mark.trio
async def test_cancelled_timers_never_fire_and_order_holds(
    autojump_clock: Any,
) -> None:
    rng = random.Random(99)
    fired: list[int] = []
    async with protoport.open_loop() as loop:
        delays = [rng.uniform(0, 100) for _ in range(1000)]
        timers = [
            loop.call_later(delay, fired.append, i) for i, delay in enumerate(delays)
        ]
        # Cancel most of them: enough for the scheduler to tidy its queue.
        cancelled = set(rng.sample(range(1000), 800))
        for i in cancelled:
            timers[i].cancel()
        # Cancel some more while the timers are firing.
        late = sorted(set(range(1000)) - cancelled, key=lambda i: delays[i])[-50:]

        def cancel_late() -> None:
            for i in late:
                timers[i].cancel()

        loop.call_later(min(delays[i] for i in late) - 1e-6, cancel_late)
        done = loop.create_future()
        loop.call_later(101, done.set_result, None)
        await done
    expected = sorted(set(range(1000)) - cancelled - set(late), key=lambda i: delays[i])
    assert fired == expected
    assert all(timers[i].cancelled() for i in cancelled | set(late))


@pytest.mark.trio
async def test_asyncio_sleep_in_a_task_uses_virtual_time(autojump_clock: Any) -> None:
    real_start = time.monotonic()

    async def sleeper() -> float:
        start = trio.current_time()
        await asyncio.sleep(60)
        return trio.current_time() - start

    async with protoport.open_loop() as loop:
        assert await loop.create_task(sleeper()) == 60
    assert time.monotonic() - real_start < 1


@pytest.mark.trio
async def test_future_awaited_under_move_on_after_is_cancelled_at_the_deadline(
    autojump_clock: Any,
) -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        start = trio.current_time()
        with trio.move_on_after(10) as scope:
            await future
        assert scope.cancelled_caught
        assert trio.current_time() == start + 10
        assert future.cancelled()


@pytest.mark.trio
async def test_pending_timers_do_not_each_get_a_task(autojump_clock: Any) -> None:
    fired: list[int] = []
    async with protoport.open_loop() as loop:
        await trio.sleep(0)
        tasks_before = len(anyio.get_running_tasks())
        timers = [loop.call_later(1 + i, fired.append, i) for i in range(1000)]
        await trio.sleep(0.5)
        assert len(anyio.get_running_tasks()) == tasks_before
        done = loop.create_future()
        timers[-1].cancel()
        loop.call_later(1000, done.set_result, None)
        await done
        assert len(anyio.get_running_tasks()) == tasks_before
    assert fired == list(range(999))


@pytest.mark.trio
async def test_timers_added_and_cancelled_while_the_loop_waits_fire_on_time(
    autojump_clock: Any,
) -> None:
    # The loop waits for its first timer; that timer changes under it: an earlier
    # one comes, the first is cancelled, a later one follows.
    fired: list[tuple[str, float]] = []
    async with protoport.open_loop() as loop:
        start = loop.time()

        def fire(name: str) -> None:
            fired.append((name, loop.time() - start))

        first = loop.call_later(100, fire, "first")
        await trio.sleep(10)
        loop.call_later(40, fire, "earlier")
        await trio.sleep(5)
        first.cancel()
        loop.call_later(185, fire, "later")
        await trio.sleep(60)
        loop.call_later(30, fire, "again")
        done = loop.create_future()
        loop.call_later(200, done.set_result, None)
        await done
    assert fired == [("earlier", 50), ("again", 105), ("later", 200)]
