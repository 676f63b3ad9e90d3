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

import asyncio
import os
import random
import tempfile
from functools import partial

import _driver  # beside this file: what the benchmarks share
import echo  # the echo benchmark, beside this file: its stream servers

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
    return _driver.missing_modules(kind, SERVERS)


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


async def run_load(args):
    clients, per_connection, elapsed = await _driver.closed_loop(
        args, partial(LineClient, make_batch()), "batches"
    )
    batches = sum(per_connection)
    return {
        "lines_per_second": batches * BATCH_LINES / elapsed,
        "lines": batches * BATCH_LINES,
        "elapsed": elapsed,
        "connections": args.connections,
        "total_lines": sum(c.batches for c in clients) * BATCH_LINES,
    }


def cmd_load(args):
    _driver.run_load(args, run_load(args))


# -- driver -----------------------------------------------------------------------


def measure(kind, args, log_dir):
    return _driver.measure(
        os.path.abspath(__file__),
        kind,
        None,
        args,
        log_dir,
        cpu_per=("server_cpu_ns_per_line", "total_lines", 1e9),
    )


def summarize(samples, servers):
    """Stats and ratios from ``samples[server][None]``, as ``interleave()``
    gives them for a run without sizes, and the verdicts on the targets."""
    by_size, ratios_by_size = _driver.summarize(
        samples,
        servers,
        (None,),
        OURS,
        "lines_per_second",
        cpu=("server_cpu_ns_per_line", "cpu_ns_per_line"),
    )
    stats = {kind: s[None] for kind, s in by_size.items()}
    ratios = {
        ours: {other: r[None] for other, r in ratios_by_size.get(ours, {}).items()}
        for ours in OURS
        if ours in stats
    }
    targets = _driver.verdicts(
        TARGETS, lambda ours, other: ratios.get(ours, {}).get(other)
    )
    return stats, ratios, targets


def render_markdown(env, args, servers, stats, ratios, targets, skipped):
    lines = [
        "Readline benchmark. " + _driver.measured_line(env),
        f"Lines of {LINE_SIZE} bytes, batches of {BATCH_LINES}, {IN_FLIGHT} batches "
        f"in flight on each of {args.connections} connections; {args.rounds} "
        f"round(s) of {args.duration:g} s per server (after {args.warmup:g} s of "
        "warm-up), order shuffled every time.",
        "",
    ]
    ours_cols = [o for o in OURS if o in ratios]
    rows = []
    for kind in servers:
        s = stats.get(kind)
        if s is None:
            continue
        cpu = "-" if s["cpu_ns_per_line"] is None else f"{s['cpu_ns_per_line']:,.0f}"
        cells = [_driver.fmt_range(s), cpu]
        for ours in ours_cols:
            r = ratios[ours].get(kind)
            cells.append("-" if r is None else f"{r:.2f}x")
        rows.append((kind, cells))
    columns = ["lines/s, median (min-max)", "server CPU ns/line"]
    lines += _driver.table(
        "server", columns + [f"{o} / server" for o in ours_cols], rows
    )
    lines.append("")
    lines.append("Targets (goals, not assertions):")
    lines.append("")
    lines += _driver.target_lines(targets)
    lines += _driver.skipped_lines(skipped)
    return "\n".join(lines) + "\n"


def cmd_run(args):
    servers, skipped = _driver.choose_servers(args.servers, SERVERS, missing_modules)

    def describe(size, kind, result):
        return f"{kind:<25} {_driver.fmt_rate(result['lines_per_second']):>10} lines/s"

    log_dir = tempfile.mkdtemp(prefix="protoport-readline-")
    samples, runs, env = _driver.run_rounds(
        servers,
        (None,),
        args,
        log_dir,
        lambda kind, size: measure(kind, args, log_dir),
        describe,
    )
    stats, ratios, targets = summarize(samples, servers)
    markdown = render_markdown(env, args, servers, stats, ratios, targets, skipped)
    settings = {
        "duration": args.duration,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "line_size": LINE_SIZE,
        "batch_lines": BATCH_LINES,
        "in_flight": IN_FLIGHT,
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
    _driver.list_servers(SERVERS, 25)


def main(argv=None):
    _driver.main(
        argv,
        __doc__,
        {"load": cmd_load, "run": cmd_run, "list": cmd_list},
        SERVERS,
        "run one line-counting server until interrupted",
    )


if __name__ == "__main__":
    main()
