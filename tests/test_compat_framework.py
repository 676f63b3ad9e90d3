"""The compatibility suite's framework, in this process: the registry, the
environment (deterministic peer, kernel-buffer filling, recording protocols), and
running scenarios on native asyncio and on protoport on both runtimes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import protoport
from _helpers import make_scenario
from protoport.compat import (
    FEATURES,
    SECTIONS,
    Env,
    Outcome,
    Peer,
    RecordingBufferedProtocol,
    RecordingProtocol,
    ScenarioFailure,
    Unsupported,
    _registry,
    load_implementation,
    load_scenarios,
    pattern,
    run_scenario,
    scenario,
    sections,
)
from protoport.compat._failures import describe, one_line

IMPLEMENTATIONS = ["asyncio", "protoport-trio", "protoport-asyncio"]


@pytest.fixture
def clean_registry() -> Iterator[None]:
    load_scenarios()  # the built-in ones stay registered afterwards
    saved = dict(_registry._registry)
    try:
        yield
    finally:
        _registry._registry.clear()
        _registry._registry.update(saved)


def run(name: str, func: Callable[[Env], Awaitable[None]], **kwargs: Any) -> Outcome:
    return run_scenario(load_implementation(name), make_scenario(func), **kwargs)


# -- registry -------------------------------------------------------------------------


def test_builtin_scenarios_are_ordered_by_section() -> None:
    scenarios = load_scenarios()
    assert len(scenarios) >= 100
    ids = [s.id for s in scenarios]
    assert len(set(ids)) == len(ids)
    ranks = [SECTIONS.index(s.section) for s in scenarios]
    assert ranks == sorted(ranks)
    for s in scenarios:
        module, _, function = s.id.partition(".")
        assert module
        assert function == s.func.__name__
        assert s.behaviour
        assert "\n" not in s.behaviour
        assert s.requires <= FEATURES


@pytest.mark.usefixtures("clean_registry")
def test_decorator_registers_with_module_and_function_name() -> None:
    @scenario(sections.section("Zeta", "Last"), "a behaviour", requires=["unix"])
    async def my_check(env: Env) -> None:
        pass

    registered = _registry.get_scenario(f"{__name__.rsplit('.', 1)[-1]}.my_check")
    assert registered.func is my_check
    assert registered.requires == frozenset({"unix"})
    assert registered.reference_deviation is None
    # An unknown section comes after the documentation's sections.
    assert load_scenarios()[-1] is registered


@pytest.mark.usefixtures("clean_registry")
def test_decorator_rejects_bad_arguments() -> None:
    async def check(env: Env) -> None:
        pass

    with pytest.raises(ValueError, match="unknown features"):
        scenario(sections.BASE_TRANSPORT, "x", requires=["teleport"])
    with pytest.raises(ValueError, match="one non-empty line"):
        scenario(sections.BASE_TRANSPORT, "two\nlines")
    scenario(sections.BASE_TRANSPORT, "x", name="same_id")(check)

    async def other(env: Env) -> None:
        pass

    with pytest.raises(ValueError, match="duplicate scenario id"):
        scenario(sections.BASE_TRANSPORT, "y", name="same_id")(other)


def test_one_line_reasons() -> None:
    assert one_line("a\n  b <obj at 0x7f00deadbeef>") == "a b <obj at 0x…>"
    assert len(one_line("x" * 500)) == 200
    assert describe(KeyError("k")) == "KeyError: 'k'"
    assert describe(RuntimeError()) == "RuntimeError"
    assert describe(None) == "None"
    assert ScenarioFailure("one\ntwo").reason == "one two"


def test_pattern() -> None:
    assert len(pattern(1000)) == 1000
    assert pattern(10, 1) != pattern(10, 2)
    assert pattern(600)[:251] == pattern(251)


def test_peer_skips_filler_bytes() -> None:
    a, b = socket.socketpair()
    with a, b:
        peer = Peer(Env.__new__(Env), b)
        peer._add_filler(0, 3)
        peer._add_filler(7, 2)
        # raw stream: FFF abcd GG ef  (F, G: filler)
        assert peer._payload(b"FFFab") == b"ab"
        assert peer._payload(b"cdG") == b"cd"
        assert peer._payload(b"Gef") == b"ef"
        assert peer._payload(b"more") == b"more"


def test_recording_protocol_summary() -> None:
    env = Env.__new__(Env)
    env.trace = []
    protocol = RecordingProtocol(env)
    protocol.connection_made(None)
    protocol.data_received(b"ab")
    protocol.data_received(b"c")
    protocol.pause_writing()
    protocol.eof_received()
    protocol.connection_lost(ConnectionResetError("gone"))
    assert protocol.summary() == [
        "made",
        ("data", b"abc"),
        "pause",
        "eof",
        ("lost", "ConnectionResetError"),
    ]
    assert env.trace[-1] == "protocol.connection_lost(ConnectionResetError: gone)"

    buffered = RecordingBufferedProtocol(env, "b", buffer_size=2)
    buffered.connection_made(None)
    buffered.get_buffer(-1)[:2] = b"xy"
    buffered.buffer_updated(2)
    buffered.get_buffer(-1)[:1] = b"z"
    buffered.buffer_updated(1)
    assert buffered.summary() == ["made", ("data", b"xyz")]
    assert buffered.names() == [
        "connection_made",
        "get_buffer",
        "buffer_updated",
        "get_buffer",
        "buffer_updated",
    ]


# -- running scenarios on the implementations ---------------------------------------


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_outcomes(name: str) -> None:
    async def passes(env: Env) -> None:
        conn = await env.connect()
        conn.transport.write(b"ping")
        assert await conn.peer.recv_exactly(4) == b"ping"

    async def fails(env: Env) -> None:
        env.expect_equal("answer", 41, 42)

    async def unsupported(env: Env) -> None:
        raise Unsupported("no frobnicator")

    async def not_implemented(env: Env) -> None:
        raise NotImplementedError("later")

    async def raises(env: Env) -> None:
        raise KeyError("k")

    assert run(name, passes).status == "pass"
    outcome = run(name, fails)
    assert (outcome.status, outcome.reason) == ("fail", "answer: expected 42, got 41")
    outcome = run(name, unsupported)
    assert (outcome.status, outcome.reason) == ("unsupported", "no frobnicator")
    outcome = run(name, not_implemented)
    assert (outcome.status, outcome.reason) == (
        "unsupported",
        "NotImplementedError: later",
    )
    outcome = run(name, raises)
    assert (outcome.status, outcome.reason) == ("fail", "raised KeyError: 'k'")


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_timeout_inside_the_loop_keeps_the_trace(name: str) -> None:
    async def hangs(env: Env) -> None:
        env.mark("waiting for ever")
        await env.loop.create_future()

    outcome = run(name, hangs, timeout=0.2)
    assert (outcome.status, outcome.reason) == ("fail", "timed out")
    assert outcome.trace == ["waiting for ever"]


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_missing_feature_is_unsupported(name: str) -> None:
    ran = []

    async def needs(env: Env) -> None:
        ran.append(True)

    implementation = load_implementation(name)
    implementation.features = frozenset({"unix"})
    outcome = run_scenario(
        implementation, make_scenario(needs, requires=frozenset({"tls", "tcp"}))
    )
    assert (outcome.status, outcome.reason) == ("unsupported", "needs tcp, tls")
    assert ran == []


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_filled_kernel_buffer_keeps_writes_in_the_transport(name: str) -> None:
    """The premise of the exact flow-control scenarios: after filling, every
    write stays in the transport's buffer until the peer reads, and refilling
    after a read keeps the filler out of what the peer sees."""
    seen: dict[str, Any] = {}

    async def check(env: Env) -> None:
        conn = await env.connect(fill=True)
        assert conn.filled > 0
        conn.transport.write(pattern(3000))
        seen["buffered"] = conn.transport.get_write_buffer_size()
        await conn.peer.recv_exactly(3000)
        await env.wait_until(
            lambda: conn.transport.get_write_buffer_size() == 0, "an empty buffer"
        )
        conn.fill_kernel_buffer()
        conn.transport.write(pattern(500, 1))
        seen["buffered again"] = conn.transport.get_write_buffer_size()
        conn.transport.close()
        seen["peer"] = await conn.peer.recv_until_eof()
        seen["received"] = bytes(conn.peer.received)

    assert run(name, check).status == "pass"
    assert seen["buffered"] == 3000
    assert seen["buffered again"] == 500
    assert seen["peer"] == pattern(500, 1)
    assert seen["received"] == pattern(3000) + pattern(500, 1)


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_env_records_exception_handler_and_warnings(name: str) -> None:
    seen: dict[str, Any] = {}

    async def check(env: Env) -> None:
        env.loop.call_exception_handler({"message": "something broke"})
        conn = await env.connect()
        conn.transport.close()
        await conn.protocol.wait_lost()
        for _ in range(6):
            conn.transport.write(b"x")
        seen["errors"] = env.error_messages()
        seen["warnings"] = env.warnings()

    assert run(name, check).status == "pass"
    assert seen["errors"] == ["something broke"]
    assert seen["warnings"] == ["socket.send() raised exception."] * 2


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_expect_helpers(name: str) -> None:
    reasons: list[str] = []

    async def check(env: Env) -> None:
        for call in (
            lambda: env.expect(False, "plain reason"),
            lambda: env.expect_raises(ValueError, "exact", int, "12"),
            lambda: env.expect_raises(ValueError, "exact", int, "x"),
            lambda: env.expect_raises(KeyError, None, int, "x"),
        ):
            try:
                call()
            except ScenarioFailure as exc:
                reasons.append(exc.reason)
        env.expect_raises(ValueError, None, int, "x")
        await env.wait_until(lambda: False, "Godot", timeout=0.05)

    outcome = run(name, check)
    assert (outcome.status, outcome.reason) == ("fail", "timed out waiting for Godot")
    assert reasons == [
        "plain reason",
        "int() did not raise ValueError",
        "int() raised ValueError(\"invalid literal for int() with base 10: 'x'\"), "
        "expected message 'exact'",
        "int() raised ValueError: invalid literal for int() with base 10: 'x', "
        "expected KeyError",
    ]


def test_loop_is_the_facade_for_protoport() -> None:
    loops: dict[str, Any] = {}

    running: dict[str, Any] = {}

    async def check(env: Env) -> None:
        loops[env.implementation] = env.loop
        running[env.implementation] = asyncio.get_running_loop()

    for name in IMPLEMENTATIONS:
        assert run(name, check).status == "pass", name

    assert isinstance(loops["protoport-trio"], protoport.Loop)
    assert isinstance(loops["protoport-asyncio"], protoport.Loop)
    assert not isinstance(loops["asyncio"], protoport.Loop)
    # Under Trio, asyncio-style code in the scenario sees the facade as its loop.
    assert running["protoport-trio"] is loops["protoport-trio"]
    assert running["asyncio"] is loops["asyncio"]
