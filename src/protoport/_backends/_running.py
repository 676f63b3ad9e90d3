"""Which runtime is running, and which loop (and library) asyncio code sees.

Under Trio, sniffio's thread-local name says ``"trio"`` for the whole run, and it
wins over sniffio's context variable. While a facade's callbacks and tasks run,
the name is switched to ``"asyncio"`` (see :func:`call_as_callback` and the Trio
scheduler), so that AnyIO and other sniffio-dispatching libraries take their
asyncio path there; :func:`current_runtime` still answers for the runtime
underneath, which is what protoport itself needs to know.
"""

from __future__ import annotations

import asyncio
import weakref
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

#: The loops run by Trio: while one of them is asyncio's running loop, sniffio
#: names asyncio although Trio runs.
_trio_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def register_trio_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Record that Trio runs *loop* (see :func:`current_runtime`)."""
    _trio_loops.add(loop)


def current_runtime() -> str:
    """Return ``"trio"`` or ``"asyncio"``; ``RuntimeError`` outside both."""
    if sniffio is not None:
        try:
            name = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            pass
        else:
            if name == "asyncio" and get_running_loop_raw() in _trio_loops:
                return "trio"
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


def call_as_callback(
    loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any
) -> T:
    """Call ``fn(*args)`` from Trio code as a callback of *loop*, which Trio runs:
    with *loop* as asyncio's running loop and sniffio naming asyncio."""
    previous = get_running_loop_raw()
    if previous is loop:
        return fn(*args)
    names = sniffio.thread_local
    library = names.name
    set_running_loop(loop)
    names.name = "asyncio"
    try:
        return fn(*args)
    finally:
        names.name = library
        set_running_loop(previous)


@contextmanager
def trio_named() -> Iterator[None]:
    """Let sniffio name Trio for a moment inside a callback of a loop that Trio
    runs, for protoport's own AnyIO objects made there (they serve Trio tasks)."""
    names = sniffio.thread_local
    library = names.name
    names.name = "trio"
    try:
        yield
    finally:
        names.name = library
