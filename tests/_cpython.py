"""Running CPython's own asyncio tests against protoport.

The interpreter's ``test.test_asyncio`` tests its loops with synchronous test
methods that drive the loop with ``loop.run_until_complete()``. A loop living
inside ``open_loop()`` cannot be entered from synchronous code, so each test
method runs in a greenlet started by a task of protoport's loop: its
``run_until_complete(awaitable)`` switches back to that task, which awaits the
awaitable the way loop tasks do and switches back with the result (or the
exception). Everything still happens in the loop's thread, inside the loop
task's context, one step at a time, as on CPython.

Runners that put protoport's classes in asyncio's place within a test module
patch in a :class:`Proxy` of asyncio.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import socket
import types
import unittest
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

import protoport

try:
    from test.support import threading_helper
    from test.test_asyncio import utils as test_utils
except ImportError as exc:  # pragma: no cover - depends on the interpreter build
    pytest.skip(
        f"this interpreter has no CPython test package ({exc})",
        allow_module_level=True,
    )


class DrivenLoop:
    """protoport's loop as CPython's tests see theirs: ``run_until_complete()``
    hands the awaitable to the task driving the test and returns its result."""

    #: read by CPython's cleanup, which shuts the executor down if there is one
    _default_executor = None

    def __init__(self, loop: protoport.Loop, driver: Any) -> None:
        self._loop = loop
        self._driver = driver
        #: What run_forever() waits for; None while it does not run.
        self._stopped: asyncio.Future[None] | None = None
        #: Whether stop() came before run_forever(), which then runs one round.
        self._stop_pending = False

    def run_until_complete(self, awaitable: Awaitable[Any]) -> Any:
        return self._driver.switch(awaitable)

    def run_forever(self) -> None:
        """Run until :meth:`stop` is called (one round if it was called
        already), as asyncio's ``run_forever()``."""
        self._stopped = self._loop.create_future()
        if self._stop_pending:
            self._stop_pending = False
            self._stopped.set_result(None)
        try:
            self._driver.switch(self._stopped)
        finally:
            self._stopped = None

    def stop(self) -> None:
        """Make :meth:`run_forever` return."""
        if self._stopped is None:
            self._stop_pending = True
        elif not self._stopped.done():
            self._stopped.set_result(None)

    def close(self) -> None:
        """Nothing to do: the loop is closed when ``open_loop()`` ends."""

    def _stop_serving(self, sock: socket.socket) -> None:
        """What the selector loop's private ``_stop_serving()`` does, which a
        test calls to clean up: stop watching *sock* and close it."""
        self._loop.remove_reader(sock)
        sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


async def run_test(
    loop: protoport.Loop, mixin: type[Any], name: str
) -> unittest.TestResult:
    """Run the test *name* of CPython's *mixin* (a test class that makes its loop
    with ``create_event_loop()``) against *loop*, in a task of *loop*, with the
    class's own set-up and tear-down."""
    greenlet = pytest.importorskip("greenlet")
    result = unittest.TestResult()

    async def drive() -> None:
        driven = DrivenLoop(loop, greenlet.getcurrent())

        class Case(mixin, test_utils.TestCase):  # type: ignore[misc,valid-type,name-defined]
            def create_event_loop(self) -> DrivenLoop:
                return driven

            def tearDown(self) -> None:
                # The loop's worker threads (name resolution, file reads) idle on
                # after the test, as they may: CPython's check for leaked
                # threads, which would wait for them, starts from the threads
                # there are now.
                self._thread_cleanup = threading_helper.threading_setup()
                super().tearDown()

        Case.__name__ = Case.__qualname__ = mixin.__name__
        suite = unittest.TestSuite([Case(name)])
        test = greenlet.greenlet(suite.run)
        # The loop task's context: the test code sees the loop running.
        test.gr_context = contextvars.copy_context()
        request = test.switch(result)
        while not test.dead:
            try:
                value = await request
            except BaseException as exc:  # the test decides what it means
                outcome = functools.partial(test.throw, exc)
            else:
                outcome = functools.partial(test.switch, value)
            # asyncio's run_until_complete() stops only after one more round of
            # the loop, which polls for I/O once, even when the awaitable is
            # done already; so does this.
            await asyncio.sleep(0)
            request = outcome()

    await loop.create_task(drive())
    return result


def cpython_tests_module(name: str) -> types.ModuleType:
    """CPython's ``test.test_asyncio.<name>``; the calling test module is skipped,
    saying why, where the interpreter has no such module or it skips itself."""
    try:
        return importlib.import_module(f"test.test_asyncio.{name}")
    except ImportError as exc:  # pragma: no cover - depends on the interpreter build
        pytest.skip(
            f"this interpreter has no CPython test package ({exc})",
            allow_module_level=True,
        )
    except unittest.SkipTest as exc:  # pragma: no cover - e.g. a sanitizer build
        pytest.skip(f"CPython's {name} skips here: {exc}", allow_module_level=True)


def problems(result: unittest.TestResult) -> list[str]:
    """The tracebacks of what failed or raised."""
    return [text for _, text in result.failures + result.errors]


class Proxy(types.ModuleType):
    """A module that is *target* except for the attributes set on it."""

    def __init__(self, target: types.ModuleType) -> None:
        super().__init__(target.__name__)
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


#: How long one CPython test may take before it counts as hanging.
TEST_TIMEOUT = 60


@dataclass(frozen=True)
class Exclusion:
    """A CPython test that cannot pass against protoport, and why."""

    reason: str
    #: Text its one failure shows: checked, so that the table stays true.
    shows: str
    #: False when running it would block the loop's thread for good (it is
    #: then reported as an expected failure without being run).
    runnable: bool = True


async def check(
    mixin: type[Any], name: str, runtime: str, exclusions: dict[str, Exclusion]
) -> None:
    """Run CPython's test *name* of *mixin* against a fresh loop: it passes,
    unless *exclusions* lists it, then it fails as listed. Keys are test names
    (both runtimes) or ``"<name>@<runtime>"``."""
    exclusion = exclusions.get(f"{name}@{runtime}") or exclusions.get(name)
    if exclusion is not None and not exclusion.runnable:
        pytest.xfail(exclusion.reason)
    with anyio.fail_after(TEST_TIMEOUT):
        async with protoport.open_loop() as loop:
            result = await run_test(loop, mixin, name)
    if result.skipped:
        pytest.skip(f"CPython's test skipped itself: {result.skipped[0][1]}")
    assert result.testsRun == 1
    found = problems(result)
    if exclusion is None:
        assert found == []
        return
    assert len(found) == 1, found
    assert exclusion.shows in found[0], found[0]


def cpython_tests(mixin: type[Any]) -> list[str]:
    """The names of *mixin*'s tests, sorted."""
    return sorted(unittest.TestLoader().getTestCaseNames(mixin))


def excluded_names(exclusions: dict[str, Exclusion]) -> set[str]:
    """The test names an exclusion table lists."""
    return {key.partition("@")[0] for key in exclusions}
