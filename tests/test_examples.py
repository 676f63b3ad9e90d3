"""The asyncio documentation's protocol examples, ported, run from the command line."""

from __future__ import annotations

import pytest

from _helpers import (
    BACKENDS,
    free_port,
    run_example,
    start_example,
    stop_example,
    wait_for_line,
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_socketpair_protocol(backend: str) -> None:
    assert run_example("socketpair_protocol.py", "--backend", backend) == (
        "Received: abc\n"
    )


@pytest.mark.parametrize("server_backend", BACKENDS)
@pytest.mark.parametrize("client_backend", BACKENDS)
def test_tcp_echo_protocols(server_backend: str, client_backend: str) -> None:
    port = free_port()
    server = start_example(
        "tcp_echo_server_protocol.py", "--backend", server_backend, "--port", str(port)
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
        stop_example(server)
