"""Differential tests: random sequences of transport operations run on native
asyncio and on protoport (on Trio and on asyncio), with the same protocol
callback trace and the same bytes at the peer expected from all three.

The operations are writes of random sizes, writelines, limit changes,
pause/resume reading, write_eof, close and abort, and on the peer's side sends,
reads of everything pending, and a half-close. The transport's kernel buffer is
kept full (refilled after every read of the peer), so every byte written stays
in the transport's buffer until the peer reads: pause points are exact, and the
trace does not depend on timing. After each operation the program waits until
the effects asyncio's documentation promises have happened (the data delivered,
``connection_lost()`` called…), then records the callbacks that came and the
transport's state.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protoport.compat import (
    Env,
    RecordingProtocol,
    ScenarioFailure,
    load_implementation,
    make_main,
    pattern,
)

IMPLEMENTATIONS = ("asyncio", "protoport-trio", "protoport-asyncio")

Op = tuple[Any, ...]

_write = st.tuples(st.just("write"), st.integers(1, 70_000))
_writelines = st.tuples(
    st.just("writelines"), st.lists(st.integers(1, 20_000), max_size=4)
)
_limits = st.tuples(
    st.just("limits"),
    st.one_of(st.none(), st.integers(0, 100_000)),
    st.one_of(st.none(), st.integers(0, 30_000)),
)
_peer_send = st.tuples(st.just("peer_send"), st.integers(1, 3000))
_simple = st.sampled_from(
    [
        ("pause_reading",),
        ("resume_reading",),
        ("peer_drain",),
        ("peer_drain",),
        ("peer_shutdown",),
        ("write_eof",),
        ("close",),
        ("abort",),
    ]
)
# Writes, limits and peer sends are drawn more often than the operations that
# end a connection, so that programs do something before they end it.
ops_strategy = st.lists(
    st.one_of(_write, _write, _writelines, _limits, _peer_send, _simple, _simple),
    min_size=3,
    max_size=40,
)


def compact(events: list[tuple[Any, ...]]) -> list[Any]:
    """The callbacks of one step, consecutive deliveries merged; the buffer size
    seen by pause_writing() kept (it is exact here), resume_writing()'s not (it
    depends on how much each send took)."""
    out: list[Any] = []
    for event in events:
        kind = event[0]
        if kind == "data_received":
            if out and isinstance(out[-1], tuple) and out[-1][0] == "data":
                out[-1] = ("data", out[-1][1] + event[1])
            else:
                out.append(("data", bytes(event[1])))
        elif kind == "pause_writing":
            out.append(("pause", event[1]))
        elif kind == "resume_writing":
            out.append("resume")
        elif kind == "connection_lost":
            exc = event[1]
            out.append(("lost", None if exc is None else type(exc).__name__))
        else:
            out.append(kind.replace("_received", "").replace("connection_", ""))
    return out


class Program:
    """Runs *ops* on one implementation; :attr:`result` is what is compared."""

    def __init__(
        self, ops: list[Op], eof_result: bool | None, writes_after_close: bool = False
    ) -> None:
        self.ops = ops
        self.eof_result = eof_result
        self.writes_after_close = writes_after_close
        self.result: dict[str, Any] = {}

    async def __call__(self, env: Env) -> None:
        log: list[Any] = []
        conn = await env.connect(
            lambda: RecordingProtocol(env, eof_result=self.eof_result), fill=True
        )
        transport, protocol = conn.transport, conn.protocol
        seen = 0
        # The model: what asyncio's documentation says must have happened.
        pending = 0  # bytes accepted since the peer last read everything
        peer_sent = 0  # bytes the peer sent
        paused = False  # reading paused
        closing = False  # close() called, or the end of the stream closed it
        aborted = False
        eof_written = False
        peer_shut = False
        eof_delivered = False

        async def wait_lost() -> None:
            await protocol.wait_lost()

        async def deliver() -> None:
            """Wait for what the transport must deliver now that it reads."""
            nonlocal closing, eof_delivered
            if paused or closing:
                return
            await protocol.wait_for_data(peer_sent)
            if peer_shut and not eof_delivered:
                await protocol.wait_for("eof_received")
                eof_delivered = True
                if not self.eof_result:
                    closing = True
                    if pending == 0:
                        await wait_lost()

        try:
            for index, op in enumerate(self.ops):
                kind = op[0]
                step: list[Any] = [op]
                try:
                    if kind in ("write", "writelines"):
                        if closing and not aborted and not self.writes_after_close:
                            # Once the flush is over, CPython's write() raises
                            # AttributeError (a row of the matrix says so); the
                            # case while flushing has a test of its own below.
                            continue
                        if kind == "writelines" and (aborted or protocol.lost):
                            # CPython's writelines() raises TypeError once the
                            # connection is lost (a row of the matrix says so).
                            continue
                        if kind == "write":
                            data = pattern(op[1], index)
                            transport.write(data)
                            size = len(data)
                        else:
                            parts = [pattern(n, index + k) for k, n in enumerate(op[1])]
                            transport.writelines(parts)
                            size = sum(map(len, parts))
                            # CPython's writelines() never calls pause_writing()
                            # (a row of the matrix says so); setting the same
                            # limits again makes it check, as write() would have.
                            low, high = transport.get_write_buffer_limits()
                            transport.set_write_buffer_limits(high, low)
                        if not (aborted or closing or protocol.lost):
                            pending += size
                    elif kind == "limits":
                        transport.set_write_buffer_limits(high=op[1], low=op[2])
                    elif kind == "pause_reading":
                        transport.pause_reading()
                        if not closing:
                            paused = True
                    elif kind == "resume_reading":
                        if eof_delivered:
                            # CPython reads the end of the stream again and calls
                            # eof_received() a second time (a row of the matrix
                            # says so): left out here.
                            continue
                        transport.resume_reading()
                        if not closing:
                            paused = False
                        await deliver()
                    elif kind == "peer_send":
                        if closing or aborted or peer_shut:
                            continue
                        await conn.peer.send(pattern(op[1], 100 + index))
                        peer_sent += op[1]
                        await deliver()
                    elif kind == "peer_shutdown":
                        if peer_shut or closing or aborted:
                            continue
                        await conn.peer.shutdown_write()
                        peer_shut = True
                        await deliver()
                    elif kind == "peer_drain":
                        if aborted or not pending:
                            continue
                        await conn.peer.recv_exactly(pending)
                        pending = 0
                        await env.wait_until(
                            lambda: transport.get_write_buffer_size() == 0,
                            "an empty write buffer",
                        )
                        if closing:
                            await wait_lost()
                        elif not eof_written:
                            conn.fill_kernel_buffer()
                    elif kind == "write_eof":
                        transport.write_eof()
                        if not closing:
                            eof_written = True
                    elif kind == "close":
                        transport.close()
                        closing = True
                        if pending == 0 or aborted:
                            await wait_lost()
                    elif kind == "abort":
                        if protocol.lost and not aborted:
                            # CPython raises AttributeError here when close()
                            # was called with bytes buffered (a row of the
                            # matrix says so): left out here.
                            continue
                        transport.abort()
                        if not protocol.lost:
                            await wait_lost()
                        closing = aborted = True
                        pending = 0
                except ScenarioFailure:
                    raise
                except Exception as exc:
                    message = str(exc)
                    if kind == "writelines" and sys.version_info < (3, 12):
                        # Before 3.12, asyncio's writelines() is write(b"".join())
                        # and its errors name write().
                        message = message.replace("write()", "writelines()")
                    step.append(("raised", type(exc).__name__, message))
                step.append(compact(protocol.events[seen:]))
                seen = len(protocol.events)
                step.append(
                    (
                        transport.get_write_buffer_size(),
                        transport.is_closing(),
                        transport.is_reading(),
                        transport.get_write_buffer_limits(),
                    )
                )
                log.append(step)

            # The end: close, and read what is left.
            if not protocol.lost:
                transport.close()
                if not aborted:
                    await conn.peer.recv_exactly(pending)
                await wait_lost()
            await conn.peer.recv_until_eof()
            log.append(["end", compact(protocol.events[seen:])])
        except ScenarioFailure as exc:
            log.append(["failed", str(exc), compact(protocol.events[seen:])])
        self.result = {
            "log": log,
            "peer": bytes(conn.peer.received),
            "warnings": env.warnings(),
            "errors": env.error_messages(),
        }


def run_program(
    name: str, ops: list[Op], eof_result: bool | None, writes_after_close: bool = False
) -> dict[str, Any]:
    implementation = load_implementation(name)
    program = Program(ops, eof_result, writes_after_close)
    box: list[Any] = []
    implementation.run(
        make_main(program, box, implementation=name, features=implementation.features)
    )
    assert box, f"{name}: the program did not run"
    assert box[-1].status == "pass", f"{name}: {box[-1].reason}"
    return program.result


def first_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    for index, (x, y) in enumerate(zip(a["log"], b["log"], strict=False)):
        if x != y:
            return f"step {index}: {x!r}\n   vs: {y!r}"
    if len(a["log"]) != len(b["log"]):
        return f"{len(a['log'])} steps vs {len(b['log'])}"
    for key in ("peer", "warnings", "errors"):
        if a[key] != b[key]:
            return f"{key}: {a[key]!r:.200} vs {b[key]!r:.200}"
    return "no difference"


def check_same(
    ops: list[Op], eof_result: bool | None, writes_after_close: bool = False
) -> None:
    reference = run_program("asyncio", ops, eof_result, writes_after_close)
    for name in IMPLEMENTATIONS[1:]:
        result = run_program(name, ops, eof_result, writes_after_close)
        assert result == reference, f"{name} differs from asyncio: " + (
            first_difference(result, reference)
        )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=ops_strategy, eof_result=st.sampled_from([None, True]))
@example(
    ops=[
        ("limits", 1000, 100),
        ("write", 5000),
        ("peer_send", 10),
        ("pause_reading",),
        ("peer_send", 20),
        ("write", 10),
        ("peer_drain",),
        ("resume_reading",),
        ("write_eof",),
        ("peer_shutdown",),
        ("peer_drain",),
    ],
    eof_result=True,
)
@example(
    ops=[("write", 70_000), ("close",), ("peer_drain",)],
    eof_result=None,
)
@example(
    ops=[("write", 70_000), ("abort",), ("write", 10), ("peer_drain",)],
    eof_result=None,
)
def test_same_trace_and_bytes_as_asyncio(
    ops: list[Op], eof_result: bool | None
) -> None:
    check_same(ops, eof_result)


@pytest.mark.parametrize("name", IMPLEMENTATIONS[1:])
def test_programs_see_a_difference(name: str) -> None:
    """The comparison is not blind: a program whose writes differ gives
    different results."""
    one = run_program(name, [("write", 10), ("peer_drain",)], None)
    other = run_program(name, [("write", 11), ("peer_drain",)], None)
    assert one != other
    assert one["peer"] == pattern(10, 0)
    assert one["log"][0] == [("write", 10), ["made"], (10, False, True, (16384, 65536))]


def test_write_after_close_while_flushing() -> None:
    check_same(
        [("write", 100), ("close",), ("write", 10), ("peer_drain",)],
        None,
        writes_after_close=True,
    )
