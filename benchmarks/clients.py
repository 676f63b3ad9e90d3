"""Client benchmark: a RESP client and asyncpg against real servers.

The driver starts a redis-server and a PostgreSQL server of its own, each in a
temporary directory on a free port, and stops them when it is done. Every
measurement is a client process of its own that runs one workload on one
implementation and reports its own CPU time (user + system, from
``getrusage()``) over the measured part; what is compared is that CPU time per
operation, the steadier figure on a busy machine, and its ratios.

Workloads:

- ``redis-pipelined``: 20,000 ``SET`` commands written back to back, then their
  replies read, then the same with ``GET``; an operation is one command.
- ``redis-request``: ``SET`` and ``GET`` one at a time, each waiting for its
  reply; an operation is one command.
- ``redis-20mib``: ``SET`` of a 20 MiB value and ``GET`` of it back; an
  operation is the pair.
- ``pg-prepared``: a prepared statement's ``fetchval()``, one round trip each.
- ``pg-copy``: ``COPY`` of 4 MiB of CSV into a table and back out; an operation
  is the pair.

The RESP client is a few lines below, on the implementation's
``open_connection()``: ``protoport.open_connection()`` for protoport, asyncio's
elsewhere; all of it, asyncpg included, runs as asyncio code, a task of the
loop. Implementations: ``protoport-trio`` and ``protoport-asyncio``
(``protoport.open_loop()`` under ``trio.run`` and ``asyncio.run``), ``asyncio``
(the native selector loop), ``uvloop``, and ``trio-asyncio``.

Needs ``redis-server`` (Debian: ``apt-get install redis-server``) for the redis
workloads and PostgreSQL's ``initdb`` and ``postgres`` (on the PATH or in
``/usr/lib/postgresql/*/bin``) with asyncpg (``pip install -e '.[bench]'``) for
the others; a workload whose server or package is missing is skipped with a
note. PostgreSQL refuses to run as root: as root the driver runs it as the
``postgres`` user (or ``nobody``) through ``setpriv``.

Usage::

    python benchmarks/clients.py run [--quick] [--duration 2] [--rounds 3]
        [--workloads a,b,...] [--clients a,b,...] [--json out.json]
        [--markdown out.md]
    python benchmarks/clients.py work KIND WORKLOAD --port N
    python benchmarks/clients.py list
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial

import _driver  # beside this file: what the benchmarks share
from _driver import HOST, fmt_rate, load_average

# -- the RESP client ------------------------------------------------------------------


class RedisError(Exception):
    pass


def command(*args):
    """One RESP command: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


async def reply(reader):
    """Read one RESP reply."""
    line = await reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else (await reader.readexactly(size + 2))[:-2]
    if kind == b":":
        return int(rest)
    if kind == b"*":
        return [await reply(reader) for _ in range(int(rest))]
    if kind == b"-":
        raise RedisError(rest.decode())
    raise RedisError(f"unexpected reply {line[:50]!r}")


def expect(got, wanted):
    if got != wanted:
        raise RedisError(f"expected {wanted[:50]!r}, got {got[:50]!r}")


# -- workloads ------------------------------------------------------------------------

PIPELINE = 20_000
VALUE = b"v" * 64
BIG_VALUE = bytes(range(256)) * (20 * 1024 * 1024 // 256)
COPY_ROWS = 40_000
COPY_DATA = b"".join(b"%d,%s\n" % (i, b"x" * 96) for i in range(COPY_ROWS))


async def measured(passes, warmup, duration):
    """Run ``await passes()`` (which returns how many operations it did) for
    *warmup* seconds, then for *duration* seconds, at least once each; the
    operations, seconds and CPU seconds of the second part."""
    deadline = time.perf_counter() + warmup
    await passes()
    while time.perf_counter() < deadline:
        await passes()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    deadline = start + duration
    ops = await passes()
    while time.perf_counter() < deadline:
        ops += await passes()
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "ops": ops,
        "elapsed": elapsed,
        "cpu_seconds": user + system,
        "user_seconds": user,
        "system_seconds": system,
    }


async def redis_workload(which, open_connection, port, warmup, duration):
    reader, writer = await open_connection(HOST, port)
    keys = [b"key:%d" % i for i in range(PIPELINE)]

    async def pipelined():
        for key in keys:
            writer.write(command(b"SET", key, VALUE))
        await writer.drain()
        for _ in keys:
            expect(await reply(reader), b"OK")
        for key in keys:
            writer.write(command(b"GET", key))
        await writer.drain()
        for _ in keys:
            expect(await reply(reader), VALUE)
        return 2 * len(keys)

    async def one_by_one():
        for key in keys[:1000]:
            writer.write(command(b"SET", key, VALUE))
            expect(await reply(reader), b"OK")
            writer.write(command(b"GET", key))
            expect(await reply(reader), VALUE)
        return 2000

    async def big():
        writer.write(command(b"SET", b"big", BIG_VALUE))
        expect(await reply(reader), b"OK")
        writer.write(command(b"GET", b"big"))
        expect(await reply(reader), BIG_VALUE)
        return 1

    passes = {"pipelined": pipelined, "request": one_by_one, "20mib": big}[which]
    try:
        return await measured(passes, warmup, duration)
    finally:
        writer.close()
        await writer.wait_closed()


async def pg_workload(which, open_connection, port, warmup, duration):
    import asyncpg

    conn = await asyncpg.connect(
        host=HOST, port=port, user="bench", database="postgres", ssl=False
    )

    async def prepared():
        stmt = await conn.prepare("SELECT $1::int4 + 1")
        for i in range(1000):
            if await stmt.fetchval(i) != i + 1:
                raise AssertionError("wrong answer from PostgreSQL")
        return 1000

    async def copy():
        # A memoryview: asyncpg would take bytes for a file name.
        source = memoryview(COPY_DATA)
        status = await conn.copy_to_table("t", source=source, format="csv")
        if status != f"COPY {COPY_ROWS}":
            raise AssertionError(f"COPY in: {status}")
        received = bytearray()

        async def output(chunk):
            received.extend(chunk)

        await conn.copy_from_table("t", output=output, format="csv")
        if received != COPY_DATA:
            raise AssertionError("COPY out differs from what went in")
        await conn.execute("TRUNCATE t")
        return 1

    try:
        if which == "copy":
            await conn.execute("CREATE TEMPORARY TABLE t (a int4, b text)")
        return await measured(
            {"prepared": prepared, "copy": copy}[which], warmup, duration
        )
    finally:
        await conn.close()


#: workload -> (function, its argument, server, packages it needs, what an op is)
WORKLOADS = {
    "redis-pipelined": (redis_workload, "pipelined", "redis", (), "command"),
    "redis-request": (redis_workload, "request", "redis", (), "command"),
    "redis-20mib": (redis_workload, "20mib", "redis", (), "SET + GET of 20 MiB"),
    "pg-prepared": (pg_workload, "prepared", "postgres", ("asyncpg",), "round trip"),
    "pg-copy": (pg_workload, "copy", "postgres", ("asyncpg",), "4 MiB in + out"),
}


# -- implementations ------------------------------------------------------------------


async def _on_protoport(work):
    import protoport

    async with protoport.open_loop() as loop:
        return await loop.create_task(work(protoport.open_connection))


async def _on_asyncio(work):
    return await work(asyncio.open_connection)


async def _on_trio_asyncio(work):
    import trio_asyncio

    async with trio_asyncio.open_loop():
        return await trio_asyncio.aio_as_trio(work)(asyncio.open_connection)


#: name -> (runner taking the workload, modules it needs, what it is)
CLIENTS = _driver.implementations(
    (
        _on_protoport,
        "a task of protoport.open_loop() under {runtime}.run, "
        "protoport.open_connection()",
    ),
    (_on_asyncio, "asyncio.open_connection()"),
    (
        _on_trio_asyncio,
        "trio_asyncio.open_loop() under trio.run, asyncio.open_connection()",
    ),
)

PROTOPORT_CLIENTS = ("protoport-trio", "protoport-asyncio")

#: (client, peer, minimum ratio of the peer's CPU time per operation to ours,
#: workload); shown, never asserted.
TARGETS = (
    ("protoport-trio", "asyncio", 1.2, "redis-pipelined"),
    ("protoport-trio", "asyncio", 1.0, "pg-prepared"),
)


def cmd_work(args):
    function, which, *_ = WORKLOADS[args.workload]
    work = partial(
        function, which, port=args.port, warmup=args.warmup, duration=args.duration
    )
    result = CLIENTS[args.kind][0](work)
    for part in ("cpu", "user", "system"):
        result[f"{part}_us_per_op"] = result[f"{part}_seconds"] / result["ops"] * 1e6
    result["ops_per_second"] = result["ops"] / result["elapsed"]
    print(json.dumps(result))


# -- the servers ----------------------------------------------------------------------


def postgres_bin():
    """The folder of PostgreSQL's programs, or None."""
    found = shutil.which("initdb")
    if found:
        # Distributions link a version's programs, not all of them, onto the PATH.
        return os.path.dirname(os.path.realpath(found))

    def version(folder):
        number = os.path.basename(os.path.dirname(folder))
        return int(number) if number.isdigit() else 0

    folders = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    folders = [os.path.dirname(f) for f in folders]
    return max(folders, key=version, default=None)


def unprivileged(directory):
    """The command prefix that runs PostgreSQL as an unprivileged user when this
    process is root, after giving that user *directory*."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        os.chown(directory, user.pw_uid, user.pw_gid)
        ids = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}"]
        return ["setpriv", *ids, "--clear-groups"]
    raise RuntimeError("running as root and no unprivileged user for PostgreSQL")


def start_redis(directory, log):
    port = _driver.free_port(HOST)
    command = ["redis-server", "--port", str(port), "--bind", HOST]
    command += ["--dir", directory, "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [*command, "--protected-mode", "no"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    return proc, port


def start_postgres(directory, log):
    folder = postgres_bin()
    as_user = unprivileged(directory)
    data = os.path.join(directory, "data")
    command = [*as_user, os.path.join(folder, "initdb"), "-D", data]
    subprocess.run(
        [*command, "-U", "bench", "-A", "trust", "-E", "UTF8", "--no-sync"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        check=True,
    )
    port = _driver.free_port(HOST)
    # Durability is not what is measured: no waiting for the disk.
    command = [*as_user, os.path.join(folder, "postgres"), "-D", data]
    command += ["-p", str(port), "-k", directory, "-c", f"listen_addresses={HOST}"]
    command += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
    proc = subprocess.Popen(
        [*command, "-c", "full_page_writes=off"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    return proc, port


def postgres_ready(port):
    """Whether PostgreSQL at *port* takes connections: it listens before it has
    finished starting."""
    command = [os.path.join(postgres_bin(), "pg_isready"), "-q", "-h", HOST]
    return subprocess.run([*command, "-p", str(port)], check=False).returncode == 0


#: server -> (starter, whether it is here, how to get it, whether it is ready)
SERVERS = {
    "redis": (
        start_redis,
        lambda: shutil.which("redis-server"),
        "redis-server",
        lambda port: True,
    ),
    "postgres": (start_postgres, postgres_bin, "postgresql", postgres_ready),
}


def wait_ready(server, proc, port, log_path):
    """Wait until *server* at *port* accepts connections and is ready."""
    ready = SERVERS[server][3]
    deadline = time.monotonic() + 30
    try:
        _driver.wait_until_accepting(proc, HOST, port, timeout=30)
        while not ready(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server} not ready within 30 s")
            time.sleep(0.1)
    except RuntimeError as exc:
        raise RuntimeError(f"{server}: {exc}\n{_driver.tail(log_path)}") from None


# -- driver ---------------------------------------------------------------------------


def missing_modules(kind):
    return _driver.missing_modules(kind, CLIENTS)


def choose_workloads(requested):
    """The workloads ``--workloads`` names whose server and packages are here,
    the servers they need, and ``{skipped workload: why}``."""
    wanted = [x for x in requested.split(",") if x] or list(WORKLOADS)
    unknown = [x for x in wanted if x not in WORKLOADS]
    if unknown:
        sys.exit(f"unknown workload(s): {', '.join(unknown)}; see 'list'")
    chosen, skipped = [], {}
    for name in wanted:
        _, _, server, modules, _ = WORKLOADS[name]
        _, present, package, _ = SERVERS[server]
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if not present():
            skipped[name] = f"{server} not found (Debian package {package})"
        elif missing:
            skipped[name] = f"not installed ({', '.join(missing)})"
        else:
            chosen.append(name)
            continue
        print(f"note: skipping {name}: {skipped[name]}", file=sys.stderr)
    if not chosen:
        sys.exit("no workload to run")
    return chosen, skipped


def measure(kind, workload, port, args):
    command = [sys.executable, os.path.abspath(__file__), "work", kind, workload]
    command += ["--port", str(port), "--duration", str(args.duration)]
    command += ["--warmup", str(args.warmup)]
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=args.warmup + args.duration + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{kind} @ {workload}: client failed (exit {done.returncode}):\n"
            f"{done.stderr[-2000:]}"
        )
    return json.loads(done.stdout)


def render_markdown(env, args, clients, workloads, stats, cpu_by, targets, skipped):
    lines = ["Client benchmark: a RESP client and asyncpg on each loop.", ""]
    lines.append(_driver.measured_line(env, _driver.load_note(env)))
    lines.append(
        f"{args.rounds} round(s) of {args.duration:g} s per client and workload "
        f"(after {args.warmup:g} s of warm-up), order shuffled every time. "
        "An operation: " + "; ".join(f"{w}, {WORKLOADS[w][4]}" for w in workloads) + "."
    )
    lines += ["", "Operations per second, median (min-max):", ""]
    lines += _driver.column_table(
        clients, workloads, stats, _driver.fmt_range, "client"
    )
    lines += ["", "Client CPU time (user + system) per operation in µs, median:", ""]
    lines += _driver.column_table(
        clients,
        workloads,
        stats,
        lambda s: _driver.fmt_cpu(s["cpu_us_per_op"]),
        "client",
    )
    lines += _driver.cpu_ratio_tables(cpu_by, workloads, "operation")
    lines += ["", "Targets, in client CPU time per operation (goals, not assertions):"]
    lines.append("")
    lines += _driver.target_lines(targets)
    lines += _driver.skipped_lines(skipped)
    return "\n".join(lines) + "\n"


def cmd_run(args):
    _driver.apply_quick(args)
    workloads, skipped_workloads = choose_workloads(args.workloads)
    clients, skipped = _driver.choose_servers(
        args.clients, CLIENTS, missing_modules, "client(s)"
    )
    skipped.update(skipped_workloads)
    load_before = load_average()
    # The servers' folders and logs; PostgreSQL, perhaps another user, must
    # reach its folder in here.
    work_dir = tempfile.mkdtemp(prefix="protoport-clients-")
    os.chmod(work_dir, 0o711)
    started = []
    ports = {}
    try:
        for server in sorted({WORKLOADS[w][2] for w in workloads}):
            directory = os.path.join(work_dir, server)
            os.mkdir(directory)
            log_path = os.path.join(work_dir, f"{server}.log")
            with open(log_path, "w") as log:
                proc, port = SERVERS[server][0](directory, log)
            started.append(proc)
            wait_ready(server, proc, port, log_path)
            ports[server] = port

        def describe(workload, kind, result):
            return (
                f"{workload:<16} {kind:<18} "
                f"{fmt_rate(result['ops_per_second']):>9} ops/s "
                f"{result['cpu_us_per_op']:>10.1f} us/op"
            )

        samples, runs, env = _driver.run_rounds(
            clients,
            workloads,
            args,
            None,
            lambda kind, w: measure(kind, w, ports[WORKLOADS[w][2]], args),
            describe,
            "asyncpg",
            load=load_before,
        )
    finally:
        for proc in started:
            _driver.stop_process(proc, grace=10)
        shutil.rmtree(work_dir, ignore_errors=True)
    stats, _ = _driver.summarize(
        samples,
        clients,
        workloads,
        (),
        "ops_per_second",
        cpu=("cpu_us_per_op", "cpu_us_per_op"),
    )
    cpu_by = _driver.cpu_ratios(
        samples, clients, workloads, PROTOPORT_CLIENTS, "cpu_us_per_op"
    )
    targets = _driver.column_verdicts(TARGETS, cpu_by, "load", measure="cpu_per_op")
    markdown = render_markdown(
        env, args, clients, workloads, stats, cpu_by, targets, skipped
    )
    settings = {
        "duration": args.duration,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "workloads": workloads,
    }
    _driver.publish(
        args,
        markdown,
        env,
        settings,
        skipped,
        runs,
        stats=stats,
        cpu_ratios=cpu_by,
        targets=targets,
    )


def cmd_list(args):
    _driver.list_servers(CLIENTS, 18)
    for name, (_, _, server, modules, what) in WORKLOADS.items():
        _, present, package, _ = SERVERS[server]
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        state = "" if present() else f"  [{server} not found: {package}]"
        if missing:
            state += f"  [not installed: {', '.join(missing)}]"
        print(f"workload {name:<16} an operation is a {what}{state}")


def main(argv=None):
    parser, sub = _driver.command_line(__doc__)

    p = sub.add_parser("work", help="run one workload on one client and report")
    p.add_argument("kind", choices=list(CLIENTS))
    p.add_argument("workload", choices=list(WORKLOADS))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.set_defaults(func=cmd_work)

    p = sub.add_parser("run", help="measure every client, interleaved")
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workloads", default="", help="comma-separated; default all")
    p.add_argument("--clients", default="", help="comma-separated; default all")
    _driver.add_outputs(p)
    _driver.add_quick(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", help="list the clients and workloads")
    p.set_defaults(func=cmd_list)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
