"""Everything that differs between Trio and asyncio, in one place.

The rest of protoport speaks AnyIO; this module answers the few questions AnyIO
does not: which runtime is running, how to make ``asyncio.get_running_loop()``
return a facade under Trio, where a per-run default loop lives, and when a stream
may be written to without a task switch.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import anyio
from anyio.abc import ByteStream, SocketAttribute
from anyio.abc import SocketStream as AnyIOSocketStream

if TYPE_CHECKING:
    from .._loop._loop import Loop

try:
    import sniffio
except ImportError:  # pragma: no cover - sniffio comes with Trio
    sniffio = None  # type: ignore[assignment]

T = TypeVar("T")
P = ParamSpec("P")

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


def call_with_running_loop(
    loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any
) -> T:
    """Call ``fn(*args)`` with *loop* as asyncio's running loop (Trio side)."""
    previous = get_running_loop_raw()
    if previous is loop:
        return fn(*args)
    set_running_loop(loop)
    try:
        return fn(*args)
    finally:
        set_running_loop(previous)


def trio_side(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Make a coroutine function that waits the Trio way awaitable from a task of
    a facade loop too.

    Such a task is stepped as asyncio steps it, so what it awaits must be one of
    the loop's futures: there the call runs in a Trio task of the loop instead, and
    the task awaits its outcome.
    """

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        loop = get_running_loop_raw()
        if getattr(loop, "_trio", False):
            call = functools.partial(fn, *args, **kwargs)
            result: T = await loop._await_in_trio_task(call)  # type: ignore[union-attr]
            return result
        return await fn(*args, **kwargs)

    return call


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


def threadsafe_scheduler(runtime: str) -> Callable[[Callable[[], object]], None]:
    """Return a function that, from any thread, runs a callable soon in this run."""
    if runtime == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()

        def run_sync_soon(fn: Callable[[], object]) -> None:
            token.run_sync_soon(fn)

        return run_sync_soon
    loop = asyncio.get_running_loop()

    def call_soon_threadsafe(fn: Callable[[], object]) -> None:
        loop.call_soon_threadsafe(fn)

    return call_soon_threadsafe


def trio_clock() -> Callable[[], float]:
    """The run's clock, read in one call (``trio.current_time()`` makes three)."""
    import trio

    return trio.lowlevel.current_clock().current_time


def sync_sender(
    stream: ByteStream,
) -> Callable[[bytes | bytearray | memoryview], int] | None:
    """Return the ``send`` of *stream*'s non-blocking socket, to hand bytes straight
    to the kernel (it raises BlockingIOError when the kernel takes none), or None.

    protoport's own socket stream keeps no buffer. AnyIO's socket stream under
    Trio keeps none either, so while no ``send()`` is in progress a non-blocking
    ``socket.send`` writes the same bytes in the same order without a task switch.
    Under asyncio, AnyIO's stream sits on an asyncio transport with a buffer of its
    own, so there is no such shortcut.
    """
    from .._core._socket_stream import SocketStream

    if isinstance(stream, SocketStream):
        return stream._raw_socket.send
    if current_runtime() != "trio" or not isinstance(stream, AnyIOSocketStream):
        return None
    send: Callable[[bytes | bytearray | memoryview], int] = stream.extra(
        SocketAttribute.raw_socket
    ).send
    return send


_asyncio_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Loop] = (
    weakref.WeakKeyDictionary()
)
_trio_default: Any = None


def default_loop(make: Callable[[], Loop]) -> Loop:
    """Return this run's default loop, creating it (and its host task) if needed.

    The host task lives until the run ends: Trio cancels system tasks when the main
    task returns, ``asyncio.run()`` cancels every remaining task.
    """
    global _trio_default
    if current_runtime() == "trio":
        import trio

        if _trio_default is None:
            _trio_default = trio.lowlevel.RunVar("protoport_default_loop")
        try:
            loop: Loop = _trio_default.get()
        except LookupError:
            loop = make()
            loop._running = True
            _trio_default.set(loop)
            trio.lowlevel.spawn_system_task(
                loop._host_until_run_ends, name="protoport default loop"
            )
        return loop
    running = asyncio.get_running_loop()
    loop_or_none = _asyncio_defaults.get(running)
    if loop_or_none is None or loop_or_none.is_closed():
        loop_or_none = make()
        loop_or_none._running = True
        _asyncio_defaults[running] = loop_or_none
        host = running.create_task(loop_or_none._host_until_run_ends())
        _background.add(host)
        host.add_done_callback(_background.discard)
    return loop_or_none


_background: set[asyncio.Task[None]] = set()


class FdIO:
    """Readiness waits on file descriptors, bound once to the running runtime."""

    __slots__ = (
        "checkpoint",
        "closed_errors",
        "notify_closing",
        "wait_readable",
        "wait_writable",
    )

    def __init__(self, runtime: str) -> None:
        if runtime == "trio":
            import trio

            self.wait_readable: Callable[[Any], Awaitable[None]] = (
                trio.lowlevel.wait_readable
            )
            self.wait_writable: Callable[[Any], Awaitable[None]] = (
                trio.lowlevel.wait_writable
            )
            self.notify_closing: Callable[[Any], None] = trio.lowlevel.notify_closing
            self.closed_errors: tuple[type[BaseException], ...] = (
                trio.ClosedResourceError,
            )
            self.checkpoint: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint
        else:
            self.wait_readable = anyio.wait_readable
            self.wait_writable = anyio.wait_writable
            self.notify_closing = anyio.notify_closing
            self.closed_errors = (anyio.ClosedResourceError,)
            self.checkpoint = anyio.lowlevel.checkpoint


_fd_io: dict[str, FdIO] = {}


def fd_io() -> FdIO:
    runtime = current_runtime()
    io = _fd_io.get(runtime)
    if io is None:
        io = _fd_io[runtime] = FdIO(runtime)
    return io


class AsyncioReaders:
    """Readiness callbacks on the running asyncio loop's own selector."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.add_reader = loop.add_reader
        self.remove_reader = loop.remove_reader


def asyncio_readers() -> AsyncioReaders | None:
    """Where socket transports register to be called when readable under asyncio,
    or None when the loop has no way (then each transport reads in a task of its
    own)."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, asyncio.SelectorEventLoop) and not _has_add_reader(loop):
        return None
    return AsyncioReaders(loop)


def _has_add_reader(loop: asyncio.AbstractEventLoop) -> bool:
    # uvloop's loop is not a SelectorEventLoop but has working add_reader().
    return type(loop).__module__.startswith("uvloop")
