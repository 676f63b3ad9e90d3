"""The asyncio documentation's protocol examples, ported, run from the command line."""

from __future__ import annotations

import socket
import time

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


def wait_for_udp_echo(port: int) -> None:
    """Return once the UDP echo server on *port* answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("127.0.0.1", port))
        probe.settimeout(0.1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                probe.send(b"probe")
                if probe.recv(100) == b"probe":
                    return
            except OSError:  # refused, or no answer yet
                time.sleep(0.05)
    raise AssertionError(f"no UDP echo on port {port}")


@pytest.mark.parametrize("server_backend", BACKENDS)
@pytest.mark.parametrize("client_backend", BACKENDS)
def test_udp_echo_protocols(server_backend: str, client_backend: str) -> None:
    port = free_port()
    server = start_example(
        "udp_echo_server_protocol.py", "--backend", server_backend, "--port", str(port)
    )
    try:
        assert wait_for_line(server, "Starting") == "Starting UDP server\n"
        # The server binds its socket after it says it starts: until its echo
        # comes back, a datagram may be refused or lost.
        wait_for_udp_echo(port)
        client_output = run_example(
            "udp_echo_client_protocol.py",
            "--backend",
            client_backend,
            "--port",
            str(port),
        )
        assert client_output == (
            "Send: Hello World!\n"
            "Received: Hello World!\n"
            "Close the socket\n"
            "Connection closed\n"
        )
        received = wait_for_line(server, "Received 'Hello")
        assert received.startswith("Received 'Hello World!' from ('127.0.0.1', ")
        client_address = received.split(" from ", 1)[1]
        assert wait_for_line(server, "Send 'Hello") == (
            f"Send 'Hello World!' to {client_address}"
        )
    finally:
        stop_example(server)


@pytest.mark.parametrize("backend", BACKENDS)
def test_udp_dns_lookup(backend: str) -> None:
    assert run_example("udp_dns_lookup.py", "--backend", backend) == (
        "www.example.test: 192.0.2.10\n"
        "mail.example.test: 192.0.2.25\n"
        "ftp.example.test: no such name\n"
    )
