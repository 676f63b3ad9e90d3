"""Closed-loop TCP echo benchmark over TLS: protoport against native asyncio TLS.

The same ``asyncio.Protocol`` echo class runs in every protocol-based server,
each in a process of its own, with ``ssl=`` a server context; ``anyio-trio`` is
AnyIO's own TLS listener on Trio (the substrate protoport's Trio path is built
on). The load generator of ``echo.py`` (one message in flight per connection,
every echo checked) connects with TLS. Servers, sizes and rounds are
interleaved, because a small shared machine is noisy. Certificates are made
with trustme for the run.

Usage::

    python benchmarks/echo_tls.py run [--duration 2] [--rounds 3]
        [--sizes 1024,102400] [--servers a,b,...] [--json out.json]
        [--markdown out.md]
    python benchmarks/echo_tls.py serve KIND --port N --cert CERT.pem
    python benchmarks/echo_tls.py load --port N --ca CA.pem --size S
    python benchmarks/echo_tls.py list
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

import echo  # the plain benchmark, beside this file: its load generator and helpers

HOST = "127.0.0.1"
SERVER_NAME = "localhost"


def server_context(cert_file):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file)
    return context


def client_context(ca_file):
    return ssl.create_default_context(cafile=ca_file)


# -- servers ----------------------------------------------------------------------


async def _serve_protoport(host, port, context):
    import protoport

    async with protoport.open_loop() as loop:
        server = await loop.create_server(echo.Echo, host, port, ssl=context)
        await server.serve_forever()


async def _serve_asyncio(host, port, context):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(echo.Echo, host, port, ssl=context)
    async with server:
        await server.serve_forever()


async def _serve_anyio(host, port, context):
    import anyio
    from anyio.streams.tls import TLSListener

    listener = TLSListener(
        await anyio.create_tcp_listener(local_host=host, local_port=port),
        context,
        standard_compatible=False,
    )
    await listener.serve(echo._anyio_echo)


def _run_protoport_trio(host, port, context):
    import trio

    trio.run(_serve_protoport, host, port, context)


def _run_protoport_asyncio(host, port, context):
    asyncio.run(_serve_protoport(host, port, context))


def _run_asyncio(host, port, context):
    asyncio.run(_serve_asyncio(host, port, context))


def _run_uvloop(host, port, context):
    import uvloop

    uvloop.run(_serve_asyncio(host, port, context))


def _run_anyio_trio(host, port, context):
    import anyio

    anyio.run(_serve_anyio, host, port, context, backend="trio")


#: name -> (runner, modules it needs, what it is)
SERVERS = {
    "protoport-trio": (
        _run_protoport_trio,
        ("protoport", "trio"),
        "protoport.open_loop() + create_server(Echo, ssl=ctx) under trio.run",
    ),
    "protoport-asyncio": (
        _run_protoport_asyncio,
        ("protoport",),
        "protoport.open_loop() + create_server(Echo, ssl=ctx) under asyncio.run",
    ),
    "asyncio": (
        _run_asyncio,
        (),
        "native asyncio selector loop, create_server(Echo, ssl=ctx)",
    ),
    "uvloop": (
        _run_uvloop,
        ("uvloop",),
        "uvloop, create_server(Echo, ssl=ctx)",
    ),
    "anyio-trio": (
        _run_anyio_trio,
        ("anyio", "trio"),
        "raw AnyIO TLSListener, receive()/send() loop, Trio backend",
    ),
}

PROTOPORT_SERVERS = ("protoport-trio", "protoport-asyncio")


def missing_modules(kind):
    return [m for m in SERVERS[kind][1] if importlib.util.find_spec(m) is None]


def cmd_serve(args):
    echo.pin_cpu(args.cpu)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    runner = SERVERS[args.kind][0]
    try:
        runner(args.host, args.port, server_context(args.cert))
    except BaseException as exc:
        if not echo.only_interrupts(exc):
            raise


# -- load generator ---------------------------------------------------------------


async def run_load(host, port, ca_file, size, duration, connections, warmup):
    loop = asyncio.get_running_loop()
    payloads = echo.make_payloads(size)
    failed = loop.create_future()
    context = client_context(ca_file)

    def on_error(exc):
        if not failed.done():
            failed.set_result(exc)

    clients = []
    try:
        for _ in range(connections):
            _, client = await loop.create_connection(
                lambda: echo.LoadClient(payloads, on_error),
                host,
                port,
                ssl=context,
                server_hostname=SERVER_NAME,
            )
            clients.append(client)

        async def phase(seconds):
            try:
                exc = await asyncio.wait_for(asyncio.shield(failed), seconds)
            except asyncio.TimeoutError:
                return
            raise exc

        await phase(warmup)
        start_counts = [c.count for c in clients]
        start = time.perf_counter()
        await phase(duration)
        end_counts = [c.count for c in clients]
        elapsed = time.perf_counter() - start
    finally:
        for client in clients:
            client.stopped = True
            if client.transport is not None:
                client.transport.abort()
    per_connection = [e - s for s, e in zip(start_counts, end_counts, strict=True)]
    requests = sum(per_connection)
    return {
        "requests_per_second": requests / elapsed,
        "requests": requests,
        "elapsed": elapsed,
        "size": size,
        "connections": connections,
        "per_connection_min": min(per_connection),
        "per_connection_max": max(per_connection),
    }


def cmd_load(args):
    echo.pin_cpu(args.cpu)
    coro = run_load(
        args.host,
        args.port,
        args.ca,
        args.size,
        args.duration,
        args.connections,
        args.warmup,
    )
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


# -- driver -----------------------------------------------------------------------


def make_certificates(directory):
    import trustme

    ca = trustme.CA()
    ca_file = os.path.join(directory, "ca.pem")
    cert_file = os.path.join(directory, "server.pem")
    ca.cert_pem.write_to_path(ca_file)
    ca.issue_cert(SERVER_NAME, HOST).private_key_and_cert_chain_pem.write_to_path(
        cert_file
    )
    return ca_file, cert_file


def measure(kind, size, args, work_dir, ca_file, cert_file):
    script = os.path.abspath(__file__)
    port = echo.free_port(args.host)
    log_path = os.path.join(work_dir, f"{kind}-{size}.log")
    serve_cmd = [sys.executable, script, "serve", kind, "--host", args.host]
    serve_cmd += ["--port", str(port), "--cert", cert_file]
    load_cmd = [sys.executable, script, "load", "--host", args.host]
    load_cmd += ["--port", str(port), "--ca", ca_file, "--size", str(size)]
    load_cmd += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    load_cmd += ["--connections", str(args.connections)]
    if args.pin:
        serve_cmd += ["--cpu", "0"]
        load_cmd += ["--cpu", "1"]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            serve_cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        wait_until_listening(server, port, timeout=20)
        timeout = args.warmup + args.duration + 60
        load = subprocess.run(
            load_cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        echo.stop_process(server)
        raise RuntimeError(f"{kind} @ {size}: {exc}\n{echo.tail(log_path)}") from None
    finally:
        how = echo.stop_process(server)
    if load.returncode != 0:
        raise RuntimeError(
            f"{kind} @ {size}: load generator failed "
            f"(exit {load.returncode}):\n{load.stderr[-2000:]}\n"
            f"server log:\n{echo.tail(log_path)}"
        )
    result = json.loads(load.stdout)
    result["server_stopped_by"] = how
    return result


def wait_until_listening(proc, port, timeout):
    """Wait until something listens on *port*, without connecting (a probe
    connection would be a failed TLS handshake in the server's log)."""
    deadline = time.monotonic() + timeout
    needle = f":{port:04X} ".encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with open("/proc/net/tcp", "rb") as f:
                for line in f:
                    fields = line.split()
                    # local address, then state 0A = LISTEN
                    if (
                        len(fields) > 3
                        and fields[1].endswith(needle.strip())
                        and (fields[3] == b"0A")
                    ):
                        return
        except OSError:
            # No /proc: fall back to connecting.
            echo.wait_until_accepting(proc, HOST, port, timeout)
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen within {timeout} s")


def summarize(samples, servers, sizes):
    stats = {}
    for kind in servers:
        for size in sizes:
            values = samples.get(kind, {}).get(size, [])
            if values:
                stats.setdefault(kind, {})[size] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    "rounds": values,
                }
    ratios = {}
    for ours in PROTOPORT_SERVERS:
        for other in servers:
            if other == ours or ours not in stats or other not in stats:
                continue
            for size in sizes:
                a = stats[ours].get(size)
                b = stats[other].get(size)
                if a and b and b["median"] > 0:
                    ratios.setdefault(ours, {}).setdefault(other, {})[size] = (
                        a["median"] / b["median"]
                    )
    return stats, ratios


def render_markdown(env, args, servers, sizes, stats, ratios, skipped):
    lines = []
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines.append(
        f"Measured {env['date']} on {env['platform']}, {env['cpus']} CPUs, "
        f"{env['implementation']} {env['python']}, {ssl.OPENSSL_VERSION}; "
        f"{versions}."
    )
    lines.append(
        f"TLS ({args.connections} connections, one message in flight on each; "
        f"{args.rounds} round(s) of {args.duration:g} s per server and size after "
        f"{args.warmup:g} s of warm-up, order shuffled every time). Requests per "
        "second: median (min-max)."
    )
    lines.append("")
    lines.append("| server | " + " | ".join(echo.fmt_size(s) for s in sizes) + " |")
    lines.append("|" + " --- |" * (len(sizes) + 1))
    for kind in servers:
        cells = []
        for size in sizes:
            s = stats.get(kind, {}).get(size)
            cells.append(
                "-"
                if s is None
                else f"{echo.fmt_rate(s['median'])} "
                f"({echo.fmt_rate(s['min'])}-{echo.fmt_rate(s['max'])})"
            )
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    for ours in PROTOPORT_SERVERS:
        if ours not in ratios:
            continue
        lines.append("")
        lines.append(f"Ratio of medians, {ours} / peer:")
        lines.append("")
        lines.append("| peer | " + " | ".join(echo.fmt_size(s) for s in sizes) + " |")
        lines.append("|" + " --- |" * (len(sizes) + 1))
        for other, by_size in ratios[ours].items():
            cells = [f"{by_size[s]:.2f}x" if s in by_size else "-" for s in sizes]
            lines.append(f"| {other} | " + " | ".join(cells) + " |")
    for kind, why in skipped.items():
        lines.append(f"- skipped {kind}: {why}")
    return "\n".join(lines) + "\n"


def cmd_run(args):
    sizes = [int(s) for s in args.sizes.split(",") if s]
    wanted = [s for s in args.servers.split(",") if s] if args.servers else []
    wanted = wanted or list(SERVERS)
    unknown = [s for s in wanted if s not in SERVERS]
    if unknown:
        sys.exit(f"unknown server(s): {', '.join(unknown)}; see 'list'")
    skipped = {}
    servers = []
    for kind in wanted:
        missing = missing_modules(kind)
        if missing:
            skipped[kind] = f"not installed ({', '.join(missing)})"
            print(f"note: skipping {kind}: {skipped[kind]}", file=sys.stderr)
        else:
            servers.append(kind)
    if not servers:
        sys.exit("no server to measure")
    if importlib.util.find_spec("trustme") is None:
        sys.exit("trustme is needed to make the certificates: pip install trustme")

    work_dir = tempfile.mkdtemp(prefix="protoport-echo-tls-")
    ca_file, cert_file = make_certificates(work_dir)
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
                    result = measure(kind, size, args, work_dir, ca_file, cert_file)
                except RuntimeError as exc:
                    sys.exit(f"error: {exc}\nserver logs are kept in {work_dir}")
                rps = result["requests_per_second"]
                samples.setdefault(kind, {}).setdefault(size, []).append(rps)
                runs.append({"round": round_no, "server": kind, **result})
                print(
                    f"[{done:>3}/{total}] round {round_no} "
                    f"{echo.fmt_size(size):>7} {kind:<18} "
                    f"{echo.fmt_rate(rps):>9} req/s",
                    file=sys.stderr,
                    flush=True,
                )
    shutil.rmtree(work_dir, ignore_errors=True)

    env = echo.environment()
    env["openssl"] = ssl.OPENSSL_VERSION
    stats, ratios = summarize(samples, servers, sizes)
    markdown = render_markdown(env, args, servers, sizes, stats, ratios, skipped)
    print()
    print(markdown)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown)
    if args.json:
        report = {
            "environment": env,
            "settings": {
                "duration": args.duration,
                "warmup": args.warmup,
                "rounds": args.rounds,
                "sizes": sizes,
                "connections": args.connections,
                "pinned": args.pin,
                "tls": True,
            },
            "skipped": skipped,
            "runs": runs,
            "stats": {
                kind: {str(size): s for size, s in by_size.items()}
                for kind, by_size in stats.items()
            },
            "ratios": {
                ours: {
                    other: {str(size): r for size, r in by_size.items()}
                    for other, by_size in by_other.items()
                }
                for ours, by_other in ratios.items()
            },
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


def cmd_list(args):
    for kind, (_, _, what) in SERVERS.items():
        missing = missing_modules(kind)
        state = f"  [not installed: {', '.join(missing)}]" if missing else ""
        print(f"{kind:<18} {what}{state}")


def main(argv=None):
    echo.use_this_checkout()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run one TLS echo server until interrupted")
    p.add_argument("kind", choices=list(SERVERS))
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True, help="PEM file: key and certificate")
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("load", help="run the load generator against one server")
    p.add_argument("--host", default=HOST)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="PEM file of the CA to trust")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--connections", type=int, default=10)
    p.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("run", help="measure every server, interleaved")
    p.add_argument("--host", default=HOST)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sizes", default="1024,102400")
    p.add_argument("--servers", default="", help="comma-separated; default all")
    p.add_argument("--connections", type=int, default=10)
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin the server to CPU 0 and the load generator to CPU 1 (Linux)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for the shuffle")
    p.add_argument("--json", help="write the full results as JSON here")
    p.add_argument("--markdown", help="write the tables as Markdown here")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", help="list the servers and whether they can run")
    p.set_defaults(func=cmd_list)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
