"""asyncssh as its own server and client, both in tasks of the loop: a command
run, a file sent and fetched back by SFTP, a forwarded local port. asyncssh
takes no loop: under Trio it runs on protoport's loop, under asyncio on
asyncio's own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ._ecosystem import run_in_loop

asyncssh = pytest.importorskip("asyncssh", reason="needs the ecosystem extra")

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


class Server(asyncssh.SSHServer):  # type: ignore[misc]
    """Lets in the one client key, and forwarding anywhere."""

    def __init__(self, client_key: Any) -> None:
        self._client_key = client_key

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: Any) -> bool:
        return bool(key == self._client_key)

    def connection_requested(self, *args: Any) -> bool:
        return True


async def run_command(process: Any) -> None:
    process.stdout.write(f"ran {process.command}\n")
    process.exit(3)


async def upper_echo(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    writer.write((await reader.read(100)).upper())
    await writer.drain()
    writer.close()


async def test_exec_sftp_and_port_forward(tmp_path: Path) -> None:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    content = bytes(range(256)) * 2000

    async def scenario(loop: asyncio.AbstractEventLoop) -> Any:
        ssh_server = await asyncssh.create_server(
            lambda: Server(client_key.convert_to_public()),
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            process_factory=run_command,
            sftp_factory=True,
        )
        target = await asyncio.start_server(upper_echo, "127.0.0.1", 0)
        try:
            async with asyncssh.connect(
                "127.0.0.1",
                ssh_server.sockets[0].getsockname()[1],
                username="user",
                client_keys=[client_key],
                known_hosts=None,
            ) as conn:
                result = await conn.run("the command")
                command = (result.stdout, result.exit_status)

                async with conn.start_sftp_client() as sftp:
                    async with sftp.open(str(tmp_path / "sent"), "wb") as f:
                        await f.write(content)
                    async with sftp.open(str(tmp_path / "sent"), "rb") as f:
                        fetched = await f.read()

                forward = await conn.forward_local_port(
                    "127.0.0.1", 0, "127.0.0.1", target.sockets[0].getsockname()[1]
                )
                async with forward:
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", forward.get_port()
                    )
                    writer.write(b"through the tunnel")
                    forwarded = await reader.read()
                    writer.close()
                    await writer.wait_closed()
                return command, fetched, forwarded
        finally:
            target.close()
            ssh_server.close()
            await ssh_server.wait_closed()

    command, fetched, forwarded = await run_in_loop(scenario)
    assert command == ("ran the command\n", 3)
    assert fetched == content
    assert (tmp_path / "sent").read_bytes() == content
    assert forwarded == b"THROUGH THE TUNNEL"
