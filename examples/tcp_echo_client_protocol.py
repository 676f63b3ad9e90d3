"""TCP echo client built on asyncio.Protocol (asyncio docs: "TCP Echo Client").

Only the line that obtains the loop differs from the asyncio original.
Run: python tcp_echo_client_protocol.py [--backend trio|asyncio] [--port 8888]
"""

import argparse
import asyncio

import anyio

import protoport


class EchoClientProtocol(asyncio.Protocol):
    def __init__(self, message, on_con_lost):
        self.message = message
        self.on_con_lost = on_con_lost

    def connection_made(self, transport):
        transport.write(self.message.encode())
        print(f"Data sent: {self.message!r}", flush=True)

    def data_received(self, data):
        print(f"Data received: {data.decode()!r}", flush=True)

    def connection_lost(self, exc):
        print("The server closed the connection", flush=True)
        self.on_con_lost.set_result(True)


async def main(port):
    loop = protoport.get_running_loop()  # was: asyncio.get_running_loop()

    on_con_lost = loop.create_future()
    message = "Hello World!"

    transport, protocol = await loop.create_connection(
        lambda: EchoClientProtocol(message, on_con_lost), "127.0.0.1", port
    )

    # Wait until the protocol signals that the connection is lost, then close.
    try:
        await on_con_lost
    finally:
        transport.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    anyio.run(main, args.port, backend=args.backend)
