"""The loop's pipe methods: ``connect_read_pipe()`` and ``connect_write_pipe()``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from .._core._host import Host
from .._transports._pipe import ReadPipeTransport, WritePipeTransport

_P = TypeVar("_P", bound=asyncio.BaseProtocol)


def _check_open(host: Host) -> None:
    if host.loop.is_closed():
        raise RuntimeError("Event loop is closed")


def connect_read_pipe(
    host: Host, protocol_factory: Callable[[], _P], pipe: Any
) -> tuple[ReadPipeTransport, _P]:
    """Read *pipe* into a new protocol; return once ``connection_made()`` ran.

    As asyncio, the protocol is made before *pipe* is checked.
    """
    _check_open(host)
    protocol = host.invoke(protocol_factory)
    transport = ReadPipeTransport(host, pipe, protocol)
    transport.start()
    return transport, protocol


def connect_write_pipe(
    host: Host, protocol_factory: Callable[[], _P], pipe: Any
) -> tuple[WritePipeTransport, _P]:
    """Write to *pipe* from a new protocol; return once ``connection_made()``
    ran.

    As asyncio, the protocol is made before *pipe* is checked.
    """
    _check_open(host)
    protocol = host.invoke(protocol_factory)
    transport = WritePipeTransport(host, pipe, protocol)
    transport.start()
    return transport, protocol
