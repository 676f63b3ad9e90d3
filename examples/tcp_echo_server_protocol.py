"""TCP echo server built on asyncio.Protocol (asyncio docs: "TCP Echo Server").

Only the line that obtains the loop differs from the asyncio original.
Run: python tcp_echo_server_protocol.py [--backend trio|asyncio] [--port 8888]
"""

import argparse
import asyncio

import anyio

import protoport


class EchoServerProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        peername = transport.get_extra_info("peername")
        print(f"Connection from {peername}", flush=True)
        self.transport = transport

    def data_received(self, data):
        message = data.decode()
        print(f"Data received: {message!r}", flush=True)

        print(f"Send: {message!r}", flush=True)
        self.transport.write(data)

        print("Close the client socket", flush=True)
        self.transport.close()


async def main(port):
    loop = protoport.get_running_loop()  # was: asyncio.get_running_loop()

    server = await loop.create_server(EchoServerProtocol, "127.0.0.1", port)
    print(f"Serving on {server.sockets[0].getsockname()}", flush=True)

    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    anyio.run(main, args.port, backend=args.backend)
