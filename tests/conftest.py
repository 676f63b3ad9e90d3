from __future__ import annotations

import os

import pytest


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}
