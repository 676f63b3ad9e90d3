"""Closed-loop UDP echo benchmark: protoport against its peers.

Every server runs in a process of its own and serves the same
``asyncio.DatagramProtocol`` echo class, whose ``datagram_received()`` sends the
datagram back to its sender. A separate load generator keeps a fixed number of
datagrams in flight, one per client endpoint (10 by default, 512 bytes each):
each client sends a datagram, waits for its echo, checks it, counts it and sends
the next. A datagram lost on the way is sent again after a while and counted as
lost. The driver interleaves servers and rounds, because a small shared machine
is noisy, and reports requests per second and the server's CPU time per
datagram, the steadier figure on a busy machine.

Usage::

    python benchmarks/udp_echo.py run [--duration 2] [--rounds 3] [--sizes 512]
        [--servers a,b,...] [--json out.json] [--markdown out.md]
    python benchmarks/udp_echo.py serve KIND --port N
    python benchmarks/udp_echo.py load --port N --size S --duration D --connections 10
    python benchmarks/udp_echo.py list
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from functools import partial

import _driver  # beside this file: what the benchmarks share
from _driver import environment, fmt_rate, fmt_size, load_average

# -- servers ----------------------------------------------------------------------


class Echo(asyncio.DatagramProtocol):
    """The echo protocol every server runs, unchanged."""

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def _serve_protoport(host, port):
    import anyio

    import protoport

    async with protoport.open_loop() as loop:
        await loop.create_datagram_endpoint(Echo, local_addr=(host, port))
        await anyio.sleep_forever()


async def _serve_asyncio(host, port):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(host, port))
    try:
        await loop.create_future()
    finally:
        transport.close()


async def _serve_trio_asyncio(host, port):
    import trio
    import trio_asyncio

    async with trio_asyncio.open_loop() as loop:
        transport, _ = await trio_asyncio.aio_as_trio(loop.create_datagram_endpoint)(
            Echo, local_addr=(host, port)
        )
        try:
            await trio.sleep_forever()
        finally:
            transport.close()


#: name -> (runner, modules it needs, what it is)
#: The kernel's floor: the same echo as a compiled C program over epoll, reading
#: until the socket is drained, as an event loop does. What it spends per datagram
#: is what any implementation pays for the receive, the send and the wait.
FLOOR_SOURCE = r"""
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    struct sockaddr_in self = {0};
    self.sin_family = AF_INET;
    self.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &self.sin_addr) != 1) return 2;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (sock < 0 || bind(sock, (struct sockaddr *)&self, sizeof self) < 0) return 1;
    int ep = epoll_create1(0);
    struct epoll_event want = {.events = EPOLLIN, .data.fd = sock}, got;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sock, &want) < 0) return 1;
    char buf[65536];
    for (;;) {
        if (epoll_wait(ep, &got, 1, -1) < 0 && errno != EINTR) return 1;
        for (;;) {
            struct sockaddr_storage peer;
            socklen_t len = sizeof peer;
            ssize_t n = recvfrom(sock, buf, sizeof buf, 0,
                                 (struct sockaddr *)&peer, &len);
            if (n < 0) break;
            sendto(sock, buf, (size_t)n, 0, (struct sockaddr *)&peer, len);
        }
    }
}
"""


def _serve_floor(host, port):
    """Compile the floor server once per source and replace this process with it,
    so the driver measures the compiled program's CPU time."""
    digest = hashlib.sha256(FLOOR_SOURCE.encode()).hexdigest()[:16]
    binary = os.path.join(tempfile.gettempdir(), f"protoport-udp-floor-{digest}")
    if not os.path.exists(binary):
        with tempfile.TemporaryDirectory() as build:
            source = os.path.join(build, "floor.c")
            with open(source, "w") as f:
                f.write(FLOOR_SOURCE)
            partial_binary = os.path.join(build, "floor")
            subprocess.run(
                [shutil.which("cc") or "cc", "-O2", "-o", partial_binary, source],
                check=True,
            )
            os.replace(partial_binary, binary)
    os.execv(binary, [binary, host, str(port)])


SERVERS = {
    "protoport-trio": (
        partial(_driver.run_under, "trio", _serve_protoport),
        ("protoport", "trio"),
        "protoport.open_loop() + loop.create_datagram_endpoint(Echo) under trio.run",
    ),
    "protoport-asyncio": (
        partial(_driver.run_under, "asyncio", _serve_protoport),
        ("protoport",),
        "protoport.open_loop() + loop.create_datagram_endpoint(Echo) under asyncio.run",
    ),
    "asyncio": (
        partial(_driver.run_under, "asyncio", _serve_asyncio),
        (),
        "native asyncio selector loop, loop.create_datagram_endpoint(Echo)",
    ),
    "uvloop": (
        partial(_driver.run_under, "uvloop", _serve_asyncio),
        ("uvloop",),
        "uvloop, loop.create_datagram_endpoint(Echo)",
    ),
    "trio-asyncio": (
        partial(_driver.run_under, "trio", _serve_trio_asyncio),
        ("trio", "trio_asyncio"),
        "asyncio's own datagram transport on trio_asyncio.open_loop() under trio.run",
    ),
    "kernel-floor": (
        _serve_floor,
        (),
        "the same echo in C over epoll (the kernel's share; not a Python peer)",
    ),
}

PROTOPORT_SERVERS = ("protoport-trio", "protoport-asyncio")

#: (server, peer, minimum ratio) of server CPU time per datagram (the peer's
#: over ours) at 512 bytes; shown, never asserted.
TARGETS = (
    ("protoport-trio", "asyncio", 2.0),
    ("protoport-trio", "trio-asyncio", 3.0),
)
TARGET_SIZE = 512


def missing_modules(kind):
    if kind == "kernel-floor" and shutil.which("cc") is None:
        return ["a C compiler (cc)"]
    return _driver.missing_modules(kind, SERVERS)


def cmd_serve(args):
    runner = SERVERS[args.kind][0]
    _driver.serve(args, lambda: runner(args.host, args.port))


def wait_until_echoing(proc, host, port, timeout=20):
    """Wait until the server at *port* echoes a datagram."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.1)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early with code {proc.returncode}")
            probe.sendto(b"ready?", (host, port))
            try:
                if probe.recv(64) == b"ready?":
                    return
            except OSError:  # a timeout, or the port is not open yet
                pass
    raise RuntimeError(f"server did not echo within {timeout} s")


# -- load generator ---------------------------------------------------------------

#: How many different payloads the generator cycles through, so that a server
#: echoing stale or reordered datagrams is caught.
PAYLOAD_VARIANTS = 7
#: After how long without its echo a datagram counts as lost and is sent again.
RESEND_AFTER = 0.2


class EchoMismatch(Exception):
    pass


class LoadClient(asyncio.DatagramProtocol):
    """Keeps exactly one datagram in flight: send, wait for its echo, check it,
    count it, send the next one."""

    def __init__(self, payloads, on_error):
        self.payloads = payloads
        self.on_error = on_error
        self.index = 0
        self.count = 0
        self.lost = 0
        self.sent_at = 0.0
        self.transport = None
        self.stopped = False

    def connection_made(self, transport):
        self.transport = transport
        self.send()

    def send(self):
        self.sent_at = time.monotonic()
        self.transport.sendto(self.payloads[self.index])

    def datagram_received(self, data, addr):
        if self.stopped:
            return
        if data != self.payloads[self.index]:
            # A late echo of a datagram sent again is not an error.
            if data in self.payloads:
                return
            self.stopped = True
            self.on_error(EchoMismatch(f"got {len(data)} bytes never sent"))
            return
        self.count += 1
        self.index = (self.index + 1) % len(self.payloads)
        self.send()

    def resend_if_lost(self, now):
        if not self.stopped and now - self.sent_at > RESEND_AFTER:
            self.lost += 1
            self.send()

    def error_received(self, exc):
        self.stopped = True
        self.on_error(exc)


async def run_load(host, port, size, duration, clients_count, warmup):
    loop = asyncio.get_running_loop()
    failed = loop.create_future()

    def on_error(exc):
        if not failed.done():
            failed.set_result(exc)

    rng = random.Random(size)
    payloads = [rng.randbytes(size) for _ in range(PAYLOAD_VARIANTS)]
    clients = []
    try:
        for _ in range(clients_count):
            _, client = await loop.create_datagram_endpoint(
                lambda: LoadClient(payloads, on_error), remote_addr=(host, port)
            )
            clients.append(client)

        async def phase(seconds):
            end = loop.time() + seconds
            while loop.time() < end:
                try:
                    exc = await asyncio.wait_for(asyncio.shield(failed), RESEND_AFTER)
                except asyncio.TimeoutError:
                    now = time.monotonic()
                    for client in clients:
                        client.resend_if_lost(now)
                    continue
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
                client.transport.close()
    grown = [e - s for s, e in zip(start_counts, end_counts, strict=True)]
    requests = sum(grown)
    return {
        "requests_per_second": requests / elapsed,
        "requests": requests,
        "elapsed": elapsed,
        "size": size,
        "connections": clients_count,
        "per_connection_min": min(grown),
        "per_connection_max": max(grown),
        "total_requests": sum(c.count for c in clients),
        "lost": sum(c.lost for c in clients),
    }


def cmd_load(args):
    _driver.run_load(
        args,
        run_load(
            args.host,
            args.port,
            args.size,
            args.duration,
            args.connections,
            args.warmup,
        ),
    )


# -- driver -----------------------------------------------------------------------


def measure(kind, size, args, log_dir):
    result, cpu, how = _driver.measure_once(
        os.path.abspath(__file__),
        kind,
        args,
        os.path.join(log_dir, f"{kind}-{size}.log"),
        f"{kind} @ {size}",
        load_extra=("--size", str(size)),
        wait=lambda proc, port: wait_until_echoing(proc, args.host, port),
    )
    result["server_cpu_us_per_request"] = None
    if cpu is not None and result["total_requests"]:
        result["server_cpu_us_per_request"] = cpu / result["total_requests"] * 1e6
    result["server_stopped_by"] = how
    return result


def render_markdown(env, args, servers, sizes, stats, cpu_by, targets, skipped):
    lines = ["UDP echo benchmark.", ""]
    lines.append(_driver.measured_line(env))
    load = env.get("load_average") or {}
    if load.get("before") is not None and load.get("after") is not None:
        lines[-1] += (
            f" Load average (1 min) before and after the run: "
            f"{load['before']:.2f}, {load['after']:.2f}."
        )
    lines.append(
        f"{args.connections} datagrams in flight, one per client endpoint; "
        f"{args.rounds} round(s) of {args.duration:g} s per server and size "
        f"(after {args.warmup:g} s of warm-up), order shuffled every time. "
        "Requests per second: median (min-max)."
    )
    lines.append("")

    def rate(kind, size):
        s = stats.get(kind, {}).get(size)
        return "-" if s is None else _driver.fmt_range(s)

    def cpu(kind, size):
        s = stats.get(kind, {}).get(size)
        if s is None or s["cpu_us_per_request"] is None:
            return "-"
        return f"{s['cpu_us_per_request']:.1f}"

    lines += _driver.size_table(servers, sizes, rate)
    lines += [
        "",
        "Server CPU time (user + system) per datagram in microseconds, median; "
        "lower is better, and less disturbed by a busy machine than throughput:",
        "",
    ]
    lines += _driver.size_table(servers, sizes, cpu)
    for ours, by_other in cpu_by.items():
        lines += ["", f"CPU time per datagram, peer / {ours} (higher: ours cheaper):"]
        lines.append("")
        rows = (
            (other, [f"{by_size[s]:.2f}x" if s in by_size else "-" for s in sizes])
            for other, by_size in by_other.items()
        )
        lines += _driver.table("peer", [fmt_size(s) for s in sizes], rows)
    lines.append("")
    lines.append(
        f"Targets at {fmt_size(TARGET_SIZE)}, in CPU time per datagram "
        "(goals, not assertions):"
    )
    lines.append("")
    lines += _driver.target_lines(targets)
    lines += _driver.skipped_lines(skipped)
    return "\n".join(lines) + "\n"


def cmd_run(args):
    sizes = [int(s) for s in args.sizes.split(",") if s]
    servers, skipped = _driver.choose_servers(args.servers, SERVERS, missing_modules)

    def describe(size, kind, result):
        cpu = result["server_cpu_us_per_request"]
        return (
            f"{fmt_size(size):>7} {kind:<20} "
            f"{fmt_rate(result['requests_per_second']):>9} req/s "
            f"{'-' if cpu is None else f'{cpu:.1f}':>6} us/datagram "
            f"({result['lost']} lost)"
        )

    load_before = load_average()
    log_dir = tempfile.mkdtemp(prefix="protoport-udp-echo-")
    samples, runs = _driver.interleave(
        servers,
        sizes,
        args,
        log_dir,
        lambda kind, size: measure(kind, size, args, log_dir),
        describe,
    )
    env = environment()
    env["load_average"] = {"before": load_before, "after": load_average()}
    stats, ratios = _driver.summarize(
        samples,
        servers,
        sizes,
        PROTOPORT_SERVERS,
        "requests_per_second",
        cpu=("server_cpu_us_per_request", "cpu_us_per_request"),
    )
    cpu_by = _driver.cpu_ratios(
        samples, servers, sizes, PROTOPORT_SERVERS, "server_cpu_us_per_request"
    )
    targets = _driver.verdicts(
        TARGETS,
        lambda ours, other: cpu_by.get(ours, {}).get(other, {}).get(TARGET_SIZE),
        size=TARGET_SIZE,
        measure="cpu_per_datagram",
    )
    markdown = render_markdown(
        env, args, servers, sizes, stats, cpu_by, targets, skipped
    )
    report = {
        "environment": env,
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "sizes": sizes,
            "in_flight": args.connections,
            "pinned": args.pin,
        },
        "skipped": skipped,
        "runs": runs,
        "stats": _driver.by_size_json(stats),
        "ratios": {
            ours: _driver.by_size_json(by_other) for ours, by_other in ratios.items()
        },
        "cpu_ratios": {
            ours: _driver.by_size_json(by_other) for ours, by_other in cpu_by.items()
        },
        "targets": targets,
    }
    _driver.publish(args, markdown, report)


def cmd_list(args):
    _driver.list_servers(SERVERS, 20)


def main(argv=None):
    _driver.main(
        argv,
        __doc__,
        {"serve": cmd_serve, "load": cmd_load, "run": cmd_run, "list": cmd_list},
        SERVERS,
        "run one UDP echo server until interrupted",
        sizes="512",
    )


if __name__ == "__main__":
    main()
