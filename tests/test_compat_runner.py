"""``protoport matrix``: worker processes with timeouts (a hanging and a crashing
implementation given with ``--impl``), implementations that are not installed,
the output files and their renderings, and ``--check``."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docutils.core
import pytest

from protoport._cli import main
from protoport.compat import _registry, load_scenarios
from protoport.compat._check import check, merge, policy_errors
from protoport.compat._report import (
    dumps,
    render_markdown,
    render_rst,
    render_terminal,
    summarize,
)
from protoport.compat._runner import run_implementation

FAKE_IMPLS = '''
import asyncio
import os
import time
from pathlib import Path

from protoport.compat import run_asyncio

COUNTER = Path(os.environ["COMPAT_TEST_COUNTER"])


def first_call():
    """True on the first call across worker processes (the counter is a file)."""
    count = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(count + 1))
    return count == 0


def plain_run(main):
    run_asyncio(main, asyncio.SelectorEventLoop)


def hanging():
    def run(main):
        if first_call():
            time.sleep(3600)  # blocks the event loop: only a kill ends this
        plain_run(main)

    run.name = "hanging"
    return run


def crashing():
    def run(main):
        if first_call():
            os._exit(3)
        plain_run(main)

    run.name = "crashing"
    return run


def missing():
    raise ImportError("no module named 'frobnicator'")


class Plain:
    name = "plain"
    label = "Plain asyncio"
    features = ("unix", "tcp")
    version = "1.2.3"

    def run(self, main):
        plain_run(main)


def plain():
    return Plain()


def unnamed():
    return plain_run
'''

FAKE_SCENARIOS = """
from protoport.compat import Env, Unsupported, scenario, sections

CUSTOM = sections.section("Custom", "Section")


@scenario(sections.BASE_TRANSPORT, "writes reach the peer")
async def passes(env: Env) -> None:
    conn = await env.connect()
    conn.transport.write(b"x")
    env.expect_equal("peer received", await conn.peer.recv_exactly(1), b"x")


@scenario(sections.BASE_TRANSPORT, "fails with a reason")
async def fails(env: Env) -> None:
    env.expect_equal("answer", 41, 42)


@scenario(sections.BASE_TRANSPORT, "not available")
async def unsupported(env: Env) -> None:
    raise Unsupported("no frobnicator here")


@scenario(sections.BASE_TRANSPORT, "hangs in the loop")
async def hangs(env: Env) -> None:
    env.mark("about to wait for ever")
    await env.loop.create_future()


@scenario(sections.TLS_UPGRADE, "needs TLS", requires=("tls",))
async def needs_tls(env: Env) -> None:
    pass


@scenario(
    CUSTOM,
    "the reference departs from its documentation | here",
    reference_deviation="the reference is known to fail this",
)
async def custom(env: Env) -> None:
    env.fail("as documented")
"""


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Modules with fake implementations and scenarios, importable here and in
    the worker processes."""
    package = tmp_path / "modules"
    package.mkdir()
    (package / "compat_fake_impls.py").write_text(FAKE_IMPLS)
    (package / "compat_fake_scenarios.py").write_text(FAKE_SCENARIOS)
    monkeypatch.setenv("PYTHONPATH", str(package))
    monkeypatch.setenv("COMPAT_TEST_COUNTER", str(tmp_path / "counter"))
    monkeypatch.syspath_prepend(str(package))
    load_scenarios()  # the built-in ones stay registered afterwards
    saved = dict(_registry._registry)
    try:
        yield tmp_path
    finally:
        _registry._registry.clear()
        _registry._registry.update(saved)
        for name in ("compat_fake_impls", "compat_fake_scenarios"):
            sys.modules.pop(name, None)


def fake_scenarios(*names: str) -> list[Any]:
    every = load_scenarios(["compat_fake_scenarios"])
    by_id = {s.id: s for s in every}
    return [by_id[f"compat_fake_scenarios.{name}"] for name in names]


# -- the runner ---------------------------------------------------------------------


def test_hanging_implementation_is_killed_and_restarted(fakes: Path) -> None:
    scenarios = fake_scenarios("passes", "passes")
    column, outcomes = run_implementation(
        "compat_fake_impls:hanging",
        scenarios[:1],
        timeout=1.0,
        modules=["compat_fake_scenarios"],
    )
    assert column.name == "hanging"
    assert outcomes["compat_fake_scenarios.passes"].status == "fail"
    assert outcomes["compat_fake_scenarios.passes"].reason == (
        "timed out after 1 s (worker killed)"
    )
    # The next scenario gets a new worker, which works.
    column, outcomes = run_implementation(
        "compat_fake_impls:hanging",
        fake_scenarios("passes", "fails"),
        timeout=1.0,
        modules=["compat_fake_scenarios"],
    )
    assert outcomes["compat_fake_scenarios.passes"].status == "pass"
    assert outcomes["compat_fake_scenarios.fails"].reason == (
        "answer: expected 42, got 41"
    )


def test_crashing_implementation_is_restarted(fakes: Path) -> None:
    column, outcomes = run_implementation(
        "compat_fake_impls:crashing",
        fake_scenarios("passes", "fails"),
        modules=["compat_fake_scenarios"],
    )
    assert column.available
    first = outcomes["compat_fake_scenarios.passes"]
    assert (first.status, first.reason) == (
        "fail",
        "crashed (exit status 3) while running",
    )
    assert outcomes["compat_fake_scenarios.fails"].status == "fail"
    assert outcomes["compat_fake_scenarios.fails"].reason.startswith("answer")


def test_timeout_inside_the_loop_is_reported_with_the_trace(fakes: Path) -> None:
    _, outcomes = run_implementation(
        "asyncio",
        fake_scenarios("hangs", "passes"),
        timeout=0.8,
        modules=["compat_fake_scenarios"],
    )
    hung = outcomes["compat_fake_scenarios.hangs"]
    assert (hung.status, hung.reason) == ("fail", "timed out")
    assert hung.trace == ["about to wait for ever"]
    assert outcomes["compat_fake_scenarios.passes"].status == "pass"


def test_implementation_not_installed(fakes: Path) -> None:
    column, outcomes = run_implementation(
        "compat_fake_impls:missing",
        fake_scenarios("passes", "fails"),
        modules=["compat_fake_scenarios"],
    )
    reason = "compat_fake_impls:missing: no module named 'frobnicator'"
    assert not column.available
    assert column.reason == reason
    assert {(o.status, o.reason) for o in outcomes.values()} == {
        ("unsupported", reason)
    }


def test_unknown_module_is_not_installed(fakes: Path) -> None:
    column, outcomes = run_implementation(
        "no_such_module_here:factory", fake_scenarios("passes")
    )
    assert not column.available
    assert "No module named 'no_such_module_here'" in column.reason
    assert outcomes["compat_fake_scenarios.passes"].status == "unsupported"


def test_runner_without_attributes_is_named_by_its_spec(fakes: Path) -> None:
    column, outcomes = run_implementation(
        "compat_fake_impls:unnamed",
        fake_scenarios("passes"),
        modules=["compat_fake_scenarios"],
    )
    assert (column.name, column.label) == (
        "compat_fake_impls:unnamed",
        "compat_fake_impls:unnamed",
    )
    assert outcomes["compat_fake_scenarios.passes"].status == "pass"


# -- the command ----------------------------------------------------------------------


def matrix_args(out: Path, *extra: str) -> list[str]:
    args = ["matrix", "--module", "compat_fake_scenarios"]
    for name in ("passes", "needs_tls", "custom"):
        args += ["-k", f"compat_fake_scenarios.{name}"]
    args += ["--impl", "compat_fake_impls:plain", "--only", "asyncio"]
    args += ["--only", "compat_fake_impls:plain", "-o", str(out), *extra]
    return args


def test_command_writes_the_files(
    fakes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = fakes / "matrix"
    assert main(matrix_args(out)) == 0
    printed = capsys.readouterr()
    data = json.loads((out / "matrix.json").read_text("utf-8"))
    assert [i["name"] for i in data["implementations"]] == ["asyncio", "plain"]
    assert data["implementations"][1]["label"] == "Plain asyncio"
    assert [s["title"] for s in data["sections"]] == [
        "Transports \u203a Base Transport",
        "Event Loop \u203a TLS Upgrade",
        "Custom \u203a Section",
    ]
    rows = {r["id"]: r for s in data["sections"] for r in s["scenarios"]}
    assert rows["compat_fake_scenarios.passes"]["results"] == {
        "asyncio": {"status": "pass"},
        "plain": {"status": "pass"},
    }
    assert rows["compat_fake_scenarios.needs_tls"]["results"]["plain"] == {
        "status": "unsupported",
        "reason": "needs tls",
    }
    custom = rows["compat_fake_scenarios.custom"]
    assert custom["reference_deviation"] == "the reference is known to fail this"
    assert custom["results"]["asyncio"] == {"status": "fail", "reason": "as documented"}
    assert data["summary"]["plain"] == {"pass": 1, "fail": 1, "unsupported": 1}
    assert data["environment"]["versions"]["plain"] == "1.2.3"
    assert "1.2.3" not in json.dumps(
        {k: v for k, v in data.items() if k != "environment"}
    )
    # The Markdown file is the rendering of the JSON file.
    markdown = (out / "MATRIX.md").read_text("utf-8")
    assert markdown == render_markdown(data)
    assert "| writes reach the peer<br>`compat_fake_scenarios.passes` | ✓ | ✓ |" in (
        markdown
    )
    assert "departs from its documentation \\| here" in markdown
    # The terminal shows the rows, the reasons and the notes; progress on stderr.
    assert "— needs tls" in printed.out
    assert "✗ as documented" in printed.out
    assert "note: native asyncio departs from its documentation" in printed.out
    assert "plain: 3 scenarios (1 ✓, 1 ✗, 1 —)" in printed.err


def test_check_passes_then_fails_on_any_difference(
    fakes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = fakes / "matrix"
    assert main(matrix_args(out)) == 0
    stored = (out / "matrix.json").read_text("utf-8")
    capsys.readouterr()
    assert main(matrix_args(out, "--check")) == 0
    assert "is up to date" in capsys.readouterr().out
    assert (out / "matrix.json").read_text("utf-8") == stored

    changed = json.loads(stored)
    changed["sections"][0]["scenarios"][0]["results"]["plain"] = {
        "status": "fail",
        "reason": "edited",
    }
    (out / "matrix.json").write_text(json.dumps(changed), "utf-8")
    assert main(matrix_args(out, "--check")) == 1
    printed = capsys.readouterr().out
    assert "compat_matrix/matrix.json differs" in printed
    assert "compat_fake_scenarios.passes [plain]" in printed

    (out / "matrix.json").write_text(stored, "utf-8")
    (out / "MATRIX.md").write_text("edited by hand\n", "utf-8")
    assert main(matrix_args(out, "--check")) == 1
    assert "MATRIX.md differs" in capsys.readouterr().out


def test_check_ignores_the_environment(
    fakes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = fakes / "matrix"
    assert main(matrix_args(out)) == 0
    data = json.loads((out / "matrix.json").read_text("utf-8"))
    data["environment"]["versions"]["plain"] = "9.9.9"
    (out / "matrix.json").write_text(dumps(data), "utf-8")
    assert main(matrix_args(out, "--check")) == 0


def test_list_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "--list", "-k", "flow."]) == 0
    listed = capsys.readouterr().out
    assert "flow.pause_above_high" in listed
    assert "writing." not in listed
    assert main(["matrix", "-k", "no such scenario at all"]) == 2
    assert main(["matrix", "--only", "nonexistent", "--list"]) == 0
    assert main(["matrix", "--only", "nonexistent", "-k", "flow."]) == 2
    assert "unknown implementation" in capsys.readouterr().err


# -- check() and the renderings, on made-up matrices ---------------------------------


def row(
    scenario_id: str,
    results: dict[str, str],
    *,
    reference_deviation: str | None = None,
    deviations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": scenario_id,
        "behaviour": f"behaviour of {scenario_id}",
        "requires": [],
        "reference_deviation": reference_deviation,
        "deviations": deviations or {},
        "results": {
            name: {"status": status}
            if status == "pass"
            else {"status": status, "reason": f"{name} says no"}
            for name, status in results.items()
        },
    }


def matrix(*rows: dict[str, Any], python: str = "3.13") -> dict[str, Any]:
    implementations = [
        {
            "name": "asyncio",
            "label": "asyncio",
            "reference": True,
            "protoport": False,
            "available": True,
        },
        {
            "name": "other",
            "label": "Other",
            "reference": False,
            "protoport": False,
            "available": True,
        },
        {
            "name": "protoport-trio",
            "label": "protoport (Trio)",
            "reference": False,
            "protoport": True,
            "available": True,
        },
    ]
    sections = [{"title": "A \u203a B", "scenarios": list(rows)}]
    return {
        "format": 1,
        "generated_by": "protoport matrix",
        "python": python,
        "implementations": implementations,
        "summary": summarize(implementations, sections),
        "sections": sections,
        "environment": {},
    }


ALL_PASS = {"asyncio": "pass", "other": "pass", "protoport-trio": "pass"}


def test_policy() -> None:
    good = matrix(
        row("a.ok", ALL_PASS),
        row(
            "a.documented",
            {"asyncio": "pass", "other": "fail", "protoport-trio": "fail"},
            deviations={"protoport-trio": "on purpose"},
        ),
        row(
            "a.reference",
            {"asyncio": "fail", "other": "fail", "protoport-trio": "pass"},
            reference_deviation="CPython forgets",
        ),
    )
    assert policy_errors(good) == ([], [])
    bad = matrix(
        row("a.fails", {"asyncio": "pass", "other": "pass", "protoport-trio": "fail"}),
        row("a.stale", ALL_PASS, deviations={"protoport-trio": "no longer"}),
        row(
            "a.unsupported",
            {"asyncio": "pass", "other": "pass", "protoport-trio": "unsupported"},
        ),
        row(
            "a.ref_fails",
            {"asyncio": "fail", "other": "pass", "protoport-trio": "pass"},
        ),
        row("a.ref_passes", ALL_PASS, reference_deviation="declared"),
    )
    errors, reference_errors = policy_errors(bad)
    assert [e.split(":")[0] for e in errors] == [
        "a.fails [protoport-trio]",
        "a.stale [protoport-trio]",
        "a.unsupported [protoport-trio]",
    ]
    assert "remove it from compat/_deviations.py" in errors[1]
    assert [e.split(":")[0] for e in reference_errors] == [
        "a.ref_fails [asyncio]",
        "a.ref_passes [asyncio]",
    ]


def test_check_compares_rows_and_cells() -> None:
    stored = matrix(row("a.one", ALL_PASS), row("a.two", ALL_PASS))
    markdown = render_markdown(stored)
    assert check(stored, stored, markdown).ok
    fresh = copy.deepcopy(stored)
    fresh["sections"][0]["scenarios"][1]["results"]["other"] = {
        "status": "fail",
        "reason": "x",
    }
    fresh["summary"] = summarize(fresh["implementations"], fresh["sections"])
    result = check(fresh, stored, markdown)
    assert len(result.errors) == 2  # the JSON cell, and MATRIX.md
    assert "a.two [other]" in result.errors[0]
    fewer = matrix(row("a.one", ALL_PASS))
    result = check(fewer, stored, markdown)
    assert "a.two: no longer produced by the suite" in result.errors[0]
    more = matrix(
        row("a.one", ALL_PASS), row("a.two", ALL_PASS), row("a.three", ALL_PASS)
    )
    assert "a.three: new row" in check(more, stored, markdown).errors[0]
    assert check(fresh, None, None).errors[0] == "compat_matrix/matrix.json is missing"


def test_check_takes_columns_not_run_or_not_installed_from_the_files() -> None:
    stored = matrix(row("a.one", {**ALL_PASS, "other": "fail"}))
    markdown = render_markdown(stored)
    fresh = copy.deepcopy(stored)
    fresh["implementations"][1] = {
        "name": "other",
        "label": "Other",
        "reference": False,
        "protoport": False,
        "available": False,
        "reason": "other is not installed",
    }
    fresh["sections"][0]["scenarios"][0]["results"]["other"] = {
        "status": "unsupported",
        "reason": "other is not installed",
    }
    result = check(fresh, stored, markdown)
    assert result.ok, result.errors
    assert "other is not available here (other is not installed)" in result.notes[0]

    # A run of one column only (--only protoport-trio).
    only = copy.deepcopy(stored)
    del only["implementations"][:2]
    for name in ("asyncio", "other"):
        del only["sections"][0]["scenarios"][0]["results"][name]
    merged, notes = merge(only, stored)
    assert merged["sections"] == stored["sections"]
    assert notes == [
        "asyncio was not run: its column is not checked",
        "other was not run: its column is not checked",
    ]
    assert check(only, stored, markdown).ok


def test_check_with_selected_rows_keeps_the_others() -> None:
    stored = matrix(row("a.one", ALL_PASS), row("a.two", ALL_PASS))
    markdown = render_markdown(stored)
    selected = matrix(row("a.two", ALL_PASS))
    assert check(selected, stored, markdown, all_rows=False).ok
    assert not check(selected, stored, markdown, all_rows=True).ok


def test_check_on_another_python_compares_no_files() -> None:
    stored = matrix(row("a.one", ALL_PASS))
    fresh = matrix(
        row("a.one", {"asyncio": "fail", "other": "fail", "protoport-trio": "pass"}),
        python="3.10",
    )
    result = check(fresh, stored, "anything")
    assert result.ok
    assert any("produced with Python 3.13" in note for note in result.notes)
    assert any("the reference does not pass" in note for note in result.notes)
    fresh["sections"][0]["scenarios"][0]["results"]["protoport-trio"] = {
        "status": "fail",
        "reason": "no",
    }
    assert not check(fresh, stored, "anything").ok


def two_rows(reference_deviation: str, deviation: str) -> dict[str, Any]:
    """A matrix with a row that passes everywhere and one that fails, with both
    kinds of note."""
    return matrix(
        row("a.one", ALL_PASS),
        row(
            "a.two",
            {"asyncio": "fail", "other": "unsupported", "protoport-trio": "fail"},
            reference_deviation=reference_deviation,
            deviations={"protoport-trio": deviation},
        ),
    )


def test_terminal_rendering() -> None:
    data = two_rows(reference_deviation="CPython forgets", deviation="on purpose")
    text = render_terminal(data, width=100)
    lines = text.splitlines()
    assert lines[1].startswith("A \u203a B")
    assert lines[1].split()[-3:] == ["asyncio", "other", "pp-trio"]
    assert "✓" in lines[2]
    assert "✗" not in lines[2]
    assert "      asyncio: ✗ asyncio says no" in text
    assert "      other: — other says no" in text
    assert (
        "note: native asyncio departs from its documentation: CPython forgets" in text
    )
    assert "note: documented protoport deviation (protoport-trio): on purpose" in text
    assert "pp-trio  protoport (Trio)" in text
    failures = render_terminal(data, width=100, failures_only=True)
    assert "behaviour of a.one" not in failures
    assert "behaviour of a.two" in failures


def test_rst_rendering_is_valid_restructuredtext() -> None:
    data = two_rows(
        reference_deviation="*CPython* forgets `this` | _that_",
        deviation="on purpose: <see> [1]",
    )
    text = render_rst(data)
    assert "Documented deviations of protoport" in text
    assert "\\*CPython\\* forgets" in text
    document = "Title\n=====\n\n" + text
    docutils.core.publish_doctree(
        document, settings_overrides={"halt_level": 2, "report_level": 2}
    )
    assert "matrix.json was not found" in render_rst(None)
