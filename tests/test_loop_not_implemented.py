"""asyncio's loop methods that protoport's loop does not offer: each raises
NotImplementedError with a sentence that names it and says why, and the
limitations page lists it."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import protoport
from protoport._loop._loop import NOT_IMPLEMENTED

pytestmark = pytest.mark.anyio

LIMITATIONS = Path(__file__).resolve().parent.parent / "docs" / "limitations.rst"
ASYNCIO_METHODS = sorted(
    name for name in vars(asyncio.AbstractEventLoop) if not name.startswith("_")
)
MISSING = [name for name in NOT_IMPLEMENTED if name in ASYNCIO_METHODS]


async def call(method: Callable[[], object]) -> object:
    """Call *method*; await what it returns if that is a coroutine."""
    result = method()
    return await result if inspect.iscoroutine(result) else result


def test_no_method_is_asyncio_s_bare_one() -> None:
    inherited = [
        name
        for name in ASYNCIO_METHODS
        if getattr(protoport.Loop, name) is getattr(asyncio.AbstractEventLoop, name)
    ]
    assert inherited == []


@pytest.mark.parametrize("name", MISSING)
async def test_unsupported_method_says_what_and_why(name: str) -> None:
    async with protoport.open_loop() as loop:
        method = getattr(loop, name)
        # A coroutine method of asyncio's raises when awaited, as asyncio's own.
        assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(
            getattr(asyncio.AbstractEventLoop, name)
        )
        with pytest.raises(NotImplementedError) as raised:
            await call(method)
    message = str(raised.value)
    assert message.startswith(f"loop.{name}() is not ")
    # The reason follows the colon.
    assert len(message.partition(": ")[2]) > 20


def test_the_limitations_page_lists_every_unsupported_method() -> None:
    text = LIMITATIONS.read_text("utf-8")
    unlisted = [name for name in NOT_IMPLEMENTED if not re.search(rf"\b{name}\(", text)]
    assert unlisted == []
