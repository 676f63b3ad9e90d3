"""CPython's own sendfile tests, run against protoport's loop.

The interpreter's ``test.test_asyncio.test_sendfile`` tests ``loop.sendfile()``
on plain and TLS transports and ``loop.sock_sendfile()``; ``_cpython`` runs each
of its tests against protoport's loop, on both runtimes.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from _cpython import (
    Exclusion,
    check,
    cpython_tests,
    cpython_tests_module,
    excluded_names,
)
from protoport._loop import _sendfile

test_sendfile = cpython_tests_module("test_sendfile")

pytestmark = pytest.mark.anyio

MIXIN = test_sendfile.SendfileTestsBase
TESTS = cpython_tests(MIXIN)

#: Tests that cannot pass, and why.
EXCLUSIONS = {
    "test_sendfile_no_fallback_for_fallback_transport": Exclusion(
        "it hands loop.sendfile() a Mock that claims asyncio's private "
        "_sendfile_compatible marker; protoport's loop sends on its own "
        "transports only and says 'sendfile is not supported' for any other, as "
        "asyncio says for a transport without the marker (its own refusal of "
        "fallback=False is tested in tests/test_loop_sendfile.py)",
        shows="sendfile is not supported for transport <Mock",
    ),
}

#: Tests that force the fallback by replacing the private ``_sendfile_native()``
#: of asyncio's loop with asyncio's base one, which says sendfile is not
#: supported; they run with protoport's ``os.sendfile()`` step replaced the same
#: way.
FORCED_FALLBACK = {
    "test_sendfile_force_fallback",
    "test_sendfile_force_unsupported_native",
    "test_sendfile_fallback_close_peer_in_the_middle_of_receiving",
}


async def _not_supported(*args: Any) -> int:
    raise asyncio.SendfileNotAvailableError("sendfile syscall is not supported")


@pytest.mark.parametrize("name", TESTS)
async def test_cpython_sendfile_test(
    name: str,
    anyio_backend: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: os.PathLike[str],
) -> None:
    # The tests write the file they send to the current directory.
    monkeypatch.chdir(tmp_path)
    if name in FORCED_FALLBACK:
        monkeypatch.setattr(_sendfile, "sendfile_native", _not_supported)
    await check(MIXIN, name, anyio_backend, EXCLUSIONS)


def test_the_sendfile_tests_are_found() -> None:
    # A selection that found nothing would prove nothing.
    assert len(TESTS) >= 20
    assert excluded_names(EXCLUSIONS) | FORCED_FALLBACK <= set(TESTS)
