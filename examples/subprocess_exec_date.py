"""Read the current date from a child Python process with StreamReader
(asyncio docs: "Subprocesses", reading the output of a process).

Only the line that starts the child differs from the asyncio original.
Run: python subprocess_exec_date.py [--backend trio|asyncio]
"""

import argparse
import asyncio
import sys

import anyio

import protoport


async def get_date():
    code = "import datetime; print(datetime.datetime.now())"

    # The child's stdout is a pipe: proc.stdout is a StreamReader.
    proc = (
        await protoport.create_subprocess_exec(  # was: asyncio.create_subprocess_exec
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
        )
    )

    # One line of output, then the child's exit.
    data = await proc.stdout.readline()
    line = data.decode("ascii").rstrip()
    await proc.wait()
    return line


async def main():
    date = await get_date()
    print(f"Current date: {date}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    args = parser.parse_args()
    anyio.run(main, backend=args.backend)
