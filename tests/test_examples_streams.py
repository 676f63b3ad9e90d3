"""The asyncio documentation's streams examples, ported, run from the command
line on both runtimes."""

from __future__ import annotations

import re

import pytest

from _helpers import BACKENDS, run_example, start_example, stop_example, wait_for_line


@pytest.mark.parametrize("backend", BACKENDS)
def test_socketpair_streams(backend: str) -> None:
    assert run_example("socketpair_streams.py", "--backend", backend) == (
        "Received: abc\n"
    )


@pytest.mark.parametrize("server_backend", BACKENDS)
@pytest.mark.parametrize("client_backend", BACKENDS)
def test_tcp_echo_streams(server_backend: str, client_backend: str) -> None:
    # Port 0: the server reports the port the system chose.
    server = start_example(
        "tcp_echo_server_streams.py", "--backend", server_backend, "--port", "0"
    )
    try:
        serving = wait_for_line(server, "Serving on")
        match = re.fullmatch(r"Serving on \('127\.0\.0\.1', (\d+)\)\n", serving)
        assert match is not None, serving
        port = match.group(1)
        client_output = run_example(
            "tcp_echo_client_streams.py", "--backend", client_backend, "--port", port
        )
        assert client_output == (
            "Send: 'Hello World!'\nReceived: 'Hello World!'\nClose the connection\n"
        )
        assert re.fullmatch(
            r"Received 'Hello World!' from \('127\.0\.0\.1', \d+\)\n",
            wait_for_line(server, "Received"),
        )
        assert wait_for_line(server, "Send") == "Send: 'Hello World!'\n"
        assert wait_for_line(server, "Close") == "Close the connection\n"
    finally:
        errors = stop_example(server)
    assert server.returncode == -15  # ended by the signal, not by an error
    assert "Error" not in errors
