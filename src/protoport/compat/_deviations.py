"""protoport's documented deviations: the one place that lists them.

A protoport row of the matrix must pass unless its scenario is listed here, with
the reason; ``protoport matrix --check`` fails on any other protoport failure, and
on an entry whose scenario now passes (so that this list stays true). The list is
shown in the documentation (the "Compatibility matrix" page).

Keys are scenario ids (both protoport columns) or ``"<id>@<column>"`` (one of
``protoport-trio``, ``protoport-asyncio``).
"""

from __future__ import annotations

DEVIATIONS: dict[str, str] = {
    "flow.pause_at_high": (
        "protoport pauses where CPython does, when the buffer becomes strictly "
        "greater than high (ported code is tuned against CPython); the "
        "documentation says greater than or equal"
    ),
}


def deviation_for(scenario_id: str, implementation: str) -> str | None:
    """The documented reason why *implementation* fails *scenario_id*, if any."""
    return DEVIATIONS.get(f"{scenario_id}@{implementation}") or DEVIATIONS.get(
        scenario_id
    )
