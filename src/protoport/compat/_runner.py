"""Running the suite: one worker process per implementation, scenarios streamed
to it one at a time, a timeout per scenario."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ._execute import FAIL, UNSUPPORTED, Outcome
from ._implementations import BUILTIN_LABELS, is_protoport
from ._registry import FEATURES, Scenario

#: Default hard timeout of one scenario, in seconds: the worker is killed then.
DEFAULT_TIMEOUT = 10.0
#: How long a worker may take to start (import its packages).
START_TIMEOUT = 30.0


@dataclass
class Column:
    """One implementation, as the matrix shows it."""

    name: str
    label: str
    available: bool = True
    #: why it is not available
    reason: str = ""
    reference: bool = False
    protoport: bool = False
    features: frozenset[str] = FEATURES
    version: str = ""


@dataclass
class SuiteResult:
    scenarios: list[Scenario]
    columns: list[Column]
    #: column name → scenario id → outcome
    outcomes: dict[str, dict[str, Outcome]] = field(default_factory=dict)


class WorkerError(Exception):
    """The worker hung or died."""


class _Worker:
    """A worker process for one implementation."""

    def __init__(self, spec: str, timeout: float, modules: Sequence[str]) -> None:
        self.spec = spec
        self.timeout = timeout
        # Closed by close(), after the process is gone.
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        command = [
            sys.executable,
            "-m",
            "protoport.compat._worker",
            spec,
            "--timeout",
            # The worker's own timeout comes first, so that a scenario that hangs
            # in the loop is reported with its trace.
            str(max(0.5, timeout * 0.75)),
        ]
        for module in modules:
            command += ["--module", module]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _receive(self, timeout: float, what: str) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"timed out after {timeout:g} s") from None
        if line is None:
            code = self.process.wait()
            raise WorkerError(f"crashed (exit status {code}) while {what}")
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError:
            self.kill()
            raise WorkerError(f"sent garbage while {what}") from None
        return message

    def hello(self) -> dict[str, Any]:
        message = self._receive(max(START_TIMEOUT, self.timeout), "starting")
        hello: dict[str, Any] = message["hello"]
        return hello

    def run(self, scenario_id: str) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(scenario_id.encode() + b"\n")
            stdin.flush()
        except OSError:
            code = self.process.wait()
            raise WorkerError(f"crashed (exit status {code})") from None
        message = self._receive(self.timeout, "running")
        if message.get("id") != scenario_id:
            self.kill()
            raise WorkerError("answered for another scenario")
        return message

    def stderr_tail(self, lines: int = 20) -> list[str]:
        self.stderr.seek(0)
        text = self.stderr.read().decode("utf-8", "replace")
        return text.splitlines()[-lines:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        stdin = self.process.stdin
        if stdin is not None:
            try:
                stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()


Report = Callable[[Column, Scenario, Outcome], None]


def _column_from_hello(spec: str, hello: dict[str, Any]) -> Column:
    name = str(hello.get("name", spec))
    label = str(hello.get("label", BUILTIN_LABELS.get(name, name)))
    if "unavailable" in hello:
        return Column(
            name=name,
            label=BUILTIN_LABELS.get(name, label),
            available=False,
            reason=str(hello["unavailable"]),
            reference=name == "asyncio",
            protoport=is_protoport(name),
        )
    return Column(
        name=name,
        label=label,
        reference=bool(hello.get("reference", False)),
        protoport=bool(hello.get("protoport", False)),
        features=frozenset(hello.get("features", FEATURES)),
        version=str(hello.get("version", "")),
    )


def run_implementation(
    spec: str,
    scenarios: Sequence[Scenario],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    modules: Sequence[str] = (),
    report: Report | None = None,
) -> tuple[Column, dict[str, Outcome]]:
    """Run *scenarios* on the implementation *spec* in worker processes; a worker
    that hangs or dies is replaced for the next scenario."""
    outcomes: dict[str, Outcome] = {}
    worker: _Worker | None = None
    column: Column | None = None
    try:
        for scenario in scenarios:
            if worker is None:
                worker = _Worker(spec, timeout, modules)
                try:
                    hello = worker.hello()
                except WorkerError as exc:
                    trace = worker.stderr_tail()
                    worker.close()
                    worker = None
                    if column is None:
                        column = Column(
                            name=spec,
                            label=BUILTIN_LABELS.get(spec, spec),
                            available=False,
                            reason=f"the worker {exc}",
                            reference=spec == "asyncio",
                            protoport=is_protoport(spec),
                        )
                        for rest in scenarios:
                            outcome = Outcome(UNSUPPORTED, column.reason, trace)
                            outcomes[rest.id] = outcome
                            if report is not None:
                                report(column, rest, outcome)
                        break
                    outcome = Outcome(FAIL, f"the worker {exc}", trace)
                    outcomes[scenario.id] = outcome
                    if report is not None:
                        report(column, scenario, outcome)
                    continue
                if column is None:
                    column = _column_from_hello(spec, hello)
                if not column.available:
                    worker.close()
                    worker = None
                    for rest in scenarios:
                        outcome = Outcome(UNSUPPORTED, column.reason)
                        outcomes[rest.id] = outcome
                        if report is not None:
                            report(column, rest, outcome)
                    break
            assert column is not None
            missing = sorted(scenario.requires - column.features)
            if missing:
                outcome = Outcome(UNSUPPORTED, f"needs {', '.join(missing)}")
            else:
                try:
                    outcome = Outcome.from_json(worker.run(scenario.id))
                except WorkerError as exc:
                    worker.kill()
                    trace = worker.stderr_tail()
                    worker.close()
                    worker = None
                    reason = str(exc)
                    if reason.startswith("timed out"):
                        reason = f"{reason} (worker killed)"
                    outcome = Outcome(FAIL, reason, trace)
            outcomes[scenario.id] = outcome
            if report is not None:
                report(column, scenario, outcome)
    finally:
        if worker is not None:
            worker.close()
    if column is None:  # no scenarios at all: ask the worker who it is
        worker = _Worker(spec, timeout, modules)
        try:
            column = _column_from_hello(spec, worker.hello())
        except WorkerError as exc:
            column = Column(
                name=spec,
                label=spec,
                available=False,
                reason=f"the worker {exc}",
            )
        finally:
            worker.close()
    return column, outcomes


def run_suite(
    specs: Sequence[str],
    scenarios: Sequence[Scenario],
    *,
    jobs: int = 2,
    timeout: float = DEFAULT_TIMEOUT,
    modules: Sequence[str] = (),
    report: Report | None = None,
) -> SuiteResult:
    """Run *scenarios* on every implementation of *specs*, *jobs* at a time."""
    lock = threading.Lock()

    def locked_report(column: Column, scenario: Scenario, outcome: Outcome) -> None:
        if report is not None:
            with lock:
                report(column, scenario, outcome)

    def one(spec: str) -> tuple[Column, dict[str, Outcome]]:
        return run_implementation(
            spec, scenarios, timeout=timeout, modules=modules, report=locked_report
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, specs))
    suite = SuiteResult(list(scenarios), [column for column, _ in results])
    for column, outcomes in results:
        suite.outcomes[column.name] = outcomes
    return suite
