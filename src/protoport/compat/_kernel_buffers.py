"""The kernel's buffers of a connected socket: filling the send buffer, so that
what a transport writes next stays in the transport's own buffer, and counting the
bytes waiting in the receive buffer."""

from __future__ import annotations

import array
import os
import socket

#: The send buffer given to a local socket whose kernel buffer is filled.
SMALL_SNDBUF = 4096


def fill_send_buffer(fd: int) -> int:
    """Write to the non-blocking socket *fd* until it takes no single byte more."""
    total = 0
    size = 65536
    os.set_blocking(fd, False)
    while size:
        try:
            total += os.write(fd, b"\xee" * size)
        except (BlockingIOError, InterruptedError):
            size //= 2
    return total


def unread_bytes(sock: socket.socket) -> int:
    """Bytes waiting in *sock*'s receive buffer (not yet received); POSIX only."""
    # Imported on first use, not with the module: fcntl and termios do not exist
    # on Windows, where the suite (and the ``protoport`` command) must still load.
    import fcntl
    import termios

    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    return int(buf[0])
