"""UDP echo server built on a datagram protocol (asyncio docs: "UDP Echo Server").

Only the line that obtains the loop differs from the asyncio original, and the
wait: under Trio, ``asyncio.sleep()`` has no asyncio loop to sleep on, so the
server waits with AnyIO's ``sleep()``.
Run: python udp_echo_server_protocol.py [--backend trio|asyncio] [--port 9999]
"""

import argparse

import anyio

import protoport


class EchoServerProtocol:
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        message = data.decode()
        print("Received %r from %s" % (message, addr), flush=True)
        print("Send %r to %s" % (message, addr), flush=True)
        self.transport.sendto(data, addr)


async def main(port):
    print("Starting UDP server", flush=True)

    # Get a reference to the event loop as we plan to use
    # low-level APIs.
    loop = protoport.get_running_loop()  # was: asyncio.get_running_loop()

    # One protocol instance will be created to serve all
    # client requests.
    transport, protocol = await loop.create_datagram_endpoint(
        EchoServerProtocol, local_addr=("127.0.0.1", port)
    )

    try:
        await anyio.sleep(3600)  # Serve for 1 hour. (was: asyncio.sleep(3600))
    finally:
        transport.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--port", type=int, default=9999)
    args = parser.parse_args()
    anyio.run(main, args.port, backend=args.backend)
