"""Subprocesses: ``create_subprocess_exec()``, ``create_subprocess_shell()`` and
the ``Process`` they return (``wait()``, ``communicate()``, signals, the stream
objects of the child's pipes)."""

from __future__ import annotations

import os
import signal
from asyncio.subprocess import PIPE
from typing import Any

from .. import sections
from .._env import Env
from .._pattern import pattern
from .._registry import scenario

CREATING = sections.CREATING_SUBPROCESSES
INTERACTING = sections.INTERACTING_WITH_SUBPROCESSES
NEEDS = ["subprocess"]


async def _wait(env: Env, process: Any) -> int:
    """``process.wait()``, bounded."""
    result: int = await env.wait_done(env.loop.create_task(process.wait()), "wait()")
    return result


# -- Creating Subprocesses ---------------------------------------------------------


@scenario(
    CREATING,
    "create_subprocess_exec(stdout=PIPE): stdout is a StreamReader of the child's "
    "output; stdin and stderr are None",
    requires=NEEDS,
)
async def exec_stdout_pipe(env: Env) -> None:
    process = await env.create_subprocess_exec("echo", "hello", stdout=PIPE)
    env.expect(process.stdin is None, "stdin is not None without stdin=PIPE")
    env.expect(process.stderr is None, "stderr is not None without stderr=PIPE")
    env.expect(
        isinstance(process.stdout, env.streams.StreamReader),
        f"stdout is {process.stdout!r}, not a StreamReader",
    )
    env.expect_equal("stdout.read()", await process.stdout.read(), b"hello\n")
    env.expect_equal("wait()", await _wait(env, process), 0)


@scenario(
    CREATING,
    "create_subprocess_shell() runs the command with the shell",
    requires=NEEDS,
)
async def shell_command(env: Env) -> None:
    process = await env.create_subprocess_shell(
        "echo $((20 + 22)); exit 4", stdout=PIPE
    )
    env.expect_equal("stdout.read()", await process.stdout.read(), b"42\n")
    env.expect_equal("wait()", await _wait(env, process), 4)


@scenario(CREATING, "Process.pid is the child's process id", requires=NEEDS)
async def process_pid(env: Env) -> None:
    process = await env.create_subprocess_exec("sh", "-c", "echo $$", stdout=PIPE)
    output = await process.stdout.read()
    env.expect_equal("the child's $$", output, f"{process.pid}\n".encode())
    await _wait(env, process)


@scenario(
    CREATING,
    "create_subprocess_exec() of a missing program raises FileNotFoundError",
    requires=NEEDS,
)
async def exec_missing_program(env: Env) -> None:
    await env.expect_raises_async(
        FileNotFoundError,
        None,
        env.create_subprocess_exec(env.temp_path("missing"), stdout=PIPE),
        "create_subprocess_exec()",
    )


@scenario(
    CREATING,
    "limit= is the buffer limit of the stdout and stderr StreamReaders",
    requires=NEEDS,
)
async def reader_limit(env: Env) -> None:
    process = await env.create_subprocess_exec(
        "sh", "-c", "echo 0123456789abcdefghij", stdout=PIPE, limit=8
    )
    await env.expect_raises_async(
        ValueError, None, process.stdout.readline(), "stdout.readline()"
    )
    await _wait(env, process)


@scenario(
    CREATING,
    "stdin=PIPE: stdin is a StreamWriter whose bytes the child reads; close() is "
    "its end of file",
    requires=NEEDS,
)
async def stdin_stream_writer(env: Env) -> None:
    process = await env.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
    env.expect(
        isinstance(process.stdin, env.streams.StreamWriter),
        f"stdin is {process.stdin!r}, not a StreamWriter",
    )
    process.stdin.write(b"through ")
    process.stdin.writelines([b"cat"])
    await process.stdin.drain()
    process.stdin.close()
    env.expect_equal("stdout.read()", await process.stdout.read(), b"through cat")
    env.expect_equal("wait()", await _wait(env, process), 0)


@scenario(
    CREATING,
    "a child writing 20 MiB: stdout.read() returns every byte",
    requires=NEEDS,
)
async def large_output(env: Env) -> None:
    total = 20 * (1 << 20)
    process = await env.create_subprocess_exec(
        "head", "-c", str(total), "/dev/zero", stdout=PIPE
    )
    output = await process.stdout.read()
    env.expect_equal("bytes read", len(output), total)
    env.expect_equal("wait()", await _wait(env, process), 0)


# -- Interacting with Subprocesses -------------------------------------------------


@scenario(
    INTERACTING,
    "returncode is None while the child runs; wait() sets and returns it",
    requires=NEEDS,
)
async def wait_sets_returncode(env: Env) -> None:
    process = await env.create_subprocess_exec("sh", "-c", "read x; exit 9", stdin=PIPE)
    env.expect_equal("returncode while running", process.returncode, None)
    process.stdin.write(b"\n")
    env.expect_equal("wait()", await _wait(env, process), 9)
    env.expect_equal("returncode", process.returncode, 9)
    env.expect_equal("wait() again", await _wait(env, process), 9)


@scenario(
    INTERACTING,
    "wait() from two tasks: both get the exit status",
    requires=NEEDS,
)
async def wait_twice_at_once(env: Env) -> None:
    process = await env.create_subprocess_exec("sh", "-c", "read x; exit 2", stdin=PIPE)
    first = env.loop.create_task(process.wait())
    second = env.loop.create_task(process.wait())
    await env.settle()
    process.stdin.write(b"\n")
    env.expect_equal("first wait()", await env.wait_done(first, "wait()"), 2)
    env.expect_equal("second wait()", await env.wait_done(second, "wait()"), 2)


@scenario(
    INTERACTING,
    "wait() returns when the child exits, though a grandchild keeps its stdout open",
    requires=NEEDS,
    reference_deviation=(
        "CPython 3.11 and later wake wait() only once every pipe is closed too, so "
        "a grandchild holding stdout holds wait() (the documentation says it "
        "waits for the child process to terminate)"
    ),
)
async def wait_returns_at_exit(env: Env) -> None:
    process = await env.create_subprocess_shell(
        "sleep 5 & echo $!; read x", stdout=PIPE, stdin=PIPE
    )
    grandchild = int(await process.stdout.readline())
    try:
        waiting = env.loop.create_task(process.wait())
        await env.settle()
        process.stdin.write(b"\n")
        env.expect_equal(
            "wait()", await env.wait_done(waiting, "wait() (1 s)", timeout=1.0), 0
        )
    finally:
        os.kill(grandchild, signal.SIGKILL)


@scenario(
    INTERACTING,
    "communicate(input): writes input, closes stdin, returns (stdout, stderr) data",
    requires=NEEDS,
)
async def communicate_round_trip(env: Env) -> None:
    process = await env.create_subprocess_exec(
        "sh", "-c", "cat; echo done >&2", stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    data = pattern(1 << 20)
    task = env.loop.create_task(process.communicate(data))
    out, err = await env.wait_done(task, "communicate()")
    env.expect(out == data, f"stdout: {len(out)} bytes, not the {len(data)} written")
    env.expect_equal("stderr", err, b"done\n")
    env.expect_equal("returncode", process.returncode, 0)


@scenario(
    INTERACTING,
    "communicate() with 16 MiB each way does not deadlock",
    requires=NEEDS,
)
async def communicate_large(env: Env) -> None:
    process = await env.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
    data = pattern(16 << 20)
    task = env.loop.create_task(process.communicate(data))
    out, err = await env.wait_done(task, "communicate()", timeout=6)
    env.expect(out == data, f"stdout: {len(out)} bytes, not the {len(data)} written")
    env.expect_equal("stderr", err, None)


@scenario(
    INTERACTING,
    "communicate(input) to a child that does not read its stdin is not an error",
    requires=NEEDS,
)
async def communicate_broken_pipe(env: Env) -> None:
    process = await env.create_subprocess_exec(
        "sh", "-c", "echo ignored", stdin=PIPE, stdout=PIPE
    )
    task = env.loop.create_task(process.communicate(b"x" * (4 << 20)))
    out, _ = await env.wait_done(task, "communicate()")
    env.expect_equal("stdout", out, b"ignored\n")
    env.expect_equal("returncode", process.returncode, 0)


@scenario(
    INTERACTING,
    "communicate() without pipes waits for the child and returns (None, None)",
    requires=NEEDS,
)
async def communicate_without_pipes(env: Env) -> None:
    process = await env.create_subprocess_exec("sh", "-c", "exit 6")
    task = env.loop.create_task(process.communicate())
    env.expect_equal("result", await env.wait_done(task, "communicate()"), (None, None))
    env.expect_equal("returncode", process.returncode, 6)


@scenario(
    INTERACTING,
    "cancelling communicate() raises CancelledError and leaves the child running",
    requires=NEEDS,
)
async def communicate_cancelled(env: Env) -> None:
    process = await env.create_subprocess_exec("sleep", "30", stdin=PIPE, stdout=PIPE)
    task = env.loop.create_task(process.communicate(b"input"))
    await env.settle()
    task.cancel()
    await env.wait_until(task.done, "the cancelled communicate() to finish")
    env.expect(task.cancelled(), f"communicate() ended with {task!r}, not cancelled")
    await env.settle()
    env.expect_equal("returncode after the cancellation", process.returncode, None)
    process.kill()
    env.expect_equal("wait()", await _wait(env, process), -signal.SIGKILL)


@scenario(
    INTERACTING,
    "cancelling wait() leaves the child running; a later wait() gets its status",
    requires=NEEDS,
)
async def wait_cancelled(env: Env) -> None:
    process = await env.create_subprocess_exec("sh", "-c", "read x; exit 3", stdin=PIPE)
    task = env.loop.create_task(process.wait())
    await env.settle()
    task.cancel()
    await env.wait_until(task.done, "the cancelled wait() to finish")
    env.expect(task.cancelled(), f"wait() ended with {task!r}, not cancelled")
    env.expect_equal("returncode after the cancellation", process.returncode, None)
    process.stdin.write(b"\n")
    env.expect_equal("wait()", await _wait(env, process), 3)


@scenario(INTERACTING, "kill(): wait() returns -SIGKILL", requires=NEEDS)
async def process_kill(env: Env) -> None:
    process = await env.create_subprocess_exec("sleep", "30")
    process.kill()
    env.expect_equal("wait()", await _wait(env, process), -signal.SIGKILL)


@scenario(INTERACTING, "terminate(): wait() returns -SIGTERM", requires=NEEDS)
async def process_terminate(env: Env) -> None:
    process = await env.create_subprocess_exec("sleep", "30")
    process.terminate()
    env.expect_equal("wait()", await _wait(env, process), -signal.SIGTERM)


@scenario(INTERACTING, "send_signal() delivers the signal to the child", requires=NEEDS)
async def process_send_signal(env: Env) -> None:
    process = await env.create_subprocess_exec(
        "sh",
        "-c",
        "trap 'echo got HUP; exit 8' HUP; echo ready; while :; do sleep 0.01; done",
        stdout=PIPE,
    )
    env.expect_equal("first line", await process.stdout.readline(), b"ready\n")
    process.send_signal(signal.SIGHUP)
    env.expect_equal("after the signal", await process.stdout.read(), b"got HUP\n")
    env.expect_equal("wait()", await _wait(env, process), 8)


@scenario(
    INTERACTING,
    "stdout.read() returns b'' once the child's output is read and it has exited",
    requires=NEEDS,
)
async def stdout_at_eof(env: Env) -> None:
    process = await env.create_subprocess_exec("echo", "x", stdout=PIPE)
    env.expect_equal("read()", await process.stdout.read(), b"x\n")
    await _wait(env, process)
    env.expect_equal("read() at the end", await process.stdout.read(), b"")
    env.expect(process.stdout.at_eof(), "stdout.at_eof() is False")


@scenario(
    INTERACTING,
    "stdin.drain() after the child exited raises BrokenPipeError or "
    "ConnectionResetError",
    requires=NEEDS,
)
async def drain_after_exit(env: Env) -> None:
    process = await env.create_subprocess_exec("true", stdin=PIPE)
    await _wait(env, process)
    await env.settle()

    async def write_and_drain() -> None:
        for _ in range(4):
            process.stdin.write(b"x" * (1 << 20))
            await process.stdin.drain()

    task = env.loop.create_task(write_and_drain())
    await env.wait_until(task.done, "drain() to fail")
    exc = task.exception()
    env.expect(
        isinstance(exc, (BrokenPipeError, ConnectionResetError)),
        f"drain() raised {exc!r}",
    )
