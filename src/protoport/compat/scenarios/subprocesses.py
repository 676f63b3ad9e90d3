"""Subprocess Transports, Subprocess Protocols and the loop's Running Subprocesses:
``subprocess_exec()``, ``subprocess_shell()``, ``asyncio.SubprocessTransport``
and the order of a ``SubprocessProtocol``'s callbacks. The children are small
POSIX commands (``sh``, ``cat``, ``head``, ``sleep``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Any

from .. import sections
from .._env import Env
from .._registry import scenario

RUNNING = sections.SUBPROCESSES
TRANSPORTS = sections.SUBPROCESS_TRANSPORTS
PROTOCOLS = sections.SUBPROCESS_PROTOCOLS
NEEDS = ["subprocess"]


async def _finished(env: Env, protocol: Any) -> None:
    """Wait for ``connection_lost()``: the child has exited and its pipes are
    closed."""
    env.expect_equal("connection_lost() argument", await protocol.wait_lost(), None)


# -- loop.subprocess_exec() and subprocess_shell() ---------------------------------


@scenario(
    RUNNING,
    "subprocess_exec() returns (SubprocessTransport, protocol) after connection_made()",
    requires=NEEDS,
)
async def exec_returns_transport(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("cat")
    env.expect(
        isinstance(transport, asyncio.SubprocessTransport),
        f"{type(transport).__name__} is not an asyncio.SubprocessTransport",
    )
    env.expect_equal("callbacks so far", protocol.names(), ["connection_made"])
    env.expect(protocol.transport is transport, "connection_made() got another object")
    transport.get_pipe_transport(0).close()
    await _finished(env, protocol)


@scenario(
    RUNNING,
    "subprocess_exec() of a missing program raises FileNotFoundError, with no "
    "connection_made()",
    requires=NEEDS,
)
async def exec_missing_program(env: Env) -> None:
    made: list[Any] = []

    def factory() -> asyncio.BaseProtocol:
        protocol = env.subprocess_protocol()
        made.append(protocol)
        return protocol

    await env.expect_raises_async(
        FileNotFoundError,
        None,
        env.subprocess_exec(env.temp_path("no-such-program"), protocol_factory=factory),
        "subprocess_exec()",
    )
    await env.settle()
    env.expect_equal(
        "callbacks", [name for protocol in made for name in protocol.names()], []
    )


@scenario(
    RUNNING,
    "subprocess_exec() passes the arguments to the program as they are",
    requires=NEEDS,
)
async def exec_arguments(env: Env) -> None:
    _, protocol = await env.subprocess_exec("printf", "%s|", "a b", "$HOME", "*")
    await _finished(env, protocol)
    env.expect_equal("stdout", bytes(protocol.output[1]), b"a b|$HOME|*|")


@scenario(
    RUNNING,
    "subprocess_shell() runs the command with the shell",
    requires=NEEDS,
)
async def shell_runs_command(env: Env) -> None:
    _, protocol = await env.subprocess_shell("echo $((6 * 7)) | tr 4 X")
    await _finished(env, protocol)
    env.expect_equal("stdout", bytes(protocol.output[1]), b"X2\n")


@scenario(
    RUNNING,
    "subprocess_exec(universal_newlines=True) raises ValueError('universal_newlines "
    "must be False')",
    requires=NEEDS,
)
async def exec_rejects_universal_newlines(env: Env) -> None:
    await env.expect_raises_async(
        ValueError,
        "universal_newlines must be False",
        env.subprocess_exec("true", universal_newlines=True),
        "subprocess_exec()",
    )


@scenario(
    RUNNING,
    "subprocess_exec(bufsize=1) raises ValueError('bufsize must be 0')",
    requires=NEEDS,
)
async def exec_rejects_bufsize(env: Env) -> None:
    await env.expect_raises_async(
        ValueError,
        "bufsize must be 0",
        env.subprocess_exec("true", bufsize=1),
        "subprocess_exec()",
    )


@scenario(
    RUNNING,
    "subprocess_exec() rejects text=True, encoding= and errors= with ValueError",
    requires=NEEDS,
)
async def exec_rejects_text(env: Env) -> None:
    for option, value, message in (
        ("text", True, "text must be False"),
        ("encoding", "utf-8", "encoding must be None"),
        ("errors", "strict", "errors must be None"),
    ):
        options: dict[str, Any] = {option: value}
        await env.expect_raises_async(
            ValueError,
            message,
            env.subprocess_exec("true", **options),
            f"subprocess_exec({option}={value!r})",
        )


@scenario(
    RUNNING,
    "subprocess_exec(shell=True) raises ValueError('shell must be False')",
    requires=NEEDS,
)
async def exec_rejects_shell(env: Env) -> None:
    await env.expect_raises_async(
        ValueError,
        "shell must be False",
        env.subprocess_exec("true", shell=True),
        "subprocess_exec(shell=True)",
    )


@scenario(
    RUNNING,
    "subprocess_shell() of something other than a string raises "
    "ValueError('cmd must be a string')",
    requires=NEEDS,
)
async def shell_rejects_non_string(env: Env) -> None:
    await env.expect_raises_async(
        ValueError,
        "cmd must be a string",
        env.subprocess_shell(["true"]),
        "subprocess_shell()",
    )


@scenario(
    RUNNING,
    "subprocess_exec() passes cwd= and env= on to the child",
    requires=NEEDS,
)
async def exec_cwd_and_env(env: Env) -> None:
    directory = os.path.dirname(env.temp_path("x"))
    _, protocol = await env.subprocess_exec(
        "sh",
        "-c",
        'printf "%s %s" "$PWD" "$PROTOPORT_VALUE"',
        cwd=directory,
        env={"PROTOPORT_VALUE": "42", "PATH": os.environ.get("PATH", "")},
    )
    await _finished(env, protocol)
    env.expect_equal("stdout", bytes(protocol.output[1]), f"{directory} 42".encode())


@scenario(
    RUNNING,
    "subprocess_exec(stderr=STDOUT) sends the child's stderr to fd 1",
    requires=NEEDS,
)
async def exec_stderr_to_stdout(env: Env) -> None:
    transport, protocol = await env.subprocess_exec(
        "sh", "-c", "echo out; echo err >&2", stderr=subprocess.STDOUT
    )
    env.expect(transport.get_pipe_transport(2) is None, "stderr has a pipe transport")
    await _finished(env, protocol)
    env.expect_equal("fd 1", bytes(protocol.output[1]), b"out\nerr\n")
    env.expect_equal("fd 2", bytes(protocol.output[2]), b"")


# -- SubprocessTransport -----------------------------------------------------------


@scenario(TRANSPORTS, "get_pid() is the child's process id", requires=NEEDS)
async def get_pid(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("sh", "-c", "echo $$")
    await _finished(env, protocol)
    env.expect_equal(
        "the child's $$", bytes(protocol.output[1]), f"{transport.get_pid()}\n".encode()
    )


@scenario(
    TRANSPORTS,
    "get_pipe_transport(): a WriteTransport for 0, ReadTransports for 1 and 2",
    requires=NEEDS,
)
async def get_pipe_transport_kinds(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("cat")
    stdin = transport.get_pipe_transport(0)
    env.expect(
        isinstance(stdin, asyncio.WriteTransport),
        f"get_pipe_transport(0) is {stdin!r}, not an asyncio.WriteTransport",
    )
    for fd in (1, 2):
        pipe = transport.get_pipe_transport(fd)
        env.expect(
            isinstance(pipe, asyncio.ReadTransport),
            f"get_pipe_transport({fd}) is {pipe!r}, not an asyncio.ReadTransport",
        )
    stdin.close()
    await _finished(env, protocol)


@scenario(
    TRANSPORTS,
    "get_pipe_transport(fd) is None when fd is not a pipe",
    requires=NEEDS,
)
async def get_pipe_transport_none(env: Env) -> None:
    transport, protocol = await env.subprocess_exec(
        "true", stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env.expect_equal("get_pipe_transport(0)", transport.get_pipe_transport(0), None)
    env.expect_equal("get_pipe_transport(2)", transport.get_pipe_transport(2), None)
    env.expect_equal("get_pipe_transport(3)", transport.get_pipe_transport(3), None)
    await _finished(env, protocol)
    env.expect(
        ("pipe_lost", 2, None) not in protocol.order(),
        "pipe_connection_lost() for a descriptor that is not a pipe",
    )


@scenario(
    TRANSPORTS,
    "writing to get_pipe_transport(0) feeds the child's stdin; closing it is its EOF",
    requires=NEEDS,
)
async def stdin_pipe_feeds_child(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("cat")
    stdin = transport.get_pipe_transport(0)
    stdin.write(b"round ")
    stdin.write(b"trip")
    stdin.close()
    await _finished(env, protocol)
    env.expect_equal("stdout", bytes(protocol.output[1]), b"round trip")


@scenario(
    TRANSPORTS,
    "get_returncode() is None while the child runs, its exit status afterwards",
    requires=NEEDS,
)
async def get_returncode(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("sh", "-c", "read x; exit 3")
    env.expect_equal("get_returncode() while running", transport.get_returncode(), None)
    transport.get_pipe_transport(0).write(b"go\n")
    await _finished(env, protocol)
    env.expect_equal("get_returncode()", transport.get_returncode(), 3)


@scenario(
    TRANSPORTS,
    "kill() kills the child: get_returncode() is -SIGKILL",
    requires=NEEDS,
)
async def kill(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("sleep", "30")
    transport.kill()
    await _finished(env, protocol)
    env.expect_equal("get_returncode()", transport.get_returncode(), -signal.SIGKILL)


@scenario(
    TRANSPORTS,
    "terminate() stops the child with SIGTERM",
    requires=NEEDS,
)
async def terminate(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("sleep", "30")
    transport.terminate()
    await _finished(env, protocol)
    env.expect_equal("get_returncode()", transport.get_returncode(), -signal.SIGTERM)


@scenario(
    TRANSPORTS,
    "send_signal() delivers the signal to the child",
    requires=NEEDS,
)
async def send_signal(env: Env) -> None:
    transport, protocol = await env.subprocess_exec(
        "sh",
        "-c",
        "trap 'echo got USR1; exit 7' USR1; echo ready; while :; do sleep 0.01; done",
    )
    await env.wait_until(lambda: protocol.output[1] == b"ready\n", "the child to start")
    transport.send_signal(signal.SIGUSR1)
    await _finished(env, protocol)
    env.expect_equal("stdout", bytes(protocol.output[1]), b"ready\ngot USR1\n")
    env.expect_equal("get_returncode()", transport.get_returncode(), 7)


@scenario(
    TRANSPORTS,
    "send_signal(), terminate() and kill() after connection_lost() raise "
    "ProcessLookupError",
    requires=NEEDS,
)
async def signal_after_exit(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("true")
    await _finished(env, protocol)
    env.expect_raises(ProcessLookupError, None, transport.send_signal, signal.SIGTERM)
    env.expect_raises(ProcessLookupError, None, transport.terminate)
    env.expect_raises(ProcessLookupError, None, transport.kill)


@scenario(
    TRANSPORTS,
    "close() kills a child that still runs; the protocol still gets connection_lost()",
    requires=NEEDS,
)
async def close_kills_child(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("sleep", "30")
    env.expect_equal("is_closing() before close()", transport.is_closing(), False)
    transport.close()
    env.expect_equal("is_closing() after close()", transport.is_closing(), True)
    await _finished(env, protocol)
    env.expect_equal("get_returncode()", transport.get_returncode(), -signal.SIGKILL)
    env.expect_equal("process_exited() calls", protocol.count("process_exited"), 1)


@scenario(
    TRANSPORTS,
    "close() of a child that has exited leaves its exit status alone",
    requires=NEEDS,
)
async def close_after_exit(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("sh", "-c", "exit 5")
    await protocol.wait_for("process_exited")
    transport.close()
    transport.close()
    await _finished(env, protocol)
    env.expect_equal("get_returncode()", transport.get_returncode(), 5)


@scenario(
    TRANSPORTS,
    "get_extra_info('subprocess') is the subprocess.Popen of the child",
    requires=NEEDS,
)
async def extra_info_subprocess(env: Env) -> None:
    transport, protocol = await env.subprocess_exec("true")
    popen = transport.get_extra_info("subprocess")
    env.expect(
        isinstance(popen, subprocess.Popen),
        f"get_extra_info('subprocess') is {popen!r}, not a subprocess.Popen",
    )
    env.expect_equal("its pid", popen.pid, transport.get_pid())
    await _finished(env, protocol)


# -- SubprocessProtocol ------------------------------------------------------------


@scenario(
    PROTOCOLS,
    "connection_made() first, each pipe's pipe_connection_lost() once, "
    "process_exited() once, connection_lost(None) last",
    requires=NEEDS,
)
async def callback_order(env: Env) -> None:
    transport, protocol = await env.subprocess_exec(
        "sh", "-c", "echo out; echo err >&2"
    )
    transport.get_pipe_transport(0).close()
    await _finished(env, protocol)
    await env.settle()
    order = protocol.order()
    env.expect_equal("first callback", order[0], "made")
    env.expect_equal("last callback", order[-1], ("lost", None))
    env.expect_equal(
        "the callbacks in between, in any order",
        sorted(order[1:-1], key=repr),
        sorted(
            [
                ("pipe_lost", 0, None),
                ("pipe_lost", 1, None),
                ("pipe_lost", 2, None),
                ("exited", 0),
            ],
            key=repr,
        ),
    )


@scenario(
    PROTOCOLS,
    "pipe_data_received(fd, data): stdout as fd 1, stderr as fd 2",
    requires=NEEDS,
)
async def pipe_data_by_fd(env: Env) -> None:
    _, protocol = await env.subprocess_exec(
        "sh", "-c", "echo out; echo err >&2; echo more", stdin=subprocess.DEVNULL
    )
    await _finished(env, protocol)
    env.expect_equal("fd 1", bytes(protocol.output[1]), b"out\nmore\n")
    env.expect_equal("fd 2", bytes(protocol.output[2]), b"err\n")


@scenario(
    PROTOCOLS,
    "no pipe_data_received() for a pipe after its pipe_connection_lost()",
    requires=NEEDS,
)
async def no_data_after_pipe_lost(env: Env) -> None:
    _, protocol = await env.subprocess_exec(
        "sh",
        "-c",
        "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2",
        stdin=subprocess.DEVNULL,
    )
    await _finished(env, protocol)
    closed: set[int] = set()
    for event in protocol.events:
        if event[0] == "pipe_connection_lost":
            closed.add(event[1])
        elif event[0] == "pipe_data_received":
            env.expect(
                event[1] not in closed,
                f"pipe_data_received({event[1]}) after its pipe_connection_lost()",
            )
    env.expect_equal("stdout bytes", len(protocol.output[1]), 300_000)
    env.expect_equal("stderr bytes", len(protocol.output[2]), 300_000)


@scenario(
    PROTOCOLS,
    "a child that writes and exits at once: every byte arrives before "
    "connection_lost()",
    requires=NEEDS,
)
async def no_lost_output_at_exit(env: Env) -> None:
    _, protocol = await env.subprocess_exec(
        "head", "-c", "2000000", "/dev/zero", stdin=subprocess.DEVNULL
    )
    await _finished(env, protocol)
    env.expect_equal("stdout bytes", len(protocol.output[1]), 2_000_000)


@scenario(
    PROTOCOLS,
    "a child that closes stdout early: pipe_connection_lost(1) before process_exited()",
    requires=NEEDS,
)
async def stdout_closed_early(env: Env) -> None:
    transport, protocol = await env.subprocess_exec(
        "sh", "-c", "echo early; exec >&-; read x", stderr=subprocess.DEVNULL
    )
    await env.wait_until(
        lambda: ("pipe_lost", 1, None) in protocol.order(),
        "pipe_connection_lost(1) while the child runs",
    )
    env.expect_equal("process_exited() calls", protocol.count("process_exited"), 0)
    transport.get_pipe_transport(0).write(b"\n")
    await _finished(env, protocol)
    env.expect_equal("stdout", bytes(protocol.output[1]), b"early\n")


@scenario(
    PROTOCOLS,
    "a child killed by a signal: process_exited() with -signal, then "
    "connection_lost(None)",
    requires=NEEDS,
)
async def killed_by_signal(env: Env) -> None:
    _, protocol = await env.subprocess_exec("sh", "-c", "kill -9 $$")
    await _finished(env, protocol)
    env.expect(
        ("exited", -signal.SIGKILL) in protocol.order(),
        f"callbacks: {protocol.order()}",
    )


@scenario(
    PROTOCOLS,
    "a child that never reads stdin: pause_writing() at the high-water mark, "
    "pipe_connection_lost(0) once it exits",
    requires=NEEDS,
)
async def stdin_never_read(env: Env) -> None:
    transport, protocol = await env.subprocess_exec(
        "sleep", "0.3", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    stdin = transport.get_pipe_transport(0)
    for _ in range(20):
        stdin.write(b"\0" * (1 << 20))
    await protocol.wait_for("pause_writing")
    env.expect(
        stdin.get_write_buffer_size() > 0,
        "nothing is buffered while the child does not read",
    )
    await _finished(env, protocol)
    env.expect_equal("get_returncode()", transport.get_returncode(), 0)
    env.expect(
        ("pipe_lost", 0, "BrokenPipeError") in protocol.order(),
        f"no pipe_connection_lost(0, BrokenPipeError): {protocol.order()}",
    )
    env.expect_equal("resume_writing() calls", protocol.count("resume_writing"), 0)


@scenario(
    PROTOCOLS,
    "pausing a child's stdout pipe stops pipe_data_received(); resuming delivers "
    "every byte",
    requires=NEEDS,
)
async def pause_stdout_pipe(env: Env) -> None:
    total = 20 * (1 << 20)
    transport, protocol = await env.subprocess_exec(
        "head", "-c", str(total), "/dev/zero", stdin=subprocess.DEVNULL
    )
    stdout = transport.get_pipe_transport(1)
    stdout.pause_reading()
    await env.settle(0.1)
    received = len(protocol.output[1])
    await env.settle(0.1)
    env.expect_equal("bytes received while paused", len(protocol.output[1]), received)
    env.expect(received < total, "everything arrived while paused")
    env.expect_equal(
        "process_exited() calls while paused", protocol.count("process_exited"), 0
    )
    stdout.resume_reading()
    await _finished(env, protocol)
    env.expect_equal("stdout bytes", len(protocol.output[1]), total)


@scenario(
    PROTOCOLS,
    "a raising pipe_data_received() is reported to the exception handler",
    requires=NEEDS,
)
async def raising_pipe_data_received(env: Env) -> None:
    class Failing(asyncio.SubprocessProtocol):
        def __init__(self) -> None:
            self.lost = env.loop.create_future()

        def pipe_data_received(self, fd: int, data: bytes) -> None:
            raise RuntimeError("protocol bug")

        def connection_lost(self, exc: BaseException | None) -> None:
            if not self.lost.done():
                self.lost.set_result(exc)

    await env.subprocess_exec(
        "echo", "x", protocol_factory=Failing, stdin=subprocess.DEVNULL
    )
    await env.wait_until(lambda: env.errors, "an exception handler call")
    exc = env.errors[0].get("exception")
    env.expect(
        isinstance(exc, RuntimeError) and str(exc) == "protocol bug",
        f"the exception handler got {exc!r}",
    )
