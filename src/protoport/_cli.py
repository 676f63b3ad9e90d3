"""The ``protoport`` command line.

Each subcommand registers itself in :func:`build_parser` with
``set_defaults(handler=...)``; the handler receives the parsed arguments and
returns the process exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ._version import __version__
from .compat._command import add_matrix_command

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``protoport`` command."""
    parser = argparse.ArgumentParser(
        prog="protoport",
        description=(
            "asyncio transports, protocols and streams on Trio and asyncio, "
            "through AnyIO."
        ),
    )
    parser.add_argument(
        "--version",
        action="store_true",
        help="print the version and exit",
    )
    # Subcommands (such as ``matrix``) are added to this object.
    subparsers = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND"
    )
    add_matrix_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``).

    Returns the exit status. Invalid arguments make :mod:`argparse` exit
    with status 2, as usual.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"protoport {__version__}")
        return 0
    handler: Handler | None = getattr(args, "handler", None)
    if args.command is None or handler is None:
        parser.print_help(sys.stdout)
        return 0
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
