"""Property tests for ``protoport.WriteBuffer``: random sequences of appends,
consumes, limit changes and peeks, checked against a simple model of asyncio's
write flow control after every step."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from _helpers import RecordingProtocol
from protoport import WriteBuffer

# Long enough for the largest append (3 * 300) from any start offset.
PATTERN = bytes(range(251)) * 5


def resolved(high: int | None, low: int | None) -> tuple[int, int]:
    """The (high, low) pair asyncio derives from the arguments."""
    if high is None:
        high = 65536 if low is None else 4 * low
    if low is None:
        low = high // 4
    return high, low


# Valid (high, low) arguments, kept small so that random sizes cross the marks:
# both given (including high == low and low == 0), only high, or only low.
limit_args = st.one_of(
    st.tuples(st.integers(0, 300), st.integers(0, 300)).map(
        lambda pair: (max(pair), min(pair))
    ),
    st.tuples(st.integers(0, 300), st.none()),
    st.tuples(st.none(), st.integers(0, 75)),
)


class WriteBufferMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.proto = RecordingProtocol()
        self.buf = WriteBuffer(self.proto)
        self.high, self.low = 65536, 16384
        self.appended = bytearray()
        # The bytes consumed so far, in order.
        self.consumed = bytearray()
        self.counter = 0

    @initialize(limits=limit_args)
    def start(self, limits: tuple[int | None, int | None]) -> None:
        high, low = limits
        self.buf = WriteBuffer(self.proto, high=high, low=low)
        self.high, self.low = resolved(high, low)
        assert self.buf.get_write_buffer_limits() == (self.low, self.high)

    # ------------------------------------------------------------------ helpers

    def pending(self) -> bytes:
        return bytes(self.appended[len(self.consumed) :])

    def new_events(self, before: int) -> list[str]:
        return self.proto.events[before:]

    def next_data(self, n: int) -> bytes:
        # A running counter, so that reordered or repeated bytes are noticed.
        start = self.counter % 251
        self.counter += n
        return PATTERN[start : start + n]

    # -------------------------------------------------------------------- rules

    @rule(raw=st.integers(0, 900), kind=st.sampled_from([bytes, bytearray, memoryview]))
    def append(self, raw: int, kind: type) -> None:
        n = raw % (3 * max(self.high, 4) + 1)  # 0 (empty) .. 3 * high
        payload = self.next_data(n)
        was_paused = self.buf.paused
        before = len(self.proto.events)
        self.buf.append(kind(payload))
        self.appended += payload
        should_pause = not was_paused and self.buf.size > self.high
        assert self.new_events(before) == (["pause"] if should_pause else [])

    @rule(max_size=st.integers(1, 1000), raw=st.integers(0, 1000))
    def consume(self, max_size: int, raw: int) -> None:
        """Consume like a writer task: peek, then consume part of what was seen."""
        chunk = bytes(self.buf.peek(max_size))
        n = raw % (len(chunk) + 1)
        self.do_consume(n)
        self.consumed += chunk[:n]

    @rule(raw=st.integers(0, 3000))
    def consume_blind(self, raw: int) -> None:
        """Consume any amount up to the size, across chunk boundaries."""
        n = raw % (self.buf.size + 1)
        expected = self.pending()[:n]
        self.do_consume(n)
        self.consumed += expected
        # What is left must start with the next bytes that were appended.
        if self.buf:
            assert bytes(self.buf.peek(1)) == self.pending()[:1]

    def do_consume(self, n: int) -> None:
        was_paused = self.buf.paused
        before = len(self.proto.events)
        self.buf.consume(n)
        size = self.buf.size
        should_resume = was_paused and size <= self.low
        assert self.new_events(before) == (["resume"] if should_resume else [])
        assert not (self.buf.paused and size <= self.low)

    @rule(limits=limit_args)
    def set_limits(self, limits: tuple[int | None, int | None]) -> None:
        high, low = limits
        was_paused = self.buf.paused
        before = len(self.proto.events)
        self.buf.set_write_buffer_limits(high=high, low=low)
        self.high, self.low = resolved(high, low)
        assert self.buf.get_write_buffer_limits() == (self.low, self.high)
        should_pause = not was_paused and self.buf.size > self.high
        assert self.new_events(before) == (["pause"] if should_pause else [])
        # Never resumes, however high the new marks are.
        assert self.buf.paused == (was_paused or should_pause)

    @rule(max_size=st.integers(1, 1000))
    def peek(self, max_size: int) -> None:
        before = len(self.proto.events)
        size = self.buf.size
        got = bytes(self.buf.peek(max_size))
        assert self.buf.size == size
        assert self.new_events(before) == []
        assert len(got) <= max_size
        if size:
            assert got
        assert got == self.pending()[: len(got)]

    # --------------------------------------------------------------- invariants

    @invariant()
    def model_holds(self) -> None:
        # Pauses and resumes strictly alternate, starting with a pause, and the
        # paused flag says whether the last one was a pause.
        events = self.proto.events
        pauses = events.count("pause")
        resumes = events.count("resume")
        assert events == ["pause", "resume"] * resumes + ["pause"] * (pauses - resumes)
        assert self.buf.paused == (pauses > resumes)
        # The size counts bytes appended and not consumed.
        size = len(self.appended) - len(self.consumed)
        assert self.buf.size == size
        assert len(self.buf) == size
        assert bool(self.buf) == (size > 0)
        # What was consumed is the start of what was appended.
        assert self.consumed == self.appended[: len(self.consumed)]

    def teardown(self) -> None:
        # Drain whatever is left: the whole stream comes out, in order.
        while self.buf:
            chunk = bytes(self.buf.peek(97))
            assert chunk
            self.do_consume(len(chunk))
            self.consumed += chunk
        assert self.consumed == self.appended
        assert not self.buf.paused


WriteBufferMachine.TestCase.settings = settings(
    max_examples=300, deadline=None, stateful_step_count=25
)
test_write_buffer_machine = WriteBufferMachine.TestCase
