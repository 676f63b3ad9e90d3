"""What ``protoport matrix`` does when an optional package or an implementation is
missing: the rows that need it are unsupported ("—", with the reason), never
failures, and the committed matrix is rewritten only by a complete run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from protoport._cli import main
from protoport.compat import _command, load_scenarios
from protoport.compat._runner import run_implementation

TRUSTME_MISSING = "trustme is not installed (the TLS scenarios need it)"


@pytest.fixture
def without_trustme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """trustme cannot be imported, here and in the worker processes (a module of
    that name that refuses to import comes first on their path)."""
    hiding = tmp_path / "hiding"
    hiding.mkdir()
    (hiding / "trustme.py").write_text('raise ImportError("hidden by the test")\n')
    monkeypatch.setenv("PYTHONPATH", str(hiding))
    monkeypatch.setitem(sys.modules, "trustme", None)


@pytest.fixture
def small_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``protoport matrix`` with no filter runs three scenarios (two of them TLS
    ones) on native asyncio and protoport on Trio, in a new current directory."""
    by_id = {s.id: s for s in load_scenarios()}
    names = ("base.transport_is_asyncio_transport", "tls.data_both_ways")
    picked = [by_id[name] for name in (*names, "tls.wrong_host_name")]
    monkeypatch.setattr(_command, "load_scenarios", lambda modules: picked)
    monkeypatch.setattr(_command, "BUILTIN", {"asyncio": None, "protoport-trio": None})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("without_trustme")
def test_without_trustme_every_tls_row_is_unsupported_with_the_reason() -> None:
    tls = [s for s in load_scenarios() if s.id.startswith("tls.")]
    assert len(tls) >= 7
    for spec in ("asyncio", "protoport-trio", "protoport-asyncio"):
        column, outcomes = run_implementation(spec, tls)
        assert column.available
        assert {s.id: outcomes[s.id].status for s in tls} == dict.fromkeys(
            (s.id for s in tls), "unsupported"
        ), spec
        # The reason, unless the row needs a newer asyncio than the running one.
        reasons = {outcome.reason for outcome in outcomes.values()}
        assert {
            reason for reason in reasons if not reason.startswith("needs the asyncio ")
        } == {TRUSTME_MISSING}, spec
        assert outcomes["tls.wrong_host_name"].reason == TRUSTME_MISSING


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("without_trustme")
def test_incomplete_run_leaves_the_committed_matrix_alone(
    small_suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["matrix", "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert not (small_suite / "compat_matrix").exists()
    written = json.loads(
        (small_suite / "build" / "compat_matrix" / "matrix.json").read_text("utf-8")
    )
    results = {
        row["id"]: row["results"]["asyncio"]
        for section in written["sections"]
        for row in section["scenarios"]
    }
    assert results["tls.wrong_host_name"] == {
        "status": "unsupported",
        "reason": TRUSTME_MISSING,
    }
    # No maintainer-facing lines, and a summary that says what is missing and
    # where the files went.
    assert not [line for line in printed if line.startswith(("warning", "note"))]
    assert printed[-4].startswith("done: 3 scenarios on 2 implementations in ")
    assert printed[-3] == (
        "passed (✓): protoport (Trio) 1/3, asyncio (the reference) 1/3"
    )
    assert printed[-2] == (
        "incomplete: trustme is not installed, so the TLS scenarios show — "
        "(python -m pip install trustme)"
    )
    assert printed[-1] == (
        "wrote build/compat_matrix/MATRIX.md and build/compat_matrix/matrix.json "
        "(compat_matrix/, the committed matrix, is rewritten only by a complete "
        "run)"
    )

    assert main(["matrix", "--no-progress", "-v"]) == 0
    assert (
        "warning: tls.wrong_host_name [asyncio]: the reference does not pass "
        f"({TRUSTME_MISSING}): fix the scenario or declare a reference_deviation"
    ) in capsys.readouterr().out.splitlines()


@pytest.mark.timeout(60)
def test_complete_run_writes_the_committed_matrix(
    small_suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("trustme")
    assert main(["matrix", "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert not (small_suite / "build").exists()
    assert (small_suite / "compat_matrix" / "MATRIX.md").exists()
    assert printed[-2] == (
        "passed (✓): protoport (Trio) 3/3, asyncio (the reference) 3/3"
    )
    assert printed[-1] == "wrote compat_matrix/MATRIX.md and compat_matrix/matrix.json"


@pytest.mark.timeout(60)
def test_missing_implementation_makes_the_run_incomplete(
    small_suite: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(
        _command, "BUILTIN", {"asyncio": None, "no_such_module_here:factory": None}
    )
    assert main(["matrix", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert (
        "incomplete: no_such_module_here:factory is not available (no_such_module_"
        "here:factory: No module named 'no_such_module_here')"
    ) in printed
    assert not (small_suite / "compat_matrix").exists()
    assert (small_suite / "build" / "compat_matrix" / "MATRIX.md").exists()
