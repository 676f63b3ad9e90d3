"""A flag that one side sets and either side may wait for."""

from __future__ import annotations

import anyio
import anyio.lowlevel


class Flag:
    """An event that asyncio code (a callback of the loop) or Trio code sets, and
    either waits for.

    An :class:`anyio.Event` belongs to the library sniffio names where it is
    made, which is asyncio in the loop's callbacks under Trio too: this one makes
    its event where it is first waited for, so a Trio task can wait for a flag
    made in a callback.
    """

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: anyio.Event | None = None

    def set(self) -> None:
        self._set = True
        if self._event is not None:
            self._event.set()

    def clear(self) -> None:
        self._set = False
        self._event = None

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        """Return once the flag is set (at once, after a checkpoint, if it is)."""
        if self._set:
            await anyio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()
