"""The committed matrix, compat_matrix/, is what the compatibility suite produces,
and every protoport row passes or has a documented deviation: what
``protoport matrix --check`` checks, for the implementations that the test
environment has (the columns of the others are taken from the files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protoport.compat import load_scenarios
from protoport.compat._check import CheckResult, check
from protoport.compat._report import build_matrix
from protoport.compat._runner import run_suite

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "compat_matrix"
# Native asyncio and protoport on both runtimes: what every test environment has.
COLUMNS = ["asyncio", "protoport-trio", "protoport-asyncio"]


@pytest.fixture(scope="module")
def result() -> CheckResult:
    suite = run_suite(COLUMNS, load_scenarios(), jobs=2)
    stored = json.loads((DIRECTORY / "matrix.json").read_text("utf-8"))
    markdown = (DIRECTORY / "MATRIX.md").read_text("utf-8")
    return check(build_matrix(suite), stored, markdown)


@pytest.mark.timeout(120)
def test_files_are_what_the_suite_produces(result: CheckResult) -> None:
    assert result.file_errors == [], "\n".join(
        [*result.file_errors, "run `protoport matrix` to regenerate compat_matrix/"]
    )


@pytest.mark.timeout(120)
def test_every_protoport_row_passes_or_is_documented(result: CheckResult) -> None:
    assert result.rule_errors == [], "\n".join(result.rule_errors)
