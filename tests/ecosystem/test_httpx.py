"""httpx (on AnyIO, through httpcore) in a task of the loop, against aiohttp's
server on protoport's transports. httpx asks sniffio which library runs: in a
task of protoport's loop that must be "asyncio", also under Trio."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ._ecosystem import run_in_loop, serve_aiohttp

httpx = pytest.importorskip("httpx", reason="needs the ecosystem extra")
web = pytest.importorskip("aiohttp.web", reason="needs the ecosystem extra")

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def echo(request: Any) -> Any:
    return web.Response(body=await request.read(), content_type="text/plain")


async def test_get_and_post() -> None:
    # Under Trio, httpx (httpcore, AnyIO) must see asyncio in the loop's task.
    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    body = b"0123456789" * 100000

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        async with serve_aiohttp(loop, app) as url, httpx.AsyncClient() as client:
            got = await client.get(f"{url}/echo")
            posted = await client.post(f"{url}/echo", content=body)
            return (got.status_code, got.content), (posted.status_code, posted.content)

    got, posted = await run_in_loop(scenario)
    assert got == (200, b"")
    assert posted == (200, body)
