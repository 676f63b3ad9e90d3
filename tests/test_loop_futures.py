"""Futures, tasks and run_in_executor of the loop facade, on Trio and asyncio."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import sys
import threading
from typing import Any

import anyio
import pytest

import protoport
from _helpers import run_soon_callbacks

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="unset"
)


def xfail_on(request: pytest.FixtureRequest, backend: str, reason: str) -> None:
    if request.getfixturevalue("anyio_backend") == backend:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


# -- futures -------------------------------------------------------------------


async def test_create_future_is_an_asyncio_future() -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        assert isinstance(future, asyncio.Future)
        assert asyncio.isfuture(future)
        assert not future.done()
        future.cancel()


async def test_future_get_loop(anyio_backend: str) -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        if anyio_backend == "trio":
            assert future.get_loop() is loop
        else:
            assert future.get_loop() is asyncio.get_running_loop()
        future.cancel()


async def test_await_future_returns_the_result_set_later() -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        loop.call_later(0.01, future.set_result, 42)
        with anyio.fail_after(5):
            assert await future == 42
        assert future.done()
        assert future.result() == 42
        assert future.exception() is None
        # Awaiting a done future again gives the same result at once.
        assert await future == 42


async def test_await_future_raises_the_exception_set() -> None:
    error = ValueError("failed")
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        loop.call_later(0.01, future.set_exception, error)
        with anyio.fail_after(5), pytest.raises(ValueError, match=r"^failed$") as info:
            await future
        assert info.value is error
        assert future.exception() is error
        with pytest.raises(ValueError, match=r"^failed$"):
            future.result()


async def test_await_cancelled_future_raises_cancelled_error() -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        loop.call_later(0.01, future.cancel, "stop")
        with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
            await future
        assert future.cancelled()
        assert future.done()


async def test_future_state_errors() -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        with pytest.raises(asyncio.InvalidStateError, match=r"^Result is not set\.$"):
            future.result()
        with pytest.raises(
            asyncio.InvalidStateError, match=r"^Exception is not set\.$"
        ):
            future.exception()
        future.set_result(1)
        with pytest.raises(asyncio.InvalidStateError):
            future.set_result(2)
        with pytest.raises(asyncio.InvalidStateError):
            future.set_exception(ValueError())
        assert future.result() == 1
        assert not future.cancel()

        cancelled = loop.create_future()
        assert cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            cancelled.result()
        with pytest.raises(asyncio.CancelledError):
            cancelled.exception()
        with pytest.raises(asyncio.InvalidStateError):
            cancelled.set_result(1)


async def test_done_callbacks_run_through_the_loop() -> None:
    calls: list[tuple[str, asyncio.Future[Any]]] = []
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        future.add_done_callback(lambda f: calls.append(("first", f)))
        future.add_done_callback(lambda f: calls.append(("second", f)))
        future.set_result("value")
        assert calls == []  # not synchronously
        await run_soon_callbacks(loop)
        assert calls == [("first", future), ("second", future)]
        # A callback added to a done future is scheduled too.
        future.add_done_callback(lambda f: calls.append(("late", f)))
        assert len(calls) == 2
        await run_soon_callbacks(loop)
    assert calls == [("first", future), ("second", future), ("late", future)]


async def test_done_callback_runs_in_its_context() -> None:
    seen: list[str] = []
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        ctx = contextvars.copy_context()
        ctx.run(request_id.set, "callback context")
        future.add_done_callback(lambda f: seen.append(request_id.get()), context=ctx)
        future.set_result(None)
        await run_soon_callbacks(loop)
    assert seen == ["callback context"]


async def test_remove_done_callback_returns_the_count() -> None:
    calls: list[str] = []

    def callback(future: asyncio.Future[Any]) -> None:
        calls.append("removed")

    async with protoport.open_loop() as loop:
        future = loop.create_future()
        future.add_done_callback(callback)
        future.add_done_callback(lambda f: calls.append("kept"))
        future.add_done_callback(callback)
        assert future.remove_done_callback(callback) == 2
        assert future.remove_done_callback(callback) == 0
        future.set_result(None)
        await run_soon_callbacks(loop)
    assert calls == ["kept"]


async def test_cancelling_the_awaiting_task_cancels_the_future() -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        with anyio.fail_after(5), anyio.CancelScope() as scope:
            loop.call_soon(scope.cancel)
            await future
        assert scope.cancelled_caught
        assert future.cancelled()


async def test_cancelling_the_awaiting_task_by_timeout_cancels_the_future() -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        with anyio.fail_after(5):
            with anyio.move_on_after(0.01) as scope:
                await future
        assert scope.cancelled_caught
        assert future.cancelled()


async def test_unretrieved_future_exception_is_reported(
    request: pytest.FixtureRequest,
) -> None:
    xfail_on(
        request,
        "asyncio",
        "DEVIATION: under asyncio, futures belong to the asyncio loop and "
        "report to its handler",
    )
    contexts: list[dict[str, Any]] = []
    error = ValueError("never retrieved")
    async with protoport.open_loop() as loop:
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        future = loop.create_future()
        future.set_exception(error)
        del future
        gc.collect()
        retrieved = loop.create_future()
        retrieved.set_exception(ValueError("retrieved"))
        retrieved.exception()
        del retrieved
        gc.collect()
    assert [ctx["message"] for ctx in contexts] == [
        "Future exception was never retrieved"
    ]
    assert contexts[0]["exception"] is error


# -- tasks ---------------------------------------------------------------------


async def test_create_task_result_via_await() -> None:
    async def work(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    async with protoport.open_loop() as loop:
        task = loop.create_task(work(21))
        assert isinstance(task, asyncio.Future)
        with anyio.fail_after(5):
            assert await task == 42
        assert task.done()
        assert not task.cancelled()
        assert task.result() == 42


async def test_task_exception_propagates_on_await() -> None:
    error = KeyError("missing")

    async def work() -> None:
        await asyncio.sleep(0)
        raise error

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        with anyio.fail_after(5), pytest.raises(KeyError) as info:
            await task
        assert info.value is error
        assert task.exception() is error


async def test_task_name_and_coro(anyio_backend: str) -> None:
    async def work() -> None:
        pass

    async with protoport.open_loop() as loop:
        coro = work()
        task = loop.create_task(coro, name="worker")
        assert task.get_name() == "worker"  # type: ignore[attr-defined]
        task.set_name("renamed")  # type: ignore[attr-defined]
        assert task.get_name() == "renamed"  # type: ignore[attr-defined]
        task.set_name(7)  # type: ignore[attr-defined]
        assert task.get_name() == "7"  # type: ignore[attr-defined]
        if anyio_backend == "trio":
            assert task.get_coro() is coro  # type: ignore[attr-defined]
        else:
            # Under asyncio the coroutine is stepped through a wrapper (see the
            # limitations page), which shows the coroutine's name and code.
            assert task.get_coro().cr_code is coro.cr_code  # type: ignore[attr-defined]
            assert "work()" in repr(task)
        unnamed = loop.create_task(work())
        assert isinstance(unnamed.get_name(), str)  # type: ignore[attr-defined]
        assert unnamed.get_name()  # type: ignore[attr-defined]
        await task
        await unnamed


async def _sleep_10() -> None:
    await asyncio.sleep(10)


async def _wait_for_an_event() -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize("wait", [_sleep_10, _wait_for_an_event])
async def test_task_cancel_ends_it_cancelled(wait: Any) -> None:
    # On both runtimes the coroutine sees asyncio.CancelledError where it waits.
    started = anyio.Event()
    seen: list[str] = []

    async def work() -> None:
        started.set()
        try:
            await wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append("not cancelled")

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        with anyio.fail_after(5):
            await started.wait()
        assert task.cancel()
        with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        assert task.done()
        assert not task.cancel()
    assert seen == ["cancelled"]


async def test_task_cancel_while_awaiting_a_future_cancels_the_future() -> None:
    async with protoport.open_loop() as loop:
        future = loop.create_future()
        started = anyio.Event()

        async def work() -> None:
            started.set()
            await future

        task = loop.create_task(work())
        with anyio.fail_after(5):
            await started.wait()
        task.cancel()
        with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        assert future.cancelled()


async def test_task_cancelled_before_it_started_never_runs(
    request: pytest.FixtureRequest,
) -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append("started")
        await asyncio.sleep(0)
        ran.append("finished")

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        assert task.cancel()
        with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
    assert ran == []


async def test_task_cancelling_counts_cancel_requests() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("asyncio's Task.cancelling() is 3.11+")

    async def work() -> None:
        await asyncio.sleep(10)

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        assert task.cancelling() == 0  # type: ignore[attr-defined]
        task.cancel()
        task.cancel()
        assert task.cancelling() == 2  # type: ignore[attr-defined]
        with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
            await task


async def test_task_can_use_asyncio_sleep_and_get_running_loop(
    anyio_backend: str,
) -> None:
    async def work() -> tuple[asyncio.AbstractEventLoop, float]:
        running = asyncio.get_running_loop()
        await asyncio.sleep(0)
        start = time_of(running)
        await asyncio.sleep(0.01)
        assert asyncio.get_running_loop() is running
        return running, time_of(running) - start

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        with anyio.fail_after(5):
            running, elapsed = await task
    if anyio_backend == "trio":
        assert running is loop
    else:
        assert running is asyncio.get_running_loop()
    assert elapsed >= 0.01 - 1e-6


def time_of(loop: asyncio.AbstractEventLoop) -> float:
    return loop.time()


async def test_task_sleep_result_is_returned() -> None:
    async def work() -> str:
        return await asyncio.sleep(0.001, result="slept")

    async with protoport.open_loop() as loop:
        with anyio.fail_after(5):
            assert await loop.create_task(work()) == "slept"


async def test_task_runs_in_a_copy_of_the_creators_context() -> None:
    async def work() -> str:
        value = request_id.get()
        request_id.set("changed by task")
        await asyncio.sleep(0)
        assert request_id.get() == "changed by task"
        return value

    async with protoport.open_loop() as loop:
        request_id.set("creator")
        task = loop.create_task(work())
        request_id.set("changed after creation")
        with anyio.fail_after(5):
            assert await task == "creator"
        assert request_id.get() == "changed after creation"


async def test_task_runs_in_the_given_context() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("asyncio.Task(context=) is 3.11+ (3.10 runs a task in a copy)")

    async def work() -> str:
        value = request_id.get()
        request_id.set("changed by task")
        return value

    async with protoport.open_loop() as loop:
        ctx = contextvars.copy_context()
        ctx.run(request_id.set, "given")
        with anyio.fail_after(5):
            assert await loop.create_task(work(), context=ctx) == "given"
    assert ctx[request_id] == "changed by task"
    assert request_id.get() == "unset"


async def test_task_done_callback_gets_the_task() -> None:
    calls: list[asyncio.Future[Any]] = []

    async def work() -> int:
        return 1

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
        task.add_done_callback(calls.append)
        with anyio.fail_after(5):
            await task
        await run_soon_callbacks(loop)
    assert calls == [task]


async def test_running_tasks_are_cancelled_at_exit_and_exit_waits_for_them(
    request: pytest.FixtureRequest,
) -> None:
    log: list[str] = []
    started = anyio.Event()

    async def slow_cleanup() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        finally:
            log.append("cancelled")
            await asyncio.sleep(0.01)
            log.append("cleaned up")

    async def quick() -> str:
        return "done"

    with anyio.fail_after(5):
        async with protoport.open_loop() as loop:
            finished = loop.create_task(quick())
            await finished
            running = loop.create_task(slow_cleanup())
            await started.wait()
        assert log == ["cancelled", "cleaned up"]
    assert running.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await running
    # Results stay available after the loop is closed.
    assert finished.result() == "done"
    assert await finished == "done"


async def test_tasks_cancelled_at_exit_before_they_started(
    request: pytest.FixtureRequest,
) -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")

    async with protoport.open_loop() as loop:
        task = loop.create_task(work())
    assert task.cancelled()
    assert ran == []


# -- run_in_executor -----------------------------------------------------------


async def test_run_in_executor_default_runs_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()

    def work(a: int, b: int) -> tuple[int, int]:
        return a + b, threading.get_ident()

    async with protoport.open_loop() as loop:
        future = loop.run_in_executor(None, work, 2, 3)
        assert isinstance(future, asyncio.Future)
        with anyio.fail_after(5):
            result, thread = await future
    assert result == 5
    assert thread != loop_thread


async def test_run_in_executor_default_propagates_the_exception() -> None:
    error = ZeroDivisionError("in thread")

    def work() -> None:
        raise error

    async with protoport.open_loop() as loop:
        future = loop.run_in_executor(None, work)
        with anyio.fail_after(5), pytest.raises(ZeroDivisionError) as info:
            await future
    assert info.value is error


async def test_run_in_executor_with_a_thread_pool() -> None:
    error = LookupError("pool")

    def fail() -> None:
        raise error

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        async with protoport.open_loop() as loop:
            ok = loop.run_in_executor(pool, pow, 2, 10)
            bad = loop.run_in_executor(pool, fail)
            assert isinstance(ok, asyncio.Future)
            with anyio.fail_after(5):
                assert await ok == 1024
                with pytest.raises(LookupError) as info:
                    await bad
    assert info.value is error
