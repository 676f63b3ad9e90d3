"""Run a shell command and show its exit status and output (asyncio docs:
"Subprocesses", the first example).

Only the line that starts the child differs from the asyncio original.
Run: python subprocess_shell.py [--backend trio|asyncio] [command]
"""

import argparse
import asyncio

import anyio

import protoport


async def run(cmd):
    proc = (
        await protoport.create_subprocess_shell(  # was: asyncio.create_subprocess_shell
            cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    )

    stdout, stderr = await proc.communicate()

    print(f"[{cmd!r} exited with {proc.returncode}]")
    if stdout:
        print(f"[stdout]\n{stdout.decode()}")
    if stderr:
        print(f"[stderr]\n{stderr.decode()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("command", nargs="?", default="ls /zzz")
    args = parser.parse_args()
    anyio.run(run, args.command, backend=args.backend)
