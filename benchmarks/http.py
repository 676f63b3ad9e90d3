"""HTTP benchmark: uvicorn's protocols served by protoport and by its peers.

Every server runs in a process of its own and serves the same trivial ASGI app
through uvicorn's own ``asyncio.Protocol`` classes, ``H11Protocol`` and (when
``httptools`` is installed) ``HttpToolsProtocol``, handed straight to the loop's
``create_server()``: no uvicorn ``Server`` object, only the protocol. The load
comes from programs that are not Python: ``wrk`` keeps 10 connections alive and
sends HTTP/1.1 requests on them; ``ab`` sends HTTP/1.0 requests, one connection
each, so every request also pays for accepting, setting up and closing a
connection. The driver interleaves servers, loads and rounds, and reports
requests per second and the server's CPU time per request (from ``/proc``), the
steadier figure on a busy machine, with ratios to native asyncio.

``wrk`` and ``ab`` come with Debian and Ubuntu as the packages ``wrk`` and
``apache2-utils`` (``apt-get install wrk apache2-utils``); a load whose program
is missing is skipped with a note. uvicorn (and httptools) come with the
``bench`` extra: ``pip install -e '.[trio,peers,bench]'``.

Usage::

    python benchmarks/http.py run [--quick] [--duration 2] [--rounds 3]
        [--loads h11-wrk,h11-ab,httptools-wrk,httptools-ab] [--servers a,b,...]
        [--json out.json] [--markdown out.md]
    python benchmarks/http.py serve KIND --port N [--http h11|httptools]
    python benchmarks/http.py load --port N --generator wrk|ab --duration D
    python benchmarks/http.py list
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from email.utils import formatdate
from functools import partial

import _driver  # beside this file: what the benchmarks share
from _driver import fmt_rate

# This file's name is the standard library's ``http`` package's, which uvicorn
# imports; with this folder first on the path, that import would find this file.
_HERE = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]

# -- the app and uvicorn's protocols --------------------------------------------------

BODY = b"Hello, world!"
RESPONSE_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(scope, receive, send):
    """The ASGI app every server runs: a fixed 13-byte answer."""
    if scope["type"] != "http":
        return
    start = {"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS}
    await send(start)
    await send({"type": "http.response.body", "body": BODY})


def protocol_factory(http, loop):
    """A factory of uvicorn's protocol *http* (``h11`` or ``httptools``) for
    ``loop.create_server()``, built as uvicorn's server builds it, with only the
    arguments the installed uvicorn's protocol takes."""
    import uvicorn
    from uvicorn.server import ServerState

    config = uvicorn.Config(
        app, http=http, lifespan="off", access_log=False, log_level="warning"
    )
    config.load()
    state = ServerState()
    # uvicorn's server refreshes the date header every second; once is enough here.
    date = (b"date", formatdate(usegmt=True).encode())
    state.default_headers = [date, *config.encoded_headers]
    cls = config.http_protocol_class
    offered = {
        "config": config,
        "server_state": state,
        "app_state": {},
        "_loop": loop,
    }
    takes = inspect.signature(cls).parameters
    kwargs = {name: value for name, value in offered.items() if name in takes}
    return partial(cls, **kwargs)


# -- servers --------------------------------------------------------------------------


async def _serve_protoport(http, host, port):
    import protoport

    async with protoport.open_loop() as loop:
        server = await loop.create_server(protocol_factory(http, loop), host, port)
        await server.serve_forever()


async def _serve_asyncio(http, host, port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol_factory(http, loop), host, port)
    async with server:
        await server.serve_forever()


async def _serve_trio_asyncio(http, host, port):
    import trio
    import trio_asyncio

    async with trio_asyncio.open_loop() as loop:
        server = await trio_asyncio.aio_as_trio(loop.create_server)(
            protocol_factory(http, loop), host, port
        )
        try:
            await trio.sleep_forever()
        finally:
            server.close()


#: name -> (runner taking (http, host, port), modules it needs, what it is)
SERVERS = _driver.implementations(
    (
        _serve_protoport,
        "protoport.open_loop() + loop.create_server(uvicorn protocol), {runtime}.run",
    ),
    (_serve_asyncio, "loop.create_server(uvicorn protocol)"),
    (
        _serve_trio_asyncio,
        "asyncio's own transports on trio_asyncio.open_loop() under trio.run",
    ),
    needs=("uvicorn",),
)

PROTOPORT_SERVERS = ("protoport-trio", "protoport-asyncio")

#: uvicorn protocol -> the module it needs beyond uvicorn
HTTP_MODULES = {"h11": "h11", "httptools": "httptools"}

#: load generator -> (what it does, the Debian package that has it)
GENERATORS = {
    "wrk": ("HTTP/1.1, 10 connections kept alive", "wrk"),
    "ab": ("HTTP/1.0, a new connection per request, 10 at a time", "apache2-utils"),
}

#: The loads, a uvicorn protocol under a generator: ``h11-wrk`` and so on.
LOADS = [f"{http}-{gen}" for http in HTTP_MODULES for gen in GENERATORS]

#: (server, peer, minimum ratio of the peer's CPU time per request to ours, load);
#: shown, never asserted.
TARGETS = (
    ("protoport-trio", "asyncio", 1.0, "h11-wrk"),
    ("protoport-trio", "asyncio", 1.0, "h11-ab"),
)


def missing_modules(kind):
    return _driver.missing_modules(kind, SERVERS)


def cmd_serve(args):
    runner = SERVERS[args.kind][0]
    _driver.serve(args, lambda: runner(args.http, args.host, args.port))


# -- load generators ------------------------------------------------------------------


def _count(pattern, text, default=None):
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        if default is None:
            raise RuntimeError(f"no {pattern!r} in the output:\n{text}")
        return default
    return float(match.group(1))


def run_wrk(url, seconds, connections):
    """Requests, seconds taken and errors of one ``wrk`` run of whole
    *seconds*."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = _count(r"Non-2xx or 3xx responses: (\d+)", out, 0)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    requests = int(_count(r"^\s*(\d+) requests in", out))
    taken = re.search(r"requests in ([\d.]+)(m?s)", out)
    elapsed = float(taken.group(1)) / (1000 if taken.group(2) == "ms" else 1)
    return requests, elapsed, int(errors)


def run_ab(url, seconds, connections):
    """Requests, seconds taken and errors of one ``ab`` run of whole
    *seconds*."""
    # -n after -t: a time limit alone caps the run at 50,000 requests.
    command = ["ab", "-q", "-r", "-t", str(seconds), "-n", "10000000"]
    out = subprocess.run(
        [*command, "-c", str(connections), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = _count(r"^Failed requests:\s+(\d+)", out)
    errors += _count(r"^Non-2xx responses:\s+(\d+)", out, 0)
    requests = int(_count(r"^Complete requests:\s+(\d+)", out))
    elapsed = _count(r"^Time taken for tests:\s+([\d.]+) seconds", out)
    return requests, elapsed, int(errors)


RUNNERS = {"wrk": run_wrk, "ab": run_ab}


def cmd_load(args):
    """Warm up, then measure; both generators take whole seconds."""
    _driver.pin_cpu(args.cpu)
    url = f"http://{args.host}:{args.port}/"
    run = RUNNERS[args.generator]
    warm, warm_errors = (0, 0)
    if args.warmup > 0:
        warm, _, warm_errors = run(url, math.ceil(args.warmup), args.connections)
    seconds = max(1, round(args.duration))
    requests, elapsed, errors = run(url, seconds, args.connections)
    if warm_errors or errors:
        sys.exit(f"{args.generator}: {warm_errors + errors} failed requests")
    print(
        json.dumps(
            {
                "requests_per_second": requests / elapsed,
                "requests": requests,
                "elapsed": elapsed,
                "total_requests": warm + requests,
                "generator": args.generator,
            }
        )
    )


# -- driver ---------------------------------------------------------------------------


def measure(kind, load, args, log_dir):
    http, generator = load.rsplit("-", 1)
    return _driver.measure(
        os.path.abspath(__file__),
        kind,
        load,
        args,
        log_dir,
        serve_extra=("--http", http),
        load_extra=("--generator", generator),
        cpu_per=_driver.CPU_PER_REQUEST,
    )


def choose_loads(requested):
    """The loads ``--loads`` names whose protocol and generator are installed,
    and ``{skipped load: why}``."""
    wanted = [x for x in requested.split(",") if x] or LOADS
    unknown = [x for x in wanted if x not in LOADS]
    if unknown:
        sys.exit(f"unknown load(s): {', '.join(unknown)}; choose from {LOADS}")
    loads, skipped = [], {}
    for load in wanted:
        http, generator = load.rsplit("-", 1)
        if importlib.util.find_spec(HTTP_MODULES[http]) is None:
            skipped[load] = f"{HTTP_MODULES[http]} not installed"
        elif shutil.which(generator) is None:
            package = GENERATORS[generator][1]
            skipped[load] = f"{generator} not found (apt-get install {package})"
        else:
            loads.append(load)
            continue
        print(f"note: skipping {load}: {skipped[load]}", file=sys.stderr)
    if not loads:
        sys.exit("no load to run")
    return loads, skipped


def render_markdown(env, args, servers, loads, stats, cpu_by, targets, skipped):
    lines = ["HTTP benchmark: uvicorn's protocols on each loop.", ""]
    lines.append(_driver.measured_line(env, _driver.load_note(env)))
    lines.append(
        "Loads: "
        + "; ".join(f"`{g}` {what}" for g, (what, _) in GENERATORS.items())
        + f". {args.rounds} round(s) of {round(args.duration)} s per server and "
        "load, order shuffled every time."
    )
    lines.append("")
    lines.append("Requests per second, median (min-max):")
    lines.append("")
    lines += _driver.column_table(servers, loads, stats, _driver.fmt_range)
    lines += ["", "Server CPU time (user + system) per request in µs, median:", ""]
    lines += _driver.column_table(
        servers, loads, stats, lambda s: _driver.fmt_cpu(s["cpu_us_per_request"])
    )
    lines += _driver.cpu_ratio_tables(cpu_by, loads)
    lines += ["", "Targets, in server CPU time per request (goals, not assertions):"]
    lines.append("")
    lines += _driver.target_lines(targets)
    lines += _driver.skipped_lines(skipped)
    return "\n".join(lines) + "\n"


def cmd_run(args):
    _driver.apply_quick(args)
    loads, skipped_loads = choose_loads(args.loads)
    servers, skipped = _driver.choose_servers(args.servers, SERVERS, missing_modules)
    skipped.update(skipped_loads)

    def describe(load, kind, result):
        cpu = result["server_cpu_us_per_request"]
        return (
            f"{load:<14} {kind:<18} "
            f"{fmt_rate(result['requests_per_second']):>8} req/s "
            f"{_driver.fmt_cpu(cpu):>6} us/request"
        )

    log_dir = tempfile.mkdtemp(prefix="protoport-http-")
    samples, runs, env = _driver.run_rounds(
        servers,
        loads,
        args,
        log_dir,
        lambda kind, load: measure(kind, load, args, log_dir),
        describe,
        "uvicorn",
        "h11",
        "httptools",
    )
    stats, _ = _driver.summarize(
        samples,
        servers,
        loads,
        (),
        "requests_per_second",
        cpu=("server_cpu_us_per_request", "cpu_us_per_request"),
    )
    cpu_by = _driver.cpu_ratios(
        samples, servers, loads, PROTOPORT_SERVERS, "server_cpu_us_per_request"
    )
    targets = _driver.column_verdicts(
        TARGETS, cpu_by, "load", measure="cpu_per_request"
    )
    markdown = render_markdown(
        env, args, servers, loads, stats, cpu_by, targets, skipped
    )
    settings = {
        "duration": args.duration,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "loads": loads,
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
        cpu_ratios=cpu_by,
        targets=targets,
    )


def cmd_list(args):
    _driver.list_servers(SERVERS, 18)
    for generator, (what, package) in GENERATORS.items():
        state = "" if shutil.which(generator) else f"  [not found: {package}]"
        print(f"load {generator:<13} {what}{state}")


def main(argv=None):
    def serve_options(p):
        p.add_argument("--http", choices=list(HTTP_MODULES), default="h11")

    def load_options(p):
        p.add_argument("--generator", choices=list(GENERATORS), default="wrk")

    def run_options(p):
        p.add_argument("--loads", default="", help="comma-separated; default all")
        _driver.add_quick(p)

    _driver.main(
        argv,
        __doc__,
        {"serve": cmd_serve, "load": cmd_load, "run": cmd_run, "list": cmd_list},
        SERVERS,
        "run one HTTP server until interrupted",
        serve_options=serve_options,
        load_options=load_options,
        run_options=run_options,
    )


if __name__ == "__main__":
    main()
