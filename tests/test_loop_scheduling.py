"""Scheduling on the loop facade: call_soon, call_later, call_at, time, threads.

Every test runs on Trio and on asyncio.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import Any

import anyio
import pytest

import protoport
from _helpers import run_soon_callbacks, wait_until

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="unset"
)


# -- call_soon -----------------------------------------------------------------


async def test_call_soon_runs_callbacks_in_fifo_order_with_args() -> None:
    calls: list[tuple[Any, ...]] = []
    async with protoport.open_loop() as loop:
        loop.call_soon(lambda *a: calls.append(a), 1, "a")
        loop.call_soon(lambda *a: calls.append(a))
        loop.call_soon(lambda *a: calls.append(a), 3, None, b"c")
        assert calls == []  # never synchronously
        await run_soon_callbacks(loop)
    assert calls == [(1, "a"), (), (3, None, b"c")]


async def test_callback_scheduled_by_a_callback_runs_after_those_already_queued() -> (
    None
):
    calls: list[str] = []
    async with protoport.open_loop() as loop:

        def first() -> None:
            calls.append("first")
            loop.call_soon(calls.append, "from first")

        loop.call_soon(first)
        loop.call_soon(calls.append, "second")
        loop.call_soon(calls.append, "third")
        await wait_until(lambda: len(calls) >= 4)
    assert calls == ["first", "second", "third", "from first"]


async def test_call_soon_with_context_runs_the_callback_in_that_context() -> None:
    seen: list[str] = []
    async with protoport.open_loop() as loop:
        ctx = contextvars.copy_context()
        ctx.run(request_id.set, "in ctx")
        request_id.set("caller")
        loop.call_soon(lambda: seen.append(request_id.get()), context=ctx)
        loop.call_soon(lambda: seen.append(request_id.get()))
        request_id.set("changed after scheduling")
        await run_soon_callbacks(loop)
    # Without a context the callback runs in a copy taken when it was scheduled.
    assert seen == ["in ctx", "caller"]


async def test_a_callback_changing_a_context_variable_changes_only_its_context() -> (
    None
):
    seen: list[str] = []
    async with protoport.open_loop() as loop:
        ctx = contextvars.copy_context()
        request_id.set("outside")

        def set_it() -> None:
            request_id.set("set by callback")

        loop.call_soon(set_it, context=ctx)
        loop.call_soon(lambda: seen.append(request_id.get()), context=ctx)
        await run_soon_callbacks(loop)
        assert request_id.get() == "outside"
    assert seen == ["set by callback"]
    assert ctx[request_id] == "set by callback"


async def test_cancelled_handle_does_not_run() -> None:
    calls: list[str] = []
    async with protoport.open_loop() as loop:
        kept = loop.call_soon(calls.append, "kept")
        dropped = loop.call_soon(calls.append, "dropped")
        assert not dropped.cancelled()
        dropped.cancel()
        assert dropped.cancelled()
        assert not kept.cancelled()
        await run_soon_callbacks(loop)
    assert calls == ["kept"]


async def test_handles_are_asyncio_handles() -> None:
    async with protoport.open_loop() as loop:
        handle = loop.call_soon(lambda: None)
        timer = loop.call_later(10, lambda: None)
        at = loop.call_at(loop.time() + 10, lambda: None)
        assert isinstance(handle, asyncio.Handle)
        assert not isinstance(handle, asyncio.TimerHandle)
        assert isinstance(timer, asyncio.TimerHandle)
        assert isinstance(at, asyncio.TimerHandle)
        timer.cancel()
        at.cancel()


async def test_loop_is_an_abstract_event_loop() -> None:
    async with protoport.open_loop() as loop:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert isinstance(loop, protoport.Loop)


# -- timers --------------------------------------------------------------------


async def test_call_later_runs_timers_in_time_order() -> None:
    calls: list[str] = []
    async with protoport.open_loop() as loop:
        done = loop.create_future()
        loop.call_later(0.03, calls.append, "30ms")
        loop.call_later(0.01, calls.append, "10ms")
        loop.call_later(0.02, calls.append, "20ms")
        loop.call_later(0.04, done.set_result, None)
        with anyio.fail_after(5):
            await done
    assert calls == ["10ms", "20ms", "30ms"]


async def test_call_at_runs_in_time_order() -> None:
    # asyncio documents the order of callbacks scheduled for exactly the same
    # time as undefined (its heap does not keep them in FIFO order), so only the
    # order between different times is checked.
    calls: list[str] = []
    async with protoport.open_loop() as loop:
        done = loop.create_future()
        when = loop.time() + 0.02
        loop.call_at(when + 0.01, calls.append, "later")
        loop.call_at(when, calls.append, "a")
        loop.call_at(when, calls.append, "b")
        loop.call_at(when, calls.append, "c")
        loop.call_at(when - 0.01, calls.append, "earlier")
        loop.call_at(when + 0.02, done.set_result, None)
        with anyio.fail_after(5):
            await done
    assert calls[0] == "earlier"
    assert sorted(calls[1:4]) == ["a", "b", "c"]
    assert calls[4:] == ["later"]


async def test_timer_does_not_run_before_its_time() -> None:
    fired: list[float] = []
    async with protoport.open_loop() as loop:
        done = loop.create_future()
        start = loop.time()
        timer = loop.call_later(0.05, lambda: fired.append(loop.time()))
        loop.call_later(0.05, done.set_result, None)
        with anyio.fail_after(5):
            await done
    assert len(fired) == 1
    assert timer.when() >= start + 0.05
    # asyncio runs a timer when it is due within the clock's resolution.
    assert fired[0] >= timer.when() - 1e-6


async def test_call_soon_callbacks_run_before_due_timers_scheduled_later() -> None:
    calls: list[str] = []
    async with protoport.open_loop() as loop:
        done = loop.create_future()
        loop.call_later(0, calls.append, "timer")
        loop.call_soon(calls.append, "soon")
        loop.call_later(0.01, done.set_result, None)
        with anyio.fail_after(5):
            await done
    assert calls == ["soon", "timer"]


async def test_cancelled_timer_does_not_run() -> None:
    calls: list[str] = []
    async with protoport.open_loop() as loop:
        done = loop.create_future()
        timer = loop.call_later(0.01, calls.append, "cancelled")
        loop.call_later(0.01, calls.append, "kept")
        loop.call_later(0.02, done.set_result, None)
        timer.cancel()
        assert timer.cancelled()
        with anyio.fail_after(5):
            await done
    assert calls == ["kept"]


async def test_timer_when_is_loop_time_plus_delay() -> None:
    async with protoport.open_loop() as loop:
        before = loop.time()
        timer = loop.call_later(5, lambda: None)
        after = loop.time()
        assert before + 5 <= timer.when() <= after + 5
        at = loop.call_at(before + 7.5, lambda: None)
        assert at.when() == before + 7.5
        timer.cancel()
        at.cancel()


async def test_loop_time_is_monotonic() -> None:
    async with protoport.open_loop() as loop:
        readings = [loop.time()]
        for _ in range(5):
            await anyio.sleep(0.001)
            readings.append(loop.time())
    assert readings == sorted(readings)
    assert readings[-1] - readings[0] >= 0.004


async def test_loop_time_is_the_runtime_clock(anyio_backend: str) -> None:
    async with protoport.open_loop() as loop:
        if anyio_backend == "trio":
            import trio

            clock = trio.current_time
        else:
            clock = asyncio.get_running_loop().time
        before = clock()
        now = loop.time()
        after = clock()
    assert before <= now <= after


async def test_call_later_none_delay_is_a_type_error() -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(TypeError, match=r"^delay must not be None$"):
            loop.call_later(None, lambda: None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^when cannot be None$"):
            loop.call_at(None, lambda: None)  # type: ignore[arg-type]


# -- errors in callbacks -------------------------------------------------------


async def test_exception_in_callback_goes_to_the_exception_handler(
    request: pytest.FixtureRequest,
) -> None:
    contexts: list[dict[str, Any]] = []
    calls: list[str] = []
    error = ValueError("boom")

    def fail() -> None:
        raise error

    async with protoport.open_loop() as loop:
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        handle = loop.call_soon(fail)
        loop.call_soon(calls.append, "next")
        loop.call_later(0, calls.append, "timer")
        await run_soon_callbacks(loop)
        await wait_until(lambda: "timer" in calls)
    assert calls == ["next", "timer"]
    assert len(contexts) == 1
    assert contexts[0]["message"].startswith("Exception in callback ")
    assert contexts[0]["exception"] is error
    assert contexts[0]["handle"] is handle


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_exception_in_callback_reaches_the_runtime_handler_on_asyncio() -> None:
    # Without a handler on the facade, asyncio's own loop reports it, as it would
    # for any asyncio callback.
    contexts: list[dict[str, Any]] = []
    calls: list[str] = []
    error = ValueError("boom")

    def fail() -> None:
        raise error

    aio = asyncio.get_running_loop()
    previous = aio.get_exception_handler()
    aio.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    try:
        async with protoport.open_loop() as loop:
            handle = loop.call_soon(fail)
            loop.call_soon(calls.append, "next")
            await run_soon_callbacks(loop)
    finally:
        aio.set_exception_handler(previous)
    assert calls == ["next"]
    assert [ctx["message"].split(" ")[:3] for ctx in contexts] == [
        ["Exception", "in", "callback"]
    ]
    assert contexts[0]["exception"] is error
    assert contexts[0]["handle"] is handle


# -- threads and the running loop ---------------------------------------------


async def test_call_soon_threadsafe_from_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[int, str]] = []
    async with protoport.open_loop() as loop:
        done = loop.create_future()

        def callback(arg: str) -> None:
            seen.append((threading.get_ident(), arg))
            done.set_result(None)

        def in_thread() -> int:
            loop.call_soon_threadsafe(callback, "from thread")
            return threading.get_ident()

        worker_thread = await anyio.to_thread.run_sync(in_thread)
        with anyio.fail_after(5):
            await done
    assert worker_thread != loop_thread
    assert seen == [(loop_thread, "from thread")]


async def test_call_soon_threadsafe_returns_a_handle() -> None:
    calls: list[str] = []
    async with protoport.open_loop() as loop:
        done = loop.create_future()

        def in_thread() -> asyncio.Handle:
            handle = loop.call_soon_threadsafe(calls.append, "first")
            loop.call_soon_threadsafe(calls.append, "second")
            loop.call_soon_threadsafe(done.set_result, None)
            return handle

        handle = await anyio.to_thread.run_sync(in_thread)
        assert isinstance(handle, asyncio.Handle)
        with anyio.fail_after(5):
            await done
    assert calls == ["first", "second"]


async def test_running_loop_inside_a_callback(anyio_backend: str) -> None:
    seen: list[asyncio.AbstractEventLoop] = []
    async with protoport.open_loop() as loop:
        loop.call_soon(lambda: seen.append(asyncio.get_running_loop()))
        loop.call_later(0, lambda: seen.append(asyncio.get_running_loop()))
        await wait_until(lambda: len(seen) >= 2)
        if anyio_backend == "trio":
            assert seen == [loop, loop]
            assert all(item is loop for item in seen)
            # ... and only while the callback runs.
            with pytest.raises(RuntimeError, match="no running event loop"):
                asyncio.get_running_loop()
        else:
            aio = asyncio.get_running_loop()
            assert all(item is aio for item in seen)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_exception_in_callback_is_logged_by_default_on_trio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    error = ValueError("boom")

    def fail() -> None:
        raise error

    with caplog.at_level(logging.ERROR, logger="protoport"):
        async with protoport.open_loop() as loop:
            loop.call_soon(fail)
            loop.call_soon(calls.append, "next")
            await run_soon_callbacks(loop)
    assert calls == ["next"]
    records = [r for r in caplog.records if r.name == "protoport"]
    assert len(records) == 1
    lines = records[0].getMessage().splitlines()
    assert lines[0].startswith("Exception in callback ")
    assert "fail" in lines[0]
    assert lines[1].startswith("handle: <Handle ")
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is error


# -- the exception handler API -------------------------------------------------


async def test_exception_handler_get_and_set() -> None:
    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        pass

    async with protoport.open_loop() as loop:
        assert loop.get_exception_handler() is None
        loop.set_exception_handler(handler)
        assert loop.get_exception_handler() is handler
        loop.set_exception_handler(None)
        assert loop.get_exception_handler() is None


async def test_set_exception_handler_rejects_non_callables() -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(TypeError) as info:
            loop.set_exception_handler(1)  # type: ignore[arg-type]
        assert str(info.value) == "A callable object or None is expected, got 1"
        assert loop.get_exception_handler() is None


async def test_call_exception_handler_calls_the_custom_handler() -> None:
    received: list[tuple[asyncio.AbstractEventLoop, dict[str, Any]]] = []
    context = {"message": "something happened", "exception": ValueError("x")}
    async with protoport.open_loop() as loop:
        loop.set_exception_handler(lambda lp, ctx: received.append((lp, ctx)))
        loop.call_exception_handler(context)
    assert len(received) == 1
    assert received[0][0] is loop
    assert received[0][1] == context


async def test_failing_custom_handler_is_reported_by_the_default_handler(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    failure = RuntimeError("handler failed")
    context = {"message": "original problem"}

    def bad_handler(loop: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        raise failure

    reported: list[dict[str, Any]] = []
    if anyio_backend == "asyncio":
        # The facade's default handler hands over to asyncio's loop.
        aio = asyncio.get_running_loop()
        previous = aio.get_exception_handler()
        aio.set_exception_handler(lambda lp, ctx: reported.append(ctx))
    try:
        with caplog.at_level(logging.ERROR, logger="protoport"):
            async with protoport.open_loop() as loop:
                loop.set_exception_handler(bad_handler)
                loop.call_exception_handler(context)
    finally:
        if anyio_backend == "asyncio":
            aio.set_exception_handler(previous)
    if anyio_backend == "trio":
        records = [r for r in caplog.records if r.name == "protoport"]
        assert len(records) == 1
        assert records[0].levelno == logging.ERROR
        lines = records[0].getMessage().splitlines()
        assert lines == [
            "Unhandled error in exception handler",
            f"context: {context!r}",
        ]
        assert records[0].exc_info is not None
        assert records[0].exc_info[1] is failure
    else:
        assert reported == [
            {
                "message": "Unhandled error in exception handler",
                "exception": failure,
                "context": context,
            }
        ]


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_default_exception_handler_logs_like_asyncio_on_trio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = ValueError("bad value")
    try:
        raise error
    except ValueError:
        pass
    context = {
        "message": "Something failed",
        "exception": error,
        "zeta": 1,
        "alpha": "text",
        "middle": [1, 2],
    }
    with caplog.at_level(logging.DEBUG, logger="protoport"):
        async with protoport.open_loop() as loop:
            loop.default_exception_handler(context)
            loop.call_exception_handler({"no_message": True})
    records = [r for r in caplog.records if r.name == "protoport"]
    assert [r.levelno for r in records] == [logging.ERROR, logging.ERROR]
    assert records[0].getMessage() == (
        "Something failed\nalpha: 'text'\nmiddle: [1, 2]\nzeta: 1"
    )
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is error
    assert records[0].exc_info[2] is error.__traceback__
    # Without a message, asyncio's wording; without an exception, no traceback.
    assert records[1].getMessage() == (
        "Unhandled exception in event loop\nno_message: True"
    )
    assert not records[1].exc_info


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_default_exception_handler_hands_over_to_asyncio() -> None:
    received: list[tuple[asyncio.AbstractEventLoop, dict[str, Any]]] = []
    aio = asyncio.get_running_loop()
    previous = aio.get_exception_handler()
    aio.set_exception_handler(lambda lp, ctx: received.append((lp, ctx)))
    context = {"message": "Something failed", "exception": ValueError("x")}
    other = {"message": "via call_exception_handler"}
    try:
        async with protoport.open_loop() as loop:
            loop.default_exception_handler(context)
            loop.call_exception_handler(other)
    finally:
        aio.set_exception_handler(previous)
    assert len(received) == 2
    assert received[0][0] is aio
    assert received[0][1] == context
    assert received[1][1] == other


async def test_debug_flag() -> None:
    async with protoport.open_loop() as loop:
        assert loop.get_debug() is False
        loop.set_debug(True)
        assert loop.get_debug() is True
        loop.set_debug(False)
        assert loop.get_debug() is False
