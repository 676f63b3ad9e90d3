"""What the implementations log while a scenario runs, collected for the
scenario (:meth:`Env.warnings`) and for the trace of a failure."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._failures import one_line

if TYPE_CHECKING:
    from ._env import Env


class LogCapture(logging.Handler):
    """Adds the records it handles to :attr:`Env.logs`, and warnings and errors to
    :attr:`Env.trace` too."""

    def __init__(self, env: Env) -> None:
        super().__init__(logging.DEBUG)
        self.env = env

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - a broken log call
            message = str(record.msg)
        self.env.logs.append((record.name, record.levelno, message))
        if record.levelno >= logging.WARNING:
            first = message.splitlines()[0] if message else ""
            self.env.trace.append(f"log {record.levelname}: {one_line(first, 100)}")


#: The loggers whose records :attr:`Env.logs` collects.
CAPTURED_LOGGERS = ("asyncio", "protoport", "trio_asyncio", "uvloop")
