"""The ``protoport matrix`` command."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ._execute import Outcome
from ._implementations import BUILTIN
from ._optional import OPTIONAL_PACKAGES, missing_packages
from ._registry import Scenario, load_scenarios
from ._report import (
    SYMBOLS,
    build_matrix,
    dumps,
    render_markdown,
    render_terminal,
    rows,
)
from ._runner import DEFAULT_TIMEOUT, Column, run_suite

#: Where a complete run writes the matrix: the committed files.
DEFAULT_OUTPUT = "compat_matrix"
#: Where a run of every scenario writes when it is incomplete (an implementation
#: or an optional package is missing): the committed matrix is not replaced by
#: one with holes.
PARTIAL_OUTPUT = "build/compat_matrix"
JSON_NAME = "matrix.json"
MARKDOWN_NAME = "MATRIX.md"


def add_matrix_command(subparsers: Any) -> None:
    """Add ``matrix`` to the ``protoport`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "matrix",
        help="run the compatibility suite and write the compatibility matrix",
        description=(
            "Run the compatibility suite against every implementation installed "
            "(native asyncio, uvloop, trio-asyncio, protoport on Trio and on "
            "asyncio), print the matrix, and write matrix.json and MATRIX.md: to "
            f"{DEFAULT_OUTPUT}/ when the run is complete (every implementation "
            f"and every optional package installed), to {PARTIAL_OUTPUT}/ "
            "otherwise. With -k, --only, --impl or --module the files are "
            "written only when --output is given."
        ),
    )
    parser.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="MODULE:FACTORY",
        help=(
            "add an implementation: FACTORY() returns a runner, a callable "
            "run(main) that runs `await main(loop)` in a fresh event loop "
            "(see protoport.compat); may be repeated"
        ),
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=(
            "run only these implementations: built-in names "
            f"({', '.join(BUILTIN)}) or --impl specs; may be repeated"
        ),
    )
    parser.add_argument(
        "-k",
        "--scenario",
        action="append",
        default=[],
        metavar="SUBSTRING",
        help="run only the scenarios whose id or section contains SUBSTRING",
    )
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="MODULE",
        help="import more scenarios from MODULE (may be repeated)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=2,
        help="implementations run in parallel (default: 2)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds one scenario may take (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help=(
            f"where to write the files (default: {DEFAULT_OUTPUT} after a complete "
            f"run, {PARTIAL_OUTPUT} otherwise)"
        ),
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=(
            "write nothing; exit with status 1 if the files differ from this run "
            "(columns and rows not run are taken from the files), or if a "
            "protoport row fails without a documented deviation"
        ),
    )
    parser.add_argument(
        "--list", action="store_true", help="list the scenarios and exit"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help=(
            "show the trace of every row that does not pass, and the rows that "
            "break the rules of --check"
        ),
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="do not show the progress"
    )
    parser.set_defaults(handler=run_matrix_command)


class Progress:
    """A progress bar on a terminal, plain lines otherwise."""

    def __init__(
        self, stream: TextIO, total: int, per_column: int, enabled: bool = True
    ) -> None:
        self.stream = stream
        self.total = total
        self.per_column = per_column
        self.enabled = enabled
        self.tty = enabled and stream.isatty()
        self.done = 0
        self.counts: dict[str, dict[str, int]] = {}
        self.started = time.monotonic()

    def __call__(self, column: Column, scenario: Scenario, outcome: Outcome) -> None:
        self.done += 1
        counts = self.counts.setdefault(
            column.name, {"pass": 0, "fail": 0, "unsupported": 0}
        )
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if not self.enabled:
            return
        if self.tty:
            width = shutil.get_terminal_size((100, 24)).columns
            bar_width = max(10, min(40, width - 60))
            filled = bar_width * self.done // max(1, self.total)
            bar = "█" * filled + "·" * (bar_width - filled)
            text = f"\r[{bar}] {self.done}/{self.total} {column.name}: {scenario.id}"
            self.stream.write(text[: width - 1].ljust(width - 1))
            self.stream.flush()
        elif sum(counts.values()) == self.per_column:
            self.stream.write(
                f"{column.name}: {self.per_column} scenarios "
                f"({counts['pass']} {SYMBOLS['pass']}, "
                f"{counts['fail']} {SYMBOLS['fail']}, "
                f"{counts['unsupported']} {SYMBOLS['unsupported']}), "
                f"{time.monotonic() - self.started:.1f} s\n"
            )
            self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            width = shutil.get_terminal_size((100, 24)).columns
            self.stream.write("\r" + " " * (width - 1) + "\r")
            self.stream.flush()


def _utf8(stream: TextIO) -> TextIO:
    if isinstance(stream, io.TextIOWrapper):
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError):  # pragma: no cover
            pass
    return stream


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def select_scenarios(scenarios: list[Scenario], patterns: list[str]) -> list[Scenario]:
    if not patterns:
        return scenarios
    return [s for s in scenarios if any(p in s.id or p in s.section for p in patterns)]


def run_matrix_command(args: argparse.Namespace) -> int:
    out = _utf8(sys.stdout)
    err = _utf8(sys.stderr)
    scenarios = select_scenarios(load_scenarios(args.module), args.scenario)
    if args.list:
        section = None
        for scenario in scenarios:
            if scenario.section != section:
                section = scenario.section
                out.write(f"{section}\n")
            out.write(f"  {scenario.id:<48} {scenario.behaviour}\n")
        out.write(f"{len(scenarios)} scenarios\n")
        return 0
    if not scenarios:
        err.write("no scenario matches\n")
        return 2
    candidates = [*BUILTIN, *args.impl]
    unknown = [name for name in args.only if name not in candidates]
    if unknown:
        err.write(
            f"unknown implementation(s): {', '.join(unknown)} "
            f"(built-in: {', '.join(BUILTIN)}; add others with --impl)\n"
        )
        return 2
    specs = [name for name in candidates if not args.only or name in args.only]
    full_run = not (args.scenario or args.only or args.impl or args.module)

    progress = Progress(
        err, len(specs) * len(scenarios), len(scenarios), not args.no_progress
    )
    started = time.monotonic()
    suite = run_suite(
        specs,
        scenarios,
        jobs=args.jobs,
        timeout=args.timeout,
        modules=args.module,
        report=progress,
    )
    progress.finish()
    matrix = build_matrix(suite)
    width = shutil.get_terminal_size((100, 24)).columns
    out.write(render_terminal(matrix, width))
    versions = ", ".join(
        f"{c.name} {c.version}" for c in suite.columns if c.available and c.version
    )
    if versions:
        out.write(f"versions: {versions}\n")
    if args.verbose:
        _print_traces(out, suite.scenarios, suite.columns, suite.outcomes)

    if args.check:
        directory = Path(args.output or DEFAULT_OUTPUT)
        return _check(out, matrix, directory, all_rows=not args.scenario)

    gaps = [
        f"{c.label} is not available ({c.reason})"
        for c in suite.columns
        if not c.available
    ]
    gaps += [
        f"{name} is not installed, so {OPTIONAL_PACKAGES[name]} show "
        f"{SYMBOLS['unsupported']} (python -m pip install {name})"
        for name in missing_packages()
    ]
    complete = full_run and not gaps
    _print_rule_errors(out, matrix, verbose=args.verbose, complete=complete)
    out.write(
        f"done: {_plural(len(scenarios), 'scenario')} on "
        f"{_plural(len(specs), 'implementation')} in "
        f"{time.monotonic() - started:.1f} s\n"
        f"passed ({SYMBOLS['pass']}): {_passed(matrix)}\n"
    )
    for gap in gaps:
        out.write(f"incomplete: {gap}\n")

    if args.output:
        directory = Path(args.output)
    elif complete:
        directory = Path(DEFAULT_OUTPUT)
    elif full_run:
        directory = Path(PARTIAL_OUTPUT)
    else:
        out.write(
            "wrote nothing: a run restricted with -k, --only, --impl or --module "
            "writes its files only with --output\n"
        )
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    (directory / JSON_NAME).write_text(dumps(matrix), encoding="utf-8")
    (directory / MARKDOWN_NAME).write_text(render_markdown(matrix), encoding="utf-8")
    wrote = f"wrote {directory / MARKDOWN_NAME} and {directory / JSON_NAME}"
    if not args.output and not complete:
        wrote += (
            f" ({DEFAULT_OUTPUT}/, the committed matrix, is rewritten only by a "
            "complete run)"
        )
    out.write(wrote + "\n")
    return 0


def _passed(matrix: dict[str, Any]) -> str:
    """How many rows each available implementation passes, protoport's first."""
    impls = [i for i in matrix["implementations"] if i.get("available", True)]
    impls.sort(key=lambda impl: not impl.get("protoport"))
    total = len(list(rows(matrix)))
    parts = []
    for impl in impls:
        label = impl["label"] + (" (the reference)" if impl.get("reference") else "")
        parts.append(f"{label} {matrix['summary'][impl['name']]['pass']}/{total}")
    return ", ".join(parts)


def _print_rule_errors(
    out: TextIO, matrix: dict[str, Any], *, verbose: bool, complete: bool
) -> None:
    """The rows that break the matrix's rules (what ``--check`` rejects), for
    maintainers: listed with -v, counted otherwise. An incomplete run breaks them
    by nature (rows it could not run), so it only lists them with -v."""
    from ._check import policy_errors

    errors, reference_errors = policy_errors(matrix)
    broken = errors + reference_errors
    if verbose:
        for line in broken:
            out.write(f"warning: {line}\n")
    elif broken and complete:
        out.write(
            "note: the rules that `protoport matrix --check` applies are broken "
            f"by {_plural(len(broken), 'row')} (-v lists them)\n"
        )


def _check(
    out: TextIO, matrix: dict[str, Any], directory: Path, *, all_rows: bool
) -> int:
    from ._check import check

    json_path = directory / JSON_NAME
    md_path = directory / MARKDOWN_NAME
    stored = (
        json.loads(json_path.read_text(encoding="utf-8"))
        if json_path.exists()
        else None
    )
    markdown = md_path.read_text(encoding="utf-8") if md_path.exists() else None
    result = check(matrix, stored, markdown, all_rows=all_rows)
    for note in result.notes:
        out.write(f"note: {note}\n")
    for error in result.errors:
        out.write(f"error: {error}\n")
    if result.ok:
        out.write(f"{directory} is up to date\n")
        return 0
    hints = []
    if result.file_errors:
        hints.append("run `protoport matrix` to regenerate the files")
    if result.rule_errors:
        hints.append(
            "fix the failing rows, or document protoport's deviations in "
            "protoport/compat/_deviations.py"
        )
    out.write(f"check failed: {len(result.errors)} error(s); {'; '.join(hints)}\n")
    return 1


def _print_traces(
    out: TextIO,
    scenarios: list[Scenario],
    columns: list[Column],
    outcomes: dict[str, dict[str, Outcome]],
) -> None:
    for scenario in scenarios:
        for column in columns:
            if not column.available:
                continue
            outcome = outcomes.get(column.name, {}).get(scenario.id)
            if outcome is None or outcome.status == "pass":
                continue
            out.write(f"\n--- {scenario.id} [{column.name}]: {outcome.reason}\n")
            for line in outcome.trace:
                out.write(f"    {line}\n")
