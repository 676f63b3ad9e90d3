"""Reporting of errors that have no caller to raise to, in asyncio's format."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("protoport")


def log_exception_context(context: dict[str, Any]) -> None:
    """Log an exception-handler *context* the way asyncio's default handler does:
    the message, then one ``key: repr(value)`` line per other key, sorted, with the
    exception's traceback attached.
    """
    message = context.get("message") or "Unhandled exception in event loop"
    exception = context.get("exception")
    exc_info: Any = (
        (type(exception), exception, exception.__traceback__)
        if isinstance(exception, BaseException)
        else False
    )
    lines = [message]
    lines.extend(
        f"{key}: {context[key]!r}"
        for key in sorted(context)
        if key not in {"message", "exception"}
    )
    logger.error("\n".join(lines), exc_info=exc_info)
