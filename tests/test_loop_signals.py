"""Signal handlers and executors of the loop: ``add_signal_handler()``,
``remove_signal_handler()``, ``set_default_executor()``,
``shutdown_default_executor()`` and ``shutdown_asyncgens()``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import threading
from typing import Any

import anyio
import pytest

import protoport
from _helpers import collect_errors, wait_until

pytestmark = pytest.mark.anyio


async def test_a_signal_runs_its_handler_as_a_loop_callback() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    seen: list[Any] = []
    async with protoport.open_loop() as loop:

        def handler(tag: str) -> None:
            # A callback of the loop, in the context add_signal_handler() saw.
            seen.append((tag, protoport.get_running_loop() is loop))

        loop.add_signal_handler(signal.SIGUSR1, handler, "first")
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_until(lambda: len(seen) == 1)
        # A second handler for the same signal replaces the first.
        loop.add_signal_handler(signal.SIGUSR1, handler, "second")
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_until(lambda: len(seen) == 2)
        assert seen == [("first", True), ("second", True)]
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert loop.remove_signal_handler(signal.SIGUSR1) is False
    assert signal.getsignal(signal.SIGUSR1) == before


async def test_leaving_the_loop_removes_its_signal_handlers() -> None:
    before = signal.getsignal(signal.SIGUSR2)
    async with protoport.open_loop() as loop:
        loop.add_signal_handler(signal.SIGUSR2, lambda: None)
        assert signal.getsignal(signal.SIGUSR2) != before
    assert signal.getsignal(signal.SIGUSR2) == before
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        loop.add_signal_handler(signal.SIGUSR2, lambda: None)


async def test_a_failing_signal_handler_is_reported() -> None:
    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)

        def handler() -> None:
            raise ValueError("boom")

        loop.add_signal_handler(signal.SIGUSR1, handler)
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_until(lambda: len(errors) == 1)
        loop.remove_signal_handler(signal.SIGUSR1)
    assert isinstance(errors[0]["exception"], ValueError)


async def _coroutine_handler() -> None:
    pass


@pytest.mark.parametrize(
    ("sig", "callback", "error", "message"),
    [
        ("x", print, TypeError, "sig must be an int, not 'x'"),
        (100000, print, ValueError, "invalid signal number 100000"),
        (signal.SIGKILL, print, RuntimeError, f"sig {signal.SIGKILL} cannot be caught"),
        (
            signal.SIGUSR1,
            _coroutine_handler,
            TypeError,
            "coroutines cannot be used with add_signal_handler()",
        ),
    ],
)
async def test_bad_signal_arguments_as_asyncio(
    sig: Any, callback: Any, error: type[Exception], message: str
) -> None:
    def on_native() -> tuple[type[Exception], str]:
        loop = asyncio.new_event_loop()
        try:
            loop.add_signal_handler(sig, callback)
        except Exception as exc:
            return type(exc), str(exc)
        finally:
            loop.close()
        raise AssertionError("asyncio accepted it")

    # asyncio's messages, checked against asyncio itself.
    assert on_native() == (error, message)
    async with protoport.open_loop() as loop:
        with pytest.raises(error) as caught:
            loop.add_signal_handler(sig, callback)
        assert str(caught.value) == message
    assert signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN)


async def test_signal_handlers_only_in_the_main_thread() -> None:
    async with protoport.open_loop() as loop:
        outcome: list[BaseException] = []

        def from_a_thread() -> None:
            try:
                loop.add_signal_handler(signal.SIGUSR1, print)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=from_a_thread)
        thread.start()
        thread.join()
    assert isinstance(outcome[0], RuntimeError)


async def test_default_executor() -> None:
    async with protoport.open_loop() as loop:
        with pytest.raises(TypeError, match=r"^executor must be ThreadPoolExecutor$"):
            loop.set_default_executor(concurrent.futures.ProcessPoolExecutor())
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="mine"
        )
        loop.set_default_executor(executor)
        name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        assert name.startswith("mine")
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError):
            executor.submit(print)
        # Without one, AnyIO's worker threads serve.
        assert await loop.run_in_executor(None, sum, [1, 2]) == 3
        await loop.shutdown_asyncgens()


async def test_shutdown_default_executor_gives_up_after_its_timeout() -> None:
    release = threading.Event()
    async with protoport.open_loop() as loop:
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        loop.set_default_executor(executor)
        pending = loop.run_in_executor(None, release.wait)
        with pytest.warns(RuntimeWarning, match="did not finishing joining"):
            with anyio.fail_after(5):
                await loop.shutdown_default_executor(timeout=0.05)
        release.set()
        await pending
