"""Bad arguments to every public call, against native asyncio.

Each case of ``CASES`` makes one call with a bad argument. It runs on a fresh
native asyncio loop (in a thread of its own) and on protoport's loop on the
runtime under test; both must raise the same exception type with the same
message. ``DIFFERENT`` lists the cases where protoport deliberately raises
something else, each with the reason and what protoport raises instead.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import anyio
import pytest

import protoport
from protoport import WriteBuffer

pytestmark = pytest.mark.anyio


class _Transport:
    """Not a transport start_tls() can upgrade; its repr is the same everywhere."""

    def __repr__(self) -> str:
        return "<not a transport>"


async def _coroutine_function() -> None:
    pass


@dataclass
class Api:
    """What a case calls: a loop (native asyncio's or protoport's), the module
    with the stream classes and functions for it, and resources made for the case
    (closed after it)."""

    loop: asyncio.AbstractEventLoop
    streams: ModuleType
    _sockets: list[socket.socket] = field(default_factory=list)
    _closers: list[Callable[[], object]] = field(default_factory=list)

    def socket(
        self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
    ) -> socket.socket:
        sock = socket.socket(family, kind)
        sock.setblocking(False)
        self._sockets.append(sock)
        return sock

    def socketpair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self._sockets += [a, b]
        return a, b

    async def transport(self) -> Any:
        """A connected stream transport (its peer is never read)."""
        local, _ = self.socketpair()
        transport, _ = await self.loop.create_connection(asyncio.Protocol, sock=local)
        self._closers.append(transport.abort)
        return transport

    async def datagram_transport(self) -> Any:
        transport, _ = await self.loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        self._closers.append(transport.abort)
        return transport

    async def writer(self) -> Any:
        """A connected StreamWriter."""
        local, _ = self.socketpair()
        _, writer = await self.streams.open_connection(sock=local)
        self._closers.append(writer.transport.abort)
        return writer

    def reader(self) -> Any:
        return self.streams.StreamReader()

    def temp_file(self) -> Any:
        file = tempfile.TemporaryFile()  # noqa: SIM115 (closed after the case)
        self._closers.append(file.close)
        return file

    def debug(self) -> asyncio.AbstractEventLoop:
        """The loop in debug mode, where asyncio checks callbacks."""
        self.loop.set_debug(True)
        return self.loop

    def normalise(self, message: str) -> str:
        """*message* with the repr of each socket made for the case replaced, so
        that descriptor numbers and addresses do not count."""
        for index, sock in enumerate(self._sockets):
            message = message.replace(repr(sock), f"<socket {index}>")
        return message

    async def close(self) -> None:
        for closer in self._closers:
            closer()
        # Let the transports' connection_lost run before their sockets go.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        for sock in self._sockets:
            sock.close()


Call = Callable[[Api], Any]

# (id, the call). A call may return an awaitable, which is awaited.
CASES: list[tuple[str, Call]] = [
    # -- opening connections
    ("create_connection-nothing", lambda a: a.loop.create_connection(asyncio.Protocol)),
    (
        "create_connection-sock-and-host",
        lambda a: a.loop.create_connection(
            asyncio.Protocol, "127.0.0.1", 1, sock=a.socket()
        ),
    ),
    (
        "create_connection-datagram-sock",
        lambda a: a.loop.create_connection(
            asyncio.Protocol, sock=a.socket(kind=socket.SOCK_DGRAM)
        ),
    ),
    (
        "create_connection-server_hostname-without-ssl",
        lambda a: a.loop.create_connection(
            asyncio.Protocol, "127.0.0.1", 1, server_hostname="x"
        ),
    ),
    (
        "create_connection-handshake-timeout-without-ssl",
        lambda a: a.loop.create_connection(
            asyncio.Protocol, "127.0.0.1", 1, ssl_handshake_timeout=1
        ),
    ),
    (
        "create_connection-shutdown-timeout-without-ssl",
        lambda a: a.loop.create_connection(
            asyncio.Protocol, "127.0.0.1", 1, ssl_shutdown_timeout=1
        ),
    ),
    (
        "create_connection-ssl-without-server_hostname",
        lambda a: a.loop.create_connection(
            asyncio.Protocol, sock=a.socketpair()[0], ssl=True
        ),
    ),
    (
        "create_connection-negative-handshake-timeout",
        lambda a: a.loop.create_connection(
            asyncio.Protocol,
            sock=a.socketpair()[0],
            ssl=True,
            server_hostname="x",
            ssl_handshake_timeout=-1,
        ),
    ),
    (
        "create_connection-bad-family",
        lambda a: a.loop.create_connection(
            asyncio.Protocol, "127.0.0.1", 1, family="x"
        ),
    ),
    (
        "create_connection-port-str",
        lambda a: a.loop.create_connection(asyncio.Protocol, "127.0.0.1", "x"),
    ),
    # -- servers
    ("create_server-nothing", lambda a: a.loop.create_server(asyncio.Protocol)),
    (
        "create_server-sock-and-host",
        lambda a: a.loop.create_server(
            asyncio.Protocol, "127.0.0.1", 0, sock=a.socket()
        ),
    ),
    (
        "create_server-datagram-sock",
        lambda a: a.loop.create_server(
            asyncio.Protocol, sock=a.socket(kind=socket.SOCK_DGRAM)
        ),
    ),
    (
        "create_server-handshake-timeout-without-ssl",
        lambda a: a.loop.create_server(
            asyncio.Protocol, "127.0.0.1", 0, ssl_handshake_timeout=1
        ),
    ),
    (
        "create_server-backlog-str",
        lambda a: a.loop.create_server(asyncio.Protocol, "127.0.0.1", 0, backlog="x"),
    ),
    (
        "create_unix_connection-nothing",
        lambda a: a.loop.create_unix_connection(asyncio.Protocol),
    ),
    (
        "create_unix_connection-path-and-sock",
        lambda a: a.loop.create_unix_connection(
            asyncio.Protocol, "/nonexistent", sock=a.socketpair()[0]
        ),
    ),
    (
        "create_unix_connection-inet-sock",
        lambda a: a.loop.create_unix_connection(asyncio.Protocol, sock=a.socket()),
    ),
    (
        "create_unix_connection-server_hostname-without-ssl",
        lambda a: a.loop.create_unix_connection(
            asyncio.Protocol, "/nonexistent", server_hostname="x"
        ),
    ),
    (
        "create_unix_server-nothing",
        lambda a: a.loop.create_unix_server(asyncio.Protocol),
    ),
    (
        "create_unix_server-path-and-sock",
        lambda a: a.loop.create_unix_server(
            asyncio.Protocol, "/nonexistent", sock=a.socket(socket.AF_UNIX)
        ),
    ),
    (
        "create_unix_server-inet-sock",
        lambda a: a.loop.create_unix_server(asyncio.Protocol, sock=a.socket()),
    ),
    (
        "connect_accepted_socket-datagram-sock",
        lambda a: a.loop.connect_accepted_socket(
            asyncio.Protocol, a.socket(kind=socket.SOCK_DGRAM)
        ),
    ),
    (
        "connect_accepted_socket-handshake-timeout-without-ssl",
        lambda a: a.loop.connect_accepted_socket(
            asyncio.Protocol, a.socketpair()[0], ssl_handshake_timeout=1
        ),
    ),
    # -- TLS upgrade
    (
        "start_tls-not-a-transport",
        lambda a: a.loop.start_tls(
            _Transport(),  # type: ignore[arg-type]
            asyncio.Protocol(),
            ssl.create_default_context(),
        ),
    ),
    (
        "start_tls-not-a-context",
        lambda a: _start_tls_with(a, "context"),
    ),
    # -- datagrams
    (
        "create_datagram_endpoint-nothing",
        lambda a: a.loop.create_datagram_endpoint(asyncio.DatagramProtocol),
    ),
    (
        "create_datagram_endpoint-local_addr-str",
        lambda a: a.loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr="127.0.0.1"
        ),
    ),
    (
        "create_datagram_endpoint-stream-sock",
        lambda a: a.loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, sock=a.socket()
        ),
    ),
    # -- subprocesses
    *[
        (
            f"subprocess_exec-{name}",
            (
                lambda a, kwargs=kwargs: a.loop.subprocess_exec(
                    asyncio.SubprocessProtocol, "true", **kwargs
                )
            ),
        )
        for name, kwargs in [
            ("universal_newlines", {"universal_newlines": True}),
            ("shell", {"shell": True}),
            ("bufsize", {"bufsize": 1}),
            ("text", {"text": True}),
            ("encoding", {"encoding": "utf-8"}),
            ("errors", {"errors": "strict"}),
        ]
    ],
    (
        "subprocess_shell-cmd-list",
        lambda a: a.loop.subprocess_shell(asyncio.SubprocessProtocol, ["true"]),
    ),
    (
        "subprocess_shell-universal_newlines",
        lambda a: a.loop.subprocess_shell(
            asyncio.SubprocessProtocol, "true", universal_newlines=True
        ),
    ),
    (
        "subprocess_shell-shell-false",
        lambda a: a.loop.subprocess_shell(
            asyncio.SubprocessProtocol, "true", shell=False
        ),
    ),
    # -- pipes
    (
        "connect_read_pipe-regular-file",
        lambda a: a.loop.connect_read_pipe(asyncio.Protocol, a.temp_file()),
    ),
    (
        "connect_write_pipe-regular-file",
        lambda a: a.loop.connect_write_pipe(asyncio.Protocol, a.temp_file()),
    ),
    (
        "connect_read_pipe-int",
        lambda a: a.loop.connect_read_pipe(asyncio.Protocol, 0),
    ),
    # -- sockets
    ("sock_recv-size-str", lambda a: a.loop.sock_recv(a.socketpair()[0], "x")),
    (
        "sock_recv_into-bytes",
        lambda a: a.loop.sock_recv_into(a.socketpair()[0], b"immutable"),
    ),
    ("sock_sendall-str", lambda a: a.loop.sock_sendall(a.socketpair()[0], "text")),
    (
        "sock_connect-bad-address",
        lambda a: a.loop.sock_connect(a.socket(), "127.0.0.1"),
    ),
    ("sock_accept-not-a-socket", lambda a: a.loop.sock_accept("x")),
    # -- descriptors
    ("add_reader-str", lambda a: a.loop.add_reader("x", print)),
    ("add_reader-negative", lambda a: a.loop.add_reader(-1, print)),
    ("add_writer-str", lambda a: a.loop.add_writer("x", print)),
    ("remove_reader-str", lambda a: a.loop.remove_reader("x")),
    # -- signals
    ("add_signal_handler-str", lambda a: a.loop.add_signal_handler("x", print)),
    ("add_signal_handler-zero", lambda a: a.loop.add_signal_handler(0, print)),
    ("add_signal_handler-too-big", lambda a: a.loop.add_signal_handler(1000, print)),
    (
        "add_signal_handler-coroutine-function",
        lambda a: a.loop.add_signal_handler(2, _coroutine_function),
    ),
    ("remove_signal_handler-zero", lambda a: a.loop.remove_signal_handler(0)),
    # -- scheduling
    ("call_soon-not-callable", lambda a: a.debug().call_soon(42)),
    (
        "call_soon-coroutine-function",
        lambda a: a.debug().call_soon(_coroutine_function),
    ),
    ("call_later-not-callable", lambda a: a.debug().call_later(1, 42)),
    ("call_later-delay-none", lambda a: a.loop.call_later(None, print)),
    ("call_later-delay-str", lambda a: a.loop.call_later("x", print)),
    ("call_at-not-callable", lambda a: a.debug().call_at(1, 42)),
    ("call_at-when-none", lambda a: a.loop.call_at(None, print)),
    ("call_soon_threadsafe-not-callable", lambda a: a.debug().call_soon_threadsafe(42)),
    ("set_exception_handler-not-callable", lambda a: a.loop.set_exception_handler(42)),
    ("set_task_factory-not-callable", lambda a: a.loop.set_task_factory(42)),
    (
        "run_in_executor-coroutine-function",
        lambda a: a.debug().run_in_executor(None, _coroutine_function),
    ),
    ("create_task-not-a-coroutine", lambda a: a.loop.create_task(42)),
    # -- transports
    ("transport.write-str", lambda a: _on_transport(a, "write", "text")),
    ("transport.write-int", lambda a: _on_transport(a, "write", 42)),
    ("transport.writelines-int", lambda a: _on_transport(a, "writelines", 5)),
    ("transport.writelines-item-int", lambda a: _on_transport(a, "writelines", [1])),
    (
        "transport.set_write_buffer_limits-high-below-low",
        lambda a: _on_transport(a, "set_write_buffer_limits", 1, 2),
    ),
    (
        "transport.set_write_buffer_limits-negative-low",
        lambda a: _on_transport(a, "set_write_buffer_limits", None, -1),
    ),
    (
        "transport.set_write_buffer_limits-str",
        lambda a: _on_transport(a, "set_write_buffer_limits", "x"),
    ),
    ("datagram.sendto-str", lambda a: _on_datagram(a, "text")),
    # -- streams
    ("StreamReader-limit-zero", lambda a: a.streams.StreamReader(limit=0)),
    ("StreamReader.feed_data-str", lambda a: a.reader().feed_data("text")),
    ("StreamReader.readexactly-negative", lambda a: a.reader().readexactly(-1)),
    ("StreamReader.readuntil-empty", lambda a: a.reader().readuntil(b"")),
    ("StreamReader.read-str", lambda a: _read_with(a, "x")),
    ("StreamWriter.write-str", lambda a: _on_writer(a, "write", "text")),
    ("StreamWriter.writelines-item-int", lambda a: _on_writer(a, "writelines", [1])),
    ("open_connection-nothing", lambda a: a.streams.open_connection()),
    ("start_server-nothing", lambda a: a.streams.start_server(print)),
    # -- the write buffer (protoport's; asyncio's transports validate the same)
    (
        "WriteBuffer-high-below-low",
        lambda a: _write_buffer_limits(a, 1, 2),
    ),
    (
        "WriteBuffer-negative-low",
        lambda a: _write_buffer_limits(a, None, -1),
    ),
]

if sys.version_info >= (3, 13):
    CASES += [
        (
            "StreamReader.readuntil-empty-tuple",
            lambda a: a.reader().readuntil(()),
        ),
    ]


async def _on_transport(api: Api, method: str, *args: Any) -> None:
    getattr(await api.transport(), method)(*args)


async def _on_datagram(api: Api, *args: Any) -> None:
    (await api.datagram_transport()).sendto(*args)


async def _on_writer(api: Api, method: str, *args: Any) -> None:
    getattr(await api.writer(), method)(*args)


async def _read_with(api: Api, n: Any) -> None:
    reader = api.reader()
    reader.feed_data(b"data")
    await reader.read(n)


async def _start_tls_with(api: Api, what: str) -> None:
    transport = await api.transport()
    await api.loop.start_tls(transport, asyncio.Protocol(), what)  # type: ignore[arg-type]


async def _write_buffer_limits(api: Api, high: Any, low: Any) -> None:
    """On native asyncio, a transport's set_write_buffer_limits(); on protoport,
    a WriteBuffer made with these limits."""
    if api.streams is asyncio:
        (await api.transport()).set_write_buffer_limits(high, low)
    else:
        WriteBuffer(high=high, low=low)


Outcome = tuple[str, Any, str]


async def _outcome(api: Api, call: Call) -> Outcome:
    try:
        result = call(api)
        if isinstance(result, Awaitable):
            result = await result
    except Exception as exc:
        return ("raised", type(exc), api.normalise(str(exc)))
    finally:
        await api.close()
    if hasattr(result, "close"):  # a server or a transport made despite the case
        result.close()
    return ("returned", type(result), "")


async def native(call: Call) -> Outcome:
    """The outcome of *call* on a fresh native asyncio loop, in a thread."""

    async def main() -> Outcome:
        return await _outcome(Api(asyncio.get_running_loop(), asyncio), call)

    return await anyio.to_thread.run_sync(asyncio.run, main())


async def on_protoport(call: Call) -> Outcome:
    async with protoport.open_loop() as loop:

        async def main() -> Outcome:
            return await _outcome(Api(loop, protoport), call)

        return await loop.create_task(main())


# Where protoport raises something else on purpose: the reason, and what it
# raises instead.
DIFFERENT: dict[str, tuple[str, Outcome]] = {
    "sock_connect-bad-address": (
        "both raise the TypeError of unpacking the address into the function that "
        "reads a numeric address; asyncio's message names its private helper",
        (
            "raised",
            TypeError,
            "numeric_addrinfo() takes from 5 to 7 positional arguments but 12 were "
            "given",
        ),
    ),
    "sock_accept-not-a-socket": (
        "both raise the AttributeError of the first socket method used: asyncio "
        "asks for the descriptor first, protoport accepts first (it needs the "
        "descriptor only when it must wait)",
        ("raised", AttributeError, "'str' object has no attribute 'accept'"),
    ),
}


# The cases CPython's asyncio checks differently (or not at all) before 3.13: the
# reference is 3.13's.
REFERENCE_FROM_3_13 = {
    "create_connection-shutdown-timeout-without-ssl",
    "create_datagram_endpoint-local_addr-str",
    "create_datagram_endpoint-stream-sock",
    "call_later-delay-none",
    "call_at-when-none",
    "transport.writelines-int",
    "transport.writelines-item-int",
    "StreamWriter.writelines-item-int",
}

# Native asyncio's read pipe transport fails in its constructor when given a
# descriptor number, and its __del__ then fails too (an unraisable exception).
NATIVE_UNRAISABLE = {"connect_read_pipe-int"}


def _params() -> list[Any]:
    params = []
    for case_id, call in CASES:
        marks = []
        if case_id in REFERENCE_FROM_3_13:
            marks.append(
                pytest.mark.skipif(
                    sys.version_info < (3, 13),
                    reason="the reference is CPython 3.13's asyncio, which checks "
                    "this differently from older ones",
                )
            )
        if case_id in NATIVE_UNRAISABLE:
            marks.append(
                pytest.mark.filterwarnings(
                    "ignore::pytest.PytestUnraisableExceptionWarning"
                )
            )
        params.append(pytest.param(case_id, call, id=case_id, marks=marks))
    return params


@pytest.mark.parametrize(("case_id", "call"), _params())
async def test_bad_argument_as_asyncio(case_id: str, call: Call) -> None:
    expected = await native(call)
    assert expected[0] == "raised", f"native asyncio accepted the case: {expected}"
    got = await on_protoport(call)
    if case_id in DIFFERENT:
        _reason, expected = DIFFERENT[case_id]
    assert got == expected
