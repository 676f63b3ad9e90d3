"""Running one scenario on one implementation, in this process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ._env import Env
from ._failures import ScenarioFailure, Unsupported, describe, one_line
from ._implementations import Implementation
from ._registry import Scenario

PASS = "pass"
FAIL = "fail"
UNSUPPORTED = "unsupported"

#: The longest trace kept in an outcome (lines).
TRACE_LIMIT = 80


@dataclass
class Outcome:
    """The result of one scenario on one implementation."""

    status: str
    reason: str = ""
    #: what happened (for failures: shown by ``protoport matrix -v``)
    trace: list[str] = field(default_factory=list)
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        if self.reason:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            status=str(data["status"]),
            reason=str(data.get("reason", "")),
            trace=[str(line) for line in data.get("trace", [])],
            duration=float(data.get("duration", 0.0)),
        )


def _trimmed(trace: list[str]) -> list[str]:
    if len(trace) <= TRACE_LIMIT:
        return list(trace)
    half = TRACE_LIMIT // 2
    return [*trace[:half], f"… {len(trace) - TRACE_LIMIT} lines …", *trace[-half:]]


async def _body(
    env: Env, func: Callable[[Env], Awaitable[None]], box: list[Outcome]
) -> None:
    try:
        await func(env)
    except ScenarioFailure as exc:
        box.append(Outcome(FAIL, exc.reason))
    except Unsupported as exc:
        box.append(Outcome(UNSUPPORTED, exc.reason))
    except NotImplementedError as exc:
        box.append(Outcome(UNSUPPORTED, describe(exc)))
    except Exception as exc:
        box.append(Outcome(FAIL, f"raised {describe(exc)}"))
    except BaseException as exc:
        if env._timed_out:
            box.append(Outcome(FAIL, "timed out"))
        else:
            box.append(Outcome(FAIL, f"interrupted by {describe(exc)}"))
        raise
    else:
        box.append(Outcome(PASS))
    finally:
        env._cleanup()


def make_main(
    func: Callable[[Env], Awaitable[None]],
    box: list[Outcome],
    *,
    implementation: str = "",
    features: frozenset[str] = frozenset(),
    timeout: float = 8.0,
    env_box: list[Env] | None = None,
    streams: Any = asyncio,
) -> Callable[[asyncio.AbstractEventLoop], Awaitable[None]]:
    """Return the ``main(loop)`` an implementation's runner runs: it makes the
    :class:`Env`, runs *func* as a task of the loop with a soft timeout, and puts
    the :class:`Outcome` into *box*. *streams* becomes :attr:`Env.streams` (the
    implementation's ``streams``)."""

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        env = Env(loop, implementation, features, streams=streams)
        if env_box is not None:
            env_box.append(env)
        task = loop.create_task(_body(env, func, box))

        def on_timeout() -> None:
            env._timed_out = True
            task.cancel()

        timer = loop.call_later(timeout, on_timeout)
        try:
            await task
        except asyncio.CancelledError:
            pass
        finally:
            timer.cancel()
        if not box:  # cancelled before it started
            box.append(Outcome(FAIL, "timed out" if env._timed_out else "cancelled"))
        box[-1].trace = _trimmed(env.trace)

    return main


def run_scenario(
    implementation: Implementation, scenario: Scenario, *, timeout: float = 8.0
) -> Outcome:
    """Run *scenario* on *implementation* here; never raises (a crash of the
    runner is a failed outcome)."""
    missing = sorted(scenario.requires - implementation.features)
    if missing:
        return Outcome(UNSUPPORTED, f"needs {', '.join(missing)}")
    if scenario.since is not None and implementation.api_version < scenario.since:
        return Outcome(
            UNSUPPORTED,
            "needs the asyncio {}.{} API (this is {}.{})".format(
                *scenario.since, *implementation.api_version
            ),
        )
    box: list[Outcome] = []
    main = make_main(
        scenario.func,
        box,
        implementation=implementation.name,
        features=implementation.features,
        timeout=timeout,
        streams=implementation.streams,
    )
    started = time.monotonic()
    try:
        implementation.run(main)
    except Exception as exc:
        outcome = Outcome(FAIL, f"the event loop raised {describe(exc)}")
        if box:
            outcome.trace = box[-1].trace
    else:
        outcome = box[-1] if box else Outcome(FAIL, "the scenario never ran")
    outcome.duration = time.monotonic() - started
    outcome.reason = one_line(outcome.reason)
    return outcome
