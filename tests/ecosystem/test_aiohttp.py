"""aiohttp's server, on transports of protoport's loop, and its client: GET,
POST, a streamed response, a websocket and a file response.

aiohttp's client takes asyncio's running loop: protoport's under Trio, asyncio's
own under asyncio (given protoport's loop there, see the last test).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from ._ecosystem import run_in_loop, serve_aiohttp

aiohttp = pytest.importorskip("aiohttp", reason="needs the ecosystem extra")
web = pytest.importorskip("aiohttp.web", reason="needs the ecosystem extra")

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

CHUNKS = [b"chunk %d\n" % i for i in range(5)]


async def hello(request: Any) -> Any:
    return web.Response(text=f"hello {request.query['name']}")


async def echo(request: Any) -> Any:
    body = await request.read()
    return web.Response(body=body, headers={"X-Length": str(len(body))})


CLIENT_HAS_FIRST_CHUNK = web.AppKey("client_has_first_chunk", asyncio.Event)


async def stream(request: Any) -> Any:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(CHUNKS[0])
    # The rest only once the client has the first: the response is streamed, not
    # collected and sent whole.
    await request.app[CLIENT_HAS_FIRST_CHUNK].wait()
    for chunk in CHUNKS[1:]:
        await response.write(chunk)
    await response.write_eof()
    return response


async def websocket(request: Any) -> Any:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            await ws.send_str(f"echo: {message.data}")
        else:
            await ws.send_bytes(message.data[::-1])
    return ws


def application(**extra_routes: Any) -> Any:
    app = web.Application()
    app[CLIENT_HAS_FIRST_CHUNK] = asyncio.Event()
    app.router.add_get("/hello", hello)
    app.router.add_post("/echo", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/ws", websocket)
    for path, handler in extra_routes.items():
        app.router.add_get(f"/{path}", handler)
    return app


async def test_get_and_post() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: many writes, many reads

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        async with (
            serve_aiohttp(loop, application()) as url,
            aiohttp.ClientSession() as session,
        ):
            async with session.get(f"{url}/hello", params={"name": "trio"}) as r:
                got = (r.status, await r.text())
            async with session.post(f"{url}/echo", data=body) as r:
                posted = (r.status, r.headers["X-Length"], await r.read())
            return got, posted

    got, posted = await run_in_loop(scenario)
    assert got == (200, "hello trio")
    assert posted == (200, str(len(body)), body)


async def test_streamed_response() -> None:
    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        app = application()
        async with (
            serve_aiohttp(loop, app) as url,
            aiohttp.ClientSession() as session,
            session.get(f"{url}/stream") as r,
        ):
            lines = [await r.content.readline()]
            app[CLIENT_HAS_FIRST_CHUNK].set()
            lines += [line async for line in r.content]
            return r.headers.get("Transfer-Encoding"), lines

    encoding, lines = await run_in_loop(scenario)
    assert encoding == "chunked"
    assert lines == CHUNKS


async def test_websocket() -> None:
    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        async with (
            serve_aiohttp(loop, application()) as url,
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{url}/ws") as ws,
        ):
            await ws.send_str("hi")
            text = await ws.receive_str()
            await ws.send_bytes(b"\x00\x01" * 50000)
            data = await ws.receive_bytes()
            await ws.close()
            return text, data, ws.close_code

    text, data, close_code = await run_in_loop(scenario)
    assert text == "echo: hi"
    assert data == b"\x01\x00" * 50000
    assert close_code == 1000


async def test_file_response(tmp_path: Path) -> None:
    # Under asyncio, aiohttp asks asyncio's own loop to sendfile() on protoport's
    # transport; it must be told NotImplementedError to write the file itself.
    content = bytes(range(256)) * 4000
    path = tmp_path / "file.bin"
    path.write_bytes(content)

    async def file(request: Any) -> Any:
        return web.FileResponse(path)

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            serve_aiohttp(loop, application(file=file)) as url,
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{url}/file") as r,
        ):
            return r.status, await r.read()

    assert await run_in_loop(scenario) == (200, content)


async def test_client_given_protoports_loop(
    anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    """Under asyncio, the client on protoport's transports too: its timeouts need
    the task to be a current task of the loop it was given."""
    if anyio_backend == "asyncio" and sys.version_info >= (3, 12):
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="from Python 3.12 on, closing the session makes "
                "asyncio.Task(coro, loop=protoport's loop), a task bound to the "
                "facade, which then awaits futures of asyncio's own loop: asyncio "
                "refuses a future of another loop (docs/limitations.rst)",
            )
        )

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        async with (
            serve_aiohttp(loop, application()) as url,
            aiohttp.ClientSession(loop=loop) as session,
            session.get(f"{url}/hello", params={"name": "loop"}) as r,
        ):
            return r.status, await r.text()

    assert await run_in_loop(scenario) == (200, "hello loop")
