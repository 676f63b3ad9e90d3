"""Socket set-up shared by servers and datagram endpoints, as asyncio does it."""

from __future__ import annotations

import os
import socket
import stat

from .._core._errors import logger


def set_reuse_port(sock: socket.socket) -> None:
    """Set ``SO_REUSEPORT``, or raise asyncio's ``ValueError`` where it is
    missing."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, "
            "SO_REUSEPORT defined but not implemented."
        ) from None


def remove_stale_socket_file(path: str | bytes) -> None:
    """Remove the Unix socket file at *path*, left by an earlier socket; any
    other kind of file stays, and an error other than its absence is logged."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        # The directory may let us create the socket but not look at it.
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, exc)
