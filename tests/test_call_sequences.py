"""Arbitrary sequences of calls on a transport or a stream writer, compared with
native asyncio.

A hypothesis state machine builds a program: calls on the transport (write,
writelines, write_eof, pause/resume_reading, set_write_buffer_limits, close,
abort, start_tls, set_protocol) or on a StreamWriter (write, writelines,
write_eof, drain, close), interleaved with what the peer does (send, half-close,
close). The program then runs on native asyncio, on protoport under Trio and on
protoport under asyncio, each over a fresh socket pair, letting the loop run
after each step; every run must give the same outcome: what each call raised
(its type, and its message from Python 3.13 on), the bytes the peer received,
and the protocol's callbacks (not compared after start_tls(): when a TLS
transport's eof_received() comes around a close depends on when the peer's
close_notify is read).
Every run must also keep the rules of the protocol: ``connection_lost()``
exactly once, and nothing after it.

Sequences on which native asyncio misbehaves (see the reference deviations in
the compatibility matrix) are not generated: writelines() once the transport is
closing, start_tls() on a transport that is closing or was half-closed, and any
call on a TLS transport once it is closing.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trustme
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

import protoport

Step = tuple[Any, ...]

# Kept small: whatever is written goes into the kernel's buffer at once, so that
# the runs do not depend on how fast the peer reads.
sizes = st.integers(min_value=0, max_value=2000)


def payload(size: int, seed: int) -> bytes:
    return bytes((seed + i) % 251 for i in range(size))


class Recording(asyncio.Protocol):
    """Appends every callback, tagged with its own name, to a shared trace."""

    def __init__(self, name: str, trace: list[Any]) -> None:
        self.name = name
        self.trace = trace

    def record(self, *event: Any) -> None:
        self.trace.append((self.name, *event))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.record("made")

    def data_received(self, data: bytes) -> None:
        last = self.trace[-1] if self.trace else None
        if last is not None and last[:2] == (self.name, "data"):
            self.trace[-1] = (self.name, "data", last[2] + data)
        else:
            self.record("data", data)

    def eof_received(self) -> None:
        self.record("eof")

    def pause_writing(self) -> None:
        self.record("pause")

    def resume_writing(self) -> None:
        self.record("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.record("lost", None if exc is None else type(exc).__name__)


@dataclass
class Outcome:
    """What one run of a program gave."""

    calls: list[Any] = field(default_factory=list)
    trace: list[Any] = field(default_factory=list)
    received: bytes = b""
    errors: list[str] = field(default_factory=list)


class _Peer:
    """The other end of the socket pair, driven by the program; it reads what
    arrives after every step (through TLS once the transport was upgraded)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: Any = sock
        self.received = bytearray()
        self.closed = False

    def drain(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                return
            except (OSError, ssl.SSLError):
                return
            if not data:
                return
            self.received += data

    def handshake(self, context: ssl.SSLContext) -> None:
        self.sock.setblocking(True)
        self.sock.settimeout(2)
        self.sock = context.wrap_socket(self.sock, server_side=True)
        self.sock.setblocking(False)

    def close(self) -> None:
        self.drain()
        self.closed = True
        self.sock.close()


def _message(exc: Exception) -> str:
    # The reference is CPython 3.13's asyncio; older ones word some messages
    # differently (writelines() was write() of the joined items before 3.12),
    # so only the exception types are compared there.
    return str(exc) if sys.version_info >= (3, 13) else ""


async def _settle() -> None:
    # Enough rounds for a callback scheduled by a callback to run too; the sleep
    # lets the loops poll their sockets.
    for _ in range(3):
        await asyncio.sleep(0.002)


async def run_program(
    loop: asyncio.AbstractEventLoop,
    streams: Any,
    mode: str,
    program: list[Step],
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> Outcome:
    outcome = Outcome()
    loop.set_exception_handler(
        lambda _loop, context: outcome.errors.append(context["message"])
    )
    local, remote = socket.socketpair()
    remote.setblocking(False)
    peer = _Peer(remote)
    protocols = [Recording("p0", outcome.trace)]
    writer: Any = None
    if mode == "streams":
        _, writer = await streams.open_connection(sock=local)
        transport: Any = writer.transport
    else:
        transport, _ = await loop.create_connection(lambda: protocols[0], sock=local)

    async def call(step: Step) -> None:
        nonlocal transport
        name, *args = step
        if name == "write":
            (writer or transport).write(payload(args[0], len(outcome.calls)))
        elif name == "writelines":
            (writer or transport).writelines(
                [payload(args[0], len(outcome.calls)), b"", b"|"]
            )
        elif name == "write_eof":
            (writer or transport).write_eof()
        elif name == "close":
            (writer or transport).close()
        elif name == "abort":
            transport.abort()
        elif name in ("pause_reading", "resume_reading"):
            getattr(transport, name)()
        elif name == "set_write_buffer_limits":
            transport.set_write_buffer_limits(*args)
        elif name == "set_protocol":
            protocols.append(Recording(f"p{len(protocols)}", outcome.trace))
            transport.set_protocol(protocols[-1])
        elif name == "drain":
            await asyncio.wait_for(writer.drain(), 1)
        elif name == "start_tls":
            server, client = tls
            handshake = loop.run_in_executor(None, peer.handshake, server)
            transport = await loop.start_tls(
                transport, transport.get_protocol(), client, server_hostname="localhost"
            )
            await handshake
        elif name == "wait":
            pass  # the loop runs after every step
        elif name == "peer_send":
            peer.sock.send(payload(args[0], 7))
        elif name == "peer_shutdown_write":
            peer.sock.shutdown(socket.SHUT_WR)
        elif name == "peer_close":
            peer.close()
        else:
            raise AssertionError(f"unknown step {name}")

    try:
        for step in program:
            try:
                await call(step)
            except Exception as exc:
                outcome.calls.append((step[0], type(exc).__name__, _message(exc)))
            else:
                outcome.calls.append((step[0], None))
            await _settle()
            peer.drain()
        # The end: both sides close, every protocol is told.
        transport.abort()
        if not peer.closed:
            peer.close()
        await _settle()
    finally:
        local.close()
        if not peer.closed:
            peer.close()
    outcome.received = bytes(peer.received)
    return outcome


def _on_native(main: Any) -> Outcome:
    async def run() -> Outcome:
        return await main(asyncio.get_running_loop(), asyncio)

    result: Outcome = asyncio.run(run())
    return result


async def _in_protoport(main: Any) -> Outcome:
    async with protoport.open_loop() as loop:
        outcome: Outcome = await loop.create_task(main(loop, protoport))
    return outcome


def _on_protoport_trio(main: Any) -> Outcome:
    result: Outcome = trio.run(_in_protoport, main)
    return result


def _on_protoport_asyncio(main: Any) -> Outcome:
    result: Outcome = asyncio.run(_in_protoport(main))
    return result


def _check_rules(outcome: Outcome, where: str) -> None:
    lost = [i for i, event in enumerate(outcome.trace) if event[1] == "lost"]
    assert len(lost) == 1, f"{where}: connection_lost() {len(lost)} times"
    assert lost[0] == len(outcome.trace) - 1, f"{where}: callbacks after lost"


class CallSequences(RuleBasedStateMachine):
    """Builds a program with a model of the transport's state that keeps the
    sequences on which native asyncio is sane; runs it at the end."""

    tls: tuple[ssl.SSLContext, ssl.SSLContext]

    def __init__(self) -> None:
        super().__init__()
        self.program: list[Step] = []
        self.mode = "transport"
        self.closing = False
        self.eof_written = False
        self.tls_started = False
        self.peer_closed = False
        self.peer_eof = False

    @initialize(mode=st.sampled_from(["transport", "streams"]))
    def choose(self, mode: str) -> None:
        self.mode = mode

    @property
    def transport_sane(self) -> bool:
        """Whether native asyncio's transport still behaves: its TLS transport
        raises AttributeError from most calls once it is closing (before 3.13)."""
        return not (self.tls_started and self.closing)

    def add(self, *step: Any) -> None:
        self.program.append(step)

    @precondition(lambda self: self.transport_sane)
    @rule(size=sizes)
    def write(self, size: int) -> None:
        self.add("write", size)

    @precondition(lambda self: not self.closing)
    @rule(size=sizes)
    def writelines(self, size: int) -> None:
        self.add("writelines", size)

    @precondition(lambda self: self.transport_sane)
    @rule()
    def write_eof(self) -> None:
        self.add("write_eof")
        self.eof_written = True

    @precondition(lambda self: self.mode == "transport" and self.transport_sane)
    @rule(name=st.sampled_from(["pause_reading", "resume_reading"]))
    def reading(self, name: str) -> None:
        self.add(name)

    @precondition(lambda self: self.mode == "transport" and self.transport_sane)
    @rule(
        high=st.one_of(st.none(), st.integers(-1, 4000)),
        low=st.one_of(st.none(), st.integers(-1, 4000)),
    )
    def limits(self, high: int | None, low: int | None) -> None:
        self.add("set_write_buffer_limits", high, low)

    @precondition(lambda self: self.mode == "transport" and self.transport_sane)
    @rule()
    def set_protocol(self) -> None:
        self.add("set_protocol")

    @precondition(lambda self: self.mode == "streams")
    @rule()
    def drain(self) -> None:
        self.add("drain")

    @precondition(lambda self: self.transport_sane)
    @rule(name=st.sampled_from(["close", "abort"]))
    def close(self, name: str) -> None:
        self.add(name)
        self.closing = True

    @precondition(
        lambda self: (
            self.mode == "transport"
            and not (self.closing or self.eof_written or self.tls_started)
            and not (self.peer_closed or self.peer_eof)
        )
    )
    @rule()
    def start_tls(self) -> None:
        self.add("start_tls")
        self.tls_started = True

    @rule()
    def wait(self) -> None:
        self.add("wait")

    @precondition(lambda self: not (self.peer_closed or self.peer_eof))
    @rule(size=st.integers(1, 2000))
    def peer_send(self, size: int) -> None:
        self.add("peer_send", size)

    @precondition(
        lambda self: not (self.peer_closed or self.peer_eof or self.tls_started)
    )
    @rule()
    def peer_shutdown_write(self) -> None:
        self.add("peer_shutdown_write")
        self.peer_eof = True
        # eof_received() returns None (the streams' protocol too, on a socket
        # that is not half-open): the transport closes.
        self.closing = self.closing or self.mode == "transport"

    @precondition(lambda self: not self.peer_closed)
    @rule()
    def peer_close(self) -> None:
        self.add("peer_close")
        self.peer_closed = True
        self.closing = True

    def teardown(self) -> None:
        program = self.program

        def main(loop: asyncio.AbstractEventLoop, streams: Any) -> Awaitable[Outcome]:
            return run_program(loop, streams, self.mode, program, self.tls)

        expected = _on_native(main)
        for name, run in [
            ("protoport on Trio", _on_protoport_trio),
            ("protoport on asyncio", _on_protoport_asyncio),
        ]:
            got = run(main)
            if self.mode == "transport":
                _check_rules(got, name)
            assert got.calls == expected.calls, name
            assert got.received == expected.received, name
            if not self.tls_started:
                assert got.trace == expected.trace, name


@pytest.fixture(scope="module")
def tls_pair() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def test_call_sequences_as_asyncio(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    CallSequences.tls = tls_pair
    CallSequences.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=12,
        deadline=None,
        derandomize=True,
        # No shrinking: it would take longer than the test's timeout; the
        # failing program is printed as found.
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    CallSequences.TestCase().runTest()
