"""aioquic: a QUIC connection over datagram endpoints of the loop, TLS 1.3 with
a trustme certificate, one stream echoed. The client's endpoint is made with
``loop.create_datagram_endpoint()`` (protoport's under both runtimes); the
server comes from aioquic's serve(), which takes asyncio's running loop."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
import trustme

from ._ecosystem import run_in_loop

pytest.importorskip("aioquic", reason="needs the ecosystem extra")
from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import StreamDataReceived

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

ALPN = ["protoport-echo"]


def free_udp_port() -> int:
    """A UDP port nothing listens on (at the time of the call): aioquic's server
    does not tell the port it was given."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Echo(QuicConnectionProtocol):  # type: ignore[misc]
    """Sends each stream's data back, and ends it when the peer does."""

    def quic_event_received(self, event: Any) -> None:
        if isinstance(event, StreamDataReceived):
            self._quic.send_stream_data(event.stream_id, event.data, event.end_stream)
            self.transmit()


async def test_stream_echo(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    message = bytes(range(256)) * 100

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        server_config = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
        server_config.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        port = free_udp_port()
        server = await serve(
            "127.0.0.1", port, configuration=server_config, create_protocol=Echo
        )
        try:
            client_config = QuicConfiguration(
                is_client=True, alpn_protocols=ALPN, server_name="localhost"
            )
            client_config.load_verify_locations(str(tmp_path / "ca.pem"))
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: QuicConnectionProtocol(
                    QuicConnection(configuration=client_config)
                ),
                local_addr=("127.0.0.1", 0),
            )
            try:
                protocol.connect(("127.0.0.1", port))
                await protocol.wait_connected()
                reader, writer = await protocol.create_stream()
                writer.write(message)
                writer.write_eof()
                echoed = await reader.read()
                protocol.close()
                await protocol.wait_closed()
                return echoed
            finally:
                transport.close()
        finally:
            server.close()

    assert await run_in_loop(scenario) == message
