"""CPython's own event loop tests of connections, servers, descriptors and
signals, run against protoport's loop.

The interpreter's ``test.test_asyncio.test_events`` tests its loops in
``EventLoopTestsMixin``; ``_cpython`` runs those of its tests that concern what
protoport's loop offers here (``create_connection()`` and ``create_server()``
with their Unix and TLS variants, ``connect_accepted_socket()``,
``add_reader()``/``add_writer()``, signal handlers, cancelling ``sock_recv()``)
on both runtimes. The datagram tests have a runner of their own
(``test_cpython_datagrams``).
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
from protoport._transports._tls import TLSTransport

test_events = cpython_tests_module("test_events")

pytestmark = pytest.mark.anyio

MIXIN = test_events.EventLoopTestsMixin
_TOPICS = (
    "connection",
    "server",
    "connect_accepted",
    "fds",
    "reader",
    "writer_callback",
    "signal",
    "prompt_cancellation",
)
TESTS = [
    name
    for name in cpython_tests(MIXIN)
    if any(topic in name for topic in _TOPICS)
    # It inspects the selector loop's own descriptors (and skips itself on
    # any other loop).
    and name != "test_internal_fds"
]

_NO_CLOSE = (
    "it closes the loop with loop.close() and then uses it; protoport's loop "
    "has no close(): it closes when its open_loop() block ends (what it does "
    "then is tested in tests/test_loop_sockets.py)"
)
_MOCKED_BINDING = (
    "it replaces the socket module of asyncio.base_events and the loop's "
    "private _start_serving()/_stop_serving() with mocks, so that binding "
    "1.2.3.4 only seems to work; protoport binds real sockets (binding a host "
    "given twice once is tested in tests/test_server.py)"
)

#: Tests that cannot pass, and why; ``@<runtime>`` limits an entry to one runtime.
EXCLUSIONS = {
    "test_add_fds_after_closing": Exclusion(
        _NO_CLOSE, shows="AssertionError: RuntimeError not raised"
    ),
    "test_remove_fds_after_closing": Exclusion(
        _NO_CLOSE, shows="AssertionError: True is not false"
    ),
    "test_create_server_multiple_hosts_ipv4": Exclusion(
        _MOCKED_BINDING, shows="OSError: could not bind on any address"
    ),
    "test_create_server_multiple_hosts_ipv6": Exclusion(
        _MOCKED_BINDING, shows="has no attribute 'getsockbyname'"
    ),
    "test_writer_callback": Exclusion(
        "it counts the writer callbacks that run before loop.stop() ends "
        "run_forever() in the same round; protoport's loop has neither (it runs "
        "for as long as its block), and the runner's stand-in returns to the "
        "test a round later, after the callback ran again",
        shows="AssertionError: b'xxx",
    ),
    "test_add_signal_handler@trio": Exclusion(
        "removing the SIGINT handler puts back the handler found before, Trio's "
        "own, where asyncio puts back Python's default_int_handler (the "
        "limitations page says so)",
        shows="!= <built-in function default_int_handler>",
    ),
}

#: Tests that check that the TLS transport's class name contains "ssl", as
#: asyncio's do; they run with protoport's TLSTransport named SSLTransport.
SSL_NAMED = {"test_create_ssl_connection", "test_create_ssl_unix_connection"}


@pytest.mark.parametrize("name", TESTS)
async def test_cpython_event_loop_test(name: str, anyio_backend: str) -> None:
    if name not in SSL_NAMED:
        await check(MIXIN, name, anyio_backend, EXCLUSIONS)
        return
    # A class's __name__ can be set, not deleted (which is how monkeypatch
    # would undo it).
    TLSTransport.__name__ = "SSLTransport"
    try:
        await check(MIXIN, name, anyio_backend, EXCLUSIONS)
    finally:
        TLSTransport.__name__ = "TLSTransport"


def test_the_event_loop_tests_are_found() -> None:
    # A selection that found nothing would prove nothing.
    assert len(TESTS) >= 35
    assert {"test_create_server", "test_reader_callback"} <= set(TESTS)
    assert excluded_names(EXCLUSIONS) | SSL_NAMED <= set(TESTS)
