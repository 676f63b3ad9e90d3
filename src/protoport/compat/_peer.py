"""The deterministic other end of a connection: :class:`Peer`."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._failures import Unsupported, fail
from ._kernel_buffers import unread_bytes
from ._timing import PEER_TIMEOUT, SETTLE_TIME

if TYPE_CHECKING:
    from ._env import Env

T = TypeVar("T")


class Peer:
    """The other end of a connection: a blocking socket driven step by step.

    Every method runs its socket calls in a worker thread through
    ``loop.run_in_executor()``, with a timeout, so a byte that never comes fails
    the scenario after :data:`PEER_TIMEOUT` seconds instead of hanging it. Bytes
    that the environment wrote to fill the kernel buffers are skipped: the methods
    return and record only what the transport sent.
    """

    def __init__(self, env: Env, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(PEER_TIMEOUT)
        self.env = env
        self.sock = sock
        #: every byte the transport sent that the peer has received
        self.received = bytearray()
        #: True once the peer read the end of the stream
        self.eof = False
        #: True once a receive failed with ECONNRESET
        self.reset = False
        self._raw = 0
        self._fillers: list[tuple[int, int]] = []

    def _add_filler(self, offset: int, length: int) -> None:
        self._fillers.append((offset, length))

    def _payload(self, chunk: bytes) -> bytes:
        start = self._raw
        self._raw += len(chunk)
        if not self._fillers:
            return chunk
        keep = bytearray()
        position = start
        view = memoryview(chunk)
        while view:
            skip = 0
            for offset, length in self._fillers:
                if offset <= position < offset + length:
                    skip = min(len(view), offset + length - position)
                    break
            if skip:
                view = view[skip:]
                position += skip
                continue
            take = len(view)
            for offset, _ in self._fillers:
                if position < offset < position + take:
                    take = offset - position
            keep += view[:take]
            view = view[take:]
            position += take
        return bytes(keep)

    def _raw_budget(self, payload: int) -> int:
        """How many raw bytes, from the current position, hold the next *payload*
        payload bytes (the filler among them included)."""
        position = self._raw
        left = payload
        while left > 0:
            filler_end = next(
                (
                    offset + length
                    for offset, length in self._fillers
                    if offset <= position < offset + length
                ),
                None,
            )
            if filler_end is not None:
                position = filler_end
                continue
            next_filler = min(
                (offset for offset, _ in self._fillers if offset > position),
                default=None,
            )
            step = left if next_filler is None else min(left, next_filler - position)
            position += step
            left -= step
        return position - self._raw

    def _recv_some(self, timeout: float, limit: int = 65536) -> bytes | None:
        """One receive (thread side) of at most *limit* payload bytes: the payload
        bytes (possibly empty when only filler came, or at EOF: see :attr:`eof`),
        or None on timeout."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(max(1, min(65536, self._raw_budget(limit))))
        except TimeoutError:
            return None
        except ConnectionResetError:
            self.reset = True
            self.eof = True
            return b""
        finally:
            self.sock.settimeout(PEER_TIMEOUT)
        if not chunk:
            self.eof = True
            return b""
        payload = self._payload(chunk)
        self.received += payload
        return payload

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread."""
        return await self.env.loop.run_in_executor(None, fn, *args)

    async def send(self, data: bytes) -> None:
        """Send all of *data*."""
        self.env.mark(f"peer sends {len(data)} bytes")
        await self.run(self.sock.sendall, data)

    async def recv_exactly(self, nbytes: int) -> bytes:
        """Receive exactly *nbytes* payload bytes; fail at EOF or on timeout."""

        def work() -> bytes:
            got = bytearray()
            while len(got) < nbytes:
                if self.eof:
                    how = "reset" if self.reset else "closed"
                    fail(f"peer: connection {how} after {len(got)} of {nbytes} bytes")
                payload = self._recv_some(PEER_TIMEOUT, nbytes - len(got))
                if payload is None:
                    fail(f"peer: timed out after {len(got)} of {nbytes} bytes")
                got += payload
            return bytes(got)

        data = await self.run(work)
        self.env.mark(f"peer received {len(data)} bytes")
        return data

    async def recv_until_eof(self, timeout: float = PEER_TIMEOUT) -> bytes:
        """Receive payload bytes until the end of the stream (or a reset: see
        :attr:`reset`); fail if nothing comes for *timeout* seconds."""

        def work() -> bytes:
            got = bytearray()
            while not self.eof:
                payload = self._recv_some(timeout)
                if payload is None:
                    fail(
                        f"peer: no end of stream after {len(got)} bytes "
                        f"within {timeout:g} s"
                    )
                got += payload
            return bytes(got)

        data = await self.run(work)
        self.env.mark(
            f"peer received {len(data)} bytes, then "
            + ("a reset" if self.reset else "the end of the stream")
        )
        return data

    async def recv_for(self, duration: float = SETTLE_TIME) -> bytes:
        """Receive whatever comes within *duration* seconds (payload bytes; may
        be empty); stops early at the end of the stream."""

        def work() -> bytes:
            got = bytearray()
            deadline = time.monotonic() + duration
            while not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                payload = self._recv_some(left)
                if payload is None:
                    break
                got += payload
            return bytes(got)

        return await self.run(work)

    def pending(self) -> int:
        """Bytes waiting in the peer's receive queue (not yet received); POSIX
        only."""
        return unread_bytes(self.sock)

    async def shutdown_write(self) -> None:
        """Half-close: send the end of the stream, keep receiving."""
        self.env.mark("peer shuts down writing")
        await self.run(self.sock.shutdown, socket.SHUT_WR)

    async def close(self) -> None:
        """Close the peer socket."""
        self.env.mark("peer closes")
        self.sock.close()

    async def reset_connection(self) -> None:
        """Close with ``SO_LINGER`` 0: a TCP reset (TCP connections only)."""
        if self.sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise Unsupported("a reset needs a TCP connection")
        self.env.mark("peer resets the connection")
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.sock.close()

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
