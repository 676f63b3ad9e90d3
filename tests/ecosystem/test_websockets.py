"""websockets' server and client (its asyncio implementation), both in tasks of
the loop: text and binary messages, a large message, the closing handshake.
websockets takes no loop: under Trio it runs on protoport's loop, under asyncio
on asyncio's own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ._ecosystem import run_in_loop

server = pytest.importorskip(
    "websockets.asyncio.server", reason="needs the ecosystem extra"
)
client = pytest.importorskip(
    "websockets.asyncio.client", reason="needs the ecosystem extra"
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def echo(connection: Any) -> None:
    async for message in connection:
        if isinstance(message, str):
            await connection.send(f"echo: {message}")
        else:
            await connection.send(message[::-1])
    # The client's close code, as the server saw it.
    await connection.wait_closed()


async def test_echo_and_close() -> None:
    big = bytes(range(256)) * 4000

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        async with server.serve(echo, "127.0.0.1", 0) as ws_server:
            port = ws_server.sockets[0].getsockname()[1]
            async with client.connect(f"ws://127.0.0.1:{port}") as ws:
                await ws.send("hello")
                text = await ws.recv()
                await ws.send(big)
                data = await ws.recv()
                await ws.close(code=4000, reason="done")
            return text, data, ws.close_code, ws.close_reason

    text, data, code, reason = await run_in_loop(scenario)
    assert text == "echo: hello"
    assert data == big[::-1]
    assert (code, reason) == (4000, "done")
