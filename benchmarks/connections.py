"""What a connection costs: protoport against its peers.

Every server runs in a process of its own and serves the ``asyncio.Protocol``
echo class of ``echo.py`` (the raw AnyIO server its ``receive()``/``send()``
loop). The load generator is another process (on uvloop when installed, else
asyncio); it measures three things, each for every server, interleaved:

- **rate** -- connections per second: 10 workers (``--connections``), each
  connecting, sending 1 KiB, reading the echo back (checked), closing, and
  starting over; plus the server's CPU time (user + system, from ``/proc``)
  per connection, the steadier figure on a busy machine.
- **tls** -- the same over TLS (certificates made with trustme for the run):
  handshakes per second and server CPU per handshake.
- **client** -- the client side: the measured process is the client, one
  connection after the other made with ``loop.create_connection()`` from a
  task of the loop and closed (until ``connection_lost()``), against an
  acceptor in another process that accepts and closes, with blocking calls;
  the client's CPU time per connection. The implementations are the clients
  of ``clients.py`` (raw AnyIO has none).
- **idle** -- memory per idle connection: the load generator opens 1,000, then
  10,000 connections (``--counts``), each having made one 1 KiB round trip,
  and the driver reads the server's resident set size (``VmRSS``, so the
  kernel's socket buffers are not counted) before and at each count; then
  **latency** -- p50 and p99 of 2,000 1 KiB round trips (``--requests``), one at
  a time, each on a connection drawn at random among the 10,000 idle ones.

Usage::

    python benchmarks/connections.py run [--quick] [--what rate,tls,client,idle]
        [--servers a,b,...] [--rounds 3] [--duration 2] [--connections 20]
        [--counts 1000,10000] [--requests 2000] [--json out.json]
        [--markdown out.md]
    python benchmarks/connections.py serve KIND --port N [--cert CERT.pem]
    python benchmarks/connections.py load --port N --mode rate|idle [...]
    python benchmarks/connections.py acceptor --port N
    python benchmarks/connections.py client KIND --port N [--duration 2]
    python benchmarks/connections.py list

Both processes raise their soft limit of open files up to the hard one; the
idle measurement needs one descriptor per connection in each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial

import _driver  # beside this file: what the benchmarks share
import clients  # the client benchmark, beside this file: its implementations
import echo  # the echo benchmark, beside this file: its servers
import echo_tls  # its TLS servers, contexts and certificates
from _driver import fmt_rate

#: The servers measured: the protocol servers of ``echo.py`` and the raw AnyIO
#: one on Trio.
KINDS = (
    "protoport-trio",
    "protoport-asyncio",
    "asyncio",
    "uvloop",
    "trio-asyncio",
    "anyio-trio",
)
SERVERS = {kind: echo.SERVERS[kind] for kind in KINDS}
PROTOPORT_SERVERS = ("protoport-trio", "protoport-asyncio")
MEASURES = ("rate", "tls", "client", "idle")
#: How many connections one pass of the client measurement makes.
CLIENT_PASS = 100
REQUEST_SIZE = 1024
#: Warm-up connections the idle measurement makes (and closes) before it reads
#: the server's baseline memory.
IDLE_WARMUP = 200
#: How many connections the idle measurement opens at once.
OPEN_BATCH = 50

#: (server, peer, measure, minimum) -- goals, shown, never asserted. For rate,
#: tls and client the ratio is the peer's CPU time per connection over ours
#: (the server's, the client's for client; higher: ours cheaper); for idle the
#: peer's memory per connection over ours.
TARGETS = (
    ("protoport-trio", "asyncio", "rate", 1.0),
    ("protoport-asyncio", "asyncio", "rate", 1.0),
    ("protoport-trio", "asyncio", "tls", 1.0),
    ("protoport-trio", "asyncio", "client", 1.0),
    ("protoport-asyncio", "asyncio", "client", 1.0),
    ("protoport-trio", "asyncio", "idle", 1.0),
    ("protoport-asyncio", "asyncio", "idle", 1.0),
)


def raise_fd_limit():
    """Raise this process's soft limit of open files to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def missing_modules(kind):
    return _driver.missing_modules(kind, SERVERS)


def cmd_serve(args):
    raise_fd_limit()
    if args.cert:
        runner = echo_tls.SERVERS[args.kind][0]
        context = echo_tls.server_context(args.cert)
        _driver.serve(args, lambda: runner(args.host, args.port, context))
    else:
        runner = SERVERS[args.kind][0]
        _driver.serve(args, lambda: runner(args.host, args.port))


def rss_kib(pid):
    """The resident set size of process *pid* in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc")


# -- load generator ---------------------------------------------------------------


class EchoMismatch(Exception):
    pass


class RoundTrip(asyncio.Protocol):
    """Sends a request when connected, or when :meth:`send` is called, and
    resolves a future once the echo is complete (checked); with *close*, closes
    the connection then and resolves once it is lost."""

    def __init__(self, payload, *, close):
        self.payload = payload
        self.close = close
        self.transport = None
        self.got = []
        self.size = 0
        self.done = None

    def connection_made(self, transport):
        self.transport = transport
        self.send()

    def send(self):
        self.done = asyncio.get_running_loop().create_future()
        self.got.clear()
        self.size = 0
        self.transport.write(self.payload)
        return self.done

    def data_received(self, data):
        self.got.append(data)
        self.size += len(data)
        if self.size < len(self.payload):
            return
        if b"".join(self.got) != self.payload:
            self._resolve(EchoMismatch(f"got {self.size} bytes never sent"))
        elif self.close:
            self.transport.close()
        else:
            self._resolve(None)

    def connection_lost(self, exc):
        if self.size < len(self.payload):
            self._resolve(exc or ConnectionResetError("closed before the echo"))
        else:
            self._resolve(None)

    def _resolve(self, exc):
        if self.done.done():
            return
        if exc is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc)


async def connect_once(loop, host, port, payload, context, *, close):
    """One connection with one checked round trip; returns its protocol."""
    options = {}
    if context is not None:
        options = {"ssl": context, "server_hostname": echo_tls.SERVER_NAME}
    _, proto = await loop.create_connection(
        lambda: RoundTrip(payload, close=close), host, port, **options
    )
    await proto.done
    return proto


async def connection_rate(host, port, workers, warmup, duration, ca_file):
    """*workers* loops of connect, round trip, close: how many per second."""
    loop = asyncio.get_running_loop()
    context = echo_tls.client_context(ca_file) if ca_file else None
    payload = random.Random(0).randbytes(REQUEST_SIZE)
    counted = [0, 0]  # all, and while counting
    counting = False
    stop = False

    async def worker():
        while not stop:
            await connect_once(loop, host, port, payload, context, close=True)
            counted[0] += 1
            if counting:
                counted[1] += 1

    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    watch = asyncio.gather(*tasks)
    try:
        await asyncio.wait([watch], timeout=warmup)
        counting = True
        start = time.perf_counter()
        await asyncio.wait([watch], timeout=duration)
        elapsed = time.perf_counter() - start
        counting = False
        if watch.done():
            watch.result()  # a worker failed: its error
    finally:
        stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "connections_per_second": counted[1] / elapsed,
        "connections": counted[1],
        "total_connections": counted[0],
        "elapsed": elapsed,
        "workers": workers,
        "tls": bool(ca_file),
    }


async def idle_then_latency(host, port, counts, requests):
    """Open idle connections up to each of *counts*, reporting each (and the
    end of the warm-up) on stdout and waiting for a line on stdin before going
    on; then time *requests* round trips on connections drawn at random."""
    loop = asyncio.get_running_loop()
    payload = random.Random(0).randbytes(REQUEST_SIZE)

    async def step(report):
        print(json.dumps(report), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)

    async def open_some(n, *, close):
        protos = []
        while len(protos) < n:
            batch = min(OPEN_BATCH, n - len(protos))
            protos += await asyncio.gather(
                *(
                    connect_once(loop, host, port, payload, None, close=close)
                    for _ in range(batch)
                )
            )
        return protos

    await open_some(IDLE_WARMUP, close=True)
    await step({"warm": IDLE_WARMUP})
    idle = []
    for count in counts:
        idle += await open_some(count - len(idle), close=False)
        await step({"open": len(idle)})
    rng = random.Random(1)
    times = []
    for _ in range(requests):
        proto = rng.choice(idle)
        start = time.perf_counter()
        await proto.send()
        times.append(time.perf_counter() - start)
    for proto in idle:
        proto.transport.abort()
    times.sort()
    return {
        "requests": requests,
        "idle_connections": len(idle),
        "p50_us": times[len(times) // 2] * 1e6,
        "p99_us": times[min(len(times) - 1, int(len(times) * 0.99))] * 1e6,
    }


def cmd_load(args):
    raise_fd_limit()
    if args.mode == "rate":
        coro = connection_rate(
            args.host,
            args.port,
            args.connections,
            args.warmup,
            args.duration,
            args.ca,
        )
    else:
        counts = [int(c) for c in args.counts.split(",")]
        coro = idle_then_latency(args.host, args.port, counts, args.requests)
    _driver.run_load(args, coro)


# -- client side ------------------------------------------------------------------


class Closing(asyncio.Protocol):
    """Resolves *lost* when the connection is lost."""

    def __init__(self, lost):
        self.lost = lost

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


async def connect_and_close(host, port, warmup, duration, _open_connection):
    """Connections one after the other, each made with ``create_connection()``
    and closed, the next once the previous one is lost: the count, seconds and
    CPU seconds of *duration* seconds after *warmup* seconds (``clients.py``'s
    measurement, which hands in the stream function this does not use)."""
    loop = asyncio.get_running_loop()

    async def one_pass():
        for _ in range(CLIENT_PASS):
            lost = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda lost=lost: Closing(lost), host, port
            )
            transport.close()
            exc = await lost
            if exc is not None:
                raise exc
        return CLIENT_PASS

    return await clients.measured(one_pass, warmup, duration)


def cmd_client(args):
    _driver.pin_cpu(args.cpu)
    raise_fd_limit()
    work = partial(connect_and_close, args.host, args.port, args.warmup, args.duration)
    result = clients.CLIENTS[args.kind][0](work)
    result["connections"] = result.pop("ops")
    result["connections_per_second"] = result["connections"] / result["elapsed"]
    result["client_cpu_us_per_connection"] = (
        result["cpu_seconds"] / result["connections"] * 1e6
    )
    print(json.dumps(result))


def cmd_acceptor(args):
    """Accept connections and close them, with blocking calls, until
    interrupted: a peer that costs the client nothing but the kernel's work."""

    def run():
        with socket.create_server((args.host, args.port), backlog=1024) as sock:
            while True:
                conn, _ = sock.accept()
                conn.close()

    _driver.serve(args, run)


def _extra_commands(sub):
    p = sub.add_parser("client", help="measure one client's create_connection()")
    p.add_argument("kind", choices=list(clients.CLIENTS))
    p.add_argument("--host", default=_driver.HOST)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_client)

    p = sub.add_parser("acceptor", help="accept and close until interrupted")
    p.add_argument("--host", default=_driver.HOST)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_acceptor)


# -- driver -----------------------------------------------------------------------


def measure_client(kind, args, log_dir):
    """Start the acceptor, run ``client kind`` against it, stop the acceptor."""
    result, _, _ = _driver.measure_once(
        os.path.abspath(__file__),
        args,
        os.path.join(log_dir, f"{kind}-client.log"),
        f"{kind} (client)",
        ("acceptor",),
        ("client", kind),
    )
    return result


def measure_rate(kind, args, log_dir, tls_files):
    extra_serve, extra_load, wait = (), ("--mode", "rate"), None
    if tls_files is not None:
        ca_file, cert_file = tls_files
        extra_serve = ("--cert", cert_file)
        extra_load += ("--ca", ca_file)

        def wait(proc, port):
            echo_tls.wait_until_listening(proc, port, timeout=20)

    what = "tls" if tls_files else "rate"
    return _driver.measure(
        os.path.abspath(__file__),
        kind,
        what,
        args,
        log_dir,
        serve_extra=extra_serve,
        load_extra=extra_load,
        wait=wait,
        label=f"{kind} ({what})",
        cpu_per=("server_cpu_us_per_connection", "total_connections", 1e6),
    )


def measure_idle(kind, args, log_dir):
    """Start the server and the idle load generator; read the server's memory
    at each step the generator reports."""
    port = _driver.free_port(args.host)
    script = os.path.abspath(__file__)
    log_path = os.path.join(log_dir, f"{kind}-idle.log")
    serve_cmd = [sys.executable, script, "serve", kind, "--host", args.host]
    serve_cmd += ["--port", str(port)]
    load_cmd = [sys.executable, script, "load", "--host", args.host]
    load_cmd += ["--port", str(port), "--mode", "idle", "--counts", args.counts]
    load_cmd += ["--requests", str(args.requests)]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            serve_cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    load = None
    try:
        _driver.wait_until_accepting(server, args.host, port, timeout=20)
        load = subprocess.Popen(
            load_cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        memory = {}
        base = None
        while True:
            line = load.stdout.readline()
            if not line:
                break
            report = json.loads(line)
            if "warm" in report:
                time.sleep(0.3)  # let the closed warm-up connections go
                base = rss_kib(server.pid)
            elif "open" in report:
                time.sleep(0.3)
                memory[report["open"]] = (rss_kib(server.pid) - base) / report["open"]
            else:
                result = report
                break
            load.stdin.write("go\n")
            load.stdin.flush()
        load.wait(60)
        if load.returncode != 0:
            raise RuntimeError(
                f"{kind} (idle): load generator failed:\n{load.stderr.read()[-2000:]}"
                f"\nserver log:\n{_driver.tail(log_path)}"
            )
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        if load is not None:
            if load.poll() is None:
                load.kill()
            exc = f"{exc} (load exit {load.wait()})\n{load.communicate()[1][-2000:]}"
        raise RuntimeError(f"{kind} (idle): {exc}\n{_driver.tail(log_path)}") from None
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        _driver.stop_process(server)
    result["kib_per_connection"] = {str(n): kib for n, kib in memory.items()}
    return result


def median_of(results, key, *subkeys):
    values = []
    for result in results:
        value = result.get(key)
        for sub in subkeys:
            value = None if value is None else value.get(sub)
        if value is not None:
            values.append(value)
    return statistics.median(values) if values else None


def summarize(samples, servers, counts):
    """``{server: {figure: median}}`` per measure."""
    stats = {}
    for kind in servers:
        by = samples.get(kind, {})
        s = {}
        for what, side in (("rate", "server"), ("tls", "server"), ("client", "client")):
            results = by.get(what, [])
            if results:
                s[what] = {
                    "per_second": median_of(results, "connections_per_second"),
                    "cpu_us": median_of(results, f"{side}_cpu_us_per_connection"),
                }
        results = by.get("idle", [])
        if results:
            s["idle"] = {
                "kib": {
                    n: median_of(results, "kib_per_connection", str(n)) for n in counts
                },
                "p50_us": median_of(results, "p50_us"),
                "p99_us": median_of(results, "p99_us"),
            }
        stats[kind] = s
    return stats


def ratio(stats, ours, peer, what, counts):
    """The peer's cost over ours (higher: ours cheaper), or None."""
    a = stats.get(ours, {}).get(what)
    b = stats.get(peer, {}).get(what)
    if not a or not b:
        return None
    if what == "idle":
        mine, theirs = a["kib"][counts[-1]], b["kib"][counts[-1]]
    else:
        mine, theirs = a["cpu_us"], b["cpu_us"]
    if not mine or theirs is None:
        return None
    return theirs / mine


def _num(value, fmt="{:.1f}"):
    return "-" if value is None else fmt.format(value)


def render_markdown(env, args, servers, counts, measures, stats, targets, skipped):
    lines = ["What a connection costs.", ""]
    lines.append(_driver.measured_line(env) + _driver.load_sentence(env))
    lines.append(
        f"{args.rounds} round(s), servers shuffled in every round; medians. "
        "Ratios are the peer's cost over protoport's (higher: protoport cheaper)."
    )

    def versus(kind, what):
        return [
            _num(ratio(stats, ours, kind, what, counts), "{:.2f}x")
            for ours in PROTOPORT_SERVERS
            if ours in servers
        ]

    def cost_table(what, side):
        rows = []
        for kind in servers:
            s = stats[kind].get(what)
            if s is not None:
                cells = [fmt_rate(s["per_second"]), _num(s["cpu_us"])]
                rows.append((kind, cells + versus(kind, what)))
        heads = ["connections/s", f"{side} CPU us/conn"]
        heads += [f"vs {ours}" for ours in PROTOPORT_SERVERS if ours in servers]
        return _driver.table(side, heads, rows)

    for what, title in (("rate", "Plain TCP"), ("tls", "TLS")):
        if what not in measures:
            continue
        lines += [
            "",
            f"{title}: {args.connections} workers each connecting, sending "
            f"{REQUEST_SIZE} bytes, reading the echo and closing, for "
            f"{args.duration:g} s (after {args.warmup:g} s of warm-up); server "
            "CPU time (user + system) per connection in microseconds:",
            "",
        ]
        lines += cost_table(what, "server")
    if "client" in measures:
        lines += [
            "",
            "Client side: one connection after the other, each made with "
            "create_connection() from a task of the loop and closed (until "
            f"connection_lost()), for {args.duration:g} s (after {args.warmup:g} s "
            "of warm-up), against a blocking acceptor in another process; the "
            "client's CPU time per connection in microseconds:",
            "",
        ]
        lines += cost_table("client", "client")
    if "idle" in measures:
        lines += [
            "",
            "Idle connections (each made one 1 KiB round trip): growth of the "
            "server's resident set size per connection in KiB, and the latency of "
            f"{args.requests} round trips of 1 KiB, one at a time, on connections "
            f"drawn at random among the {counts[-1]:,} idle ones:",
            "",
        ]
        rows = []
        for kind in servers:
            s = stats[kind].get("idle")
            if s is None:
                continue
            cells = [_num(s["kib"][n], "{:.2f}") for n in counts]
            cells += [_num(s["p50_us"], "{:.0f}"), _num(s["p99_us"], "{:.0f}")]
            rows.append((kind, cells + versus(kind, "idle")))
        heads = [f"KiB/conn at {n:,}" for n in counts] + ["p50 us", "p99 us"]
        heads += [f"memory vs {ours}" for ours in PROTOPORT_SERVERS if ours in servers]
        lines += _driver.table("server", heads, rows)
    lines += ["", "Targets (goals, not assertions):", ""]
    # Each line says its measure, where the driver's lines say a load.
    lines += _driver.target_lines([{**t, "load": t["measure"]} for t in targets])
    lines += _driver.skipped_lines(skipped)
    return "\n".join(lines) + "\n"


QUICK = {"rounds": 1, "duration": 1.0, "warmup": 0.3, "counts": "1000", "requests": 500}


def cmd_run(args):
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    measures = [m for m in args.what.split(",") if m]
    unknown = set(measures) - set(MEASURES)
    if unknown:
        sys.exit(f"unknown measure(s): {', '.join(sorted(unknown))}")
    counts = [int(c) for c in args.counts.split(",")]
    limit = raise_fd_limit()
    if "idle" in measures and limit < counts[-1] + 100:
        sys.exit(f"{counts[-1]} idle connections need more than {limit} open files")
    servers, skipped = _driver.choose_servers(args.servers, SERVERS, missing_modules)
    tls_files = None
    work_dir = tempfile.mkdtemp(prefix="protoport-connections-")
    if "tls" in measures:
        try:
            tls_files = echo_tls.make_certificates(work_dir)
        except ImportError:
            measures.remove("tls")
            skipped["tls"] = "trustme is not installed"

    def measure(kind, what):
        if what == "idle":
            return measure_idle(kind, args, work_dir)
        if what == "tls" and kind not in echo_tls.SERVERS:
            return {"no_tls_server": True}
        if what == "client":
            if kind not in clients.CLIENTS:
                return {"no_client": True}
            return measure_client(kind, args, work_dir)
        return measure_rate(kind, args, work_dir, tls_files if what == "tls" else None)

    def describe(what, kind, result):
        if "no_tls_server" in result:
            return f"{what:<5} {kind:<18} (no TLS server)"
        if "no_client" in result:
            return f"{what:<5} {kind:<18} (no client)"
        if what == "idle":
            kib = ", ".join(
                f"{float(v):.2f}" for v in result["kib_per_connection"].values()
            )
            return (
                f"{what:<5} {kind:<18} {kib} KiB/conn, p50 {result['p50_us']:.0f} "
                f"us, p99 {result['p99_us']:.0f} us"
            )
        cpu = result.get(
            "client_cpu_us_per_connection", result.get("server_cpu_us_per_connection")
        )
        return (
            f"{what:<5} {kind:<18} {fmt_rate(result['connections_per_second']):>7}"
            f" conn/s {'-' if cpu is None else f'{cpu:.0f}':>5} us/conn"
        )

    samples, runs, env = _driver.run_rounds(
        servers, measures, args, work_dir, measure, describe
    )
    for by in samples.values():
        for what in list(by):
            by[what] = [
                r for r in by[what] if "no_tls_server" not in r and "no_client" not in r
            ]
    stats = summarize(samples, servers, counts)
    targets = []
    for ours, peer, what, minimum in TARGETS:
        if what in measures:
            targets += _driver.verdicts(
                [(ours, peer, minimum)],
                lambda o, p, w=what: ratio(stats, o, p, w, counts),
                measure=what,
            )
    markdown = render_markdown(
        env, args, servers, counts, measures, stats, targets, skipped
    )
    settings = {
        "rounds": args.rounds,
        "duration": args.duration,
        "warmup": args.warmup,
        "workers": args.connections,
        "counts": counts,
        "requests": args.requests,
        "measures": measures,
    }
    _driver.publish(
        args,
        markdown,
        env,
        settings,
        skipped,
        [r for r in runs if "no_tls_server" not in r and "no_client" not in r],
        stats=stats,
        targets=targets,
    )


def cmd_list(args):
    _driver.list_servers(SERVERS, 20)


def _serve_options(parser):
    parser.add_argument("--cert", help="serve TLS with this certificate chain")


def _load_options(parser):
    parser.add_argument("--mode", choices=("rate", "idle"), default="rate")
    parser.add_argument("--ca", help="connect with TLS, trusting this CA")
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--requests", type=int, default=2000)


def _run_options(parser):
    parser.add_argument("--what", default=",".join(MEASURES))
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round of 1 s, 1,000 idle connections, 500 requests",
    )


def main(argv=None):
    _driver.main(
        argv,
        __doc__,
        {"serve": cmd_serve, "load": cmd_load, "run": cmd_run, "list": cmd_list},
        SERVERS,
        "run one echo server until interrupted",
        serve_options=_serve_options,
        load_options=_load_options,
        run_options=_run_options,
        extra_commands=_extra_commands,
    )


if __name__ == "__main__":
    main()
