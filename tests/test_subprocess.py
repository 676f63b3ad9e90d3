"""Child processes: loop.subprocess_exec()/subprocess_shell() with a
SubprocessProtocol, and create_subprocess_exec()/create_subprocess_shell() with
Process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from asyncio.subprocess import DEVNULL, PIPE
from typing import Any

import anyio
import pytest

import protoport
from _helpers import Flag, collect_errors, exactly, settle, wait_until
from conftest import open_fds

pytestmark = pytest.mark.anyio

MIB = 1 << 20


class Recorder(asyncio.SubprocessProtocol):
    """Records every callback; joins consecutive data of one pipe."""

    def __init__(self) -> None:
        self.trace: list[Any] = []
        self.transport: Any = None
        self.lost = Flag()
        self.sizes = {1: 0, 2: 0}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.trace.append("made")

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.sizes[fd] += len(data)
        last = self.trace[-1]
        if isinstance(last, tuple) and last[0] == "data" and last[1] == fd:
            self.trace[-1] = ("data", fd, last[2] + data)
        else:
            self.trace.append(("data", fd, data))

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self.trace.append(("pipe lost", fd, exc))

    def process_exited(self) -> None:
        self.trace.append("exited")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.trace.append(("lost", exc))
        self.lost.set()

    async def wait_lost(self, timeout: float = 10) -> None:
        with anyio.fail_after(timeout):
            await self.lost.wait()

    def output(self, fd: int) -> bytes:
        return b"".join(
            e[2] for e in self.trace if isinstance(e, tuple) and e[:2] == ("data", fd)
        )


def check_order(trace: list[Any], fds: set[int]) -> None:
    """asyncio's order: connection_made first; each pipe's data before its
    pipe_connection_lost; process_exited once; connection_lost last, once."""
    assert trace[0] == "made"
    assert trace[-1][0] == "lost"
    assert [e for e in trace if e == "exited"] == ["exited"]
    assert sum(1 for e in trace if isinstance(e, tuple) and e[0] == "lost") == 1
    lost_at = {e[1]: i for i, e in enumerate(trace) if e[0] == "pipe lost"}
    assert set(lost_at) == fds
    for i, e in enumerate(trace):
        if isinstance(e, tuple) and e[0] == "data":
            assert i < lost_at[e[1]]


def reaped(pid: int) -> bool:
    """Whether *pid* is no child of ours any more (reaped)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


PY = sys.executable


# -- the protocol's callbacks ------------------------------------------------------


async def test_callbacks_come_in_asyncios_order_with_the_exit_code() -> None:
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.subprocess_exec(
            Recorder, "sh", "-c", "printf out; printf err >&2; exit 3"
        )
        # As on asyncio, the child's first output (and even its exit) may be
        # delivered in the round in which the call returns: only the first
        # callback is certain.
        assert protocol.trace[0] == "made"
        assert transport.get_pid() > 0
        await protocol.wait_lost()
        assert transport.get_returncode() == 3
    check_order(protocol.trace, {0, 1, 2})
    assert protocol.output(1) == b"out"
    assert protocol.output(2) == b"err"


async def test_output_written_just_before_exit_is_never_lost() -> None:
    script = "import sys; sys.stdout.buffer.write(b'x' * 3_000_000); sys.exit(0)"
    async with protoport.open_loop() as loop:
        _, protocol = await loop.subprocess_exec(Recorder, PY, "-c", script)
        await protocol.wait_lost()
    assert protocol.sizes[1] == 3_000_000
    check_order(protocol.trace, {0, 1, 2})


async def test_stdin_reaches_the_child_and_eof_ends_it() -> None:
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.subprocess_exec(Recorder, "cat")
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        assert isinstance(transport.get_pipe_transport(1), asyncio.ReadTransport)
        stdin.write(b"echo me")
        stdin.close()
        await protocol.wait_lost()
    assert protocol.output(1) == b"echo me"
    assert transport.get_returncode() == 0
    check_order(protocol.trace, {0, 1, 2})


async def test_a_child_that_closes_stdout_early_loses_that_pipe_first() -> None:
    async with protoport.open_loop() as loop:
        _, protocol = await loop.subprocess_shell(
            Recorder, "printf early; exec 1>&-; sleep 0.3; exit 5", stdin=DEVNULL
        )
        await wait_until(lambda: ("pipe lost", 1, None) in protocol.trace)
        assert "exited" not in protocol.trace
        await protocol.wait_lost()
        assert protocol.transport.get_returncode() == 5
    assert protocol.output(1) == b"early"
    check_order(protocol.trace, {1, 2})


async def test_pipes_that_are_not_pipes_have_no_transport() -> None:
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.subprocess_exec(
            Recorder, "true", stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL
        )
        assert [transport.get_pipe_transport(fd) for fd in (0, 1, 2)] == [None] * 3
        assert isinstance(transport.get_extra_info("subprocess"), subprocess.Popen)
        assert transport.get_extra_info("subprocess").pid == transport.get_pid()
        await protocol.wait_lost()
    assert protocol.trace == ["made", "exited", ("lost", None)]


async def test_a_failing_callback_is_reported_and_the_rest_goes_on() -> None:
    class Failing(Recorder):
        def process_exited(self) -> None:
            super().process_exited()
            raise ZeroDivisionError

    async with protoport.open_loop() as loop:
        errors = collect_errors(loop)
        _, protocol = await loop.subprocess_exec(Failing, "true")
        await protocol.wait_lost()
    assert isinstance(errors[0]["exception"], ZeroDivisionError)
    check_order(protocol.trace, {0, 1, 2})


# -- signals and closing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "code"),
    [("kill", -signal.SIGKILL), ("terminate", -signal.SIGTERM)],
)
async def test_kill_and_terminate_give_a_negative_return_code(
    method: str, code: int
) -> None:
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.subprocess_exec(Recorder, "sleep", "30")
        getattr(transport, method)()
        await protocol.wait_lost()
        assert transport.get_returncode() == code
        # As asyncio once the process is gone.
        for after in (transport.kill, transport.terminate):
            with pytest.raises(ProcessLookupError):
                after()
        with pytest.raises(ProcessLookupError):
            transport.send_signal(signal.SIGINT)
    check_order(protocol.trace, {0, 1, 2})


async def test_send_signal_reaches_the_child() -> None:
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.subprocess_shell(
            Recorder,
            "trap 'echo got; exit 7' USR1; echo ready; while :; do sleep 0.05; done",
        )
        await wait_until(lambda: protocol.output(1) == b"ready\n")
        transport.send_signal(signal.SIGUSR1)
        await protocol.wait_lost()
    assert protocol.output(1) == b"ready\ngot\n"
    assert transport.get_returncode() == 7


async def test_close_kills_a_running_child_and_the_protocol_hears_the_end() -> None:
    async with protoport.open_loop() as loop:
        transport, protocol = await loop.subprocess_exec(Recorder, "sleep", "30")
        transport.close()
        assert transport.is_closing()
        await protocol.wait_lost()
        assert transport.get_returncode() == -signal.SIGKILL
        assert reaped(transport.get_pid())
    check_order(protocol.trace, {0, 1, 2})


# -- flow control --------------------------------------------------------------------


async def test_a_child_writing_20_mib_waits_while_reading_is_paused() -> None:
    class Paused(Recorder):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            transport.get_pipe_transport(1).pause_reading()  # type: ignore[attr-defined]

    async with protoport.open_loop() as loop:
        transport, protocol = await loop.subprocess_exec(
            Paused, "head", "-c", str(20 * MIB), "/dev/zero"
        )
        stdout = transport.get_pipe_transport(1)
        await anyio.sleep(0.3)
        await settle()
        # Nothing read, and the child blocks on the full pipe.
        assert protocol.sizes[1] == 0
        assert transport.get_returncode() is None
        stdout.resume_reading()
        await protocol.wait_lost()
    assert protocol.sizes[1] == 20 * MIB
    assert transport.get_returncode() == 0


async def test_writing_20_mib_to_a_child_that_never_reads_does_not_hang() -> None:
    class Paused(Recorder):
        def pause_writing(self) -> None:
            self.trace.append("pause")

        def resume_writing(self) -> None:
            self.trace.append("resume")

    async with protoport.open_loop() as loop:
        transport, protocol = await loop.subprocess_exec(
            Paused, "sleep", "30", stdout=DEVNULL, stderr=DEVNULL
        )
        stdin = transport.get_pipe_transport(0)
        for _ in range(20):
            stdin.write(b"x" * MIB)
        assert protocol.trace == ["made", "pause"]
        transport.close()
        await protocol.wait_lost()
    # The child died with its stdin full: the pipe broke.
    assert isinstance(protocol.trace[protocol.trace.index("pause") + 1], (str, tuple))
    lost = next(e for e in protocol.trace if e[0] == "pipe lost")
    assert lost[1] == 0
    assert isinstance(lost[2], BrokenPipeError)


# -- argument checks, as asyncio's -------------------------------------------------


BAD_EXEC = [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"shell": True}, "shell must be False"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
]
BAD_SHELL = [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"shell": False}, "shell must be True"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
]


async def test_bad_arguments_are_rejected_with_asyncios_messages() -> None:
    made: list[object] = []

    def factory() -> Recorder:
        made.append(1)
        return Recorder()

    async with protoport.open_loop() as loop:
        for kwargs, message in BAD_EXEC:
            with pytest.raises(ValueError, match=exactly(message)):
                await loop.subprocess_exec(factory, "true", **kwargs)
        for kwargs, message in BAD_SHELL:
            with pytest.raises(ValueError, match=exactly(message)):
                await loop.subprocess_shell(factory, "true", **kwargs)
        with pytest.raises(ValueError, match=exactly("cmd must be a string")):
            await loop.subprocess_shell(factory, ["true"])  # type: ignore[arg-type]
    assert made == []


async def test_the_argument_messages_are_cpythons() -> None:
    def native_messages() -> list[str]:
        async def collect() -> list[str]:
            loop = asyncio.get_running_loop()
            messages = []
            for kwargs, _ in BAD_EXEC:
                try:
                    await loop.subprocess_exec(
                        asyncio.SubprocessProtocol, "true", **kwargs
                    )
                except ValueError as exc:
                    messages.append(str(exc))
            for kwargs, _ in BAD_SHELL:
                try:
                    await loop.subprocess_shell(
                        asyncio.SubprocessProtocol, "true", **kwargs
                    )
                except ValueError as exc:
                    messages.append(str(exc))
            return messages

        return asyncio.run(collect())

    expected = [message for _, message in BAD_EXEC + BAD_SHELL]
    assert await anyio.to_thread.run_sync(native_messages) == expected


async def test_a_missing_program_raises_before_any_callback() -> None:
    before = open_fds()
    made: list[Recorder] = []

    def factory() -> Recorder:
        made.append(Recorder())
        return made[-1]

    async with protoport.open_loop() as loop:
        with pytest.raises(FileNotFoundError):
            await loop.subprocess_exec(factory, "/nonexistent/program")
    # As asyncio: the protocol is made first, and hears nothing.
    assert [p.trace for p in made] == [[]]
    assert open_fds() == before


# -- the loop's end ----------------------------------------------------------------


async def test_leaving_the_loop_kills_and_reaps_every_child() -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        transports = []
        for _ in range(3):
            transport, protocol = await loop.subprocess_exec(Recorder, "sleep", "30")
            transports.append((transport, protocol))
    for transport, protocol in transports:
        assert transport.get_returncode() == -signal.SIGKILL
        assert reaped(transport.get_pid())
        assert protocol.trace[-1] == ("lost", None)
    assert open_fds() == before


async def test_a_loop_left_by_an_exception_kills_and_reaps_its_child() -> None:
    before = open_fds()
    started: list[Any] = []

    async def fail_with_a_child() -> None:
        async with protoport.open_loop() as loop:
            transport, protocol = await loop.subprocess_exec(Recorder, "sleep", "30")
            transport.get_pipe_transport(0).write(b"x" * MIB)
            started.extend((transport, protocol))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fail_with_a_child()
    transport, protocol = started
    assert transport.get_returncode() == -signal.SIGKILL
    assert reaped(transport.get_pid())
    assert protocol.trace[0] == "made"
    assert protocol.trace[-1] == ("lost", None)
    assert open_fds() == before


class CancelsItsCaller(Recorder):
    """Has its caller cancelled from ``connection_made()``: the child runs, the
    call that starts it has not returned yet."""

    def __init__(self, cancel: Any) -> None:
        super().__init__()
        self._cancel = cancel

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._cancel()


async def _cancel_subprocess_exec(
    loop: asyncio.AbstractEventLoop,
    rounds: int = 0,
    of: asyncio.AbstractEventLoop | None = None,
) -> list[Any]:
    """Cancel a ``subprocess_exec()`` call of *loop* (or of the loop *of*, from a
    task of *loop*) in progress, *rounds* rounds of the loop after
    ``connection_made()``; what the caller sees then, and what the protocol
    hears."""
    made: list[CancelsItsCaller] = []

    def cancel_after(rounds: int) -> None:
        if rounds:
            loop.call_soon(cancel_after, rounds - 1)
        else:
            task.cancel()

    def factory() -> CancelsItsCaller:
        made.append(CancelsItsCaller(lambda: cancel_after(rounds)))
        return made[-1]

    task = loop.create_task((of or loop).subprocess_exec(factory, "sleep", "30"))
    outcome: list[Any] = []
    try:
        await task
    except asyncio.CancelledError:
        outcome.append("CancelledError")
        transport = made[0].transport
        # Reaped before the cancellation goes on.
        outcome.append(reaped(transport.get_pid()))
        outcome.append(transport.get_returncode())
    else:
        # Too late to cancel the call: the child is the caller's.
        outcome.append("returned")
        task.result()[0].close()
    [protocol] = made
    # asyncio's way of waiting: this runs in a task of the loop.
    for _ in range(500):
        if protocol.lost.is_set():
            break
        await asyncio.sleep(0.01)
    check_order(protocol.trace, {0, 1, 2})
    return outcome


async def test_a_call_cancelled_while_it_starts_a_child_kills_and_reaps_it() -> None:
    async def natively() -> list[Any]:
        return await _cancel_subprocess_exec(asyncio.get_running_loop())

    native = await anyio.to_thread.run_sync(asyncio.run, natively())
    before = open_fds()
    async with protoport.open_loop() as loop:
        with anyio.fail_after(5):
            ours = await loop.create_task(_cancel_subprocess_exec(loop))
    assert open_fds() == before
    assert native == ["CancelledError", True, -signal.SIGKILL]
    assert ours == native


@pytest.mark.parametrize("rounds", range(5))
async def test_a_cancellation_at_any_point_of_the_call_leaves_no_child_behind(
    rounds: int,
) -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        with anyio.fail_after(5):
            outcome = await loop.create_task(_cancel_subprocess_exec(loop, rounds))
    assert outcome in (
        ["CancelledError", True, -signal.SIGKILL],
        # The call returned (a running child, which the caller then closed).
        ["returned"],
    )
    assert open_fds() == before


@pytest.mark.parametrize("rounds", range(5))
async def test_a_task_of_another_loop_cancelled_in_the_call_leaves_no_child(
    rounds: int,
) -> None:
    # Under Trio such a call runs in a Trio task of the caller's loop, which may
    # get to its end after the caller was cancelled: the child is then undone.
    before = open_fds()
    async with protoport.open_loop() as loop, protoport.open_loop() as other:
        with anyio.fail_after(5):
            outcome = await loop.create_task(
                _cancel_subprocess_exec(loop, rounds, of=other)
            )
    assert outcome in (
        ["CancelledError", True, -signal.SIGKILL],
        ["returned"],
    )
    assert open_fds() == before


async def test_anyio_code_cancelled_while_it_starts_a_child_leaves_none() -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        with anyio.CancelScope() as scope:
            protocol = CancelsItsCaller(lambda: scope.cancel())
            await loop.subprocess_exec(lambda: protocol, "sleep", "30")
        assert scope.cancelled_caught
        assert reaped(protocol.transport.get_pid())
        assert protocol.transport.get_returncode() == -signal.SIGKILL
        await protocol.wait_lost()
    assert open_fds() == before
    check_order(protocol.trace, {0, 1, 2})


@pytest.fixture(params=["reactor", "task", "thread"])
def exit_watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the child's exit is noticed: a pidfd in the reactor, a pidfd a task
    waits on (no reactor), or a worker thread (no pidfd)."""
    if request.param in ("task", "thread"):
        monkeypatch.setattr(protoport.Loop, "_reader_registry", lambda self: None)
    if request.param == "thread":

        def no_pidfd(pid: int, flags: int = 0) -> int:
            raise OSError("no pidfd here")

        monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("this platform has no pidfd")
    return str(request.param)


async def test_every_way_of_watching_the_exit_works(exit_watch: str) -> None:
    before = open_fds()
    async with protoport.open_loop() as loop:
        _, protocol = await loop.subprocess_exec(
            Recorder, "sh", "-c", "printf done; exit 9"
        )
        await protocol.wait_lost()
        assert protocol.transport.get_returncode() == 9
        assert protocol.output(1) == b"done"
        _, running = await loop.subprocess_exec(Recorder, "sleep", "30")
    assert running.transport.get_returncode() == -signal.SIGKILL
    assert reaped(running.transport.get_pid())
    check_order(protocol.trace, {0, 1, 2})
    assert open_fds() == before


# -- Process ---------------------------------------------------------------------------


async def test_create_subprocess_exec_reads_stdout_and_waits() -> None:
    async with protoport.open_loop():
        process = await protoport.create_subprocess_exec(
            "sh", "-c", "echo hello; exit 4", stdout=PIPE
        )
        assert isinstance(process, protoport.Process)
        assert process.stdin is None
        assert process.stderr is None
        # As on asyncio, the child may have exited (and been seen to) by the
        # round in which the call returns: returncode is None or 4 here.
        assert process.returncode in (None, 4)
        assert await process.stdout.readline() == b"hello\n"  # type: ignore[union-attr]
        assert await process.wait() == 4
        assert process.returncode == 4
        assert repr(process) == f"<Process {process.pid}>"


async def test_create_subprocess_shell_with_a_reader_limit() -> None:
    async with protoport.open_loop():
        process = await protoport.create_subprocess_shell(
            "printf 'a long line\\n'", stdout=PIPE, limit=4
        )
        assert process.stdout is not None
        # Found or not in the first read, the line is longer than the limit.
        with pytest.raises(ValueError, match=r"^Separator is "):
            await process.stdout.readline()
        await process.wait()


async def test_a_reader_over_its_limit_pauses_the_pipe_and_the_child_waits() -> None:
    """As asyncio's: stdout's reader pauses its pipe once it holds more than twice
    its limit (what CPython's test_pause_reading checks through a mock), so a
    child writing more than anybody reads waits on the full pipe."""
    size = 8 * MIB
    async with protoport.open_loop():
        process = await protoport.create_subprocess_exec(
            PY,
            "-c",
            f"import sys; sys.stdout.buffer.write(b'x' * {size})",
            stdout=PIPE,
            limit=1024,
        )
        with anyio.move_on_after(0.5):
            await process.wait()
        assert process.returncode is None
        assert process.stdout is not None
        assert len(await process.stdout.read()) == size
        assert await process.wait() == 0


async def test_communicate_with_20_mib_each_way_does_not_deadlock() -> None:
    payload = os.urandom(MIB) * 20
    async with protoport.open_loop():
        process = await protoport.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        with anyio.fail_after(30):
            out, err = await process.communicate(payload)
    assert out == payload
    assert err == b""
    assert process.returncode == 0


async def test_communicate_ignores_a_child_that_stops_reading_stdin() -> None:
    async with protoport.open_loop():
        process = await protoport.create_subprocess_shell(
            "head -c 5; echo; echo bye >&2", stdin=PIPE, stdout=PIPE, stderr=PIPE
        )
        out, err = await process.communicate(b"x" * (20 * MIB))
    assert (out, err) == (b"xxxxx\n", b"bye\n")
    assert process.returncode == 0


async def test_drain_waits_while_the_child_does_not_read_and_kill_ends_it() -> None:
    async with protoport.open_loop():
        process = await protoport.create_subprocess_exec("sleep", "30", stdin=PIPE)
        assert process.stdin is not None
        process.stdin.write(b"x" * (20 * MIB))
        with anyio.move_on_after(0.3) as scope:
            await process.stdin.drain()
        assert scope.cancelled_caught
        process.kill()
        assert await process.wait() == -signal.SIGKILL
        with pytest.raises(ProcessLookupError):
            process.terminate()


async def test_a_cancelled_wait_leaves_the_child_running() -> None:
    async with protoport.open_loop():
        process = await protoport.create_subprocess_exec("sleep", "30")
        with anyio.move_on_after(0.1):
            await process.wait()
        assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == -signal.SIGTERM


async def _cancel_communicate(create: Any) -> list[Any]:
    """Cancel a ``communicate()`` in progress; what the caller and the child see
    afterwards (*create* is a ``create_subprocess_exec`` function)."""
    loop = asyncio.get_running_loop()
    process = await create(
        "sh", "-c", "cat; sleep 0.5; exit 4", stdin=PIPE, stdout=PIPE
    )
    task = loop.create_task(process.communicate(b"echoed"))
    for _ in range(20):
        await asyncio.sleep(0.01)
    task.cancel()
    outcome: list[Any] = []
    try:
        await task
    except asyncio.CancelledError:
        outcome.append("CancelledError")
    outcome.append(process.returncode)
    # stdin was closed by communicate() before the cancellation: the child ends
    # by itself, and wait() gives its status.
    outcome.append(await process.wait())
    return outcome


async def test_a_cancelled_communicate_behaves_as_in_asyncio() -> None:
    native = await anyio.to_thread.run_sync(
        asyncio.run, _cancel_communicate(asyncio.create_subprocess_exec)
    )
    async with protoport.open_loop() as loop:
        task = loop.create_task(_cancel_communicate(protoport.create_subprocess_exec))
        with anyio.fail_after(5):
            ours = await task
    assert native == ["CancelledError", None, 4]
    assert ours == native


async def test_wait_returns_at_exit_while_a_grandchild_holds_stdout() -> None:
    """The child exits; its own child keeps the pipe open. wait() returns at the
    exit, communicate() would wait for the pipe's end."""
    async with protoport.open_loop():
        process = await protoport.create_subprocess_shell(
            "sleep 2 & exit 2", stdout=PIPE
        )
        with anyio.fail_after(1.5):
            assert await process.wait() == 2


async def test_asyncio_code_in_a_task_of_the_loop_runs_a_process() -> None:
    async def asyncio_code() -> tuple[bytes, int]:
        process = await protoport.create_subprocess_exec(
            "echo", "from a task", stdout=PIPE
        )
        out, _ = await process.communicate()
        return out, await process.wait()

    async with protoport.open_loop() as loop:
        task = loop.create_task(asyncio_code())
        with anyio.fail_after(10):
            assert await task == (b"from a task\n", 0)


async def test_asyncios_own_process_class_works_over_the_transport() -> None:
    """asyncio.subprocess.Process waits through ``transport._wait()``: what
    asyncio.create_subprocess_exec() builds when the facade is the running loop."""

    async def asyncio_code(loop: asyncio.AbstractEventLoop) -> list[Any]:
        transport, protocol = await loop.subprocess_exec(
            lambda: asyncio.subprocess.SubprocessStreamProtocol(2**16, loop),
            "sh",
            "-c",
            "cat; exit 5",
            stdin=PIPE,
            stdout=PIPE,
            stderr=None,
        )
        process = asyncio.subprocess.Process(transport, protocol, loop)
        out, _ = await process.communicate(b"through asyncio's Process")
        return [out, await process.wait(), process.returncode]

    async with protoport.open_loop() as loop:
        with anyio.fail_after(10):
            outcome = await loop.create_task(asyncio_code(loop))
    assert outcome == [b"through asyncio's Process", 5, 5]
