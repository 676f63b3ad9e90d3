"""Read the current date from a child Python process with a SubprocessProtocol
(asyncio docs: "Transports and Protocols", the loop.subprocess_exec() example).

Only the line that obtains the loop differs from the asyncio original.
Run: python subprocess_protocol_date.py [--backend trio|asyncio]
"""

import argparse
import asyncio
import sys

import anyio

import protoport


class DateProtocol(asyncio.SubprocessProtocol):
    def __init__(self, exit_future):
        self.exit_future = exit_future
        self.output = bytearray()
        self.pipe_closed = False
        self.exited = False

    def pipe_connection_lost(self, fd, exc):
        self.pipe_closed = True
        self.check_for_exit()

    def pipe_data_received(self, fd, data):
        self.output.extend(data)

    def process_exited(self):
        self.exited = True
        # process_exited() may come before the pipe's end: wait for both.
        self.check_for_exit()

    def check_for_exit(self):
        if self.pipe_closed and self.exited:
            self.exit_future.set_result(True)


async def get_date():
    loop = protoport.get_running_loop()  # was: asyncio.get_running_loop()

    code = "import datetime; print(datetime.datetime.now())"
    exit_future = loop.create_future()

    # Only stdout is a pipe: stdin and stderr are inherited.
    transport, protocol = await loop.subprocess_exec(
        lambda: DateProtocol(exit_future),
        sys.executable,
        "-c",
        code,
        stdin=None,
        stderr=None,
    )

    await exit_future

    transport.close()

    data = bytes(protocol.output)
    return data.decode("ascii").rstrip()


async def main():
    date = await get_date()
    print(f"Current date: {date}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    args = parser.parse_args()
    anyio.run(main, backend=args.backend)
