"""TCP echo client using streams (asyncio docs: "TCP echo client using streams").

Only the line that opens the connection differs from the asyncio original.
Run: python tcp_echo_client_streams.py [--backend trio|asyncio] [--port 8888]
"""

import argparse

import anyio

import protoport


async def tcp_echo_client(message, port):
    reader, writer = await protoport.open_connection(  # was: asyncio.open_connection
        "127.0.0.1", port
    )

    print(f"Send: {message!r}", flush=True)
    writer.write(message.encode())
    await writer.drain()

    data = await reader.read(100)
    print(f"Received: {data.decode()!r}", flush=True)

    print("Close the connection", flush=True)
    writer.close()
    await writer.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    anyio.run(tcp_echo_client, "Hello World!", args.port, backend=args.backend)
