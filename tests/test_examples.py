"""The asyncio documentation's protocol examples, ported, run from the command line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BACKENDS = ["trio", "asyncio"]


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(process: subprocess.Popen[str], prefix: str) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no line starting with {prefix!r}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_socketpair_protocol(backend: str) -> None:
    assert run_example("socketpair_protocol.py", "--backend", backend) == (
        "Received: abc\n"
    )


@pytest.mark.parametrize("server_backend", BACKENDS)
@pytest.mark.parametrize("client_backend", BACKENDS)
def test_tcp_echo_protocols(server_backend: str, client_backend: str) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "tcp_echo_server_protocol.py"),
            "--backend",
            server_backend,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_line(server, "Serving on") == (
            f"Serving on ('127.0.0.1', {port})\n"
        )
        client_output = run_example(
            "tcp_echo_client_protocol.py",
            "--backend",
            client_backend,
            "--port",
            str(port),
        )
        assert client_output == (
            "Data sent: 'Hello World!'\n"
            "Data received: 'Hello World!'\n"
            "The server closed the connection\n"
        )
        assert wait_for_line(server, "Connection from").startswith(
            "Connection from ('127.0.0.1', "
        )
        assert wait_for_line(server, "Data received") == (
            "Data received: 'Hello World!'\n"
        )
        assert wait_for_line(server, "Send") == "Send: 'Hello World!'\n"
        assert wait_for_line(server, "Close") == "Close the client socket\n"
    finally:
        server.terminate()
        server.communicate(timeout=10)
