"""A set of connections that someone waits to see gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio


class ConnectionSet:
    """The transports of one owner (a server's accepted connections).

    A transport adds itself when it starts and discards itself once its
    ``connection_lost()`` has run; :meth:`wait_empty` returns when none is left.
    """

    def __init__(self) -> None:
        self._members: set[Any] = set()
        self._emptied: anyio.Event | None = None

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Any]:
        # A copy: closing a member may discard it while the caller iterates.
        return iter(list(self._members))

    def add(self, member: Any) -> None:
        self._members.add(member)

    def discard(self, member: Any) -> None:
        self._members.discard(member)
        if not self._members and self._emptied is not None:
            self._emptied.set()
            self._emptied = None

    async def wait_empty(self) -> None:
        """Return once the set is empty (at once if it is)."""
        while self._members:
            if self._emptied is None:
                self._emptied = anyio.Event()
            await self._emptied.wait()
