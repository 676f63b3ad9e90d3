"""CPython's own datagram endpoint tests, run against protoport's loop.

The interpreter's ``test.test_asyncio.test_events`` tests datagram endpoints in
``EventLoopTestsMixin``: synchronous test methods that drive their loop with
``loop.run_until_complete()``. A loop living inside ``open_loop()`` cannot be
entered from synchronous code, so each test method runs in a greenlet started by
a task of protoport's loop: its ``run_until_complete(awaitable)`` switches back
to that task, which awaits the awaitable the way loop tasks do and switches back
with the result (or the exception). Everything still happens in the loop's
thread, inside the loop task's context, one step at a time, as on CPython.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
import unittest
from collections.abc import Awaitable
from typing import Any
from unittest import mock

import pytest

import protoport

greenlet = pytest.importorskip("greenlet")

try:
    from test.support import threading_helper
    from test.test_asyncio import test_events
    from test.test_asyncio import utils as test_utils
except ImportError as exc:  # pragma: no cover - depends on the interpreter build
    pytest.skip(
        f"this interpreter has no CPython test package ({exc})",
        allow_module_level=True,
    )

pytestmark = pytest.mark.anyio

#: EventLoopTestsMixin's tests of datagram endpoints.
DATAGRAM_TESTS = sorted(
    name
    for name in unittest.TestLoader().getTestCaseNames(test_events.EventLoopTestsMixin)
    if "datagram" in name
)


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


async def run_test(loop: protoport.Loop, name: str) -> unittest.TestResult:
    """Run the CPython test *name* against *loop*, in a task of *loop*."""
    result = unittest.TestResult()

    async def drive() -> None:
        driven = DrivenLoop(loop, greenlet.getcurrent())

        class Case(test_events.EventLoopTestsMixin, test_utils.TestCase):  # type: ignore[misc,name-defined]
            def create_event_loop(self) -> DrivenLoop:
                return driven

            def tearDown(self) -> None:
                # The loop's worker threads (name resolution) idle on after the
                # test, as they may: CPython's check for leaked threads, which
                # would wait for them, starts from the threads there are now.
                self._thread_cleanup = threading_helper.threading_setup()
                super().tearDown()

        test = greenlet.greenlet(Case(name).run)
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


#: Tests that cannot pass as written, and why.
EXPECTED_FAILURES = dict.fromkeys(
    (
        "test_create_datagram_endpoint",
        "test_create_datagram_endpoint_ipv6",
        "test_create_datagram_endpoint_sock",
    ),
    "they assert that the datagram transport is an asyncio.Transport, as "
    "CPython's is (its selector transports share one base class); the "
    "documentation makes a DatagramTransport a BaseTransport only, and so does "
    "protoport (uvloop's is neither)",
)


class _Proxy(types.ModuleType):
    """A module that is *target* except for the attributes set on it."""

    def __init__(self, target: types.ModuleType) -> None:
        super().__init__(target.__name__)
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _problems(result: unittest.TestResult) -> list[str]:
    return [text for _, text in result.failures + result.errors]


@pytest.mark.parametrize("name", DATAGRAM_TESTS)
async def test_cpython_datagram_test(name: str) -> None:
    async with protoport.open_loop() as loop:
        result = await run_test(loop, name)
    if result.skipped:
        pytest.skip(f"CPython's test skipped itself: {result.skipped[0][1]}")
    assert result.testsRun == 1
    if name not in EXPECTED_FAILURES:
        assert _problems(result) == []
        return
    [problem] = _problems(result)
    assert "is not an instance of <class 'asyncio.transports.Transport'>" in problem
    # The rest of the test passes where its asyncio.Transport means what the
    # documentation promises, asyncio.DatagramTransport.
    proxy = _Proxy(asyncio)
    proxy.Transport = asyncio.DatagramTransport
    with mock.patch.object(test_events, "asyncio", proxy):
        async with protoport.open_loop() as loop:
            result = await run_test(loop, name)
    assert _problems(result) == []


def test_the_datagram_tests_are_found() -> None:
    # A selection that found nothing would prove nothing.
    assert len(DATAGRAM_TESTS) >= 3
    assert "test_create_datagram_endpoint" in DATAGRAM_TESTS


async def test_a_failing_cpython_test_is_seen() -> None:
    # The runner reports what fails inside the test method, through the switch
    # to the loop task and back.
    class Refusing(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            raise AssertionError("refused by the test")

    async with protoport.open_loop() as loop:
        original = test_events.MyDatagramProto
        test_events.MyDatagramProto = Refusing  # type: ignore[misc]
        try:
            result = await run_test(loop, "test_create_datagram_endpoint_sock")
        finally:
            test_events.MyDatagramProto = original  # type: ignore[misc]
    assert len(result.failures + result.errors) == 1
