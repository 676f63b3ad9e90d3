from __future__ import annotations

import gc
import os
import ssl
from collections.abc import Iterator

import pytest
import trustme

from _helpers import KINDS


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The kind of byte stream a transport runs over, for ``open_pair()``."""
    return str(request.param)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """``(server, client)`` contexts for a "localhost" certificate."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def open_fds() -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            os.fstat(fd)
        except OSError:  # the listing's own descriptor, closed by now
            continue
        fds.add(fd)
    return fds


def child_pids() -> set[int]:
    """The processes whose parent is this one (zombies included)."""
    me = os.getpid()
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        if int(stat.rpartition(")")[2].split()[1]) == me:
            children.add(int(entry))
    return children


def _describe_fds(fds: set[int]) -> list[str]:
    described = []
    for fd in sorted(fds):
        try:
            described.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            described.append(str(fd))
    return described


@pytest.fixture(scope="module", autouse=True)
def _nothing_outlives_the_module() -> Iterator[None]:
    """After each test module, no file descriptor and no child process it made
    may be left (each test's loop has ended by then)."""
    fds_before = open_fds()
    children_before = child_pids()
    yield
    # What nothing holds any more is closed by the collector: collect first, so
    # that what is left is held somewhere.
    gc.collect()
    leaked_fds = open_fds() - fds_before
    leaked_children = child_pids() - children_before
    if leaked_fds or leaked_children:
        pytest.fail(
            f"left by the module: file descriptors {_describe_fds(leaked_fds)}, "
            f"child processes {sorted(leaked_children)}"
        )
