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
import shutil
import socket
import subprocess
import tempfile
import time
from functools import partial

import _driver  # beside this file: what the benchmarks share
from _driver import fmt_rate, fmt_size

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
    **_driver.implementations(
        (
            _serve_protoport,
            "protoport.open_loop() + loop.create_datagram_endpoint(Echo) under "
            "{runtime}.run",
        ),
        (_serve_asyncio, "loop.create_datagram_endpoint(Echo)"),
        (
            _serve_trio_asyncio,
            "asyncio's own datagram transport on trio_asyncio.open_loop() under "
            "trio.run",
        ),
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


def resend_lost(clients):
    now = time.monotonic()
    for client in clients:
        client.resend_if_lost(now)


async def run_load(args):
    """The load: :func:`_driver.closed_loop` of :class:`LoadClient` endpoints,
    sending again what is lost."""
    clients, per_connection, elapsed = await _driver.closed_loop(
        args,
        partial(LoadClient, _driver.payloads(args.size)),
        "count",
        datagram=True,
        tick=(RESEND_AFTER, resend_lost),
    )
    result = _driver.request_figures(args.size, clients, per_connection, elapsed)
    result["lost"] = sum(c.lost for c in clients)
    return result


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
        wait=lambda proc, port: wait_until_echoing(proc, args.host, port),
        cpu_per=_driver.CPU_PER_REQUEST,
    )


def render_markdown(env, args, servers, sizes, stats, cpu_by, targets, skipped):
    lines = ["UDP echo benchmark.", ""]
    lines.append(_driver.measured_line(env) + _driver.load_sentence(env))
    lines.append(
        f"{args.connections} datagrams in flight, one per client endpoint; "
        f"{args.rounds} round(s) of {args.duration:g} s per server and size "
        f"(after {args.warmup:g} s of warm-up), order shuffled every time. "
        "Requests per second: median (min-max)."
    )
    lines.append("")
    lines += _driver.column_table(
        servers, sizes, stats, _driver.fmt_range, head=fmt_size
    )
    lines += _driver.cpu_table(servers, sizes, stats, "datagram")
    lines += _driver.peer_tables(
        cpu_by,
        sizes,
        "CPU time per datagram, peer / {ours} (higher: ours cheaper):",
        fmt_size,
    )
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

    log_dir = tempfile.mkdtemp(prefix="protoport-udp-echo-")
    samples, runs, env = _driver.run_rounds(
        servers,
        sizes,
        args,
        log_dir,
        lambda kind, size: measure(kind, size, args, log_dir),
        describe,
    )
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
    settings = {
        "duration": args.duration,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "sizes": sizes,
        "in_flight": args.connections,
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
        cpu_ratios=cpu_by,
        targets=targets,
    )


def cmd_list(args):
    _driver.list_servers(SERVERS, 20)


def main(argv=None):
    _driver.main(
        argv,
        __doc__,
        {"load": cmd_load, "run": cmd_run, "list": cmd_list},
        SERVERS,
        "run one UDP echo server until interrupted",
        sizes="512",
    )


if __name__ == "__main__":
    main()
