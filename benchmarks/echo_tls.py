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

import asyncio
import importlib.util
import os
import ssl
import sys
import tempfile
import time
from functools import partial

import _driver  # beside this file: what the benchmarks share
import echo  # the plain benchmark, beside this file: its echo protocol and client
from _driver import HOST

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


#: name -> (runner, modules it needs, what it is)
SERVERS = {
    **_driver.implementations(
        (
            _serve_protoport,
            "protoport.open_loop() + create_server(Echo, ssl=ctx) under {runtime}.run",
        ),
        (_serve_asyncio, "create_server(Echo, ssl=ctx)"),
    ),
    "anyio-trio": (
        partial(_driver.run_under, "anyio-trio", _serve_anyio),
        ("anyio", "trio"),
        "raw AnyIO TLSListener, receive()/send() loop, Trio backend",
    ),
}

PROTOPORT_SERVERS = ("protoport-trio", "protoport-asyncio")


def missing_modules(kind):
    return _driver.missing_modules(kind, SERVERS)


def cmd_serve(args):
    runner = SERVERS[args.kind][0]
    _driver.serve(args, lambda: runner(args.host, args.port, server_context(args.cert)))


# -- load generator ---------------------------------------------------------------


def cmd_load(args):
    _driver.run_load(
        args,
        echo.run_load(args, ssl=client_context(args.ca), server_hostname=SERVER_NAME),
    )


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
    return _driver.measure(
        os.path.abspath(__file__),
        kind,
        size,
        args,
        work_dir,
        serve_extra=("--cert", cert_file),
        load_extra=("--ca", ca_file, "--size", str(size)),
        wait=lambda proc, port: wait_until_listening(proc, port, timeout=20),
        slack=60,
    )


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
            _driver.wait_until_accepting(proc, HOST, port, timeout)
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen within {timeout} s")


def render_markdown(env, args, servers, sizes, stats, ratios, skipped):
    lines = [_driver.measured_line(env, f", {ssl.OPENSSL_VERSION}")]
    lines.append(
        f"TLS ({args.connections} connections, one message in flight on each; "
        f"{args.rounds} round(s) of {args.duration:g} s per server and size after "
        f"{args.warmup:g} s of warm-up, order shuffled every time). Requests per "
        "second: median (min-max)."
    )
    lines.append("")
    lines += _driver.column_table(
        servers, sizes, stats, _driver.fmt_range, head=_driver.fmt_size
    )
    lines += _driver.ratio_tables(ratios, sizes)
    lines += _driver.skipped_lines(skipped)
    return "\n".join(lines) + "\n"


def cmd_run(args):
    sizes = [int(s) for s in args.sizes.split(",") if s]
    servers, skipped = _driver.choose_servers(args.servers, SERVERS, missing_modules)
    if importlib.util.find_spec("trustme") is None:
        sys.exit("trustme is needed to make the certificates: pip install trustme")

    def describe(size, kind, result):
        return (
            f"{_driver.fmt_size(size):>7} {kind:<18} "
            f"{_driver.fmt_rate(result['requests_per_second']):>9} req/s"
        )

    work_dir = tempfile.mkdtemp(prefix="protoport-echo-tls-")
    ca_file, cert_file = make_certificates(work_dir)
    samples, runs = _driver.interleave(
        servers,
        sizes,
        args,
        work_dir,
        lambda kind, size: measure(kind, size, args, work_dir, ca_file, cert_file),
        describe,
    )

    env = _driver.environment()
    env["openssl"] = ssl.OPENSSL_VERSION
    stats, ratios = _driver.summarize(
        samples, servers, sizes, PROTOPORT_SERVERS, "requests_per_second"
    )
    markdown = render_markdown(env, args, servers, sizes, stats, ratios, skipped)
    settings = {
        "duration": args.duration,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "sizes": sizes,
        "connections": args.connections,
        "pinned": args.pin,
        "tls": True,
    }
    _driver.publish(
        args, markdown, env, settings, skipped, runs, stats=stats, ratios=ratios
    )


def cmd_list(args):
    _driver.list_servers(SERVERS, 18)


def main(argv=None):
    def serve_options(p):
        p.add_argument("--cert", required=True, help="PEM file: key and certificate")

    def load_options(p):
        p.add_argument("--ca", required=True, help="PEM file of the CA to trust")

    _driver.main(
        argv,
        __doc__,
        {"serve": cmd_serve, "load": cmd_load, "run": cmd_run, "list": cmd_list},
        SERVERS,
        "run one TLS echo server until interrupted",
        sizes="1024,102400",
        serve_options=serve_options,
        load_options=load_options,
    )


if __name__ == "__main__":
    main()
