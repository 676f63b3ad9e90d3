"""What the benchmark scripts beside this file share: the server and load
processes' plumbing, the interleaved-rounds driver, summaries, Markdown and the
command line. Each script imports it as ``_driver`` (this folder is on
``sys.path`` when a script here runs as ``python benchmarks/X.py``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from functools import partial

HOST = "127.0.0.1"


def use_this_checkout():
    """Measure the protoport of the checkout this script lives in."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src")
    if os.path.isfile(os.path.join(src, "protoport", "__init__.py")):
        sys.path.insert(0, os.path.normpath(src))


def missing_modules(kind, servers):
    """The modules server *kind* of *servers* (name -> (runner, modules, what))
    needs and that are not installed."""
    return [m for m in servers[kind][1] if importlib.util.find_spec(m) is None]


def pin_cpu(cpu):
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


# -- the server process -------------------------------------------------------------


def run_under(runtime, fn, *args):
    """Run ``await fn(*args)`` to the end under *runtime*: ``trio``,
    ``asyncio``, ``uvloop``, or AnyIO's ``anyio-trio`` or ``anyio-asyncio``;
    return what it returns."""
    if runtime == "trio":
        import trio

        return trio.run(fn, *args)
    elif runtime == "asyncio":
        return asyncio.run(fn(*args))
    elif runtime == "uvloop":
        import uvloop

        return uvloop.run(fn(*args))
    else:
        import anyio

        return anyio.run(fn, *args, backend=runtime.removeprefix("anyio-"))


def implementations(protoport, native, trio_asyncio=None, *, suffix="", needs=()):
    """The table ``{name: (runner, modules it needs, what it is)}`` of the five
    asyncio implementations every script compares: ``protoport-trio``,
    ``protoport-asyncio``, ``asyncio``, ``uvloop`` and ``trio-asyncio``, each
    name followed by *suffix*. A runner is :func:`run_under` of its runtime and
    the script's coroutine function; each needs *needs* beyond its own modules.

    Each argument is ``(coroutine function, what it is)``. *protoport*'s runs
    under ``trio.run`` and ``asyncio.run``; its description is a template of
    ``{runtime}``, ``trio`` or ``asyncio``. *native*'s runs on asyncio's
    selector loop and on uvloop; its description is what runs there.
    *trio_asyncio*'s runs under ``trio.run``, described in full; without it,
    there is no ``trio-asyncio``."""
    on_protoport, protoport_what = protoport
    on_native, native_what = native
    table = {
        "protoport-trio": (
            "trio",
            on_protoport,
            ("protoport", "trio"),
            protoport_what.format(runtime="trio"),
        ),
        "protoport-asyncio": (
            "asyncio",
            on_protoport,
            ("protoport",),
            protoport_what.format(runtime="asyncio"),
        ),
        "asyncio": (
            "asyncio",
            on_native,
            (),
            f"native asyncio selector loop, {native_what}",
        ),
        "uvloop": ("uvloop", on_native, ("uvloop",), f"uvloop, {native_what}"),
    }
    if trio_asyncio is not None:
        on_trio_asyncio, trio_asyncio_what = trio_asyncio
        modules = ("trio", "trio_asyncio")
        table["trio-asyncio"] = ("trio", on_trio_asyncio, modules, trio_asyncio_what)
    return {
        name + suffix: (partial(run_under, runtime, fn), (*modules, *needs), what)
        for name, (runtime, fn, modules, what) in table.items()
    }


def only_interrupts(exc):
    """Whether *exc* is a KeyboardInterrupt, or a group of nothing else (Trio
    nurseries wrap it)."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return bool(inner) and all(only_interrupts(e) for e in inner)


def serve(args, run):
    """The ``serve`` command: call *run* until the driver interrupts it."""
    pin_cpu(args.cpu)
    # A shell starts background jobs with SIGINT ignored; the driver stops servers
    # with SIGINT, so take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run()
    except BaseException as exc:
        if not only_interrupts(exc):
            raise


# -- the load process ---------------------------------------------------------------


#: How many different payloads a load generator cycles through, so that a
#: server echoing stale or reordered bytes is caught.
PAYLOAD_VARIANTS = 7


def payloads(size):
    """The payloads of *size* bytes an echo load generator sends, the same in
    every run."""
    rng = random.Random(size)
    return [rng.randbytes(size) for _ in range(PAYLOAD_VARIANTS)]


async def closed_loop(
    args, make_client, counter, *, datagram=False, tick=None, **options
):
    """Open ``args.connections`` clients of ``args.host`` and ``args.port``,
    each with the protocol ``make_client(on_error)``: connections made with
    ``loop.create_connection(..., **options)``, or with *datagram* endpoints
    connected with ``loop.create_datagram_endpoint()``. Let them run for
    ``args.warmup`` seconds, then count for ``args.duration`` seconds; with
    *tick* ``(seconds, call)``, ``call(clients)`` every *seconds* meanwhile.
    The first error a client reports through ``on_error`` fails the run.
    Returns the clients, how much each one's *counter* attribute grew while
    counting, and the seconds counted."""
    loop = asyncio.get_running_loop()
    failed = loop.create_future()

    def on_error(exc):
        if not failed.done():
            failed.set_result(exc)

    def factory():
        return make_client(on_error)

    clients = []
    try:
        for _ in range(args.connections):
            if datagram:
                endpoint = loop.create_datagram_endpoint(
                    factory, remote_addr=(args.host, args.port), **options
                )
            else:
                endpoint = loop.create_connection(
                    factory, args.host, args.port, **options
                )
            _, client = await endpoint
            clients.append(client)

        async def phase(seconds):
            end = loop.time() + seconds
            while True:
                wait = end - loop.time() if tick is None else tick[0]
                try:
                    exc = await asyncio.wait_for(asyncio.shield(failed), wait)
                except asyncio.TimeoutError:
                    if tick is not None:
                        tick[1](clients)
                    if tick is None or loop.time() >= end:
                        return
                    continue
                raise exc

        await phase(args.warmup)
        start_counts = [getattr(c, counter) for c in clients]
        start = time.perf_counter()
        await phase(args.duration)
        end_counts = [getattr(c, counter) for c in clients]
        elapsed = time.perf_counter() - start
    finally:
        for client in clients:
            client.stopped = True
            if client.transport is not None:
                client.transport.abort()
    grown = [e - s for s, e in zip(start_counts, end_counts, strict=True)]
    return clients, grown, elapsed


def request_figures(size, clients, grown, elapsed):
    """What an echo load generator reports of :func:`closed_loop`'s clients,
    which count requests of *size* bytes in their ``count``."""
    requests = sum(grown)
    return {
        "requests_per_second": requests / elapsed,
        "requests": requests,
        "elapsed": elapsed,
        "size": size,
        "connections": len(clients),
        "per_connection_min": min(grown),
        "per_connection_max": max(grown),
        "total_requests": sum(c.count for c in clients),
    }


def run_load(args, coro):
    """The ``load`` command: run *coro* on uvloop where installed, else on
    asyncio, and print its result as JSON for the driver."""
    pin_cpu(args.cpu)
    try:
        import uvloop
    except ImportError:
        loop_name = "asyncio"
        result = asyncio.run(coro)
    else:
        loop_name = "uvloop"
        result = uvloop.run(coro)
    result["client_loop"] = loop_name
    print(json.dumps(result))


# -- driver -------------------------------------------------------------------------


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def process_cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc (None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 of stat(5); the split above starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_accepting(proc, host, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not accept connections within {timeout} s")


def stop_process(proc, grace=3.0):
    """Stop a process this script started: SIGINT, then SIGTERM, then SIGKILL.
    Returns how it ended, for the log."""
    if proc.poll() is not None:
        return "exited"
    steps = ((proc.send_signal, signal.SIGINT), (proc.send_signal, signal.SIGTERM))
    for send, sig in steps:
        with contextlib.suppress(ProcessLookupError):
            send(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        return sig.name
    proc.kill()
    proc.wait()
    return "SIGKILL"


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def measure_once(script, args, log_path, label, serve, load, *, wait=None, slack=30):
    """Start *script*'s command *serve* (its words and options) on a free port,
    wait until it is ready (with ``wait(proc, port)``, by default until it
    accepts a connection), run *script*'s command *load* against it, and stop
    the server. Returns the load's result, the server's CPU seconds during the
    load (or None) and how the server was stopped. Raises RuntimeError,
    starting with *label*, if anything fails."""
    port = free_port(args.host)
    where = ["--host", args.host, "--port", str(port)]
    serve_cmd = [sys.executable, script, *serve, *where]
    load_cmd = [sys.executable, script, *load, *where]
    load_cmd += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    if args.pin:
        serve_cmd += ["--cpu", "0"]
        load_cmd += ["--cpu", "1"]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            serve_cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        if wait is None:
            wait_until_accepting(server, args.host, port, timeout=20)
        else:
            wait(server, port)
        cpu_before = process_cpu_seconds(server.pid)
        done = subprocess.run(
            load_cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=args.warmup + args.duration + slack,
            check=False,
        )
        cpu_after = process_cpu_seconds(server.pid)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        stop_process(server)
        raise RuntimeError(f"{label}: {exc}\n{tail(log_path)}") from None
    finally:
        how = stop_process(server)
    if done.returncode != 0:
        raise RuntimeError(
            f"{label}: {load[0]} failed (exit {done.returncode}):\n"
            f"{done.stderr[-2000:]}\nserver log:\n{tail(log_path)}"
        )
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = cpu_after - cpu_before
    return json.loads(done.stdout), cpu, how


#: ``cpu_per`` of :func:`measure` for a load generator counting requests.
CPU_PER_REQUEST = ("server_cpu_us_per_request", "total_requests", 1e6)


def measure(
    script,
    kind,
    column,
    args,
    log_dir,
    *,
    serve_extra=(),
    load_extra=(),
    label=None,
    cpu_per=None,
    **options,
):
    """:func:`measure_once` of ``serve kind`` (with *serve_extra*) and ``load``
    (with *load_extra*) for *column* (a size, a load; None where the script has
    none), logging to a file in *log_dir*: the load generator's result with how
    the server was stopped (``server_stopped_by``) and, with *cpu_per* ``(key,
    count key, scale)``, under *key* the server's CPU time per unit the result
    counts under *count key*, times *scale* (None where not measured). *label*
    names the measurement in errors (by default *kind* and *column*)."""
    name = kind if column is None else f"{kind}-{column}"
    if label is None:
        label = kind if column is None else f"{kind} @ {column}"
    result, cpu, how = measure_once(
        script,
        args,
        os.path.join(log_dir, f"{name}.log"),
        label,
        ("serve", kind, *serve_extra),
        ("load", *load_extra, "--connections", str(args.connections)),
        **options,
    )
    if cpu_per is not None:
        key, count, scale = cpu_per
        result[key] = None
        if cpu is not None and result[count]:
            result[key] = cpu / result[count] * scale
    result["server_stopped_by"] = how
    return result


def choose_servers(requested, available, missing, what="server(s)"):
    """The servers of *available* that ``--servers`` names (all by default),
    without those *missing(kind)* finds modules missing for; exits on an unknown
    name or when none is left. Returns them and ``{skipped kind: why}``."""
    wanted = [s for s in requested.split(",") if s] if requested else []
    wanted = wanted or list(available)
    unknown = [s for s in wanted if s not in available]
    if unknown:
        sys.exit(f"unknown {what}: {', '.join(unknown)}; see 'list'")
    skipped = {}
    servers = []
    for kind in wanted:
        missing_now = missing(kind)
        if missing_now:
            skipped[kind] = f"not installed ({', '.join(missing_now)})"
            print(f"note: skipping {kind}: {skipped[kind]}", file=sys.stderr)
        else:
            servers.append(kind)
    if not servers:
        sys.exit("no server to measure")
    return servers, skipped


def interleave(servers, sizes, args, log_dir, measure, describe):
    """Call ``measure(kind, size)`` for every round, size and server, the
    servers shuffled anew for each round and size; print a progress line ending
    in ``describe(size, kind, result)`` after each. Exits, keeping *log_dir*
    (if not None), if a measurement fails; removes it otherwise. Returns
    ``samples[kind][size]``, lists of the results, and every run in order."""
    samples = {}
    runs = []
    rng = random.Random(args.seed)
    total = args.rounds * len(sizes) * len(servers)
    done = 0
    for round_no in range(1, args.rounds + 1):
        for size in sizes:
            order = servers[:]
            rng.shuffle(order)
            for kind in order:
                done += 1
                try:
                    result = measure(kind, size)
                except RuntimeError as exc:
                    kept = f"\nserver logs are kept in {log_dir}" if log_dir else ""
                    sys.exit(f"error: {exc}{kept}")
                samples.setdefault(kind, {}).setdefault(size, []).append(result)
                runs.append({"round": round_no, "server": kind, **result})
                print(
                    f"[{done:>3}/{total}] round {round_no} "
                    + describe(size, kind, result),
                    file=sys.stderr,
                    flush=True,
                )
    if log_dir:
        shutil.rmtree(log_dir, ignore_errors=True)
    return samples, runs


def run_rounds(servers, columns, args, log_dir, measure, describe, *dists, load=None):
    """:func:`interleave`, and :func:`environment` of *dists* with the load
    average before (*load* where read earlier) and after. Returns the samples,
    the runs and the environment."""
    before = load_average() if load is None else load
    samples, runs = interleave(servers, columns, args, log_dir, measure, describe)
    env = environment(*dists)
    env["load_average"] = {"before": before, "after": load_average()}
    return samples, runs, env


# -- summaries ----------------------------------------------------------------------


def summarize(samples, servers, sizes, ours_kinds, metric, cpu=None):
    """Medians, ranges and ratios of *metric* from ``samples[server][size]``, a
    list of the load generator's results, and the ratios of each of
    *ours_kinds* to every other server. With *cpu* ``(result key, stats key)``
    also the median of the server's CPU time."""
    stats = {}
    for kind in servers:
        for size in sizes:
            results = samples.get(kind, {}).get(size, [])
            if not results:
                continue
            values = [r[metric] for r in results]
            s = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "rounds": values,
            }
            if cpu is not None:
                key, stat_key = cpu
                used = [r[key] for r in results if r.get(key) is not None]
                s[stat_key] = statistics.median(used) if used else None
            stats.setdefault(kind, {})[size] = s
    ratios = {}
    for ours in ours_kinds:
        if ours not in stats:
            continue
        for other in servers:
            if other == ours or other not in stats:
                continue
            for size in sizes:
                a = stats[ours].get(size)
                b = stats[other].get(size)
                if a and b and b["median"] > 0:
                    ratios.setdefault(ours, {}).setdefault(other, {})[size] = (
                        a["median"] / b["median"]
                    )
    return stats, ratios


def verdicts(goals, ratio_of, **fields):
    """The targets *goals*, ``(server, peer, minimum ratio)``, against
    ``ratio_of(server, peer)`` (None: not measured); *fields* go into each."""
    targets = []
    for ours, other, minimum in goals:
        ratio = ratio_of(ours, other)
        targets.append(
            {
                "server": ours,
                "peer": other,
                **fields,
                "minimum": minimum,
                "ratio": ratio,
                "met": None if ratio is None else ratio >= minimum,
            }
        )
    return targets


def column_verdicts(goals, ratios, name, **fields):
    """The targets *goals*, ``(server, peer, minimum ratio, column)``, against
    ``ratios[server][peer][column]`` (as :func:`cpu_ratios` gives them); each
    has its column under *name*, and *fields*."""
    targets = []
    for ours, other, minimum, column in goals:
        targets += verdicts(
            [(ours, other, minimum)],
            lambda o, p, c=column: ratios.get(o, {}).get(p, {}).get(c),
            **{name: column},
            **fields,
        )
    return targets


def cpu_ratios(samples, servers, columns, ours_kinds, key):
    """``{ours: {peer: {column: peer's median / ours}}}`` of the CPU time per
    request *key* in ``samples[server][column]``, a list of results, for each
    of *ours_kinds*: above 1, ours costs less."""

    def median_cpu(kind, column):
        values = [r[key] for r in samples.get(kind, {}).get(column, []) if r.get(key)]
        return statistics.median(values) if values else None

    ratios = {}
    for ours in ours_kinds:
        if ours not in servers:
            continue
        for other in servers:
            if other == ours:
                continue
            for column in columns:
                mine, theirs = median_cpu(ours, column), median_cpu(other, column)
                if mine and theirs:
                    ratios.setdefault(ours, {}).setdefault(other, {})[column] = (
                        theirs / mine
                    )
    return ratios


def load_average():
    """The 1-minute load average, or None where the OS does not tell."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def environment(*more):
    """Where the run is, with the versions of the peers and of *more*
    distributions."""
    versions = {}
    for dist in ("protoport", "trio", "anyio", "uvloop", "trio-asyncio", *more):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


# -- Markdown -----------------------------------------------------------------------


def fmt_rate(value):
    return f"{value:,.0f}"


def fmt_size(size):
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def fmt_range(s):
    """A statistic's median with its range: ``median (min-max)``."""
    return f"{fmt_rate(s['median'])} ({fmt_rate(s['min'])}-{fmt_rate(s['max'])})"


def fmt_cpu(value):
    """A CPU time in µs, or ``-`` when it was not measured."""
    return "-" if value is None else f"{value:.1f}"


def _load_pair(env):
    """The load averages before and after the run, or None."""
    load = env.get("load_average") or {}
    if load.get("before") is None or load.get("after") is None:
        return None
    return f"{load['before']:.2f}, {load['after']:.2f}"


def load_note(env):
    """The machine's load average around the run, for :func:`measured_line`."""
    pair = _load_pair(env)
    if pair is None:
        return ""
    return f" (load average over 1 min before and after the run: {pair})"


def load_sentence(env):
    """The machine's load average around the run, a sentence to follow
    :func:`measured_line`."""
    pair = _load_pair(env)
    if pair is None:
        return ""
    return f" Load average (1 min) before and after the run: {pair}."


def measured_line(env, extra=""):
    """Where and when the run was, with *extra* after the Python version."""
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    return (
        f"Measured {env['date']} on {env['platform']}, {env['cpus']} CPUs, "
        f"{env['implementation']} {env['python']}{extra}; {versions}."
    )


def table(first, columns, rows):
    """The lines of a Markdown table: *first* and *columns* head it, each row
    is ``(name, cells)``."""
    lines = ["| " + " | ".join([first, *columns]) + " |"]
    lines.append("|" + " --- |" * (len(columns) + 1))
    lines += ["| " + " | ".join([name, *cells]) + " |" for name, cells in rows]
    return lines


def column_table(servers, columns, stats, cell, first="server", head=str):
    """A table of a row per server and a column per item of *columns*, headed
    *first* and ``head(column)``; ``cell(stats[kind][column])`` fills it (``-``
    where nothing was measured)."""

    def fill(kind, column):
        s = stats.get(kind, {}).get(column)
        return "-" if s is None else cell(s)

    rows = ((kind, [fill(kind, c) for c in columns]) for kind in servers)
    return table(first, [head(c) for c in columns], rows)


def cpu_table(servers, sizes, stats, unit):
    """The table of the server's CPU time per *unit* (``cpu_us_per_request``
    of :func:`summarize`'s stats), a column per size, with its title."""
    return [
        "",
        f"Server CPU time (user + system) per {unit} in microseconds, median; "
        "lower is better, and less disturbed by a busy machine than throughput:",
        "",
        *column_table(
            servers,
            sizes,
            stats,
            lambda s: fmt_cpu(s["cpu_us_per_request"]),
            head=fmt_size,
        ),
    ]


def peer_tables(ratios, columns, title, head=str):
    """A table per protoport implementation of its *ratios* ``{ours: {peer:
    {column: ratio}}}``, titled ``title.format(ours=ours)``: a row per peer
    and a column per item of *columns*, headed ``head(column)``."""
    lines = []
    for ours, by_other in ratios.items():
        lines += ["", title.format(ours=ours), ""]
        rows = (
            (other, [f"{by[c]:.2f}x" if c in by else "-" for c in columns])
            for other, by in by_other.items()
        )
        lines += table("peer", [head(c) for c in columns], rows)
    return lines


def cpu_ratio_tables(cpu_by, columns, unit="request"):
    """:func:`peer_tables` of :func:`cpu_ratios`; *unit* is what the CPU time
    is per."""
    title = f"CPU time per {unit}, peer / {{ours}} (above 1: ours cheaper):"
    return peer_tables(cpu_by, columns, title)


def ratio_tables(ratios, sizes):
    """:func:`peer_tables` of each protoport server's ratios of medians to
    each peer, by size."""
    return peer_tables(ratios, sizes, "Ratio of medians, {ours} / peer:", fmt_size)


def verdict(target):
    """A target's ratio and whether it is met, or that it was not measured."""
    if target["ratio"] is None:
        return "not measured"
    return f"{target['ratio']:.2f}x - {'met' if target['met'] else 'NOT met'}"


def target_lines(targets):
    lines = []
    for t in targets:
        where = f" ({t['load']})" if "load" in t else ""
        lines.append(
            f"- {t['server']} >= {t['minimum']:g}x {t['peer']}{where}: {verdict(t)}"
        )
    return lines


def skipped_lines(skipped):
    return [f"- skipped {kind}: {why}" for kind, why in skipped.items()]


def publish(args, markdown, env, settings, skipped, runs, **figures):
    """Print the Markdown, and write it and the JSON report (the environment,
    the settings, what was skipped, every run and the *figures*) where
    asked."""
    print()
    print(markdown)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown)
    if args.json:
        report = {
            "environment": env,
            "settings": settings,
            "skipped": skipped,
            "runs": runs,
            **figures,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


# -- command line -------------------------------------------------------------------


def add_quick(parser):
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 rounds of 1 s after 1 s of warm-up, for a first look",
    )


def apply_quick(args):
    if args.quick:
        args.rounds, args.duration, args.warmup = 2, 1.0, 1.0


def command_line(doc):
    """The parser of a benchmark script's command line, described by the first
    paragraph of *doc*, and its subparsers; :func:`use_this_checkout` first."""
    use_this_checkout()
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    return parser, parser.add_subparsers(dest="command", required=True)


def add_outputs(parser):
    """The ``run`` options of every script: the shuffle's seed and where to
    write the results."""
    parser.add_argument("--seed", type=int, default=None, help="seed for the shuffle")
    parser.add_argument("--json", help="write the full results as JSON here")
    parser.add_argument("--markdown", help="write the tables as Markdown here")


def list_servers(servers, width, indent=""):
    for kind, (_, _, what) in servers.items():
        missing = missing_modules(kind, servers)
        state = f"  [not installed: {', '.join(missing)}]" if missing else ""
        print(f"{indent}{kind:<{width}} {what}{state}")


def main(
    argv,
    doc,
    commands,
    kinds,
    serve_help,
    *,
    sizes=None,
    serve_options=None,
    load_options=None,
    run_options=None,
    extra_commands=None,
):
    """Parse the command line of a benchmark script and run its command.

    *commands* maps load, run, list and (unless a server is started with
    ``kinds[kind][0](host, port)``) serve to their functions; *kinds* are the
    servers ``serve`` takes. *sizes* is the default of ``run --sizes`` (None:
    no sizes, and no ``load --size``). *serve_options* and *load_options* add
    options after ``--port``, *run_options* before ``--host``;
    ``extra_commands(subparsers)`` adds commands of the script's own."""
    parser, sub = command_line(doc)

    def serve_kind(args):
        runner = kinds[args.kind][0]
        serve(args, lambda: runner(args.host, args.port))

    p = sub.add_parser("serve", help=serve_help)
    p.add_argument("kind", choices=list(kinds))
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    if serve_options:
        serve_options(p)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=commands.get("serve", serve_kind))

    p = sub.add_parser("load", help="run the load generator against one server")
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    if load_options:
        load_options(p)
    if sizes is not None:
        p.add_argument("--size", type=int, default=1024)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--connections", type=int, default=10)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=commands["load"])

    p = sub.add_parser("run", help="measure every server, interleaved")
    if run_options:
        run_options(p)
    p.add_argument("--host", default=HOST)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=3)
    if sizes is not None:
        p.add_argument("--sizes", default=sizes)
    p.add_argument("--servers", default="", help="comma-separated; default all")
    p.add_argument("--connections", type=int, default=10)
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin the server to CPU 0 and the load generator to CPU 1 (Linux)",
    )
    add_outputs(p)
    p.set_defaults(func=commands["run"])

    p = sub.add_parser("list", help="list the servers and whether they can run")
    p.set_defaults(func=commands["list"])

    if extra_commands:
        extra_commands(sub)

    args = parser.parse_args(argv)
    args.func(args)
