"""The loop's subprocess methods: ``subprocess_exec()`` and ``subprocess_shell()``."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from .._core._host import Host
from .._transports._subprocess import SubprocessTransport

_P = TypeVar("_P", bound=asyncio.BaseProtocol)


def check_common_arguments(
    universal_newlines: bool,
    bufsize: int,
    text: bool | None,
    encoding: str | None,
    errors: str | None,
) -> None:
    """Raise asyncio's ``ValueError`` for what would make the pipes text or
    buffered: the transports carry bytes as the child writes them."""
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


async def start_subprocess(
    host: Host,
    protocol_factory: Callable[[], _P],
    args: Any,
    *,
    shell: bool,
    stdin: Any,
    stdout: Any,
    stderr: Any,
    kwargs: dict[str, Any],
) -> tuple[SubprocessTransport, _P]:
    """Make the protocol, start the child and its transport; return once
    ``connection_made()`` ran. The child is started before any callback, so a
    program that cannot be run raises (e.g. ``FileNotFoundError``) with no
    callback made.

    As asyncio's, the call returns on a later round of the loop, and a call
    cancelled by then kills the child, closes its pipes and waits until it is
    reaped before it ends with the cancellation.
    """
    if host.loop.is_closed():
        raise RuntimeError("Event loop is closed")
    # A call cancelled before it started (e.g. under Trio, before the task that
    # runs it had its turn) starts no child.
    await anyio.lowlevel.checkpoint_if_cancelled()
    protocol = host.invoke(protocol_factory)
    popen = subprocess.Popen(
        args,
        shell=shell,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        universal_newlines=False,
        bufsize=0,
        **kwargs,
    )
    try:
        transport = SubprocessTransport(host, protocol, popen)
    except BaseException:
        popen.kill()
        popen.wait()
        for pipe in (popen.stdin, popen.stdout, popen.stderr):
            if pipe is not None:
                pipe.close()
        raise
    transport.start()
    try:
        await anyio.lowlevel.checkpoint()
    except BaseException:
        await discard_subprocess((transport, protocol))
        raise
    return transport, protocol


def runs_in_a_loop_task(*args: Any, **kwargs: Any) -> bool:
    """Always: a subprocess call waits for nothing but a round of the loop and the
    loop's futures, which a task of the loop awaits as it is (AnyIO's calls
    included, on its asyncio side there)."""
    return True


async def discard_subprocess(made: tuple[SubprocessTransport, Any]) -> None:
    """Undo a subprocess call whose caller was cancelled, as asyncio does: close
    the transport (which kills the child) and wait until the child is reaped."""
    transport = made[0]
    transport.close()
    with anyio.CancelScope(shield=True):
        await transport.wait_exited()
