"""Wait for data on an existing socket with a protocol (asyncio docs:
"Connecting Existing Sockets").

Only the line that obtains the loop differs from the asyncio original.
Run: python socketpair_protocol.py [--backend trio|asyncio]
"""

import argparse
import asyncio
import socket

import anyio

import protoport


class MyProtocol(asyncio.Protocol):
    def __init__(self, on_con_lost):
        self.transport = None
        self.on_con_lost = on_con_lost

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        print("Received:", data.decode(), flush=True)

        # We are done: close the transport; connection_lost() will be called.
        self.transport.close()

    def connection_lost(self, exc):
        # The socket has been closed.
        self.on_con_lost.set_result(True)


async def main():
    loop = protoport.get_running_loop()  # was: asyncio.get_running_loop()
    on_con_lost = loop.create_future()

    # A pair of connected sockets.
    rsock, wsock = socket.socketpair()

    # Register the socket to wait for data.
    transport, protocol = await loop.create_connection(
        lambda: MyProtocol(on_con_lost), sock=rsock
    )

    # Simulate the reception of data from the network.
    loop.call_soon(wsock.send, "abc".encode())

    try:
        await protocol.on_con_lost
    finally:
        transport.close()
        wsock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    args = parser.parse_args()
    anyio.run(main, backend=args.backend)
