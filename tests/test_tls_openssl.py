"""TLS interop with the OpenSSL command-line tools: protoport's client against
``openssl s_server``, ``openssl s_client`` against protoport's server, bytes
checked both ways. Skipped where the ``openssl`` binary is missing (CI installs
it). Everything listens on 127.0.0.1; every subprocess is killed at the end."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from anyio.abc import Process

import protoport
from _helpers import Factory, port_of, wait_until

OPENSSL = shutil.which("openssl")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        OPENSSL is None, reason="the openssl command-line tool is not installed"
    ),
]

HOST = "127.0.0.1"


@dataclass
class Certs:
    ca: trustme.CA
    ca_file: Path
    server_file: Path  # key and certificate chain
    client_file: Path
    other_ca_file: Path  # a CA that signed nothing here

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_file)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_file = directory / "server.pem"
    ca.issue_cert("localhost", HOST).private_key_and_cert_chain_pem.write_to_path(
        str(server_file)
    )
    client_file = directory / "client.pem"
    ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(
        str(client_file)
    )
    other_ca_file = directory / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca_file))
    return Certs(ca, ca_file, server_file, client_file, other_ca_file)


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.trace: list[Any] = []
        self.transport: Any = None
        self.data = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.trace.append("made")

    def data_received(self, data: bytes) -> None:
        if not self.trace or self.trace[-1] != "data":
            self.trace.append("data")
        self.data += data

    def eof_received(self) -> None:
        self.trace.append("eof")

    def connection_lost(self, exc: Exception | None) -> None:
        self.trace.append(("lost", exc))

    @property
    def lost(self) -> bool:
        return bool(self.trace) and self.trace[-1][0] == "lost"


class Shouter(Recorder):
    """Answers each line in capitals; closes after the line ``bye``. With a
    client certificate, greets its e-mail address first."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peercert = transport.get_extra_info("peercert")
        if peercert:
            for kind, value in peercert.get("subjectAltName", ()):
                if kind == "email":
                    transport.write(f"hello {value}\n".encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        before = len(self.data)
        super().data_received(data)
        lines = bytes(self.data[before:])
        self.transport.write(lines.upper())
        if self.data.endswith(b"bye\n"):
            self.transport.close()


@dataclass
class Running:
    process: Process
    output: bytearray

    async def wait_for_output(self, needle: bytes) -> None:
        with anyio.fail_after(10):
            while needle not in self.output:
                if self.process.returncode is not None:
                    # Let the last bytes of its output arrive.
                    await anyio.sleep(0.05)
                    if needle not in self.output:
                        raise AssertionError(
                            f"openssl exited ({self.process.returncode}) without "
                            f"printing {needle!r}: {bytes(self.output)!r}"
                        )
                await anyio.sleep(0.005)

    async def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(data)

    async def wait(self) -> int:
        with anyio.fail_after(10):
            return await self.process.wait()


@asynccontextmanager
async def openssl(args: Sequence[str]) -> AsyncIterator[Running]:
    """Run ``openssl *args*``, collecting its stdout and stderr together; kill it
    at the end if it is still running."""
    assert OPENSSL is not None
    process = await anyio.open_process(
        [OPENSSL, *args],
        stderr=subprocess.STDOUT,
    )
    output = bytearray()

    async def collect() -> None:
        assert process.stdout is not None
        try:
            async for chunk in process.stdout:
                output.extend(chunk)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)
            try:
                yield Running(process, output)
            finally:
                if process.returncode is None:
                    process.kill()
                with anyio.move_on_after(5, shield=True):
                    await process.wait()
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await process.aclose()


@asynccontextmanager
async def running_s_server(
    certs: Certs, *extra: str
) -> AsyncIterator[tuple[Running, int]]:
    """Start ``openssl s_server`` for one connection, on a port it chooses (read
    from its ``ACCEPT`` line)."""
    args = [
        "s_server",
        "-accept",
        f"{HOST}:0",
        "-cert",
        str(certs.server_file),
        "-key",
        str(certs.server_file),
        "-naccept",
        "1",
        "-ign_eof",
        *extra,
    ]
    async with openssl(args) as server:
        await server.wait_for_output(b"ACCEPT ")
        line = bytes(server.output).split(b"ACCEPT ", 1)[1].split(b"\n", 1)[0]
        port = int(line.rsplit(b":", 1)[1])
        yield server, port


def s_client_args(server: Any, ca_file: Path, *extra: str) -> list[str]:
    """Arguments for ``openssl s_client`` against *server*, trusting the CA in
    *ca_file*, giving up on a verification error, and printing only what it
    reads (``-quiet``, which implies ``-ign_eof``)."""
    return [
        "s_client",
        "-connect",
        f"{HOST}:{port_of(server)}",
        "-CAfile",
        str(ca_file),
        "-verify_return_error",
        "-quiet",
        *extra,
    ]


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
async def test_our_client_against_openssl_s_server(certs: Certs, version: str) -> None:
    async with running_s_server(certs, version) as (server, port):
        async with protoport.open_loop() as loop:
            transport, client = await loop.create_connection(
                Recorder,
                HOST,
                port,
                ssl=certs.client_context(),
                server_hostname="localhost",
            )
            expected_version = "TLSv1.3" if version == "-tls1_3" else "TLSv1.2"
            assert transport.get_extra_info("ssl_object").version() == expected_version
            # Our bytes reach s_server (which prints them), ...
            transport.write(b"hello from protoport\n")
            await server.wait_for_output(b"hello from protoport\n")
            # ... and what s_server reads from its stdin reaches us.
            await server.send(b"hello from openssl\n")
            await wait_until(
                lambda: bytes(client.data) == b"hello from openssl\n", timeout=10
            )
            # A bulk transfer, with TLS 1.3 a key update requested by the peer
            # in the middle of it.
            if version == "-tls1_3":
                await server.send(b"K\n")
            payload = b"0123456789abcdef" * 16384  # 256 KiB
            for i in range(0, len(payload), 50_000):
                transport.write(payload[i : i + 50_000])
            await wait_until(
                lambda: bytes(server.output).count(b"0123456789abcdef") >= 16384,
                timeout=10,
            )
            await server.send(b"after the transfer\n")
            await wait_until(
                lambda: client.data.endswith(b"after the transfer\n"), timeout=10
            )
            # Our close() is a TLS shutdown: s_server, told to serve one
            # connection, ends cleanly.
            transport.close()
            await wait_until(lambda: client.lost, timeout=10)
        assert await server.wait() == 0
    assert client.trace == ["made", "data", "eof", ("lost", None)]


async def test_openssl_s_client_against_our_server(certs: Certs) -> None:
    async with protoport.open_loop() as loop:
        servers = Factory(Shouter)
        server = await loop.create_server(servers, HOST, 0, ssl=certs.server_context())
        args = s_client_args(
            server,
            certs.ca_file,
            *("-servername", "localhost", "-verify_hostname", "localhost"),
        )
        async with openssl(args) as client:
            await client.send(b"hello from openssl\n")
            await client.wait_for_output(b"HELLO FROM OPENSSL\n")
            await client.send(b"bye\n")
            # Our server closes after "bye": s_client reads the TLS end and exits.
            assert await client.wait() == 0
        assert b"HELLO FROM OPENSSL\nBYE\n" in client.output
        await wait_until(lambda: servers.made[0].lost, timeout=10)
        server.close()
    assert bytes(servers.made[0].data) == b"hello from openssl\nbye\n"
    assert servers.made[0].trace == ["made", "data", "eof", ("lost", None)]


async def test_openssl_s_client_with_a_client_certificate(certs: Certs) -> None:
    async with protoport.open_loop() as loop:
        servers = Factory(Shouter)
        server = await loop.create_server(
            servers, HOST, 0, ssl=certs.server_context(require_client_cert=True)
        )
        args = s_client_args(
            server,
            certs.ca_file,
            *("-servername", "localhost"),
            *("-cert", str(certs.client_file), "-key", str(certs.client_file)),
        )
        async with openssl(args) as client:
            await client.wait_for_output(b"hello client@example.com\n")
            await client.send(b"bye\n")
            assert await client.wait() == 0
        assert b"BYE\n" in client.output
        server.close()
    assert bytes(servers.made[0].data) == b"bye\n"


async def test_openssl_s_client_refuses_an_untrusted_server(certs: Certs) -> None:
    servers = Factory(Shouter)
    async with protoport.open_loop() as loop:
        server = await loop.create_server(servers, HOST, 0, ssl=certs.server_context())
        args = s_client_args(server, certs.other_ca_file)
        async with openssl(args) as client:
            assert await client.wait() != 0
        server.close()
    assert b"verify error" in client.output
    # The server never ran a protocol for the failed handshake.
    assert servers.made == []


async def test_our_client_refuses_s_server_under_another_name(certs: Certs) -> None:
    async with running_s_server(certs) as (_, port), protoport.open_loop() as loop:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await loop.create_connection(
                Recorder,
                HOST,
                port,
                ssl=certs.client_context(),
                server_hostname="example.com",
            )
    assert info.value.verify_message == (
        "Hostname mismatch, certificate is not valid for 'example.com'."
    )
