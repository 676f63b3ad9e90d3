"""Instructions per request: how much user-space work each echo server does.

Throughput on a shared machine moves by 10 % and more from one run to the next;
the number of instructions a server executes per request hardly moves. This
script runs the echo servers of ``echo.py`` (protocol or streams mode) or of
``udp_echo.py`` (udp mode) one at a time under valgrind's callgrind, sends each
the same requests in lock step on 10 connections or client endpoints (a round
sends one request on every one, then reads every answer back: 1 KiB over TCP,
512-byte datagrams over UDP), and counts the instructions of the measured
requests only (the warm-up is excluded with ``callgrind_control``).

What is counted is the interpreter's and the libraries' share of a request, the
share in which the implementations differ; the kernel's share (the same system
calls for all of them) is not counted. Lower is better. How many requests one
loop iteration serves depends on timing, so counts still move by a few per cent.

Usage::

    python benchmarks/instructions.py run [--mode streams|protocols|udp]
        [--servers a,b,...]
        [--requests 10000] [--markdown out.md]

Needs ``valgrind`` (with ``callgrind_control``) on the PATH.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import _driver  # beside this file: what the benchmarks share
import echo  # the echo benchmarks, beside this file: their servers
import udp_echo

#: Connections and warm-up requests of every measurement.
CONNECTIONS = 10
WARMUP = 2000


def tcp_clients(port):
    return [socket.create_connection((_driver.HOST, port)) for _ in range(CONNECTIONS)]


def udp_clients(port):
    clients = []
    for _ in range(CONNECTIONS):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.connect((_driver.HOST, port))
        clients.append(client)
    return clients


def wait_accepting(server, port):
    _driver.wait_until_accepting(server, _driver.HOST, port, timeout=120)


def wait_echoing(server, port):
    udp_echo.wait_until_echoing(server, _driver.HOST, port, timeout=120)


def lock_step(conns, rounds, size):
    """Send a request of *size* bytes on every one of *conns* and read the
    answers back, *rounds* times (a datagram comes back whole, a stream's echo
    may come in pieces)."""
    payload = b"x" * size
    for _ in range(rounds):
        for conn in conns:
            conn.sendall(payload)
        for conn in conns:
            left = size
            while left:
                left -= len(conn.recv(65536))


class Mode:
    """What a mode measures: the script serving it, its servers, the one the
    others are compared with, how to reach them and the request size."""

    def __init__(self, script, servers, ours, missing, clients, wait, size):
        self.script = script
        self.servers = servers
        self.ours = ours
        self.missing = missing
        self.clients = clients
        self.wait = wait
        self.size = size


MODES = {
    **{
        name: Mode(
            "echo.py",
            available,
            ours[0],
            echo.missing_modules,
            tcp_clients,
            wait_accepting,
            1024,
        )
        for name, (available, ours, _) in echo.MODES.items()
    },
    "udp": Mode(
        "udp_echo.py",
        # The kernel floor replaces its process with a compiled program, which
        # callgrind would not follow.
        {k: v for k, v in udp_echo.SERVERS.items() if k != "kernel-floor"},
        udp_echo.PROTOPORT_SERVERS[0],
        udp_echo.missing_modules,
        udp_clients,
        wait_echoing,
        udp_echo.TARGET_SIZE,
    ),
}


def callgrind_control(action, pid):
    subprocess.run(
        ["callgrind_control", action, str(pid)], check=True, capture_output=True
    )


def count(mode, kind, requests, work_dir):
    """Instructions per request of server *kind* of *mode*."""
    port = _driver.free_port(_driver.HOST)
    out = os.path.join(work_dir, f"{kind}.callgrind")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        os.path.join(os.path.dirname(os.path.abspath(__file__)), mode.script),
        "serve",
        kind,
        "--host",
        _driver.HOST,
        "--port",
        str(port),
    ]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        mode.wait(server, port)
        conns = mode.clients(port)
        lock_step(conns, WARMUP // CONNECTIONS, mode.size)
        callgrind_control("--zero", server.pid)
        lock_step(conns, requests // CONNECTIONS, mode.size)
        callgrind_control("--dump", server.pid)
        for conn in conns:
            conn.close()
    finally:
        _driver.stop_process(server, grace=30)
    # The dump of the measured requests is the file callgrind wrote last.
    dumps = [
        os.path.join(work_dir, name)
        for name in os.listdir(work_dir)
        if name.startswith(f"{kind}.callgrind.")
    ]
    with open(max(dumps, key=os.path.getmtime)) as f:
        total = re.search(r"^(?:summary|totals):\s*(\d+)", f.read(), re.M)
    return int(total.group(1)) / requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="count every server of a mode")
    run.add_argument("--mode", choices=sorted(MODES), default="streams")
    run.add_argument("--servers", default="")
    run.add_argument("--requests", type=int, default=10000)
    run.add_argument("--markdown")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind (with callgrind_control) is not installed")
    mode = MODES[args.mode]
    servers, skipped = _driver.choose_servers(args.servers, mode.servers, mode.missing)
    # Whole rounds only: a request on every connection.
    requests = args.requests // CONNECTIONS * CONNECTIONS
    counts = {}
    with tempfile.TemporaryDirectory() as work_dir:
        for kind in servers:
            counts[kind] = count(mode, kind, requests, work_dir)
            print(f"{kind}: {counts[kind]:,.0f} instructions/request", file=sys.stderr)
    # The one every other server is compared with: protoport on Trio.
    ours = mode.ours
    lines = [
        _driver.measured_line(_driver.environment()),
        f"{requests:,} requests of {mode.size} bytes in lock step on "
        f"{CONNECTIONS} connections, after {WARMUP:,} of warm-up; user-space "
        "instructions per request under callgrind (lower is better):",
        "",
        *_driver.table(
            "server",
            ["instructions/request", f"{ours} needs"],
            [
                (
                    kind,
                    [
                        f"{counts[kind]:,.0f}",
                        f"{counts[ours] / counts[kind]:.2f}x"
                        if ours in counts
                        else "-",
                    ],
                )
                for kind in servers
            ],
        ),
    ]
    lines += _driver.skipped_lines(skipped)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
