"""How a callback that raised is reported, in asyncio's words."""

from __future__ import annotations

import asyncio
from asyncio import format_helpers
from collections.abc import Callable
from contextvars import Context
from typing import Any


def failed_callback_context(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[..., object],
    args: tuple[Any, ...],
    exc: BaseException,
    context: Context | None = None,
) -> dict[str, Any]:
    """The exception handler's context for ``callback(*args)`` having raised
    *exc*, as :class:`asyncio.Handle` reports it: ``Exception in callback ...``
    with a handle of the call. Made only on failure, so that a call that
    succeeds costs no handle."""
    source = format_helpers._format_callback_source(callback, args)
    return {
        "message": f"Exception in callback {source}",
        "exception": exc,
        "handle": asyncio.Handle(callback, args, loop, context),
    }
