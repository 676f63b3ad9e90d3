"""Transports: Write-only Transports, flow control: the watermarks, and exactly
where pause_writing() and resume_writing() are called.

The connections here fill the kernel's send buffer first, so every byte written
stays in the transport's buffer until the peer reads: the buffer sizes, and so
the pause points, are exact.
"""

from __future__ import annotations

from typing import Any

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._recording import RecordingProtocol
from .._registry import scenario

FLOW = sections.FLOW_CONTROL


# -- limits -------------------------------------------------------------------------


@scenario(FLOW, "get_write_buffer_limits() defaults to (16384, 65536), low first")
async def default_limits(env: Env) -> None:
    conn = await env.connect()
    env.expect_equal(
        "get_write_buffer_limits()",
        conn.transport.get_write_buffer_limits(),
        (16384, 65536),
    )


@scenario(
    FLOW, "set_write_buffer_limits(high, low): get_write_buffer_limits() is (low, high)"
)
async def limits_roundtrip(env: Env) -> None:
    conn = await env.connect()
    conn.transport.set_write_buffer_limits(high=1000, low=10)
    env.expect_equal("limits", conn.transport.get_write_buffer_limits(), (10, 1000))
    conn.transport.set_write_buffer_limits(7, 7)
    env.expect_equal(
        "limits (positional, equal)", conn.transport.get_write_buffer_limits(), (7, 7)
    )


@scenario(FLOW, "only high given: low defaults to high // 4")
async def limits_high_only(env: Env) -> None:
    conn = await env.connect()
    conn.transport.set_write_buffer_limits(high=1000)
    env.expect_equal("limits", conn.transport.get_write_buffer_limits(), (250, 1000))
    conn.transport.set_write_buffer_limits(high=3)
    env.expect_equal(
        "limits for high=3", conn.transport.get_write_buffer_limits(), (0, 3)
    )


@scenario(FLOW, "only low given: high defaults to 4 * low")
async def limits_low_only(env: Env) -> None:
    conn = await env.connect()
    conn.transport.set_write_buffer_limits(low=100)
    env.expect_equal("limits", conn.transport.get_write_buffer_limits(), (100, 400))


@scenario(FLOW, "setting high to zero forces low to zero as well")
async def limits_high_zero(env: Env) -> None:
    conn = await env.connect()
    conn.transport.set_write_buffer_limits(high=0)
    env.expect_equal("limits", conn.transport.get_write_buffer_limits(), (0, 0))


@scenario(
    FLOW,
    "low greater than high: ValueError('high (10) must be >= low (20) must be >= 0')",
)
async def limits_low_above_high(env: Env) -> None:
    conn = await env.connect()
    env.expect_raises(
        ValueError,
        "high (10) must be >= low (20) must be >= 0",
        conn.transport.set_write_buffer_limits,
        high=10,
        low=20,
    )
    env.expect_equal(
        "limits after the error",
        conn.transport.get_write_buffer_limits(),
        (16384, 65536),
    )


@scenario(
    FLOW, "negative limits: ValueError('high (-1) must be >= low (-1) must be >= 0')"
)
async def limits_negative(env: Env) -> None:
    conn = await env.connect()
    env.expect_raises(
        ValueError,
        "high (-1) must be >= low (-1) must be >= 0",
        conn.transport.set_write_buffer_limits,
        high=-1,
    )
    env.expect_raises(
        ValueError,
        "high (-4) must be >= low (-1) must be >= 0",
        conn.transport.set_write_buffer_limits,
        low=-1,
    )


# -- pause_writing() ------------------------------------------------------------------


class _MarkingProtocol(RecordingProtocol):
    """Records, with each pause/resume, whether it came inside a write() call."""

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.in_write = False
        self.paused_inside_write: list[bool] = []

    def pause_writing(self) -> None:
        super().pause_writing()
        self.paused_inside_write.append(self.in_write)


@scenario(
    FLOW,
    "pause_writing() is called when the buffer size becomes greater than or equal "
    "to high",
    reference_deviation=(
        "CPython pauses only when the size becomes strictly greater than high; a "
        "buffer of exactly high bytes does not pause"
    ),
)
async def pause_at_high(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=1000, low=0)
    conn.transport.write(pattern(1000))
    env.expect_equal(
        "callbacks at 1000 bytes with high=1000",
        conn.protocol.summary(),
        ["made", "pause"],
    )


@scenario(
    FLOW,
    "pause_writing() is called inside write(), once the buffer exceeds high "
    "(with the new size already counted)",
)
async def pause_above_high(env: Env) -> None:
    conn = await env.connect(lambda: _MarkingProtocol(env), fill=True)
    protocol: Any = conn.protocol
    conn.transport.set_write_buffer_limits(high=1000, low=0)
    protocol.in_write = True
    conn.transport.write(pattern(1000))
    env.expect_equal("callbacks at 1000 bytes", protocol.summary(), ["made"])
    conn.transport.write(b"!")
    protocol.in_write = False
    env.expect_equal("callbacks at 1001 bytes", protocol.summary(), ["made", "pause"])
    env.expect_equal(
        "pause_writing() inside write()", protocol.paused_inside_write, [True]
    )
    env.expect_equal(
        "buffer size seen by pause_writing()",
        protocol.events[-1],
        ("pause_writing", 1001),
    )


@scenario(
    FLOW,
    "writelines() calls pause_writing() once the buffer exceeds high, as write() does",
    reference_deviation=(
        "CPython 3.13's writelines() never calls pause_writing(), however large "
        "the buffer grows"
    ),
)
async def writelines_pauses(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=1000)
    conn.transport.writelines([pattern(600), pattern(600, 1)])
    env.expect_equal(
        "callbacks at 1200 bytes", conn.protocol.summary(), ["made", "pause"]
    )


@scenario(FLOW, "pause_writing() is not called again while the protocol is paused")
async def pause_once(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=100)
    for _ in range(5):
        conn.transport.write(pattern(150))
    env.expect_equal("pause_writing() calls", conn.protocol.count("pause_writing"), 1)


@scenario(
    FLOW,
    "setting high to zero: pause_writing() is called whenever the buffer becomes "
    "non-empty",
)
async def high_zero_pauses(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=0)
    conn.transport.write(b"x")
    env.expect_equal(
        "callbacks after a 1-byte write", conn.protocol.summary(), ["made", "pause"]
    )
    await conn.peer.recv_exactly(1)
    await conn.protocol.wait_for("resume_writing")
    conn.fill_kernel_buffer()
    conn.transport.write(b"y")
    env.expect_equal(
        "callbacks after a second write",
        conn.protocol.summary(),
        ["made", "pause", "resume", "pause"],
    )


@scenario(FLOW, "a write the socket takes whole does not pause, even with high=0")
async def unbuffered_write_no_pause(env: Env) -> None:
    conn = await env.connect()
    conn.transport.set_write_buffer_limits(high=0)
    conn.transport.write(b"small")
    env.expect_equal(
        "get_write_buffer_size()", conn.transport.get_write_buffer_size(), 0
    )
    env.expect_equal("callbacks", conn.protocol.summary(), ["made"])
    await conn.peer.recv_exactly(5)


@scenario(
    FLOW,
    "set_write_buffer_limits() pauses at once if the buffer is already above the "
    "new high",
)
async def set_limits_pauses(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(pattern(1000))
    env.expect_equal("callbacks before", conn.protocol.summary(), ["made"])
    conn.transport.set_write_buffer_limits(high=500)
    env.expect_equal(
        "callbacks after lowering high", conn.protocol.summary(), ["made", "pause"]
    )


@scenario(
    FLOW,
    "set_write_buffer_limits() never resumes: resume_writing() waits for the buffer "
    "to drain",
)
async def set_limits_never_resumes(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=100)
    conn.transport.write(pattern(1000))
    conn.transport.set_write_buffer_limits(high=100_000)
    await env.settle()
    env.expect_equal(
        "callbacks after raising high", conn.protocol.summary(), ["made", "pause"]
    )
    await conn.peer.recv_exactly(1000)
    await conn.protocol.wait_for("resume_writing")


# -- resume_writing() -----------------------------------------------------------------


@scenario(
    FLOW,
    "resume_writing() is called once the buffer size is less than or equal to low",
)
async def resume_at_low(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=20_000, low=10_000)
    conn.transport.write(pattern(50_000))
    await conn.peer.recv_exactly(50_000)
    await conn.protocol.wait_for("resume_writing")
    events = [
        e for e in conn.protocol.events if e[0] in ("pause_writing", "resume_writing")
    ]
    env.expect_equal(
        "flow callbacks", [e[0] for e in events], ["pause_writing", "resume_writing"]
    )
    size = events[1][1]
    env.expect(
        size is not None and size <= 10_000,
        f"resume_writing() came at {size} bytes, above low",
    )


@scenario(
    FLOW,
    "resume_writing() comes as soon as the buffer is down to low, not when it is "
    "empty (the peer reads all but low bytes)",
)
async def resume_before_empty(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=20_000, low=10_000)
    conn.transport.write(pattern(50_000))
    # Once the peer has read 40000 bytes, at most 10000 are left unsent.
    await conn.peer.recv_exactly(40_000)
    await conn.protocol.wait_for("resume_writing")
    size = conn.protocol.events[-1][1]
    env.expect(
        size is not None and 0 < size <= 10_000,
        f"resume_writing() came with {size} bytes buffered",
    )


@scenario(
    FLOW,
    "get_write_buffer_size() drops as the socket takes the bytes, not only once a "
    "whole write is sent",
)
async def buffer_size_drops_progressively(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.write(pattern(50_000))
    await conn.peer.recv_exactly(30_000)
    await env.wait_until(
        lambda: conn.transport.get_write_buffer_size() <= 20_000,
        lambda: (
            "get_write_buffer_size() to drop to 20000 or less after the peer read "
            "30000 of 50000 bytes"
        ),
    )


@scenario(
    FLOW,
    "setting low to zero: resume_writing() is called only once the buffer is empty",
)
async def resume_low_zero(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=1000, low=0)
    conn.transport.write(pattern(30_000))
    await conn.peer.recv_exactly(30_000)
    await conn.protocol.wait_for("resume_writing")
    env.expect_equal(
        "buffer size seen by resume_writing()",
        conn.protocol.events[-1],
        ("resume_writing", 0),
    )


@scenario(FLOW, "pause_writing() and resume_writing() alternate over several rounds")
async def pause_resume_rounds(env: Env) -> None:
    conn = await env.connect(fill=True)
    conn.transport.set_write_buffer_limits(high=1000, low=100)
    for round_ in range(3):
        conn.transport.write(pattern(3000, round_))
        await conn.peer.recv_exactly(3000)
        await env.wait_until(
            lambda: conn.transport.get_write_buffer_size() == 0, "the buffer to drain"
        )
        conn.fill_kernel_buffer()
    env.expect_equal(
        "flow callbacks", conn.protocol.summary(), ["made"] + ["pause", "resume"] * 3
    )


@scenario(
    FLOW,
    "an exception in pause_writing() goes to the exception handler "
    "('protocol.pause_writing() failed'); the transport stays open",
)
async def pause_writing_error(env: Env) -> None:
    class Failing(RecordingProtocol):
        def pause_writing(self) -> None:
            super().pause_writing()
            raise ZeroDivisionError("pause")

    conn = await env.connect(lambda: Failing(env), fill=True)
    conn.transport.set_write_buffer_limits(high=10)
    conn.transport.write(pattern(100))
    env.expect_equal(
        "exception handler", env.error_messages(), ["protocol.pause_writing() failed"]
    )
    env.expect(
        isinstance(env.errors[0].get("exception"), ZeroDivisionError),
        "the context has no 'exception'",
    )
    env.expect_equal("is_closing()", conn.transport.is_closing(), False)
    await conn.peer.recv_exactly(100)
    # The transport counts itself paused: resume_writing() still comes.
    await conn.protocol.wait_for("resume_writing")


@scenario(
    FLOW,
    "an exception in resume_writing() goes to the exception handler "
    "('protocol.resume_writing() failed'); the transport stays open",
)
async def resume_writing_error(env: Env) -> None:
    class Failing(RecordingProtocol):
        def resume_writing(self) -> None:
            super().resume_writing()
            raise ZeroDivisionError("resume")

    conn = await env.connect(lambda: Failing(env), fill=True)
    conn.transport.set_write_buffer_limits(high=10)
    conn.transport.write(pattern(100))
    await conn.peer.recv_exactly(100)
    await conn.protocol.wait_for("resume_writing")
    env.expect_equal(
        "exception handler", env.error_messages(), ["protocol.resume_writing() failed"]
    )
    env.expect_equal("is_closing()", conn.transport.is_closing(), False)
    # Not paused any more: the next time above high pauses again.
    await env.wait_until(
        lambda: conn.transport.get_write_buffer_size() == 0, "the buffer to drain"
    )
    conn.fill_kernel_buffer()
    conn.transport.write(pattern(100))
    env.expect_equal("pause_writing() calls", conn.protocol.count("pause_writing"), 2)


@scenario(
    FLOW,
    "close() called from resume_writing(): connection_lost(None) once, nothing "
    "reported to the exception handler",
    reference_deviation=(
        "CPython 3.13 runs its connection-lost step twice when close() is called "
        "from resume_writing(); the second run fails and is reported to the "
        "exception handler"
    ),
)
async def close_in_resume_writing(env: Env) -> None:
    class Closing(RecordingProtocol):
        def resume_writing(self) -> None:
            super().resume_writing()
            conn.transport.close()

    conn = await env.connect(lambda: Closing(env), fill=True)
    conn.transport.set_write_buffer_limits(high=10, low=0)
    conn.transport.write(pattern(100))
    await conn.peer.recv_exactly(100)
    await conn.protocol.wait_lost()
    await env.settle()
    env.expect_equal(
        "callbacks",
        conn.protocol.summary(),
        ["made", "pause", "resume", ("lost", None)],
    )
    env.expect_equal("exception handler calls", env.error_messages(), [])
