"""Waiting for an asyncio future from code that is not one of its loop's tasks."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.lowlevel


async def wait_done(future: asyncio.Future[Any], *, cancel: bool = True) -> None:
    """Wait until *future* is done. With *cancel*, cancelling the wait cancels the
    future, as cancelling an asyncio task cancels the future it awaits."""
    if future.done():
        await anyio.lowlevel.checkpoint()
        return
    done = anyio.Event()

    def on_done(_: asyncio.Future[Any]) -> None:
        done.set()

    future.add_done_callback(on_done)
    try:
        await done.wait()
    except BaseException:
        if cancel:
            future.cancel()
        raise
    finally:
        future.remove_done_callback(on_done)
