"""The worker process: runs scenarios on one implementation.

``python -m protoport.compat._worker SPEC [--timeout SECONDS] [--module NAME]``

It writes one JSON line to its standard output first: ``{"hello": {...}}`` with
the implementation's name, label, features and version, or with
``"unavailable": reason``. Then it reads scenario ids from its standard input,
one per line, runs each, and answers each with one JSON line:
``{"id": ..., "status": ..., "reason": ..., "trace": [...], "duration": ...}``.
Anything else the scenarios or the loops print goes to the standard error.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import Any, TextIO

from ._execute import FAIL, Outcome, run_scenario
from ._implementations import NotInstalled, load_implementation
from ._registry import get_scenario, load_scenarios


def _protocol_channel() -> TextIO:
    """A private copy of the standard output for the JSON lines; the real
    standard output (file descriptor 1) then goes to the standard error, so that
    stray prints cannot break the protocol."""
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    return channel


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, ensure_ascii=False) + "\n")
    channel.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protoport.compat._worker")
    parser.add_argument("spec")
    parser.add_argument("--timeout", type=float, default=8.0)
    parser.add_argument("--module", action="append", default=[])
    args = parser.parse_args(argv)
    channel = _protocol_channel()

    try:
        implementation = load_implementation(args.spec)
    except NotInstalled as exc:
        _send(channel, {"hello": {"name": args.spec, "unavailable": str(exc)}})
        return 0
    load_scenarios(args.module)
    _send(
        channel,
        {
            "hello": {
                "name": implementation.name,
                "label": implementation.label,
                "features": sorted(implementation.features),
                "version": implementation.version,
                "reference": implementation.reference,
                "protoport": implementation.protoport,
            }
        },
    )
    for line in sys.stdin:
        scenario_id = line.strip()
        if not scenario_id:
            continue
        try:
            scenario = get_scenario(scenario_id)
        except KeyError:
            outcome = Outcome(FAIL, f"no scenario {scenario_id!r} in the worker")
        else:
            outcome = run_scenario(implementation, scenario, timeout=args.timeout)
            # What the scenario left behind goes now, so that a crash while
            # collecting it is not blamed on the next scenario.
            gc.collect()
        _send(
            channel,
            {
                "id": scenario_id,
                **outcome.to_json(),
                "trace": outcome.trace,
                "duration": round(outcome.duration, 4),
            },
        )
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Do not wait for stray worker threads (a peer blocked on a socket).
    os._exit(code)
