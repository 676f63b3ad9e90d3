"""Which runtime is running, and which loop asyncio sees as running."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

try:
    import sniffio
except ImportError:  # pragma: no cover - sniffio comes with AnyIO's Trio support
    sniffio = None  # type: ignore[assignment]

T = TypeVar("T")

get_running_loop_raw = asyncio._get_running_loop
set_running_loop = asyncio._set_running_loop


def current_runtime() -> str:
    """Return ``"trio"`` or ``"asyncio"``; ``RuntimeError`` outside both."""
    if sniffio is not None:
        try:
            name = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            pass
        else:
            if name in ("trio", "asyncio"):
                return name
            raise RuntimeError(f"protoport does not run on {name!r}")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError("no running event loop") from None
    return "asyncio"


@contextmanager
def declared_asyncio() -> Iterator[None]:
    """Tell sniffio, and so AnyIO, that asyncio runs: in a callback of the loop,
    outside any task, it cannot tell unless the program declared it."""
    cvar = None if sniffio is None else sniffio.current_async_library_cvar
    token = None if cvar is None else cvar.set("asyncio")
    try:
        yield
    finally:
        if cvar is not None and token is not None:
            cvar.reset(token)


def call_with_running_loop(
    loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any
) -> T:
    """Call ``fn(*args)`` with *loop* as asyncio's running loop."""
    previous = get_running_loop_raw()
    if previous is loop:
        return fn(*args)
    set_running_loop(loop)
    try:
        return fn(*args)
    finally:
        set_running_loop(previous)
