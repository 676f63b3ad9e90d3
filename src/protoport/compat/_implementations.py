"""The implementations the suite runs against, and how to add one.

An implementation is reached through a *factory*: ``protoport matrix --impl
module:factory`` imports ``module``, calls ``factory()``, and uses what it
returns, a *runner*: either a callable ``runner(main)`` or an object with a
``run(main)`` method. The runner must, in a fresh event loop, run
``await main(loop)`` to completion, where ``loop`` is the object the scenarios
will use as the event loop, and return None (exceptions from ``main`` are
internal errors; scenario failures never escape it). ``main`` runs each scenario
as ``loop.create_task(...)`` and awaits it, so any loop whose tasks can await
its own futures works.

Optional attributes of the runner: ``name`` (the column's key, default the
``module:factory`` text), ``label`` (the column's title, default the name),
``features`` (an iterable of :data:`~protoport.compat.FEATURES`; default all),
``version`` (text shown in the terminal), ``streams`` (the module-like object
whose ``open_connection``, ``start_server``, ``StreamReader``… the stream
scenarios use; default the :mod:`asyncio` module), ``api_version`` (the asyncio
version whose API the implementation offers, e.g. ``(3, 13)``; default the
running Python's). If the factory raises :class:`ImportError`, the
implementation is shown as not installed.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import protoport

from ._registry import FEATURES

Main = Callable[[asyncio.AbstractEventLoop], Awaitable[None]]
Runner = Callable[[Main], None]

#: The features of every built-in implementation (protoport adds its own list).
_ALL = FEATURES

#: The asyncio version whose API protoport offers, on every Python version
#: (``Server.close_clients()``, ``readuntil()`` with a tuple of separators…).
PROTOPORT_API_VERSION = (3, 13)


def running_api_version() -> tuple[int, int]:
    """The asyncio version of the running Python, e.g. ``(3, 13)``."""
    return (sys.version_info[0], sys.version_info[1])


@dataclass
class Implementation:
    """One column of the matrix."""

    #: key in matrix.json, e.g. ``"uvloop"``
    name: str
    #: column title, e.g. ``"asyncio + uvloop"``
    label: str
    #: runs ``main(loop)`` in a fresh event loop; see the module's docstring
    run: Runner
    features: frozenset[str] = field(default_factory=lambda: _ALL)
    #: whether this is the reference (native asyncio)
    reference: bool = False
    #: whether this column is protoport's (checked against the documented
    #: deviations)
    protoport: bool = False
    version: str = ""
    #: the stream functions and classes the scenarios use (``open_connection``,
    #: ``start_server``, ``open_unix_connection``, ``start_unix_server``,
    #: ``StreamReader``, ``StreamWriter``, ``StreamReaderProtocol``): the
    #: :mod:`asyncio` module for asyncio's loops, :mod:`protoport` for protoport
    streams: Any = asyncio
    #: the asyncio version whose API the implementation offers: scenarios
    #: declaring a newer ``since=`` are unsupported ("—") on it
    api_version: tuple[int, int] = field(default_factory=running_api_version)


class NotInstalled(Exception):
    """The implementation's packages are missing: every row shows "—"."""


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def run_asyncio(
    main: Main, loop_factory: Callable[[], asyncio.AbstractEventLoop]
) -> None:
    """What ``asyncio.run(main(loop), loop_factory=...)`` does, on Python 3.10 too."""

    async def outer() -> None:
        await main(asyncio.get_running_loop())

    loop = loop_factory()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(outer())
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _native() -> Implementation:
    def run(main: Main) -> None:
        run_asyncio(main, asyncio.SelectorEventLoop)

    return Implementation(
        name="asyncio",
        label="asyncio",
        run=run,
        reference=True,
        version="Python {}.{}.{}".format(*sys.version_info[:3]),
    )


def _uvloop() -> Implementation:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise NotInstalled("uvloop is not installed") from None

    def run(main: Main) -> None:
        run_asyncio(main, uvloop.new_event_loop)

    return Implementation(
        name="uvloop",
        label="uvloop",
        run=run,
        version=_package_version("uvloop"),
    )


def _trio_asyncio() -> Implementation:
    try:
        import trio
        import trio_asyncio  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise NotInstalled("trio-asyncio is not installed") from None

    def run(main: Main) -> None:
        async def trio_main() -> None:
            async with trio_asyncio.open_loop() as loop:
                await loop.run_aio_coroutine(main(loop))

        trio.run(trio_main)

    return Implementation(
        name="trio-asyncio",
        label="trio-asyncio",
        run=run,
        version=_package_version("trio-asyncio"),
    )


def _protoport_features() -> frozenset[str]:
    """What protoport's facade implements now (it grows over time): the loop
    methods :class:`protoport.Loop` overrides, and whether the package offers the
    stream functions."""
    overridden = {
        name
        for name in dir(protoport.Loop)
        if getattr(protoport.Loop, name)
        is not getattr(asyncio.AbstractEventLoop, name, None)
    }
    features = {"tcp", "unix", "buffered"}
    if {"create_datagram_endpoint"} <= overridden:
        features.add("datagram")
    if {"connect_read_pipe", "connect_write_pipe"} <= overridden:
        features.add("pipes")
    if {"subprocess_exec", "subprocess_shell"} <= overridden:
        features.add("subprocess")
    if "start_tls" in overridden:
        features.add("tls")
    if hasattr(protoport, "open_connection"):
        features.add("streams")
    return frozenset(features)


def _protoport(runtime: str) -> Implementation:
    if runtime == "trio":
        try:
            import trio
        except ImportError:
            raise NotInstalled("trio is not installed") from None

        def run(main: Main) -> None:
            async def trio_main() -> None:
                async with protoport.open_loop() as loop:
                    await main(loop)

            trio.run(trio_main)

        label = "protoport (Trio)"
    else:

        def run(main: Main) -> None:
            async def asyncio_main(_: asyncio.AbstractEventLoop) -> None:
                async with protoport.open_loop() as loop:
                    await main(loop)

            run_asyncio(asyncio_main, asyncio.SelectorEventLoop)

        label = "protoport (asyncio)"
    return Implementation(
        name=f"protoport-{runtime}",
        label=label,
        run=run,
        features=_protoport_features(),
        protoport=True,
        version=protoport.__version__,
        streams=protoport,
        api_version=PROTOPORT_API_VERSION,
    )


#: The built-in implementations, in column order: the reference first.
BUILTIN: dict[str, Callable[[], Implementation]] = {
    "asyncio": _native,
    "uvloop": _uvloop,
    "trio-asyncio": _trio_asyncio,
    "protoport-trio": lambda: _protoport("trio"),
    "protoport-asyncio": lambda: _protoport("asyncio"),
}

#: Column titles of the built-in implementations (known without importing them).
BUILTIN_LABELS: dict[str, str] = {
    "asyncio": "asyncio",
    "uvloop": "uvloop",
    "trio-asyncio": "trio-asyncio",
    "protoport-trio": "protoport (Trio)",
    "protoport-asyncio": "protoport (asyncio)",
}


def is_protoport(name: str) -> bool:
    """Whether the column *name* is one of protoport's."""
    return name.startswith("protoport-")


def _from_runner(spec: str, runner: Any) -> Implementation:
    run = getattr(runner, "run", None)
    if run is None:
        if not callable(runner):
            raise TypeError(
                f"{spec}: the factory must return a callable or an object with a "
                f"run() method, not {type(runner).__name__}"
            )
        run = runner
    name = str(getattr(runner, "name", spec))
    features: Iterable[str] = getattr(runner, "features", FEATURES)
    api_version = getattr(runner, "api_version", None)
    return Implementation(
        name=name,
        label=str(getattr(runner, "label", name)),
        run=run,
        features=frozenset(features),
        version=str(getattr(runner, "version", "")),
        streams=getattr(runner, "streams", asyncio),
        api_version=(
            running_api_version()
            if api_version is None
            else (int(api_version[0]), int(api_version[1]))
        ),
    )


def load_implementation(spec: str) -> Implementation:
    """Return the built-in implementation *spec*, or make one from a
    ``module:factory`` spec.

    :raises NotInstalled: when its packages are missing
    """
    builtin = BUILTIN.get(spec)
    if builtin is not None:
        return builtin()
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"unknown implementation {spec!r}: give one of {', '.join(BUILTIN)} "
            "or module:factory"
        )
    try:
        module = importlib.import_module(module_name)
        factory: Any = module
        for part in attr.split("."):
            factory = getattr(factory, part)
        return _from_runner(spec, factory())
    except ImportError as exc:
        raise NotInstalled(f"{spec}: {exc}") from exc
