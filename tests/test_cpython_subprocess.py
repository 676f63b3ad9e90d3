"""CPython's own subprocess tests, run against protoport's loop.

Two test classes of the interpreter's ``test.test_asyncio``: ``SubprocessMixin``
of ``test_subprocess`` (``asyncio.create_subprocess_exec()`` and
``create_subprocess_shell()``: asyncio's own ``Process`` and stream protocol over
the loop's subprocess transport) and ``SubprocessTestsMixin`` of ``test_events``
(``loop.subprocess_exec()`` and ``subprocess_shell()`` with a protocol). Each test
method runs in a task of protoport's loop, as ``_cpython`` describes.

asyncio's module functions and the tests' ``asyncio.get_running_loop()`` find the
loop under test as asyncio's running loop. Under Trio that is the facade already;
under asyncio it is asyncio's own loop, so for the test's duration both see the
facade instead (``asyncio.subprocess`` through its ``events`` module, the test
module through its ``asyncio`` name).
"""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock

import pytest

import protoport

pytest.importorskip("greenlet")

try:
    from test.test_asyncio import test_events, test_subprocess
except ImportError as exc:  # pragma: no cover - depends on the interpreter build
    pytest.skip(
        f"this interpreter has no CPython test package ({exc})",
        allow_module_level=True,
    )
except unittest.SkipTest as exc:  # pragma: no cover - e.g. a sanitizer build
    pytest.skip(f"CPython's subprocess tests skip here: {exc}", allow_module_level=True)

from _cpython import LoopTestCase, Proxy, method_names, problems, run_test

pytestmark = pytest.mark.anyio


class SubprocessCase(LoopTestCase):
    """A test class that runs its child processes on protoport's loop (CPython's
    own set the loop up in the classes that combine a mixin with a loop)."""

    def setUp(self) -> None:
        super().setUp()
        self.loop = self.create_event_loop()
        self.set_event_loop(self.loop)


class StreamsCase(test_subprocess.SubprocessMixin, SubprocessCase):  # type: ignore[misc,name-defined]
    """test_subprocess's SubprocessMixin on protoport's loop."""


class ProtocolsCase(test_events.SubprocessTestsMixin, SubprocessCase):  # type: ignore[misc,name-defined]
    """test_events's SubprocessTestsMixin on protoport's loop."""


STREAMS_TESTS = method_names(test_subprocess.SubprocessMixin)
PROTOCOLS_TESTS = method_names(test_events.SubprocessTestsMixin)

#: Tests that cannot pass, and why (the same list is in docs/subprocesses.rst).
EXPECTED_FAILURES = {
    "test_pause_reading": (
        "it replaces loop.connect_read_pipe() with a mock that records "
        "pause_reading()/resume_reading() on the transport it returns; asyncio's "
        "subprocess transport makes the child's pipes through that method, "
        "protoport's makes them itself (a pipe transport per pipe, without the "
        "loop's public method), so the mock is never called and sees nothing"
    ),
}


@contextmanager
def running_loop_is(loop: protoport.Loop) -> Iterator[None]:
    """Have asyncio's subprocess functions and the test modules see *loop* as
    asyncio's running loop."""
    events = Proxy(asyncio.events)
    events.get_running_loop = lambda: loop
    tests_asyncio = Proxy(asyncio)
    tests_asyncio.get_running_loop = lambda: loop
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(asyncio.subprocess, "events", events))
        for module in (test_subprocess, test_events):
            stack.enter_context(mock.patch.object(module, "asyncio", tests_asyncio))
        yield


async def _run(case: type[LoopTestCase], name: str) -> None:
    async with protoport.open_loop() as loop:
        with running_loop_is(loop):
            result = await run_test(loop, case, name)
    if result.skipped:
        pytest.skip(f"CPython's test skipped itself: {result.skipped[0][1]}")
    assert result.testsRun == 1
    if name in EXPECTED_FAILURES:
        [problem] = problems(result)
        # It fails where it looks at what the mock recorded, and nowhere else.
        assert "self.assertTrue(transport.pause_reading.called)" in problem
    else:
        assert problems(result) == []


@pytest.mark.parametrize("name", STREAMS_TESTS)
async def test_cpython_subprocess_test(name: str) -> None:
    await _run(StreamsCase, name)


@pytest.mark.parametrize("name", PROTOCOLS_TESTS)
async def test_cpython_event_loop_subprocess_test(name: str) -> None:
    await _run(ProtocolsCase, name)


def test_the_subprocess_tests_are_found() -> None:
    # A selection that found nothing would prove nothing.
    assert len(STREAMS_TESTS) >= 25
    assert "test_communicate" in STREAMS_TESTS
    assert len(PROTOCOLS_TESTS) >= 10
    assert "test_subprocess_exec" in PROTOCOLS_TESTS
    assert set(EXPECTED_FAILURES) <= set(STREAMS_TESTS)
