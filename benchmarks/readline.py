"""Readline benchmark: how many lines per second a stream server's
``async for line in reader`` loop gets through, protoport against its peers.

Every server runs in a process of its own and serves the same ``(reader,
writer)`` handler, on the same servers as ``echo.py run --mode streams``
(protoport's ``start_server()`` on Trio and on asyncio, asyncio's own
``start_server()`` on asyncio, uvloop and trio-asyncio). The handler reads lines
of 100 bytes and counts them; the last line of each batch starts with ``!``,
and the handler answers it with the number of lines it counted in the batch.

A separate load generator keeps a few batches in flight on each of its
connections, so the server always has lines waiting in its socket and what is
measured is its reading loop, not round trips: each answer is checked and
triggers the next batch. The driver interleaves servers and rounds.

Usage::

    python benchmarks/readline.py run [--duration 2] [--rounds 3]
        [--servers a,b,...] [--json out.json] [--markdown out.md]
    python benchmarks/readline.py serve KIND --port N
    python benchmarks/readline.py load --port N --duration D
    python benchmarks/readline.py list
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import echo  # the echo benchmark, beside this file: its servers and helpers

HOST = echo.HOST

#: Bytes per line, the newline included.
LINE_SIZE = 100
#: Lines per batch; the server answers the last one.
BATCH_LINES = 200
#: Batches each connection keeps in flight.
IN_FLIGHT = 2

#: (server, peer, minimum ratio of medians); shown, never asserted.
TARGETS = (("protoport-trio-streams", "asyncio-streams", 1.2),)
OURS = echo.PROTOPORT_STREAM_SERVERS


# -- server -----------------------------------------------------------------------


async def count_lines(reader, writer):
    """The handler every server runs, unchanged: count lines, answer each batch."""
    count = 0
    try:
        async for line in reader:
            count += 1
            if line[0] == 33:  # b"!" starts the last line of a batch
                writer.write(b"%d\n" % count)
                count = 0
                await writer.drain()
    except ConnectionError:
        pass  # the load generator aborts its connections when it is done
    finally:
        writer.close()


SERVERS = {
    kind: (echo._with_handler(runner, count_lines), modules, what)
    for kind, (runner, modules, what) in echo.STREAM_RUNNERS.items()
}


def missing_modules(kind):
    return echo.missing_modules(kind, SERVERS)


def cmd_serve(args):
    echo.pin_cpu(args.cpu)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        SERVERS[args.kind][0](args.host, args.port)
    except BaseException as exc:
        if not echo.only_interrupts(exc):
            raise


# -- load generator ---------------------------------------------------------------


class BadAnswer(Exception):
    pass


def make_batch():
    """One batch: BATCH_LINES lines of LINE_SIZE bytes, all different, the last
    one starting with ``!``."""
    rng = random.Random(LINE_SIZE * BATCH_LINES)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
    lines = []
    for i in range(BATCH_LINES):
        first = b"!" if i == BATCH_LINES - 1 else b"."
        body = bytes(rng.choice(alphabet) for _ in range(LINE_SIZE - 2))
        lines.append(first + body + b"\n")
    batch = b"".join(lines)
    assert len(batch) == LINE_SIZE * BATCH_LINES
    assert batch.count(b"\n") == BATCH_LINES
    return batch


class LineClient(asyncio.Protocol):
    """Keeps IN_FLIGHT batches in flight, checks every answer, counts batches."""

    def __init__(self, batch, on_error):
        self.batch = batch
        self.expected = b"%d" % BATCH_LINES
        self.on_error = on_error
        self.pending = b""
        self.batches = 0
        self.transport = None
        self.stopped = False

    def connection_made(self, transport):
        self.transport = transport
        for _ in range(IN_FLIGHT):
            transport.write(self.batch)

    def data_received(self, data):
        if self.stopped:
            return
        *answers, self.pending = (self.pending + data).split(b"\n")
        for answer in answers:
            if answer != self.expected:
                self.stopped = True
                self.on_error(
                    BadAnswer(
                        f"the server counted {answer!r} lines in a batch of "
                        f"{BATCH_LINES}"
                    )
                )
                return
            self.batches += 1
            self.transport.write(self.batch)

    def connection_lost(self, exc):
        if not self.stopped:
            self.stopped = True
            self.on_error(exc or ConnectionResetError("server closed the connection"))


async def run_load(host, port, duration, connections, warmup):
    loop = asyncio.get_running_loop()
    batch = make_batch()
    failed = loop.create_future()

    def on_error(exc):
        if not failed.done():
            failed.set_result(exc)

    clients = []
    try:
        for _ in range(connections):
            _, client = await loop.create_connection(
                lambda: LineClient(batch, on_error), host, port
            )
            clients.append(client)

        async def phase(seconds):
            try:
                exc = await asyncio.wait_for(asyncio.shield(failed), seconds)
            except asyncio.TimeoutError:
                return
            raise exc

        await phase(warmup)
        start_counts = [c.batches for c in clients]
        start = time.perf_counter()
        await phase(duration)
        end_counts = [c.batches for c in clients]
        elapsed = time.perf_counter() - start
    finally:
        for client in clients:
            client.stopped = True
            if client.transport is not None:
                client.transport.abort()
    batches = sum(e - s for s, e in zip(start_counts, end_counts, strict=True))
    return {
        "lines_per_second": batches * BATCH_LINES / elapsed,
        "lines": batches * BATCH_LINES,
        "elapsed": elapsed,
        "connections": connections,
        "total_lines": sum(c.batches for c in clients) * BATCH_LINES,
    }


def cmd_load(args):
    echo.pin_cpu(args.cpu)
    coro = run_load(args.host, args.port, args.duration, args.connections, args.warmup)
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


def measure(kind, args, log_dir):
    script = os.path.abspath(__file__)
    port = echo.free_port(args.host)
    log_path = os.path.join(log_dir, f"{kind}.log")
    serve_cmd = [sys.executable, script, "serve", kind, "--host", args.host]
    serve_cmd += ["--port", str(port)]
    load_cmd = [sys.executable, script, "load", "--host", args.host]
    load_cmd += ["--port", str(port)]
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
        echo.wait_until_accepting(server, args.host, port, timeout=20)
        cpu_before = echo.process_cpu_seconds(server.pid)
        load = subprocess.run(
            load_cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=args.warmup + args.duration + 30,
            check=False,
        )
        cpu_after = echo.process_cpu_seconds(server.pid)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        echo.stop_process(server)
        raise RuntimeError(f"{kind}: {exc}\n{echo.tail(log_path)}") from None
    finally:
        how = echo.stop_process(server)
    if load.returncode != 0:
        raise RuntimeError(
            f"{kind}: load generator failed (exit {load.returncode}):\n"
            f"{load.stderr[-2000:]}\nserver log:\n{echo.tail(log_path)}"
        )
    result = json.loads(load.stdout)
    result["server_cpu_ns_per_line"] = None
    if cpu_before is not None and cpu_after is not None and result["total_lines"]:
        result["server_cpu_ns_per_line"] = (
            (cpu_after - cpu_before) / result["total_lines"] * 1e9
        )
    result["server_stopped_by"] = how
    return result


def summarize(samples, servers):
    stats = {}
    for kind in servers:
        results = samples.get(kind)
        if not results:
            continue
        values = [r["lines_per_second"] for r in results]
        cpu = [
            r["server_cpu_ns_per_line"]
            for r in results
            if r["server_cpu_ns_per_line"] is not None
        ]
        stats[kind] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "rounds": values,
            "cpu_ns_per_line": statistics.median(cpu) if cpu else None,
        }
    ratios = {
        ours: {
            other: stats[ours]["median"] / stats[other]["median"]
            for other in stats
            if other != ours and stats[other]["median"] > 0
        }
        for ours in OURS
        if ours in stats
    }
    targets = []
    for ours, other, minimum in TARGETS:
        ratio = ratios.get(ours, {}).get(other)
        targets.append(
            {
                "server": ours,
                "peer": other,
                "minimum": minimum,
                "ratio": ratio,
                "met": None if ratio is None else ratio >= minimum,
            }
        )
    return stats, ratios, targets


def render_markdown(env, args, servers, stats, ratios, targets, skipped):
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines = [
        f"Readline benchmark. Measured {env['date']} on {env['platform']}, "
        f"{env['cpus']} CPUs, {env['implementation']} {env['python']}; {versions}.",
        f"Lines of {LINE_SIZE} bytes, batches of {BATCH_LINES}, {IN_FLIGHT} batches "
        f"in flight on each of {args.connections} connections; {args.rounds} "
        f"round(s) of {args.duration:g} s per server (after {args.warmup:g} s of "
        "warm-up), order shuffled every time.",
        "",
    ]
    ours_cols = [o for o in OURS if o in ratios]
    header = "| server | lines/s, median (min-max) | server CPU ns/line |"
    header += "".join(f" {o} / server |" for o in ours_cols)
    lines.append(header)
    lines.append("|" + " --- |" * (3 + len(ours_cols)))
    for kind in servers:
        s = stats.get(kind)
        if s is None:
            continue
        cpu = "-" if s["cpu_ns_per_line"] is None else f"{s['cpu_ns_per_line']:,.0f}"
        row = (
            f"| {kind} | {echo.fmt_rate(s['median'])} "
            f"({echo.fmt_rate(s['min'])}-{echo.fmt_rate(s['max'])}) | {cpu} |"
        )
        for ours in ours_cols:
            r = ratios[ours].get(kind)
            row += " - |" if r is None else f" {r:.2f}x |"
        lines.append(row)
    lines.append("")
    lines.append("Targets (goals, not assertions):")
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
    wanted = [s for s in args.servers.split(",") if s] if args.servers else []
    wanted = wanted or list(SERVERS)
    unknown = [s for s in wanted if s not in SERVERS]
    if unknown:
        sys.exit(f"unknown server(s): {', '.join(unknown)}; see 'list'")
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

    load_before = echo.load_average()
    samples = {}
    runs = []
    rng = random.Random(args.seed)
    log_dir = tempfile.mkdtemp(prefix="protoport-readline-")
    total = args.rounds * len(servers)
    done = 0
    for round_no in range(1, args.rounds + 1):
        order = servers[:]
        rng.shuffle(order)
        for kind in order:
            done += 1
            try:
                result = measure(kind, args, log_dir)
            except RuntimeError as exc:
                sys.exit(f"error: {exc}\nserver logs are kept in {log_dir}")
            samples.setdefault(kind, []).append(result)
            runs.append({"round": round_no, "server": kind, **result})
            print(
                f"[{done:>3}/{total}] round {round_no} {kind:<25} "
                f"{echo.fmt_rate(result['lines_per_second']):>10} lines/s",
                file=sys.stderr,
                flush=True,
            )
    shutil.rmtree(log_dir, ignore_errors=True)
    env = echo.environment()
    env["load_average"] = {"before": load_before, "after": echo.load_average()}
    stats, ratios, targets = summarize(samples, servers)
    markdown = render_markdown(env, args, servers, stats, ratios, targets, skipped)
    print()
    print(markdown)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown)
    if args.json:
        report = {
            "environment": env,
            "settings": {
                "duration": args.duration,
                "warmup": args.warmup,
                "rounds": args.rounds,
                "line_size": LINE_SIZE,
                "batch_lines": BATCH_LINES,
                "in_flight": IN_FLIGHT,
                "connections": args.connections,
                "pinned": args.pin,
            },
            "skipped": skipped,
            "runs": runs,
            "stats": stats,
            "ratios": ratios,
            "targets": targets,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


def cmd_list(args):
    for kind, (_, _, what) in SERVERS.items():
        missing = missing_modules(kind)
        state = f"  [not installed: {', '.join(missing)}]" if missing else ""
        print(f"{kind:<25} {what}{state}")


def main(argv=None):
    echo.use_this_checkout()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run one line-counting server until interrupted")
    p.add_argument("kind", choices=list(SERVERS))
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("load", help="run the load generator against one server")
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--connections", type=int, default=10)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("run", help="measure every server, interleaved")
    p.add_argument("--host", default=HOST)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=3)
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
