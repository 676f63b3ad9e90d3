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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from unittest import mock

import pytest

import protoport

pytest.importorskip("greenlet")

from _cpython import (
    Exclusion,
    Proxy,
    check,
    cpython_tests,
    cpython_tests_module,
    excluded_names,
)

test_events = cpython_tests_module("test_events")
test_subprocess = cpython_tests_module("test_subprocess")


pytestmark = pytest.mark.anyio


class _OnTheLoop:
    """Sets the test's loop up as CPython's own test classes do in the classes
    that combine these mixins with a loop."""

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        self.loop = self.create_event_loop()  # type: ignore[attr-defined]
        self.set_event_loop(self.loop)  # type: ignore[attr-defined]


class StreamsMixin(_OnTheLoop, test_subprocess.SubprocessMixin):  # type: ignore[misc,name-defined]
    """test_subprocess's SubprocessMixin on protoport's loop."""


class ProtocolsMixin(_OnTheLoop, test_events.SubprocessTestsMixin):  # type: ignore[misc,name-defined]
    """test_events's SubprocessTestsMixin on protoport's loop."""


STREAMS_TESTS = cpython_tests(test_subprocess.SubprocessMixin)
PROTOCOLS_TESTS = cpython_tests(test_events.SubprocessTestsMixin)

#: Tests that cannot pass, and why (the same list is in docs/subprocesses.rst).
EXCLUSIONS = {
    "test_pause_reading": Exclusion(
        "it replaces loop.connect_read_pipe() with a mock that records "
        "pause_reading()/resume_reading() on the transport it returns; asyncio's "
        "subprocess transport makes the child's pipes through that method, "
        "protoport's makes them itself (a pipe transport per pipe, without the "
        "loop's public method), so the mock is never called and sees nothing",
        # It fails where it looks at what the mock recorded, and nowhere else.
        shows="self.assertTrue(transport.pause_reading.called)",
    ),
}


@contextmanager
def running_loop_is_the_tested_one() -> Iterator[None]:
    """Have asyncio's subprocess functions and the test modules see the loop of
    the calling task, the one under test, as asyncio's running loop."""
    events = Proxy(asyncio.events)
    events.get_running_loop = protoport.get_running_loop
    tests_asyncio = Proxy(asyncio)
    tests_asyncio.get_running_loop = protoport.get_running_loop
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(asyncio.subprocess, "events", events))
        for module in (test_subprocess, test_events):
            stack.enter_context(mock.patch.object(module, "asyncio", tests_asyncio))
        yield


@pytest.mark.parametrize("name", STREAMS_TESTS)
async def test_cpython_subprocess_test(name: str, anyio_backend: str) -> None:
    with running_loop_is_the_tested_one():
        await check(StreamsMixin, name, anyio_backend, EXCLUSIONS)


@pytest.mark.parametrize("name", PROTOCOLS_TESTS)
async def test_cpython_event_loop_subprocess_test(
    name: str, anyio_backend: str
) -> None:
    with running_loop_is_the_tested_one():
        await check(ProtocolsMixin, name, anyio_backend, EXCLUSIONS)


def test_the_subprocess_tests_are_found() -> None:
    # A selection that found nothing would prove nothing.
    assert len(STREAMS_TESTS) >= 25
    assert "test_communicate" in STREAMS_TESTS
    assert len(PROTOCOLS_TESTS) >= 10
    assert "test_subprocess_exec" in PROTOCOLS_TESTS
    assert excluded_names(EXCLUSIONS) <= set(STREAMS_TESTS)
