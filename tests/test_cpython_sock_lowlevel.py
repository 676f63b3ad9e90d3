"""CPython's own tests of the loop's socket methods, run against protoport's loop.

The interpreter's ``test.test_asyncio.test_sock_lowlevel`` tests ``sock_recv()``
and its kin against a real HTTP server and socket pairs; ``_cpython`` runs each of
its tests against protoport's loop, on both runtimes.
"""

from __future__ import annotations

import pytest

from _cpython import (
    Exclusion,
    check,
    cpython_tests,
    cpython_tests_module,
    excluded_names,
)

test_sock_lowlevel = cpython_tests_module("test_sock_lowlevel")

pytestmark = pytest.mark.anyio

MIXIN = test_sock_lowlevel.BaseSockTestsMixin
TESTS = cpython_tests(MIXIN)

#: Tests that cannot pass, and why; ``@<runtime>`` limits an entry to one runtime.
#: None now: every test passes on both runtimes.
EXCLUSIONS: dict[str, Exclusion] = {}


@pytest.mark.parametrize("name", TESTS)
async def test_cpython_sock_lowlevel_test(name: str, anyio_backend: str) -> None:
    await check(MIXIN, name, anyio_backend, EXCLUSIONS)


def test_the_socket_tests_are_found() -> None:
    # A selection that found nothing would prove nothing.
    assert len(TESTS) >= 10
    assert excluded_names(EXCLUSIONS) <= set(TESTS)
