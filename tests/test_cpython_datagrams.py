"""CPython's own datagram endpoint tests, run against protoport's loop.

The interpreter's ``test.test_asyncio.test_events`` tests datagram endpoints in
``EventLoopTestsMixin``; ``_cpython`` runs them against protoport's loop.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest

import protoport
from _cpython import Proxy, cpython_tests, cpython_tests_module, problems, run_test

test_events = cpython_tests_module("test_events")

pytestmark = pytest.mark.anyio

MIXIN = test_events.EventLoopTestsMixin

#: EventLoopTestsMixin's tests of datagram endpoints.
DATAGRAM_TESTS = [name for name in cpython_tests(MIXIN) if "datagram" in name]

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


@pytest.mark.parametrize("name", DATAGRAM_TESTS)
async def test_cpython_datagram_test(name: str) -> None:
    async with protoport.open_loop() as loop:
        result = await run_test(loop, MIXIN, name)
    if result.skipped:
        pytest.skip(f"CPython's test skipped itself: {result.skipped[0][1]}")
    assert result.testsRun == 1
    if name not in EXPECTED_FAILURES:
        assert problems(result) == []
        return
    [problem] = problems(result)
    assert "is not an instance of <class 'asyncio.transports.Transport'>" in problem
    # The rest of the test passes where its asyncio.Transport means what the
    # documentation promises, asyncio.DatagramTransport.
    proxy = Proxy(asyncio)
    proxy.Transport = asyncio.DatagramTransport
    with mock.patch.object(test_events, "asyncio", proxy):
        async with protoport.open_loop() as loop:
            result = await run_test(loop, MIXIN, name)
    assert problems(result) == []


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
            result = await run_test(loop, MIXIN, "test_create_datagram_endpoint_sock")
        finally:
            test_events.MyDatagramProto = original  # type: ignore[misc]
    assert len(result.failures + result.errors) == 1
