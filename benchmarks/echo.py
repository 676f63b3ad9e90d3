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

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"

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


def _run_protoport_trio(host, port):
    import trio

    trio.run(_serve_protoport, host, port)


def _run_protoport_asyncio(host, port):
    asyncio.run(_serve_protoport(host, port))


def _run_asyncio(host, port):
    asyncio.run(_serve_asyncio(host, port))


def _run_uvloop(host, port):
    import uvloop

    uvloop.run(_serve_asyncio(host, port))


def _run_trio_asyncio(host, port):
    import trio

    trio.run(_serve_trio_asyncio, host, port)


def _run_anyio_trio(host, port):
    import anyio

    anyio.run(_serve_anyio, host, port, backend="trio")


def _run_anyio_asyncio(host, port):
    import anyio

    anyio.run(_serve_anyio, host, port, backend="asyncio")


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


def run_protoport_trio_streams(handler, host, port):
    import trio

    trio.run(serve_protoport_streams, handler, host, port)


def run_protoport_asyncio_streams(handler, host, port):
    asyncio.run(serve_protoport_streams(handler, host, port))


def run_asyncio_streams(handler, host, port):
    asyncio.run(serve_asyncio_streams(handler, host, port))


def run_uvloop_streams(handler, host, port):
    import uvloop

    uvloop.run(serve_asyncio_streams(handler, host, port))


def run_trio_asyncio_streams(handler, host, port):
    import trio

    trio.run(_serve_trio_asyncio_streams, handler, host, port)


#: name -> (runner taking (handler, host, port), modules it needs, what it is);
#: shared with readline.py, which passes its own handler.
STREAM_RUNNERS = {
    "protoport-trio-streams": (
        run_protoport_trio_streams,
        ("protoport", "trio"),
        "protoport.start_server(handler) under trio.run",
    ),
    "protoport-asyncio-streams": (
        run_protoport_asyncio_streams,
        ("protoport",),
        "protoport.start_server(handler) under asyncio.run",
    ),
    "asyncio-streams": (
        run_asyncio_streams,
        (),
        "native asyncio selector loop, asyncio.start_server(handler)",
    ),
    "uvloop-streams": (
        run_uvloop_streams,
        ("uvloop",),
        "uvloop, asyncio.start_server(handler)",
    ),
    "trio-asyncio-streams": (
        run_trio_asyncio_streams,
        ("trio", "trio_asyncio"),
        "asyncio.start_server(handler) inside trio_asyncio.open_loop() under trio.run",
    ),
}


def _with_handler(runner, handler):
    def run(host, port):
        runner(handler, host, port)

    return run


#: name -> (runner, modules it needs, what it is)
SERVERS = {
    "protoport-trio": (
        _run_protoport_trio,
        ("protoport", "trio"),
        "protoport.open_loop() + loop.create_server(Echo) under trio.run",
    ),
    "protoport-asyncio": (
        _run_protoport_asyncio,
        ("protoport",),
        "protoport.open_loop() + loop.create_server(Echo) under asyncio.run",
    ),
    "asyncio": (
        _run_asyncio,
        (),
        "native asyncio selector loop, loop.create_server(Echo)",
    ),
    "uvloop": (
        _run_uvloop,
        ("uvloop",),
        "uvloop, loop.create_server(Echo)",
    ),
    "trio-asyncio": (
        _run_trio_asyncio,
        ("trio", "trio_asyncio"),
        "asyncio's own transports on trio_asyncio.open_loop() under trio.run",
    ),
    "anyio-trio": (
        _run_anyio_trio,
        ("anyio", "trio"),
        "raw AnyIO TCP listener, receive()/send() loop, Trio backend",
    ),
    "anyio-asyncio": (
        _run_anyio_asyncio,
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


def missing_modules(kind, servers=None):
    modules = (servers or ALL_SERVERS)[kind][1]
    return [m for m in modules if importlib.util.find_spec(m) is None]


def pin_cpu(cpu):
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def cmd_serve(args):
    pin_cpu(args.cpu)
    # A shell starts background jobs with SIGINT ignored; the driver stops servers
    # with SIGINT, so take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    runner = ALL_SERVERS[args.kind][0]
    try:
        runner(args.host, args.port)
    except BaseException as exc:
        if not only_interrupts(exc):
            raise


def only_interrupts(exc):
    """Whether *exc* is a KeyboardInterrupt, or a group of nothing else (Trio
    nurseries wrap it)."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return bool(inner) and all(only_interrupts(e) for e in inner)


# -- load generator ---------------------------------------------------------------

#: How many different payloads the generator cycles through, so that a server
#: echoing stale or reordered bytes is caught.
PAYLOAD_VARIANTS = 7


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


def make_payloads(size):
    rng = random.Random(size)
    return [rng.randbytes(size) for _ in range(PAYLOAD_VARIANTS)]


async def run_load(host, port, size, duration, connections, warmup):
    loop = asyncio.get_running_loop()
    payloads = make_payloads(size)
    failed = loop.create_future()

    def on_error(exc):
        if not failed.done():
            failed.set_result(exc)

    clients = []
    try:
        for _ in range(connections):
            _, client = await loop.create_connection(
                lambda: LoadClient(payloads, on_error), host, port
            )
            clients.append(client)

        async def phase(seconds):
            try:
                exc = await asyncio.wait_for(asyncio.shield(failed), seconds)
            except asyncio.TimeoutError:
                return
            raise exc

        await phase(warmup)
        start_counts = [c.count for c in clients]
        start = time.perf_counter()
        await phase(duration)
        end_counts = [c.count for c in clients]
        elapsed = time.perf_counter() - start
    finally:
        for client in clients:
            client.stopped = True
            if client.transport is not None:
                client.transport.abort()
    per_connection = [e - s for s, e in zip(start_counts, end_counts, strict=True)]
    requests = sum(per_connection)
    return {
        "requests_per_second": requests / elapsed,
        "requests": requests,
        "elapsed": elapsed,
        "size": size,
        "connections": connections,
        "per_connection_min": min(per_connection),
        "per_connection_max": max(per_connection),
        "total_requests": sum(c.count for c in clients),
    }


def cmd_load(args):
    pin_cpu(args.cpu)
    coro = run_load(
        args.host, args.port, args.size, args.duration, args.connections, args.warmup
    )
    try:
        import uvloop
    except ImportError:
        loop_name = "asyncio"
        result = asyncio.run(coro)
    else:
        loop_name = "uvloop"
        result = uvloop.run(coro)
    result["client_loop"] = loop_name
    print(json.dumps(result))


# -- driver -----------------------------------------------------------------------


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def process_cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc (None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 of stat(5); the split above starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_accepting(proc, host, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not accept connections within {timeout} s")


def stop_process(proc, grace=3.0):
    """Stop a process this script started: SIGINT, then SIGTERM, then SIGKILL.
    Returns how it ended, for the log."""
    if proc.poll() is not None:
        return "exited"
    steps = ((proc.send_signal, signal.SIGINT), (proc.send_signal, signal.SIGTERM))
    for send, sig in steps:
        with contextlib.suppress(ProcessLookupError):
            send(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        return sig.name
    proc.kill()
    proc.wait()
    return "SIGKILL"


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def measure(kind, size, args, log_dir):
    script = os.path.abspath(__file__)
    port = free_port(args.host)
    log_path = os.path.join(log_dir, f"{kind}-{size}.log")
    serve_cmd = [sys.executable, script, "serve", kind, "--host", args.host]
    serve_cmd += ["--port", str(port)]
    load_cmd = [sys.executable, script, "load", "--host", args.host]
    load_cmd += ["--port", str(port), "--size", str(size)]
    load_cmd += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    load_cmd += ["--connections", str(args.connections)]
    if args.pin:
        serve_cmd += ["--cpu", "0"]
        load_cmd += ["--cpu", "1"]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            serve_cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        wait_until_accepting(server, args.host, port, timeout=20)
        timeout = args.warmup + args.duration + 30
        cpu_before = process_cpu_seconds(server.pid)
        load = subprocess.run(
            load_cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        cpu_after = process_cpu_seconds(server.pid)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        stop_process(server)
        raise RuntimeError(f"{kind} @ {size}: {exc}\n{tail(log_path)}") from None
    finally:
        how = stop_process(server)
    if load.returncode != 0:
        raise RuntimeError(
            f"{kind} @ {size}: load generator failed "
            f"(exit {load.returncode}):\n{load.stderr[-2000:]}\n"
            f"server log:\n{tail(log_path)}"
        )
    result = json.loads(load.stdout)
    result["server_cpu_us_per_request"] = None
    if cpu_before is not None and cpu_after is not None and result["total_requests"]:
        used = cpu_after - cpu_before
        result["server_cpu_us_per_request"] = used / result["total_requests"] * 1e6
    result["server_stopped_by"] = how
    return result


def fmt_rate(value):
    return f"{value:,.0f}"


def fmt_size(size):
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def summarize(samples, servers, sizes, ours_kinds=PROTOPORT_SERVERS, goals=TARGETS):
    """Medians, ranges and ratios from ``samples[server][size]``, a list of the
    load generator's results; ratios of each of *ours_kinds* to every other
    server, and the verdicts on *goals*."""
    stats = {}
    for kind in servers:
        for size in sizes:
            results = samples.get(kind, {}).get(size, [])
            if not results:
                continue
            values = [r["requests_per_second"] for r in results]
            cpu = [
                r["server_cpu_us_per_request"]
                for r in results
                if r.get("server_cpu_us_per_request") is not None
            ]
            stats.setdefault(kind, {})[size] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "rounds": values,
                "cpu_us_per_request": statistics.median(cpu) if cpu else None,
            }
    ratios = {}
    for ours in ours_kinds:
        if ours not in stats:
            continue
        for other in servers:
            if other == ours or other not in stats:
                continue
            for size in sizes:
                a = stats[ours].get(size)
                b = stats[other].get(size)
                if a and b and b["median"] > 0:
                    ratios.setdefault(ours, {}).setdefault(other, {})[size] = (
                        a["median"] / b["median"]
                    )
    targets = []
    for ours, other, minimum in goals:
        ratio = ratios.get(ours, {}).get(other, {}).get(TARGET_SIZE)
        targets.append(
            {
                "server": ours,
                "peer": other,
                "size": TARGET_SIZE,
                "minimum": minimum,
                "ratio": ratio,
                "met": None if ratio is None else ratio >= minimum,
            }
        )
    return stats, ratios, targets


def load_average():
    """The 1-minute load average, or None where the OS does not tell."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def environment():
    versions = {}
    for dist in ("protoport", "trio", "anyio", "uvloop", "trio-asyncio"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def render_markdown(env, args, servers, sizes, stats, ratios, targets, skipped):
    lines = [f"Echo benchmark, {getattr(args, 'mode', 'protocols')} mode.", ""]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines.append(
        f"Measured {env['date']} on {env['platform']}, {env['cpus']} CPUs, "
        f"{env['implementation']} {env['python']}; {versions}."
    )
    load = env.get("load_average") or {}
    if load.get("before") is not None and load.get("after") is not None:
        lines[-1] += (
            f" Load average (1 min) before and after the run: "
            f"{load['before']:.2f}, {load['after']:.2f}."
        )
    lines.append(
        f"{args.connections} connections, one message in flight on each; "
        f"{args.rounds} round(s) of {args.duration:g} s per server and size "
        f"(after {args.warmup:g} s of warm-up), order shuffled every time. "
        "Requests per second: median (min-max)."
    )
    lines.append("")
    header = "| server | " + " | ".join(fmt_size(s) for s in sizes) + " |"
    lines.append(header)
    lines.append("|" + " --- |" * (len(sizes) + 1))
    for kind in servers:
        cells = []
        for size in sizes:
            s = stats.get(kind, {}).get(size)
            if s is None:
                cells.append("-")
            else:
                cells.append(
                    f"{fmt_rate(s['median'])} "
                    f"({fmt_rate(s['min'])}-{fmt_rate(s['max'])})"
                )
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    if any(
        s["cpu_us_per_request"] is not None
        for by_size in stats.values()
        for s in by_size.values()
    ):
        lines.append("")
        lines.append(
            "Server CPU time (user + system) per request in microseconds, median; "
            "lower is better, and less disturbed by a busy machine than throughput:"
        )
        lines.append("")
        lines.append(header)
        lines.append("|" + " --- |" * (len(sizes) + 1))
        for kind in servers:
            cells = []
            for size in sizes:
                s = stats.get(kind, {}).get(size)
                if s is None or s["cpu_us_per_request"] is None:
                    cells.append("-")
                else:
                    cells.append(f"{s['cpu_us_per_request']:.1f}")
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    for ours in ratios:
        lines.append("")
        lines.append(f"Ratio of medians, {ours} / peer:")
        lines.append("")
        lines.append("| peer | " + " | ".join(fmt_size(s) for s in sizes) + " |")
        lines.append("|" + " --- |" * (len(sizes) + 1))
        for other, by_size in ratios[ours].items():
            cells = [f"{by_size[s]:.2f}x" if s in by_size else "-" for s in sizes]
            lines.append(f"| {other} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Targets at {fmt_size(TARGET_SIZE)} (goals, not assertions):")
    lines.append("")
    for t in targets:
        if t["ratio"] is None:
            verdict = "not measured"
        else:
            verdict = f"{t['ratio']:.2f}x - {'met' if t['met'] else 'NOT met'}"
        lines.append(f"- {t['server']} >= {t['minimum']:g}x {t['peer']}: {verdict}")
    for kind, why in skipped.items():
        lines.append(f"- skipped {kind}: {why}")
    return "\n".join(lines) + "\n"


def cmd_run(args):
    sizes = [int(s) for s in args.sizes.split(",") if s]
    mode_servers, ours_kinds, goals = MODES[args.mode]
    wanted = [s for s in args.servers.split(",") if s] if args.servers else []
    wanted = wanted or list(mode_servers)
    unknown = [s for s in wanted if s not in mode_servers]
    if unknown:
        sys.exit(f"unknown {args.mode} server(s): {', '.join(unknown)}; see 'list'")
    skipped = {}
    servers = []
    for kind in wanted:
        missing = missing_modules(kind)
        if missing:
            skipped[kind] = f"not installed ({', '.join(missing)})"
            print(f"note: skipping {kind}: {skipped[kind]}", file=sys.stderr)
        else:
            servers.append(kind)
    if not servers:
        sys.exit("no server to measure")

    load_before = load_average()
    samples = {}
    runs = []
    rng = random.Random(args.seed)
    log_dir = tempfile.mkdtemp(prefix="protoport-echo-")
    total = args.rounds * len(sizes) * len(servers)
    done = 0
    for round_no in range(1, args.rounds + 1):
        for size in sizes:
            order = servers[:]
            rng.shuffle(order)
            for kind in order:
                done += 1
                try:
                    result = measure(kind, size, args, log_dir)
                except RuntimeError as exc:
                    sys.exit(f"error: {exc}\nserver logs are kept in {log_dir}")
                rps = result["requests_per_second"]
                samples.setdefault(kind, {}).setdefault(size, []).append(result)
                runs.append({"round": round_no, "server": kind, **result})
                note = ""
                if result["server_stopped_by"] not in ("SIGINT", "exited"):
                    note = f"  (server needed {result['server_stopped_by']})"
                print(
                    f"[{done:>3}/{total}] round {round_no} {fmt_size(size):>7} "
                    f"{kind:<25} {fmt_rate(rps):>9} req/s{note}",
                    file=sys.stderr,
                    flush=True,
                )

    shutil.rmtree(log_dir, ignore_errors=True)
    env = environment()
    env["load_average"] = {"before": load_before, "after": load_average()}
    stats, ratios, targets = summarize(samples, servers, sizes, ours_kinds, goals)
    markdown = render_markdown(
        env, args, servers, sizes, stats, ratios, targets, skipped
    )
    print()
    print(markdown)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown)
    if args.json:
        report = {
            "environment": env,
            "settings": {
                "mode": args.mode,
                "duration": args.duration,
                "warmup": args.warmup,
                "rounds": args.rounds,
                "sizes": sizes,
                "connections": args.connections,
                "pinned": args.pin,
            },
            "skipped": skipped,
            "runs": runs,
            "stats": {
                kind: {str(size): s for size, s in by_size.items()}
                for kind, by_size in stats.items()
            },
            "ratios": {
                ours: {
                    other: {str(size): r for size, r in by_size.items()}
                    for other, by_size in by_other.items()
                }
                for ours, by_other in ratios.items()
            },
            "targets": targets,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


def cmd_list(args):
    for mode, (servers, _, _) in MODES.items():
        print(f"{mode} mode (run --mode {mode}):")
        for kind, (_, _, what) in servers.items():
            missing = missing_modules(kind)
            state = f"  [not installed: {', '.join(missing)}]" if missing else ""
            print(f"  {kind:<25} {what}{state}")


def use_this_checkout():
    """Measure the protoport of the checkout this script lives in."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src")
    if os.path.isfile(os.path.join(src, "protoport", "__init__.py")):
        sys.path.insert(0, os.path.normpath(src))


def main(argv=None):
    use_this_checkout()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run one echo server until interrupted")
    p.add_argument("kind", choices=list(ALL_SERVERS))
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("load", help="run the load generator against one server")
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--connections", type=int, default=10)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("run", help="measure every server, interleaved")
    p.add_argument(
        "--mode",
        choices=list(MODES),
        default="protocols",
        help="protocols: asyncio.Protocol servers (default); streams: the "
        "(reader, writer) handler on start_server()",
    )
    p.add_argument("--host", default=HOST)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sizes", default="1024,10240,102400")
    p.add_argument("--servers", default="", help="comma-separated; default all")
    p.add_argument("--connections", type=int, default=10)
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin the server to CPU 0 and the load generator to CPU 1 (Linux)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for the shuffle")
    p.add_argument("--json", help="write the full results as JSON here")
    p.add_argument("--markdown", help="write the tables as Markdown here")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", help="list the servers and whether they can run")
    p.set_defaults(func=cmd_list)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
