"""How a scenario reports what it found: one-line reasons, and the exceptions that
carry them (a failure, or an implementation lacking what the scenario needs)."""

from __future__ import annotations

import re
from typing import NoReturn

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int = 200) -> str:
    """*text* on one line, without memory addresses, at most *limit* characters."""
    text = _SPACES.sub(" ", _ADDRESS.sub("0x…", text)).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def describe(exc: BaseException | None) -> str:
    """``"TypeName: message"`` (or just the type name) for *exc*; ``"None"``."""
    if exc is None:
        return "None"
    message = str(exc)
    name = type(exc).__name__
    return one_line(f"{name}: {message}" if message else name)


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)``, shortened in the middle when long."""
    text = one_line(repr(value), limit=10_000)
    if len(text) > limit:
        keep = (limit - 1) // 2
        text = text[:keep] + "…" + text[-keep:]
    return text


class ScenarioFailure(Exception):
    """The behaviour checked by a scenario did not happen; the message is the
    one-line reason shown in the matrix."""

    def __init__(self, reason: str) -> None:
        super().__init__(one_line(reason))

    @property
    def reason(self) -> str:
        return str(self.args[0])


class Unsupported(Exception):
    """The implementation does not offer what the scenario needs: the row shows
    "—" with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(one_line(reason))

    @property
    def reason(self) -> str:
        return str(self.args[0])


def fail(reason: str) -> NoReturn:
    """Fail the scenario with a one-line *reason*."""
    raise ScenarioFailure(reason)
