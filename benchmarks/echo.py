"""Closed-loop TCP echo benchmark: protoport against its peers.

Every server runs in a process of its own. In the default ``protocols`` mode
each serves the same ``asyncio.Protocol`` echo class, except the raw AnyIO
servers, which are the substrate protoport is built on. In ``streams`` mode each
serves the same ``(reader, writer)`` handler, a ``read()``/``write()``/``drain()``
loop, started with ``protoport.start_server()`` or ``asyncio.start_server()``. A
separate load generator keeps exactly one message in flight on each of its
connections and counts round trips. The driver interleaves servers, sizes and
rounds, because a small shared machine is noisy.

Usage::

    python benchmarks/echo.py run [--mode protocols|streams] [--duration 2]
        [--rounds 3] [--sizes 1024,10240,102400] [--servers a,b,...]
        [--json out.json] [--markdown out.md]
    python benchmarks/echo.py serve KIND --port N
    python benchmarks/echo.py load --port N --size S --duration D --connections 10
    python benchmarks/echo.py list
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from functools import partial

import _driver  # beside this file: what the benchmarks share
from _driver import fmt_rate, fmt_size

# -- servers ----------------------------------------------------------------------


class Echo(asyncio.Protocol):
    """The echo protocol every protocol-based server runs, unchanged."""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def _serve_protoport(host, port):
    import protoport

    async with protoport.open_loop() as loop:
        server = await loop.create_server(Echo, host, port)
        await server.serve_forever()


async def _serve_asyncio(host, port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, host, port)
    async with server:
        await server.serve_forever()


async def _serve_trio_asyncio(host, port):
    import trio
    import trio_asyncio

    async with trio_asyncio.open_loop() as loop:
        server = await trio_asyncio.aio_as_trio(loop.create_server)(Echo, host, port)
        try:
            await trio.sleep_forever()
        finally:
            server.close()


async def _anyio_echo(stream):
    import anyio

    async with stream:
        try:
            while True:
                data = await stream.receive()
                await stream.send(data)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass


async def _serve_anyio(host, port):
    import anyio

    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    await listener.serve(_anyio_echo)


# -- stream servers ----------------------------------------------------------------


async def stream_echo(reader, writer):
    """The ``(reader, writer)`` echo handler every stream server runs, unchanged."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the load generator aborts its connections when it is done
    finally:
        writer.close()


async def serve_protoport_streams(handler, host, port):
    """``protoport.start_server(handler, ...)`` on the run's default loop."""
    import protoport

    server = await protoport.start_server(handler, host, port)
    await server.serve_forever()


async def serve_asyncio_streams(handler, host, port):
    """``asyncio.start_server(handler, ...)`` on the running asyncio loop."""
    server = await asyncio.start_server(handler, host, port)
    async with server:
        await server.serve_forever()


async def _serve_trio_asyncio_streams(handler, host, port):
    import trio_asyncio

    async with trio_asyncio.open_loop():
        await trio_asyncio.aio_as_trio(serve_asyncio_streams)(handler, host, port)


#: name -> (runner taking (handler, host, port), modules it needs, what it is);
#: shared with readline.py, which passes its own handler.
STREAM_RUNNERS = _driver.implementations(
    (serve_protoport_streams, "protoport.start_server(handler) under {runtime}.run"),
    (serve_asyncio_streams, "asyncio.start_server(handler)"),
    (
        _serve_trio_asyncio_streams,
        "asyncio.start_server(handler) inside trio_asyncio.open_loop() under trio.run",
    ),
    suffix="-streams",
)


def _with_handler(runner, handler):
    def run(host, port):
        runner(handler, host, port)

    return run


#: name -> (runner, modules it needs, what it is)
SERVERS = {
    **_driver.implementations(
        (
            _serve_protoport,
            "protoport.open_loop() + loop.create_server(Echo) under {runtime}.run",
        ),
        (_serve_asyncio, "loop.create_server(Echo)"),
        (
            _serve_trio_asyncio,
            "asyncio's own transports on trio_asyncio.open_loop() under trio.run",
        ),
    ),
    "anyio-trio": (
        partial(_driver.run_under, "anyio-trio", _serve_anyio),
        ("anyio", "trio"),
        "raw AnyIO TCP listener, receive()/send() loop, Trio backend",
    ),
    "anyio-asyncio": (
        partial(_driver.run_under, "anyio-asyncio", _serve_anyio),
        ("anyio",),
        "raw AnyIO TCP listener, receive()/send() loop, asyncio backend",
    ),
}

STREAM_SERVERS = {
    kind: (_with_handler(runner, stream_echo), modules, what)
    for kind, (runner, modules, what) in STREAM_RUNNERS.items()
}

ALL_SERVERS = {**SERVERS, **STREAM_SERVERS}

PROTOPORT_SERVERS = ("protoport-trio", "protoport-asyncio")
PROTOPORT_STREAM_SERVERS = ("protoport-trio-streams", "protoport-asyncio-streams")

#: (server, peer, minimum ratio of medians) at 1 KiB; shown, never asserted.
TARGETS = (
    ("protoport-trio", "anyio-trio", 0.9),
    ("protoport-trio", "trio-asyncio", 2.5),
    ("protoport-trio", "asyncio", 1.0),
)
STREAM_TARGETS = (("protoport-trio-streams", "asyncio-streams", 1.2),)
TARGET_SIZE = 1024

#: mode -> (servers, the protoport ones among them, targets)
MODES = {
    "protocols": (SERVERS, PROTOPORT_SERVERS, TARGETS),
    "streams": (STREAM_SERVERS, PROTOPORT_STREAM_SERVERS, STREAM_TARGETS),
}


def missing_modules(kind):
    return _driver.missing_modules(kind, ALL_SERVERS)


# -- load generator ---------------------------------------------------------------


class EchoMismatch(Exception):
    pass


class LoadClient(asyncio.Protocol):
    """Keeps exactly one message in flight: send, wait for all of it to come
    back, check it, count it, send the next one."""

    def __init__(self, payloads, on_error):
        self.payloads = payloads
        self.on_error = on_error
        self.index = 0
        self.expected = payloads[0]
        self.received = 0
        self.count = 0
        self.transport = None
        self.stopped = False
        self.lost = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.expected)

    def data_received(self, data):
        if self.stopped:
            return
        expected = self.expected
        offset = self.received
        # bytes.startswith at an offset compares without copying.
        if not expected.startswith(data, offset):
            self.stopped = True
            self.on_error(
                EchoMismatch(
                    f"echo mismatch at byte {offset} of a {len(expected)}-byte "
                    f"message: got {len(data)} bytes that differ from what was "
                    "sent, or more bytes than were sent"
                )
            )
            return
        offset += len(data)
        if offset < len(expected):
            self.received = offset
            return
        self.count += 1
        self.received = 0
        self.index = (self.index + 1) % len(self.payloads)
        self.expected = self.payloads[self.index]
        self.transport.write(self.expected)

    def connection_lost(self, exc):
        self.lost = exc or ConnectionResetError("server closed the connection")
        if not self.stopped:
            self.stopped = True
            self.on_error(self.lost)


async def run_load(args, **options):
    """The load: :func:`_driver.closed_loop` of :class:`LoadClient`, with
    ``loop.create_connection(..., **options)``."""
    clients, per_connection, elapsed = await _driver.closed_loop(
        args, partial(LoadClient, _driver.payloads(args.size)), "count", **options
    )
    return _driver.request_figures(args.size, clients, per_connection, elapsed)


def cmd_load(args):
    _driver.run_load(args, run_load(args))


# -- driver -----------------------------------------------------------------------


def measure(kind, size, args, log_dir):
    return _driver.measure(
        os.path.abspath(__file__),
        kind,
        size,
        args,
        log_dir,
        load_extra=("--size", str(size)),
        cpu_per=_driver.CPU_PER_REQUEST,
    )


def summarize(samples, servers, sizes, ours_kinds=PROTOPORT_SERVERS, goals=TARGETS):
    """Medians, ranges and ratios from ``samples[server][size]``, a list of the
    load generator's results; ratios of each of *ours_kinds* to every other
    server, and the verdicts on *goals*."""
    stats, ratios = _driver.summarize(
        samples,
        servers,
        sizes,
        ours_kinds,
        "requests_per_second",
        cpu=("server_cpu_us_per_request", "cpu_us_per_request"),
    )
    targets = _driver.verdicts(
        goals,
        lambda ours, other: ratios.get(ours, {}).get(other, {}).get(TARGET_SIZE),
        size=TARGET_SIZE,
    )
    return stats, ratios, targets


def render_markdown(env, args, servers, sizes, stats, ratios, targets, skipped):
    lines = [f"Echo benchmark, {getattr(args, 'mode', 'protocols')} mode.", ""]
    lines.append(_driver.measured_line(env) + _driver.load_sentence(env))
    lines.append(
        f"{args.connections} connections, one message in flight on each; "
        f"{args.rounds} round(s) of {args.duration:g} s per server and size "
        f"(after {args.warmup:g} s of warm-up), order shuffled every time. "
        "Requests per second: median (min-max)."
    )
    lines.append("")
    lines += _driver.column_table(
        servers, sizes, stats, _driver.fmt_range, head=fmt_size
    )
    if any(
        s["cpu_us_per_request"] is not None
        for by_size in stats.values()
        for s in by_size.values()
    ):
        lines += _driver.cpu_table(servers, sizes, stats, "request")
    lines += _driver.ratio_tables(ratios, sizes)
    lines.append("")
    lines.append(f"Targets at {fmt_size(TARGET_SIZE)} (goals, not assertions):")
    lines.append("")
    lines += _driver.target_lines(targets)
    lines += _driver.skipped_lines(skipped)
    return "\n".join(lines) + "\n"


def cmd_run(args):
    sizes = [int(s) for s in args.sizes.split(",") if s]
    mode_servers, ours_kinds, goals = MODES[args.mode]
    servers, skipped = _driver.choose_servers(
        args.servers, mode_servers, missing_modules, f"{args.mode} server(s)"
    )

    def describe(size, kind, result):
        note = ""
        if result["server_stopped_by"] not in ("SIGINT", "exited"):
            note = f"  (server needed {result['server_stopped_by']})"
        return (
            f"{fmt_size(size):>7} {kind:<25} "
            f"{fmt_rate(result['requests_per_second']):>9} req/s{note}"
        )

    log_dir = tempfile.mkdtemp(prefix="protoport-echo-")
    samples, runs, env = _driver.run_rounds(
        servers,
        sizes,
        args,
        log_dir,
        lambda kind, size: measure(kind, size, args, log_dir),
        describe,
    )
    stats, ratios, targets = summarize(samples, servers, sizes, ours_kinds, goals)
    markdown = render_markdown(
        env, args, servers, sizes, stats, ratios, targets, skipped
    )
    settings = {
        "mode": args.mode,
        "duration": args.duration,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "sizes": sizes,
        "connections": args.connections,
        "pinned": args.pin,
    }
    _driver.publish(
        args,
        markdown,
        env,
        settings,
        skipped,
        runs,
        stats=stats,
        ratios=ratios,
        targets=targets,
    )


def cmd_list(args):
    for mode, (servers, _, _) in MODES.items():
        print(f"{mode} mode (run --mode {mode}):")
        _driver.list_servers(servers, 25, indent="  ")


def main(argv=None):
    def run_options(p):
        p.add_argument(
            "--mode",
            choices=list(MODES),
            default="protocols",
            help="protocols: asyncio.Protocol servers (default); streams: the "
            "(reader, writer) handler on start_server()",
        )

    _driver.main(
        argv,
        __doc__,
        {"load": cmd_load, "run": cmd_run, "list": cmd_list},
        ALL_SERVERS,
        "run one echo server until interrupted",
        sizes="1024,10240,102400",
        run_options=run_options,
    )


if __name__ == "__main__":
    main()
