"""What :meth:`Env.connect` and :meth:`Env.open_stream` return: the loop's end
of a connection together with its :class:`~protoport.compat.Peer`."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from ._failures import Unsupported, fail
from ._kernel_buffers import fill_send_buffer
from ._peer import Peer

if TYPE_CHECKING:
    from ._env import Env


class Connection:
    """A transport and protocol made by the loop under test, with the peer at the
    other end. Returned by :meth:`Env.connect`."""

    def __init__(
        self, env: Env, transport: Any, protocol: Any, peer: Peer, fd: int
    ) -> None:
        self.env = env
        self.transport = transport
        self.protocol = protocol
        self.peer = peer
        self._fd = fd
        #: the bytes accepted by :meth:`write` (the scenario's own count)
        self.filled = 0

    def fill_kernel_buffer(self) -> int:
        """Fill the kernel's send buffer of the transport's socket, so that the
        transport's next writes stay in its own buffer until the peer reads.

        The filler bytes never show up in what the peer receives. Only for Unix
        sockets, and only while the transport's buffer is empty (else the filler
        would land between buffered bytes). Returns the number of filler bytes.
        """
        transport = self.transport
        if transport.is_closing():
            fail("fill_kernel_buffer() needs an open transport")
        if transport.get_write_buffer_size():
            fail("fill_kernel_buffer() needs an empty write buffer")
        if self.peer.sock.family != socket.AF_UNIX:
            raise Unsupported("refilling the kernel buffer needs a Unix socket")
        offset = self.peer._raw + self.peer.pending()
        count = fill_send_buffer(self._fd)
        self.peer._add_filler(offset, count)
        self.filled += count
        return count


class StreamConnection(Connection):
    """A ``(reader, writer)`` pair made by the implementation's
    ``open_connection()``, with the peer at the other end. Returned by
    :meth:`Env.open_stream`; :attr:`transport` is ``writer.transport``."""

    def __init__(self, env: Env, reader: Any, writer: Any, peer: Peer, fd: int) -> None:
        super().__init__(
            env, writer.transport, getattr(writer, "_protocol", None), peer, fd
        )
        self.reader = reader
        self.writer = writer
