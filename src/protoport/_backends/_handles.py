"""Running a loop's handles."""

from __future__ import annotations

import asyncio


def run_handle(handle: asyncio.Handle) -> None:
    """Run *handle* unless it was cancelled meanwhile (asyncio's loops skip a
    cancelled handle when its turn comes); a failing callback is reported to the
    handle's loop, as ``Handle._run()`` reports it."""
    if not handle.cancelled():
        handle._run()
