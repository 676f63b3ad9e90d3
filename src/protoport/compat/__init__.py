"""The compatibility suite: asyncio's documented transport, protocol and stream
behaviour, checked on any implementation of asyncio's event loop interface.

README
======

What it is
----------
Each *scenario* checks one documented behaviour (a sentence of the asyncio
documentation, or a detail of what CPython's asyncio does that protocol code can
observe) through the loop interface that asyncio's loops and protoport's facade
share: ``create_connection``, ``connect_accepted_socket``, ``create_server``,
``create_future``, ``call_later``, ``run_in_executor``, the streams functions….
``protoport matrix`` runs every scenario on every implementation installed —
native asyncio (the reference), uvloop, trio-asyncio, protoport on Trio and on
asyncio, and any you add with ``--impl module:factory`` — each in its own worker
process with a timeout per scenario, and writes ``matrix.json`` and ``MATRIX.md``:
to ``compat_matrix/`` when the run is complete (every implementation and every
optional package installed), to ``build/compat_matrix/`` otherwise.

Adding a scenario
-----------------
Write one decorated ``async def`` in a module of
``protoport/compat/scenarios/`` (a new module is picked up automatically; its
name becomes the first part of the scenario ids)::

    from protoport.compat import Env, scenario, sections

    @scenario(
        sections.WRITE_TRANSPORTS,                  # the documentation's section
        "write() sends the bytes to the peer",      # the documented behaviour
    )
    async def write_sends_bytes(env: Env) -> None:
        conn = await env.connect()                  # transport + recording protocol
        conn.transport.write(b"hello")
        env.expect_equal("peer received", await conn.peer.recv_exactly(5), b"hello")

The id is ``"<module>.<function>"`` (here ``writing.write_sends_bytes`` in
``scenarios/writing.py``). Try it with ``protoport matrix -k writing. -v``. A scenario
passes when it returns, fails with a one-line reason when it raises
:class:`ScenarioFailure` (:meth:`Env.fail`, :meth:`Env.expect`,
:meth:`Env.expect_equal`, :meth:`Env.expect_raises`, or a timed-out wait), and is
unsupported ("—") when it raises :class:`Unsupported` or ``NotImplementedError``.
Any other exception is a failure whose reason names it.

Decorator options: ``requires=("unix", "buffered")`` (features from
:data:`FEATURES`; an implementation without one shows "—"),
``since=(3, 13)`` when what is checked came with that asyncio version
(``Server.close_clients()``, ``readuntil()`` with a tuple of separators…): an
implementation offering an older asyncio API — native asyncio, uvloop and
trio-asyncio on an older Python — shows "—" (protoport offers the 3.13 API on
every Python), and ``reference_deviation="why"`` when native asyncio itself
departs from its documentation on this behaviour: native asyncio is then
expected to *fail* the scenario, and the matrix says so on that row.

Rules, so that one scenario runs unchanged on every implementation:

- Use ``env.loop`` for everything: it is asyncio's running loop for native
  asyncio, uvloop and trio-asyncio, and the ``protoport.open_loop()`` facade for
  protoport. The scenario runs as ``env.loop.create_task(...)``, so ``await
  future``, ``asyncio.sleep()``, ``asyncio.gather()`` and
  ``loop.run_in_executor()`` work. Do not use ``asyncio.wait_for()``,
  ``asyncio.timeout()`` or ``asyncio.current_task()`` (the Trio facade's tasks do
  not support them): time out with ``loop.call_later()`` and futures.
- Drive the other end deterministically: ``env.connect()`` gives a
  :class:`Connection` whose :class:`Peer` is a plain blocking socket run step by
  step in a worker thread (``peer.send``, ``recv_exactly``, ``recv_until_eof``,
  ``recv_for``, ``shutdown_write``, ``close``, ``reset_connection``), with
  timeouts, so a missing byte fails fast. ``env.connect(family="tcp")`` for a
  loopback TCP connection, ``via=`` for the loop method that makes it
  (``create_connection`` with ``sock=`` or with an address,
  ``connect_accepted_socket``, ``create_unix_connection``), ``peer_sends=`` for
  bytes that are there before the transport. ``env.connect(fill=True)`` fills the
  kernel's send buffer first, so that what the transport writes stays in its
  buffer until the peer reads: buffer sizes and flow-control points become
  exact (``conn.fill_kernel_buffer()`` fills it again once the peer has read
  everything). ``env.connect_peer(address)`` connects a peer to a server of the
  loop under test; ``env.temp_path()`` gives paths for Unix sockets and files.
- Streams: use the implementation's stream functions and classes,
  ``env.streams.open_connection``, ``env.streams.start_server``,
  ``env.streams.StreamReader``… (the :mod:`asyncio` module for asyncio's loops,
  :mod:`protoport` for protoport's rows), never asyncio's directly.
  ``env.open_stream(limit=, family=, fill=, peer_sends=)`` opens a
  :class:`StreamConnection` (``reader``, ``writer``, ``peer``) with
  ``env.streams.open_connection()``.
- Servers and TLS: ``env.track_server(server)`` and
  ``env.track_transport(transport)`` close what a scenario made itself
  (transports of :class:`RecordingProtocol` are tracked already).
  ``env.tls()`` gives a test CA and server certificate (trustme, made once per
  worker process); ``env.connect_tls()`` connects ``create_connection(ssl=...)``
  to a peer that is a blocking ``ssl.SSLSocket``.
- Wait for conditions, never for fixed times: ``env.wait_until(predicate,
  what)``, ``env.wait_done(task, what)``, ``protocol.wait_for_data(n)``,
  ``protocol.wait_for("eof_received")``, ``protocol.wait_lost()``. Only to check
  that something does *not* happen, let the loop run a little with
  ``env.settle()``. ``await env.expect_raises_async(exc_type, message,
  coroutine)`` checks what a coroutine raises.
- Record with :class:`RecordingProtocol` / :class:`RecordingBufferedProtocol`
  (subclass them, calling ``super()``, to act inside a callback), and compare
  whole traces: ``protocol.summary()`` gives e.g. ``["made", ("data", b"x"),
  "eof", ("lost", None)]``. ``env.errors`` holds the exception handler's
  contexts, ``env.warnings()`` the logged warnings.
- Reasons must be the same from run to run (no addresses, ports or timings in
  them): matrix.json is compared by ``protoport matrix --check``.
- Sections are constants of :mod:`protoport.compat.sections`, listed in the
  documentation's order in its ``SECTIONS``; add a new one there.

When protoport fails a scenario on purpose, document it in
``protoport/compat/_deviations.py`` (scenario id → reason); ``--check`` fails on
every other failing protoport row.

Adding an implementation
------------------------
``protoport matrix --impl mypackage.compat:make_runner`` imports
``mypackage.compat`` and calls ``make_runner()``. It must return a *runner*: a
callable ``run(main) -> None`` (or an object with such a ``run`` method) that, in
a fresh event loop, runs ``await main(loop)`` to completion, ``loop`` being the
event loop object the scenarios should use. For example::

    import mypackage
    from protoport.compat import run_asyncio

    def make_runner():
        def run(main):
            run_asyncio(main, mypackage.new_event_loop)  # asyncio.run(), 3.10 too
        run.name = "mypackage"
        return run

or, for a loop that is not asyncio's running loop (as protoport's facade)::

    def make_runner():
        def run(main):
            async def outer():
                async with mypackage.open_loop() as loop:
                    await main(loop)
            trio.run(outer)
        return run

``main`` runs each scenario as ``loop.create_task(...)`` and awaits it, with a
timeout made with ``loop.call_later()``. Optional attributes of the runner:
``name`` (the column's key), ``label`` (its title), ``features`` (default: all
of :data:`FEATURES`), ``version``, ``streams`` (the module-like object with the
stream functions and classes the stream scenarios use; default :mod:`asyncio`),
``api_version`` (the asyncio version whose API it offers, e.g. ``(3, 13)``;
default the running Python's). If ``make_runner()`` raises
:class:`ImportError`, the column shows "—" for every row. The same runner works
in tests: :func:`run_scenario` runs one scenario in the current process, and
``make_main()`` turns any ``async def f(env)`` into a ``main``.

The matrix files
----------------
``matrix.json`` has no timestamps or machine-specific data except its
``environment`` key (package versions), which ``--check`` ignores; it records the
Python version of the reference, since native asyncio's results depend on it.
Rows are grouped by section in the documentation's order. ``protoport matrix
--check`` reruns the suite and fails if the files differ (columns of
implementations not run or not installed here, and rows not selected with
``-k``, are taken from the files; on another Python version the files are not
compared), or if a protoport row fails without a documented deviation, or if
native asyncio's results contradict the scenarios' ``reference_deviation``.

Each implementation runs in worker processes (``python -m
protoport.compat._worker``), one scenario at a time, with ``--timeout`` seconds
per scenario (default 10): a worker that hangs is killed and one that crashes is
replaced for the next scenario, and the row says "timed out" or "crashed".
``--jobs`` implementations run in parallel (default 2).
"""

from __future__ import annotations

from ._connections import Connection, StreamConnection
from ._deviations import DEVIATIONS
from ._env import Env
from ._execute import Outcome, make_main, run_scenario
from ._failures import ScenarioFailure, Unsupported, fail
from ._implementations import (
    BUILTIN,
    Implementation,
    NotInstalled,
    load_implementation,
    run_asyncio,
)
from ._pattern import pattern
from ._peer import Peer
from ._recording import RecordingBufferedProtocol, RecordingProtocol
from ._registry import FEATURES, Scenario, load_scenarios, scenario
from ._tls_material import TLSMaterial
from .sections import SECTIONS

__all__ = [
    "BUILTIN",
    "DEVIATIONS",
    "FEATURES",
    "SECTIONS",
    "Connection",
    "Env",
    "Implementation",
    "NotInstalled",
    "Outcome",
    "Peer",
    "RecordingBufferedProtocol",
    "RecordingProtocol",
    "Scenario",
    "ScenarioFailure",
    "StreamConnection",
    "TLSMaterial",
    "Unsupported",
    "fail",
    "load_implementation",
    "load_scenarios",
    "make_main",
    "pattern",
    "run_asyncio",
    "run_scenario",
    "scenario",
]
