"""UDP echo client built on a datagram protocol (asyncio docs: "UDP Echo Client").

Only the line that obtains the loop differs from the asyncio original.
Run: python udp_echo_client_protocol.py [--backend trio|asyncio] [--port 9999]
"""

import argparse

import anyio

import protoport


class EchoClientProtocol:
    def __init__(self, message, on_con_lost):
        self.message = message
        self.on_con_lost = on_con_lost
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        print("Send:", self.message, flush=True)
        self.transport.sendto(self.message.encode())

    def datagram_received(self, data, addr):
        print("Received:", data.decode(), flush=True)

        print("Close the socket", flush=True)
        self.transport.close()

    def error_received(self, exc):
        print("Error received:", exc, flush=True)

    def connection_lost(self, exc):
        print("Connection closed", flush=True)
        self.on_con_lost.set_result(True)


async def main(port):
    # Get a reference to the event loop as we plan to use
    # low-level APIs.
    loop = protoport.get_running_loop()  # was: asyncio.get_running_loop()

    on_con_lost = loop.create_future()
    message = "Hello World!"

    transport, protocol = await loop.create_datagram_endpoint(
        lambda: EchoClientProtocol(message, on_con_lost),
        remote_addr=("127.0.0.1", port),
    )

    try:
        await on_con_lost
    finally:
        transport.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--port", type=int, default=9999)
    args = parser.parse_args()
    anyio.run(main, args.port, backend=args.backend)
