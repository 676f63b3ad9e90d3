"""TCP echo server using streams (asyncio docs: "TCP echo server using streams").

Only the line that starts the server differs from the asyncio original.
Run: python tcp_echo_server_streams.py [--backend trio|asyncio] [--port 8888]
"""

import argparse

import anyio

import protoport


async def handle_echo(reader, writer):
    data = await reader.read(100)
    message = data.decode()
    addr = writer.get_extra_info("peername")

    print(f"Received {message!r} from {addr!r}", flush=True)

    print(f"Send: {message!r}", flush=True)
    writer.write(data)
    await writer.drain()

    print("Close the connection", flush=True)
    writer.close()
    await writer.wait_closed()


async def main(port):
    server = await protoport.start_server(  # was: asyncio.start_server
        handle_echo, "127.0.0.1", port
    )

    addrs = ", ".join(str(sock.getsockname()) for sock in server.sockets)
    print(f"Serving on {addrs}", flush=True)

    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    anyio.run(main, args.port, backend=args.backend)
