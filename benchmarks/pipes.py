"""Pipes and child processes: protoport against its peers.

Three workloads, each the same asyncio code on every implementation:

- ``cat-protocol``: ``loop.subprocess_exec()`` runs ``cat`` with a
  ``SubprocessProtocol``; the protocol writes the data to the child's stdin in
  1 MiB pieces (waiting whenever ``pause_writing()`` says the pipe is full) and
  counts what comes back on stdout, until ``connection_lost()``.
- ``cat-streams``: ``create_subprocess_exec("cat")``; ``stdin.write()`` and
  ``drain()`` in 1 MiB pieces while a task reads stdout.
- ``spawn``: ``create_subprocess_exec("true")`` and ``wait()``, one child after
  the other.

Every measurement runs in a fresh process of its own (``pipes.py measure KIND
WORKLOAD``), which warms up with a little of the same work first and then reports
the wall time and its own CPU time (user + system, the child's excluded). The
driver interleaves implementations and rounds, because a small shared machine is
noisy, and reports MiB/s and CPU milliseconds per MiB for the pipes, spawns per
second and CPU microseconds per spawn for the children, and the ratios of the
protoport runs to native asyncio.

Usage::

    python benchmarks/pipes.py run [--mib 512] [--spawns 300] [--rounds 3]
        [--quick] [--impls a,b,...] [--json out.json] [--markdown out.md]
    python benchmarks/pipes.py measure KIND WORKLOAD --mib N --spawns N
    python benchmarks/pipes.py list
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import _driver  # beside this file: what the benchmarks share

MIB = 1 << 20
PIPE = subprocess.PIPE

# -- the workloads: asyncio code, given the loop and the module functions -----------


class CatProtocol(asyncio.SubprocessProtocol):
    """Writes *total* bytes to the child's stdin in 1 MiB pieces, honouring
    ``pause_writing()``, and counts what the child writes back."""

    def __init__(self, loop, total):
        self.loop = loop
        self.total = total
        self.received = 0
        self.writable = loop.create_future()
        self.writable.set_result(None)
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def pause_writing(self):
        self.writable = self.loop.create_future()

    def resume_writing(self):
        if not self.writable.done():
            self.writable.set_result(None)

    def pipe_data_received(self, fd, data):
        self.received += len(data)

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)

    async def feed(self):
        stdin = self.transport.get_pipe_transport(0)
        piece = b"x" * MIB
        for _ in range(self.total // MIB):
            await self.writable
            stdin.write(piece)
        stdin.close()


async def cat_protocol(loop, create_subprocess_exec, total):
    _, protocol = await loop.subprocess_exec(
        lambda: CatProtocol(loop, total), "cat", stdin=PIPE, stdout=PIPE, stderr=None
    )
    await protocol.feed()
    exc = await protocol.done
    if exc is not None or protocol.received != total:
        raise RuntimeError(f"cat gave back {protocol.received} of {total} bytes")


async def cat_streams(loop, create_subprocess_exec, total):
    proc = await create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)

    async def read_all():
        received = 0
        while chunk := await proc.stdout.read(MIB):
            received += len(chunk)
        return received

    reader = loop.create_task(read_all())
    piece = b"x" * MIB
    for _ in range(total // MIB):
        proc.stdin.write(piece)
        await proc.stdin.drain()
    proc.stdin.close()
    received = await reader
    if await proc.wait() != 0 or received != total:
        raise RuntimeError(f"cat gave back {received} of {total} bytes")


async def spawn(loop, create_subprocess_exec, count):
    for _ in range(count):
        proc = await create_subprocess_exec("true")
        if await proc.wait() != 0:
            raise RuntimeError("true failed")


#: name -> (coroutine function, what it does, unit, the size argument's option)
WORKLOADS = {
    "cat-protocol": (cat_protocol, "MiB through cat, SubprocessProtocol", "mib"),
    "cat-streams": (cat_streams, "MiB through cat, Process streams", "mib"),
    "spawn": (spawn, "spawn + wait of true", "spawns"),
}


async def timed(loop, create_subprocess_exec, workload, size, warmup_size):
    """Run *workload* once with *warmup_size*, then with *size*; the wall and
    CPU seconds of the second run."""
    work = WORKLOADS[workload][0]
    await work(loop, create_subprocess_exec, warmup_size)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    await work(loop, create_subprocess_exec, size)
    elapsed = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    return {"elapsed": elapsed, "cpu": cpu}


# -- the implementations ----------------------------------------------------------


async def _on_protoport(workload, size, warmup_size):
    import protoport

    async with protoport.open_loop() as loop:
        task = loop.create_task(
            timed(loop, protoport.create_subprocess_exec, workload, size, warmup_size)
        )
        return await task


async def _on_asyncio(workload, size, warmup_size):
    loop = asyncio.get_running_loop()
    return await timed(
        loop, asyncio.create_subprocess_exec, workload, size, warmup_size
    )


async def _on_trio_asyncio(workload, size, warmup_size):
    import trio_asyncio

    async with trio_asyncio.open_loop():
        return await trio_asyncio.aio_as_trio(_on_asyncio)(workload, size, warmup_size)


#: name -> (runner, modules it needs, what it is)
IMPLEMENTATIONS = _driver.implementations(
    (
        _on_protoport,
        "protoport.open_loop() under {runtime}, the workload in a task of the loop",
    ),
    (_on_asyncio, "asyncio.create_subprocess_exec"),
    (
        _on_trio_asyncio,
        "asyncio's own subprocess transport on trio_asyncio.open_loop() under trio",
    ),
)

PROTOPORT = ("protoport-trio", "protoport-asyncio")
BASELINE = "asyncio"

#: (implementation, workload, minimum ratio to native asyncio of the rate);
#: shown, never asserted.
TARGETS = (
    ("protoport-trio", "cat-protocol", 1.0),
    ("protoport-trio", "cat-streams", 1.0),
    ("protoport-trio", "spawn", 1.0),
)


def missing_modules(kind):
    return _driver.missing_modules(kind, IMPLEMENTATIONS)


def cmd_measure(args):
    unit = WORKLOADS[args.workload][2]
    if unit == "mib":
        size, warmup = args.mib * MIB, min(args.mib, 8) * MIB
    else:
        size, warmup = args.spawns, min(args.spawns, 10)
    result = IMPLEMENTATIONS[args.kind][0](args.workload, size, warmup)
    print(json.dumps(result))


# -- the driver -----------------------------------------------------------------------


def measure(kind, workload, args):
    """Run one measurement in a process of its own; its result, with the rate
    and the CPU time per unit."""
    cmd = [sys.executable, os.path.abspath(__file__), "measure", kind, workload]
    cmd += ["--mib", str(args.mib), "--spawns", str(args.spawns)]
    try:
        done = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{kind} {workload}: no result within 300 s") from None
    if done.returncode != 0:
        raise RuntimeError(
            f"{kind} {workload}: exit {done.returncode}\n{done.stderr[-2000:]}"
        )
    result = json.loads(done.stdout)
    if WORKLOADS[workload][2] == "mib":
        result["rate"] = args.mib / result["elapsed"]
        result["cpu_per_unit"] = result["cpu"] / args.mib * 1e3  # ms per MiB
    else:
        result["rate"] = args.spawns / result["elapsed"]
        result["cpu_per_unit"] = result["cpu"] / args.spawns * 1e6  # us per spawn
    return result


def baseline_ratios(stats, impls, workloads):
    """``{kind: {workload: (rate ratio, CPU ratio)}}`` to native asyncio: the rate
    of *kind* over asyncio's, asyncio's CPU time per unit over *kind*'s (both
    higher: *kind* better)."""
    ratios = {}
    for kind in impls:
        for workload in workloads:
            ours = stats.get(kind, {}).get(workload)
            base = stats.get(BASELINE, {}).get(workload)
            if not ours or not base:
                continue
            ratios.setdefault(kind, {})[workload] = (
                ours["median"] / base["median"],
                base["cpu"] / ours["cpu"] if ours["cpu"] else None,
            )
    return ratios


def render_markdown(env, args, impls, workloads, stats, ratios, targets, skipped):
    lines = ["Pipes and child processes benchmark.", ""]
    lines.append(_driver.measured_line(env) + _driver.load_sentence(env))
    lines.append(
        f"{args.mib} MiB through cat in 1 MiB writes; {args.spawns} spawns of true; "
        f"{args.rounds} round(s), each measurement in a fresh process after a "
        "short warm-up, the order shuffled every time. Median (min-max) of the "
        "rounds; CPU time is the measuring process's (user + system, not the "
        "child's)."
    )
    lines.append("")
    columns = [
        "cat-protocol MiB/s",
        "ms CPU/MiB",
        "cat-streams MiB/s",
        "ms CPU/MiB",
        "spawns/s",
        "us CPU/spawn",
    ]

    def cells(kind):
        row = []
        for workload in workloads:
            s = stats.get(kind, {}).get(workload)
            if s is None:
                row += ["-", "-"]
            else:
                row += [_driver.fmt_range(s), f"{s['cpu']:.1f}" if s["cpu"] else "-"]
        return row

    lines += _driver.table("implementation", columns, ((k, cells(k)) for k in impls))
    lines += ["", "Ratios to native asyncio (rate / CPU per unit, higher is better):"]
    lines.append("")
    rows = []
    for kind, by_workload in ratios.items():
        if kind == BASELINE:
            continue
        row = []
        for workload in workloads:
            pair = by_workload.get(workload)
            if pair is None:
                row.append("-")
            else:
                rate, cpu = pair
                row.append(f"{rate:.2f}x / {cpu:.2f}x" if cpu else f"{rate:.2f}x")
        rows.append((kind, row))
    lines += _driver.table("implementation", list(workloads), rows)
    lines += ["", "Targets (goals, not assertions), rate to native asyncio:", ""]
    for t in targets:
        lines.append(
            f"- {t['server']} {t['workload']} >= {t['minimum']:g}x {t['peer']}: "
            f"{_driver.verdict(t)}"
        )
    lines += _driver.skipped_lines(skipped)
    return "\n".join(lines) + "\n"


def cmd_run(args):
    if args.quick:
        args.mib, args.spawns, args.rounds = 32, 50, 1
    workloads = list(WORKLOADS)
    impls, skipped = _driver.choose_servers(
        args.impls, IMPLEMENTATIONS, missing_modules, "implementation(s)"
    )

    def describe(workload, kind, result):
        unit = "MiB/s" if WORKLOADS[workload][2] == "mib" else "spawns/s"
        per = "ms/MiB" if unit == "MiB/s" else "us/spawn"
        return (
            f"{workload:<13} {kind:<18} {result['rate']:>9,.0f} {unit:<8} "
            f"{result['cpu_per_unit']:>7.1f} {per}"
        )

    log_dir = tempfile.mkdtemp(prefix="protoport-pipes-")
    samples, runs, env = _driver.run_rounds(
        impls,
        workloads,
        args,
        log_dir,
        lambda kind, workload: measure(kind, workload, args),
        describe,
    )
    stats, _ = _driver.summarize(
        samples, impls, workloads, PROTOPORT, "rate", cpu=("cpu_per_unit", "cpu")
    )
    ratios = baseline_ratios(stats, impls, workloads)
    targets = []
    for ours, workload, minimum in TARGETS:

        def rate_ratio(kind, _peer, workload=workload):
            return ratios.get(kind, {}).get(workload, (None,))[0]

        targets += _driver.verdicts(
            [(ours, BASELINE, minimum)], rate_ratio, workload=workload
        )
    markdown = render_markdown(
        env, args, impls, workloads, stats, ratios, targets, skipped
    )
    settings = {"mib": args.mib, "spawns": args.spawns, "rounds": args.rounds}
    _driver.publish(
        args,
        markdown,
        env,
        settings,
        skipped,
        runs,
        stats=stats,
        ratios_to_asyncio=ratios,
        targets=targets,
    )


def cmd_list(args):
    _driver.list_servers(IMPLEMENTATIONS, 20)


def main(argv=None):
    parser, sub = _driver.command_line(__doc__)

    p = sub.add_parser("measure", help="one measurement, printed as JSON")
    p.add_argument("kind", choices=list(IMPLEMENTATIONS))
    p.add_argument("workload", choices=list(WORKLOADS))
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--spawns", type=int, default=300)
    p.set_defaults(func=cmd_measure)

    p = sub.add_parser("run", help="measure every implementation, interleaved")
    p.add_argument("--mib", type=int, default=512, help="MiB through cat")
    p.add_argument("--spawns", type=int, default=300, help="children spawned")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--quick",
        action="store_true",
        help="a few seconds in all: 32 MiB, 50 spawns, 1 round",
    )
    p.add_argument("--impls", default="", help="comma-separated; default all")
    _driver.add_outputs(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", help="list the implementations and whether they run")
    p.set_defaults(func=cmd_list)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
