"""The scenario registry: the ``@scenario`` decorator and the ordered list of
registered scenarios."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .sections import SECTIONS

if TYPE_CHECKING:
    from ._env import Env

ScenarioFunc = Callable[["Env"], Awaitable[None]]
F = TypeVar("F", bound=ScenarioFunc)

#: Features a scenario may require. An implementation lists the ones it has;
#: scenarios needing one it lacks show "—" (unsupported) in its column.
FEATURES: frozenset[str] = frozenset(
    {
        "tcp",  # IPv4 loopback TCP connections
        "unix",  # Unix domain stream sockets
        "buffered",  # asyncio.BufferedProtocol on stream transports
        "tls",  # ssl= on connections and servers, start_tls
        "datagram",  # create_datagram_endpoint
        "pipes",  # connect_read_pipe, connect_write_pipe
        "subprocess",  # subprocess_exec, subprocess_shell
        "streams",  # asyncio's stream functions on this loop
    }
)


@dataclass(frozen=True)
class Scenario:
    """One documented behaviour, checked by an ``async def`` taking an
    :class:`~protoport.compat.Env`."""

    #: ``"<module>.<function>"``, e.g. ``"write.write_sends_bytes"``
    id: str
    #: a title from :mod:`protoport.compat.sections`, e.g.
    #: ``sections.WRITE_TRANSPORTS``
    section: str
    #: the documented sentence or behaviour the scenario checks
    behaviour: str
    func: ScenarioFunc
    requires: frozenset[str]
    #: set when native asyncio itself departs from its documentation here: the
    #: reference is then expected to fail this scenario, and the row says why
    reference_deviation: str | None
    #: registration order, for a stable order inside a section
    order: int
    #: the asyncio version that added the API or behaviour checked, e.g.
    #: ``(3, 13)``: implementations offering an older asyncio API show "—"
    since: tuple[int, int] | None = None


_registry: dict[str, Scenario] = {}
_counter = 0


def scenario(
    section: str,
    behaviour: str,
    *,
    requires: Iterable[str] = (),
    reference_deviation: str | None = None,
    name: str | None = None,
    since: tuple[int, int] | None = None,
) -> Callable[[F], F]:
    """Register an ``async def scenario(env)`` as one row of the matrix.

    :param section: the documentation section the behaviour belongs to, from
        :mod:`protoport.compat.sections`
    :param behaviour: the documented sentence or behaviour checked, one line
    :param requires: features (from :data:`FEATURES`) the scenario needs
    :param reference_deviation: why native asyncio departs from its documentation
        here, when it does (native asyncio is then expected to fail)
    :param name: the function part of the id, when not the function's name
    :param since: the asyncio version that added what is checked, e.g.
        ``(3, 13)`` for ``Server.close_clients()``: an implementation whose
        ``api_version`` is older shows "—" (native asyncio on an older Python)
    """
    unknown = set(requires) - FEATURES
    if unknown:
        raise ValueError(f"unknown features: {sorted(unknown)}")
    if "\n" in behaviour or not behaviour.strip():
        raise ValueError("behaviour must be one non-empty line")
    if since is not None and (len(since) != 2 or since < (3, 0)):
        raise ValueError(f"since must be (major, minor), not {since!r}")

    def register(func: F) -> F:
        global _counter
        module = func.__module__.rsplit(".", 1)[-1]
        scenario_id = f"{module}.{name or func.__name__}"
        existing = _registry.get(scenario_id)
        # Re-importing a module (e.g. importlib.reload) replaces its rows; two
        # different functions with one id are an error.
        if existing is not None and (
            existing.func.__module__ != func.__module__
            or existing.func.__qualname__ != func.__qualname__
        ):
            raise ValueError(f"duplicate scenario id {scenario_id!r}")
        _counter += 1
        _registry[scenario_id] = Scenario(
            id=scenario_id,
            section=section,
            behaviour=behaviour.strip(),
            func=func,
            requires=frozenset(requires),
            reference_deviation=reference_deviation,
            order=existing.order if existing is not None else _counter,
            since=None if since is None else (int(since[0]), int(since[1])),
        )
        return func

    return register


def section_key(section: str) -> tuple[int, str]:
    """Sort key of a section: the documentation's order, unknown ones last."""
    try:
        return SECTIONS.index(section), ""
    except ValueError:
        return len(SECTIONS), section


def load_scenarios(modules: Iterable[str] = ()) -> list[Scenario]:
    """Import the built-in scenario modules (and *modules*), and return every
    registered scenario in matrix order: by section, then by registration."""
    from . import scenarios as package

    names = sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    )
    for module_name in names:
        importlib.import_module(f"{package.__name__}.{module_name}")
    for module_name in modules:
        importlib.import_module(module_name)
    return sorted(_registry.values(), key=lambda s: (section_key(s.section), s.order))


def get_scenario(scenario_id: str) -> Scenario:
    """Return the registered scenario *scenario_id* (after :func:`load_scenarios`)."""
    return _registry[scenario_id]
