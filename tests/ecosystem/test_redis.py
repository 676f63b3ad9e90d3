"""redis-py's asyncio client against a real redis-server: commands, a pipeline,
publish/subscribe. redis-py takes no loop: under Trio it runs on protoport's loop
(asyncio's running loop in a task of the loop), under asyncio on asyncio's own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ._ecosystem import run_in_loop
from ._servers import Running

aioredis = pytest.importorskip("redis.asyncio", reason="needs the ecosystem extra")

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def client(redis: Running) -> Any:
    return aioredis.Redis(host=redis.host, port=redis.port)


async def test_get_and_set(redis: Running, anyio_backend: str) -> None:
    key = f"protoport:{anyio_backend}:key"
    value = b"v" * 200000

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        async with client(redis) as r:
            await r.set(key, value)
            got = await r.get(key)
            await r.delete(key)
            return got, await r.get(key)

    assert await run_in_loop(scenario) == (value, None)


async def test_pipeline(redis: Running, anyio_backend: str) -> None:
    key = f"protoport:{anyio_backend}:counter"

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        async with client(redis) as r, r.pipeline(transaction=True) as pipe:
            pipe.set(key, 10).incr(key).incrby(key, 5).get(key).delete(key)
            return await pipe.execute()

    assert await run_in_loop(scenario) == [True, 11, 16, b"16", 1]


async def test_publish_subscribe(redis: Running, anyio_backend: str) -> None:
    channel = f"protoport:{anyio_backend}:channel"

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        async with client(redis) as r, r.pubsub() as pubsub:
            await pubsub.subscribe(channel)
            messages = []
            for sent in (b"one", b"two"):
                await r.publish(channel, sent)
            async for message in pubsub.listen():
                messages.append((message["type"], message["data"]))
                if len(messages) == 3:
                    return messages
        return None

    assert await run_in_loop(scenario) == [
        ("subscribe", 1),
        ("message", b"one"),
        ("message", b"two"),
    ]
