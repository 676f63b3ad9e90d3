"""Transports: TLS — what a TLS transport made by ``create_connection(ssl=...)``
offers beyond a plain one: no half-close, the TLS extra info, the handshake's
certificate errors, and its own write-buffer limits.

The certificates come from ``env.tls()`` (trustme, made once per worker
process); the peer is a blocking ``ssl.SSLSocket`` serving them
(``env.connect_tls()``).
"""

from __future__ import annotations

import ssl

from .. import sections
from .._env import Env
from .._registry import scenario

TLS = sections.TLS_TRANSPORTS


@scenario(
    TLS,
    "write() and data_received() carry the plain bytes; after close() and the "
    "peer's close: eof_received(), then connection_lost(None)",
    requires=("tls",),
)
async def data_both_ways(env: Env) -> None:
    conn = await env.connect_tls()
    conn.transport.write(b"over tls")
    env.expect_equal("peer received", await conn.peer.recv_exactly(8), b"over tls")
    await conn.peer.send(b"reply")
    env.expect_equal("data received", await conn.protocol.wait_for_data(5), b"reply")
    conn.transport.close()
    env.expect_equal("peer after close()", await conn.peer.recv_until_eof(), b"")
    await conn.peer.close()
    await conn.protocol.wait_lost()
    env.expect_equal(
        "callbacks",
        conn.protocol.summary(),
        ["made", ("data", b"reply"), "eof", ("lost", None)],
    )


@scenario(TLS, "can_write_eof() is False on a TLS transport", requires=("tls",))
async def can_write_eof_false(env: Env) -> None:
    conn = await env.connect_tls()
    env.expect_equal("can_write_eof()", conn.transport.can_write_eof(), False)


@scenario(
    TLS,
    "write_eof() on a TLS transport raises NotImplementedError",
    requires=("tls",),
)
async def write_eof_not_implemented(env: Env) -> None:
    conn = await env.connect_tls()
    env.expect_raises(NotImplementedError, None, conn.transport.write_eof)
    conn.transport.write(b"still open")
    env.expect_equal(
        "peer received after write_eof()",
        await conn.peer.recv_exactly(10),
        b"still open",
    )


@scenario(
    TLS,
    "get_extra_info(): 'sslcontext' (the context given), 'ssl_object', "
    "'peercert', 'cipher', 'compression' as the SSL object returns them",
    requires=("tls",),
)
async def extra_info(env: Env) -> None:
    context = env.tls().client_context()
    conn = await env.connect_tls(context=context)
    info = conn.transport.get_extra_info
    env.expect(info("sslcontext") is context, "'sslcontext' is not the context given")
    ssl_object = info("ssl_object")
    env.expect(
        isinstance(ssl_object, (ssl.SSLObject, ssl.SSLSocket)),
        f"'ssl_object' is a {type(ssl_object).__name__}",
    )
    peercert = info("peercert")
    env.expect_equal("'peercert'", peercert, ssl_object.getpeercert())
    env.expect(
        ("DNS", "localhost") in peercert.get("subjectAltName", ()),
        "'peercert' does not name localhost",
    )
    env.expect_equal("'cipher'", info("cipher"), ssl_object.cipher())
    env.expect(info("cipher") is not None, "'cipher' is None")
    env.expect_equal("'compression'", info("compression"), ssl_object.compression())
    env.expect_equal("'peername'", info("peername"), conn.peer.sock.getsockname())


@scenario(
    TLS,
    "a certificate the client does not trust: create_connection() raises "
    "ssl.SSLCertVerificationError",
    requires=("tls",),
)
async def untrusted_certificate(env: Env) -> None:
    context = env.tls().untrusting_client_context()
    protocols: list[object] = []

    def factory() -> object:
        protocols.append(env.protocol())
        return protocols[-1]

    exc = await env.expect_raises_async(
        ssl.SSLCertVerificationError,
        None,
        env.connect_tls(factory, context=context),  # type: ignore[arg-type]
        "create_connection(ssl=...)",
    )
    env.expect_equal(
        "verify_message",
        getattr(exc, "verify_message", None),
        "unable to get local issuer certificate",
    )
    env.expect(
        not any(getattr(p, "made", False) for p in protocols),
        "connection_made() was called",
    )


@scenario(
    TLS,
    "a certificate for another host name: create_connection() raises "
    "ssl.SSLCertVerificationError",
    requires=("tls",),
)
async def wrong_host_name(env: Env) -> None:
    exc = await env.expect_raises_async(
        ssl.SSLCertVerificationError,
        None,
        env.connect_tls(server_hostname="example.org"),
        "create_connection(ssl=..., server_hostname='example.org')",
    )
    env.expect(
        "example.org" in str(getattr(exc, "verify_message", "")),
        f"verify_message {getattr(exc, 'verify_message', None)!r} does not name "
        "the host",
    )


@scenario(
    TLS,
    "get_write_buffer_limits() of a TLS transport defaults to (131072, 524288)",
    requires=("tls",),
    since=(3, 11),
)
async def default_write_buffer_limits(env: Env) -> None:
    conn = await env.connect_tls()
    env.expect_equal(
        "get_write_buffer_limits()",
        conn.transport.get_write_buffer_limits(),
        (131072, 524288),
    )


@scenario(
    sections.TLS_UPGRADE,
    "cancelling start_tls() while the handshake waits closes the transport: the "
    "protocol gets connection_lost(None)",
    requires=("tls",),
    reference_deviation=(
        "CPython 3.13 closes the transport but never calls the protocol's "
        "connection_lost()"
    ),
)
async def start_tls_cancelled(env: Env) -> None:
    conn = await env.connect()
    # The peer never answers the handshake, so start_tls() waits until cancelled.
    upgrade = env.loop.create_task(
        env.loop.start_tls(
            conn.transport,
            conn.protocol,
            env.tls().client_context(),
            server_hostname="localhost",
        )
    )
    await env.settle()
    upgrade.cancel()
    await env.wait_until(upgrade.done, "start_tls() to end")
    env.expect(upgrade.cancelled(), "start_tls() did not end cancelled")
    env.expect_equal("is_closing()", conn.transport.is_closing(), True)
    await conn.protocol.wait_lost()
    env.expect_equal("callbacks", conn.protocol.summary(), ["made", ("lost", None)])
