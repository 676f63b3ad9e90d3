"""CPython's own stream tests, run against protoport's stream classes.

The interpreter's ``test.test_asyncio.test_streams`` (and the async iteration
test of ``test_pep492``) build their readers as ``asyncio.StreamReader(...)``.
Within those modules only, the name ``asyncio`` is replaced by a proxy of the real
module whose ``StreamReader``, ``StreamReaderProtocol``, ``StreamWriter`` and
``streams.FlowControlMixin`` are protoport's; every test that uses one of them is
run with unittest, on plain asyncio loops as CPython runs them. Tests that never
touch these names (they test asyncio's own ``open_connection`` and servers) are not
run: they would say nothing about protoport.
"""

from __future__ import annotations

import asyncio
import inspect
import unittest
from typing import Any
from unittest import mock

from _cpython import Proxy, cpython_tests_module
from protoport import StreamReader, StreamReaderProtocol, StreamWriter
from protoport._streams._writer import FlowControl

test_pep492 = cpython_tests_module("test_pep492")
test_streams = cpython_tests_module("test_streams")


#: Tests that cannot pass, and why (the same list is in docs/streams.rst).
EXPECTED_FAILURES = {
    "test_streamreader_constructor_use_running_loop": (
        "without a loop argument inside a running loop, the reader uses "
        "protoport.get_running_loop() (the loop facade), not the asyncio loop"
    ),
    "test_streamreaderprotocol_constructor_use_running_loop": (
        "without a loop argument inside a running loop, the protocol uses "
        "protoport.get_running_loop() (the loop facade), not the asyncio loop"
    ),
}

_OUR_NAMES = ("asyncio.StreamReader", "asyncio.StreamWriter", "asyncio.streams.")


def _asyncio_with_our_streams() -> Proxy:
    streams = Proxy(asyncio.streams)
    streams.FlowControlMixin = FlowControl
    proxy = Proxy(asyncio)
    for module in (proxy, streams):
        module.StreamReader = StreamReader
        module.StreamReaderProtocol = StreamReaderProtocol
        module.StreamWriter = StreamWriter
    proxy.streams = streams
    return proxy


def _uses_our_classes(case: type[unittest.TestCase], name: str) -> bool:
    source = inspect.getsource(getattr(case, name))
    return any(our in source for our in _OUR_NAMES)


def _selected() -> list[unittest.TestCase]:
    tests: list[unittest.TestCase] = []
    loader = unittest.TestLoader()
    for case in (test_streams.StreamTests, test_pep492.StreamReaderTests):
        for name in loader.getTestCaseNames(case):
            if _uses_our_classes(case, name):
                tests.append(case(name))
    return tests


def _name(test: Any) -> str:
    return str(test.id().rsplit(".", 1)[-1])


def test_cpython_stream_tests_pass_with_protoport_classes() -> None:
    tests = _selected()
    proxy = _asyncio_with_our_streams()
    result = unittest.TestResult()
    with (
        mock.patch.object(test_streams, "asyncio", proxy),
        mock.patch.object(test_pep492, "asyncio", proxy),
    ):
        unittest.TestSuite(tests).run(result)

    failed = {_name(test): text for test, text in result.failures + result.errors}
    skipped = {_name(test): reason for test, reason in result.skipped}
    passed = result.testsRun - len(failed) - len(skipped)
    print(
        f"CPython stream tests against protoport: {result.testsRun} run, "
        f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped"
    )
    # A reader test suite that selected (almost) nothing would prove nothing.
    assert result.testsRun >= 45
    assert "test_readuntil_eof" in {_name(test) for test in tests}
    unexpected = {
        name: text for name, text in failed.items() if name not in EXPECTED_FAILURES
    }
    assert unexpected == {}
    assert set(failed) == set(EXPECTED_FAILURES) & {_name(test) for test in tests}
