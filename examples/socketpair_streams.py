"""Wait for data on an existing socket with streams (asyncio docs: "Register an
open socket to wait for data using streams").

Only the lines that obtain the loop and open the connection differ from the
asyncio original.
Run: python socketpair_streams.py [--backend trio|asyncio]
"""

import argparse
import socket

import anyio

import protoport


async def wait_for_data():
    # Get a reference to the current event loop because
    # we want to access low-level APIs.
    loop = protoport.get_running_loop()  # was: asyncio.get_running_loop()

    # Create a pair of connected sockets.
    rsock, wsock = socket.socketpair()

    # Register the open socket to wait for data.
    reader, writer = await protoport.open_connection(  # was: asyncio.open_connection
        sock=rsock
    )

    # Simulate the reception of data from the network
    loop.call_soon(wsock.send, "abc".encode())

    # Wait for data
    data = await reader.read(100)

    # Got data, we are done: close the socket
    print("Received:", data.decode(), flush=True)
    writer.close()
    await writer.wait_closed()

    # Close the second socket
    wsock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    args = parser.parse_args()
    anyio.run(wait_for_data, backend=args.backend)
