"""The asyncio documentation's "get HTTP headers" example over HTTPS, ported, run
from the command line on both runtimes against a local HTTPS server."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator

import pytest
import trustme

from _helpers import BACKENDS, run_example, run_script


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers HEAD with headers that tell what it received."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Request-Path", self.path)
        self.send_header("X-Request-Host", self.headers.get("Host", "-"))
        self.end_headers()

    def version_string(self) -> str:
        return "local-test-server"

    def date_time_string(self, timestamp: float | None = None) -> str:
        return "Thu, 01 Jan 2026 00:00:00 GMT"

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https_port(ca: trustme.CA) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    # A handshake a client gives up on is no error worth printing here.
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def cafile(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_https_get_headers(backend: str, https_port: int, cafile: str) -> None:
    stdout = run_example(
        "https_get_headers.py",
        f"https://127.0.0.1:{https_port}/some/path?q=1",
        "--backend",
        backend,
        "--cafile",
        cafile,
    )
    assert stdout == (
        "HTTP header> HTTP/1.0 200 OK\n"
        "HTTP header> Server: local-test-server\n"
        "HTTP header> Date: Thu, 01 Jan 2026 00:00:00 GMT\n"
        "HTTP header> Content-Type: text/plain\n"
        "HTTP header> X-Request-Path: /some/path\n"
        "HTTP header> X-Request-Host: 127.0.0.1\n"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_https_get_headers_verifies_the_server(backend: str, https_port: int) -> None:
    # Without --cafile the example passes ssl=True: the system's CAs do not know
    # the test CA, so the certificate is refused and nothing is printed.
    result = run_script(
        "https_get_headers.py", f"https://127.0.0.1:{https_port}/", "--backend", backend
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert "SSLCertVerificationError" in result.stderr
    assert "unable to get local issuer certificate" in result.stderr
