"""Throwaway database servers for the ecosystem tests: a redis-server and a
PostgreSQL cluster, each in a temporary directory of its own, on a free port of
the loopback interface, stopped and removed afterwards."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _helpers import free_port

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


class Unavailable(Exception):
    """The server cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class Running:
    host: str
    port: int


def _find(program: str, also: list[str]) -> str:
    """*program* from PATH or, failing that, the newest of the *also* patterns."""
    found = shutil.which(program)
    if found is None:
        candidates = sorted(
            (path for pattern in also for path in glob.glob(pattern)),
            key=lambda path: [int(p) if p.isdigit() else 0 for p in path.split("/")],
        )
        found = next((p for p in reversed(candidates) if os.access(p, os.X_OK)), None)
    if found is None:
        raise Unavailable(f"{program} is not installed")
    return found


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-5:])


def _wait_until_ready(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise Unavailable(f"the server exited at start: {_log_tail(log)}")
        if time.monotonic() > deadline:
            raise Unavailable(f"the server did not start in time: {_log_tail(log)}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _server(
    argv: list[str],
    ready: Callable[[], bool],
    log: Path,
    stop_signal: int,
    as_user: str | None = None,
) -> Iterator[None]:
    """Run *argv* (as *as_user* when given) until the block ends."""
    if as_user is not None:
        argv = _as_user(as_user) + argv
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_ready(process, ready, log)
        yield
    finally:
        _stop(process, stop_signal)


# -- redis ----------------------------------------------------------------------------


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as probe:
            probe.sendall(b"PING\r\n")
            return probe.recv(100) == b"+PONG\r\n"
    except OSError:
        return False


@contextmanager
def redis_server() -> Iterator[Running]:
    """A redis-server that keeps nothing on disk."""
    program = _find("redis-server", [])
    with tempfile.TemporaryDirectory(prefix="protoport-redis-") as directory:
        port = free_port(HOST)
        argv = [program, "--port", str(port), "--bind", HOST, "--dir", directory]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with _server(
            argv,
            lambda: _answers_ping(port),
            Path(directory, "log"),
            signal.SIGTERM,
        ):
            yield Running(HOST, port)


# -- PostgreSQL -------------------------------------------------------------------


POSTGRES_USER = "protoport"
POSTGRES_DATABASE = "postgres"
_POSTGRES_DIRS = ["/usr/lib/postgresql/*/bin/{}", "/usr/local/pgsql/bin/{}"]


def _postgres_program(name: str) -> str:
    return _find(name, [pattern.format(name) for pattern in _POSTGRES_DIRS])


def _unprivileged_user() -> str | None:
    """The user to run PostgreSQL as, which refuses to run as root: None when this
    process is not root, else the "postgres" account (or "nobody")."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise Unavailable("running as root, and no unprivileged user to run PostgreSQL")


def _as_user(name: str) -> list[str]:
    """The command prefix that runs a program as *name* (from root)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise Unavailable("running as root, and setpriv is missing to drop privileges")
    return [setpriv, f"--reuid={name}", f"--regid={name}", "--init-groups"]


@contextmanager
def postgres_server() -> Iterator[Running]:
    """A fresh PostgreSQL cluster with user :data:`POSTGRES_USER`, trusted on the
    loopback interface, its Unix socket in its own directory."""
    initdb = _postgres_program("initdb")
    postgres = _postgres_program("postgres")
    pg_isready = _postgres_program("pg_isready")
    user = _unprivileged_user()
    with tempfile.TemporaryDirectory(prefix="protoport-postgres-") as directory:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        data = os.path.join(directory, "data")
        log = Path(directory, "log")
        prefix = [] if user is None else _as_user(user)
        initialised = subprocess.run(
            [
                *prefix,
                initdb,
                "-D",
                data,
                "-U",
                POSTGRES_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if initialised.returncode != 0:
            error = initialised.stderr.decode(errors="replace").strip()
            raise Unavailable(f"initdb failed: {error}")
        port = free_port(HOST)
        argv = [postgres, "-D", data, "-p", str(port), "-k", directory]
        argv += ["-c", f"listen_addresses={HOST}", "-c", "fsync=off"]

        def ready() -> bool:
            probe = [pg_isready, "-q", "-h", HOST, "-p", str(port)]
            return subprocess.run(probe, check=False).returncode == 0

        # SIGINT: PostgreSQL's fast shutdown.
        with _server(argv, ready, log, signal.SIGINT, as_user=user):
            yield Running(HOST, port)
