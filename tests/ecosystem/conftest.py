"""Fixtures of the ecosystem tests: the servers that the libraries talk to.

They are session fixtures: started before the first module that needs them
takes its snapshot of open descriptors and child processes (``tests/conftest.py``),
so they are never counted as what a module left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest

from ._servers import Running, Unavailable, postgres_server, redis_server


def _start(server: AbstractContextManager[Running], what: str) -> Iterator[Running]:
    # Unavailable comes from starting the server only, before the yield.
    try:
        with server as running:
            yield running
    except Unavailable as reason:
        pytest.skip(f"no {what}: {reason}")


@pytest.fixture(scope="session")
def redis() -> Iterator[Running]:
    """A redis-server of the tests' own."""
    yield from _start(redis_server(), "redis-server")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Running]:
    """A PostgreSQL cluster of the tests' own."""
    yield from _start(postgres_server(), "PostgreSQL")
