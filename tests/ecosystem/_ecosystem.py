"""How the ecosystem tests run a library: as asyncio code in a task of a new
protoport loop, the way a ported program runs it, under Trio or asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio

import protoport

T = TypeVar("T")

# What one test may take, servers' start-up included: the libraries' own timeouts
# are longer, and a hang must fail the test rather than the whole run.
TEST_TIMEOUT = 20


async def run_in_loop(
    scenario: Callable[[protoport.Loop], Coroutine[Any, Any, T]],
) -> T:
    """Run ``scenario(loop)`` as a task of a new loop and return its result; fail
    after :data:`TEST_TIMEOUT` seconds."""
    with anyio.fail_after(TEST_TIMEOUT):
        async with protoport.open_loop() as loop:
            return await loop.create_task(scenario(loop))


@asynccontextmanager
async def serve_aiohttp(
    loop: asyncio.AbstractEventLoop, app: Any
) -> AsyncIterator[str]:
    """Serve the aiohttp application *app* with ``loop.create_server()`` (so on
    protoport's transports under both runtimes); yield its base URL."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    try:
        server = await loop.create_server(runner.server, "127.0.0.1", 0)
        try:
            yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        finally:
            server.close()
    finally:
        await runner.cleanup()
