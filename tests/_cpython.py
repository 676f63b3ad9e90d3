"""Running CPython's own asyncio tests against protoport.

The interpreter's ``test.test_asyncio`` test methods are synchronous: they drive
their loop with ``loop.run_until_complete()``. A loop living inside
``open_loop()`` cannot be entered from synchronous code, so each test method runs
in a greenlet started by a task of protoport's loop: its
``run_until_complete(awaitable)`` switches back to that task, which awaits the
awaitable the way loop tasks do and switches back with the result (or the
exception). Everything still happens in the loop's thread, inside the loop task's
context, one step at a time, as on CPython.

Import this module only once the test package and greenlet are known to be there
(the runners skip without them).
"""

from __future__ import annotations

import contextvars
import types
import unittest
from collections.abc import Awaitable
from typing import Any

import greenlet
from test.support import threading_helper
from test.test_asyncio import utils as test_utils

import protoport


class Proxy(types.ModuleType):
    """A module that is *target* except for the attributes set on it."""

    def __init__(self, target: types.ModuleType) -> None:
        super().__init__(target.__name__)
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class DrivenLoop:
    """protoport's loop as CPython's tests see theirs: ``run_until_complete()``
    hands the awaitable to the task driving the test and returns its result."""

    #: read by CPython's cleanup, which shuts the executor down if there is one
    _default_executor = None

    def __init__(self, loop: protoport.Loop, driver: Any) -> None:
        self._loop = loop
        self._driver = driver

    def run_until_complete(self, awaitable: Awaitable[Any]) -> Any:
        return self._driver.switch(awaitable)

    def close(self) -> None:
        """Nothing to do: the loop is closed when ``open_loop()`` ends."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


class LoopTestCase(test_utils.TestCase):  # type: ignore[misc,name-defined]
    """CPython's asyncio test case whose loop is protoport's: the
    :class:`DrivenLoop` that :func:`run_test` gives it."""

    #: Run by run_test() only: pytest collects no subclass of this one.
    __test__ = False

    driven: DrivenLoop

    def create_event_loop(self) -> DrivenLoop:
        return self.driven

    def tearDown(self) -> None:
        # The loop's worker threads (name resolution) idle on after the test, as
        # they may: CPython's check for leaked threads, which would wait for
        # them, starts from the threads there are now.
        self._thread_cleanup = threading_helper.threading_setup()
        super().tearDown()


async def run_test(
    loop: protoport.Loop, case: type[LoopTestCase], name: str
) -> unittest.TestResult:
    """Run the test method *name* of *case* against *loop*, in a task of *loop*."""
    result = unittest.TestResult()

    async def drive() -> None:
        test_case = case(name)
        test_case.driven = DrivenLoop(loop, greenlet.getcurrent())
        test = greenlet.greenlet(test_case.run)
        # The loop task's context: the test code sees the loop running.
        test.gr_context = contextvars.copy_context()
        request = test.switch(result)
        while not test.dead:
            try:
                value = await request
            except BaseException as exc:  # the test decides what it means
                request = test.throw(exc)
            else:
                request = test.switch(value)

    await loop.create_task(drive())
    return result


def problems(result: unittest.TestResult) -> list[str]:
    """The tracebacks of what failed or raised."""
    return [text for _, text in result.failures + result.errors]


def method_names(case: type) -> list[str]:
    """The test methods of *case* (a test class or mixin), sorted."""
    return sorted(unittest.TestLoader().getTestCaseNames(case))
