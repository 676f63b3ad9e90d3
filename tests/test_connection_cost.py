"""What a connection over one of protoport's own sockets costs while idle, and
that the writing done without a task of its own loses nothing: a slow peer gets
every byte, in order, before the end of file or the end of the connection, also
when the loop ends meanwhile."""

from __future__ import annotations

import socket
import threading

import anyio
import pytest

import protoport
from _helpers import Factory, JoiningRecorder, Recorder, port_of, wait_until

pytestmark = pytest.mark.anyio

#: More than the kernel's buffers of a loopback connection take at once.
BIG = 8 * 1024 * 1024


def _slow_reader(sock: socket.socket, got: list[bytes]) -> threading.Thread:
    """A thread that reads *sock* to its end, into *got*."""

    def run() -> None:
        sock.settimeout(10)
        while data := sock.recv(65536):
            got.append(data)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def test_idle_connections_run_no_task() -> None:
    tasks_before = len(anyio.get_running_tasks())
    async with protoport.open_loop() as loop:
        accepted = Factory(Recorder)
        server = await loop.create_server(accepted, "127.0.0.1", 0)
        tasks_serving = len(anyio.get_running_tasks())
        clients = [
            await loop.create_connection(Recorder, "127.0.0.1", port_of(server))
            for _ in range(20)
        ]
        await wait_until(lambda: len(accepted.made) == 20)
        for transport, _ in clients:
            transport.write(b"ping")
        await wait_until(lambda: all(p.received() == b"ping" for p in accepted.made))
        # Forty open connections, each having written and read: not one task.
        assert len(anyio.get_running_tasks()) == tasks_serving
        for transport, _ in clients:
            transport.close()
        server.close()
        await server.wait_closed()
    assert len(anyio.get_running_tasks()) == tasks_before


async def test_a_slow_peer_gets_everything_then_the_end_of_file() -> None:
    local, remote = socket.socketpair()
    payload = bytes(range(256)) * (BIG // 256)
    got: list[bytes] = []
    async with protoport.open_loop() as loop:
        transport, proto = await loop.create_connection(JoiningRecorder, sock=local)
        tasks = len(anyio.get_running_tasks())
        transport.write(payload[: BIG // 2])
        transport.write(payload[BIG // 2 :])
        transport.write_eof()
        assert transport.get_write_buffer_size() > 0
        assert proto.trace == ["made", "pause"]
        # Bytes wait for the peer, and still no task runs for them.
        assert len(anyio.get_running_tasks()) == tasks
        reader = _slow_reader(remote, got)
        await wait_until(lambda: transport.get_write_buffer_size() == 0, timeout=10)
        await anyio.to_thread.run_sync(reader.join)
        assert b"".join(got) == payload
        assert proto.trace == ["made", "pause", "resume"]
        assert not transport.is_closing()
        remote.sendall(b"after eof")
        remote.close()
        await proto.wait_lost()
    assert proto.trace == [
        "made",
        "pause",
        "resume",
        ("data", b"after eof"),
        "eof",
        ("lost", None),
    ]


@pytest.mark.parametrize("exit_timeout", [None, 30.0])
async def test_leaving_the_loop_waits_for_a_closing_transport_to_flush(
    exit_timeout: float | None,
) -> None:
    local, remote = socket.socketpair()
    payload = b"x" * BIG
    got: list[bytes] = []
    async with protoport.open_loop(exit_timeout=exit_timeout) as loop:
        transport, proto = await loop.create_connection(Recorder, sock=local)
        transport.write(payload)
        transport.close()
        assert transport.get_write_buffer_size() > 0
        reader = _slow_reader(remote, got)
    # Not one task held the loop open, yet it sent everything before it ended.
    assert proto.trace == ["made", ("lost", None)]
    await anyio.to_thread.run_sync(reader.join)
    remote.close()
    assert len(b"".join(got)) == BIG


async def test_a_peer_gone_while_bytes_wait_ends_the_connection() -> None:
    local, remote = socket.socketpair()
    async with protoport.open_loop() as loop:
        transport, proto = await loop.create_connection(Recorder, sock=local)
        transport.write(b"x" * BIG)
        assert transport.get_write_buffer_size() > 0
        remote.close()
        await proto.wait_lost()
    [lost] = proto.trace[1:]
    assert isinstance(lost[1], (BrokenPipeError, ConnectionResetError))
    assert transport.get_write_buffer_size() == 0
