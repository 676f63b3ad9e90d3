"""``protoport matrix --check``: compare a fresh run with compat_matrix/ and
apply the rules for protoport's rows and the reference's."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._report import comparable, render_markdown, rows, summarize


@dataclass
class CheckResult:
    #: the files differ from what the suite produces
    file_errors: list[str] = field(default_factory=list)
    #: rows that break the rules (protoport's, and the reference's)
    rule_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return self.file_errors + self.rule_errors

    @property
    def ok(self) -> bool:
        return not self.errors


def _older_than(python: object, since: object) -> bool:
    """Whether the Python version *python* (``"3.10.13"``) is older than the
    asyncio version *since* (``"3.13"``); False when either is missing."""
    if not isinstance(python, str) or not isinstance(since, str):
        return False
    try:
        have = tuple(int(part) for part in python.split(".")[:2])
        need = tuple(int(part) for part in since.split(".")[:2])
    except ValueError:
        return False
    return have < need


def policy_errors(matrix: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The rule violations in *matrix*: ``(protoport_errors, reference_errors)``.

    Every protoport row passes or has a documented deviation, and no documented
    deviation belongs to a passing row. Native asyncio passes every row except
    those declaring a ``reference_deviation``, which it fails, and those whose
    ``since`` is newer than its Python, which it cannot run.
    """
    errors: list[str] = []
    reference_errors: list[str] = []
    impls = {impl["name"]: impl for impl in matrix["implementations"]}
    for _, row in rows(matrix):
        documented: Mapping[str, str] = row.get("deviations") or {}
        for name, impl in impls.items():
            if not impl.get("available", True):
                continue
            result = row["results"].get(name, {})
            status = result.get("status")
            if impl.get("protoport"):
                if status != "pass" and name not in documented:
                    errors.append(
                        f"{row['id']} [{name}]: {status} without a documented "
                        f"deviation: {result.get('reason', '')}"
                    )
                elif status == "pass" and name in documented:
                    errors.append(
                        f"{row['id']} [{name}]: passes, but a deviation is "
                        "documented for it: remove it from compat/_deviations.py"
                    )
            elif impl.get("reference"):
                declared = row.get("reference_deviation")
                if status == "unsupported" and _older_than(
                    matrix.get("python"), row.get("since")
                ):
                    # The reference's Python predates what the row checks.
                    continue
                if declared and status == "pass":
                    reference_errors.append(
                        f"{row['id']} [{name}]: the reference passes, but the "
                        "scenario declares a reference_deviation"
                    )
                elif not declared and status != "pass":
                    reference_errors.append(
                        f"{row['id']} [{name}]: the reference does not pass "
                        f"({result.get('reason', status)}): fix the scenario or "
                        "declare a reference_deviation"
                    )
    return errors, reference_errors


def merge(
    fresh: Mapping[str, Any], stored: Mapping[str, Any], *, all_rows: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """What the files should hold after this run: *fresh*, completed from *stored*
    with the columns that were not run here or whose implementation is not
    installed here, and (unless *all_rows*) with the rows that were not run.
    Returns the merged matrix and notes."""
    notes: list[str] = []
    fresh_impls = {impl["name"]: impl for impl in fresh["implementations"]}
    stored_impls = {impl["name"]: impl for impl in stored.get("implementations", [])}
    from_stored: set[str] = set()
    columns: list[dict[str, Any]] = []
    for name, old in stored_impls.items():
        new = fresh_impls.get(name)
        if new is None:
            from_stored.add(name)
            columns.append(copy.deepcopy(old))
            notes.append(f"{name} was not run: its column is not checked")
        elif not new.get("available", True) and old.get("available", True):
            from_stored.add(name)
            columns.append(copy.deepcopy(old))
            notes.append(
                f"{name} is not available here ({new.get('reason')}): its column "
                "is not checked"
            )
        else:
            columns.append(copy.deepcopy(new))
    columns += [
        copy.deepcopy(impl)
        for name, impl in fresh_impls.items()
        if name not in stored_impls
    ]

    fresh_rows = {row["id"]: row for _, row in rows(fresh)}
    stored_rows = {row["id"]: row for _, row in rows(stored)}
    not_run = {"status": "unsupported", "reason": "not run"}

    def merged_row(row_id: str) -> dict[str, Any]:
        new = fresh_rows.get(row_id)
        old = stored_rows.get(row_id)
        base = new if new is not None else old
        assert base is not None
        row = copy.deepcopy(dict(base))
        results: dict[str, Any] = {}
        for column in columns:
            name = column["name"]
            source = old if (new is None or name in from_stored) else new
            if source is None or name not in source["results"]:
                source = new if new is not None else old
            assert source is not None
            results[name] = copy.deepcopy(source["results"].get(name, not_run))
        row["results"] = results
        return row

    sections: list[dict[str, Any]] = []
    base_sections = fresh["sections"] if all_rows else stored.get("sections", [])
    for section in base_sections:
        sections.append(
            {
                "title": section["title"],
                "scenarios": [merged_row(row["id"]) for row in section["scenarios"]],
            }
        )
    if not all_rows:
        for title, row in rows(fresh):
            if row["id"] in stored_rows:
                continue
            target = next((s for s in sections if s["title"] == title), None)
            if target is None:
                target = {"title": title, "scenarios": []}
                sections.append(target)
            target["scenarios"].append(merged_row(row["id"]))

    merged = copy.deepcopy(dict(fresh))
    merged["implementations"] = columns
    merged["sections"] = sections
    merged["summary"] = summarize(columns, sections)
    return merged, notes


def _differences(fresh: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    fresh_rows = {row["id"]: row for _, row in rows(fresh)}
    stored_rows = {row["id"]: row for _, row in rows(stored)}
    for scenario_id in fresh_rows.keys() - stored_rows.keys():
        out.append(f"{scenario_id}: new row")
    for scenario_id in stored_rows.keys() - fresh_rows.keys():
        out.append(f"{scenario_id}: no longer produced by the suite")
    for scenario_id, row in fresh_rows.items():
        old = stored_rows.get(scenario_id)
        if old is None:
            continue
        for key in (
            "behaviour",
            "requires",
            "since",
            "reference_deviation",
            "deviations",
        ):
            if row.get(key) != old.get(key):
                out.append(f"{scenario_id}: {key} changed")
        for name, result in row["results"].items():
            before = old["results"].get(name)
            if result != before:
                out.append(f"{scenario_id} [{name}]: {before} -> {result}")
    if not out and comparable(fresh) != comparable(stored):
        out.append("the implementations, sections or their order changed")
    return sorted(out)


def check(
    fresh: Mapping[str, Any],
    stored: Mapping[str, Any] | None,
    stored_markdown: str | None,
    *,
    all_rows: bool = True,
) -> CheckResult:
    """Compare a fresh run with the stored files, and apply the row rules.

    Columns that were not run, or whose implementation is not installed here, are
    taken from the stored files; so are the rows not run when *all_rows* is
    false (a run restricted with ``-k``).
    """
    result = CheckResult()
    if stored is None:
        result.file_errors.append("compat_matrix/matrix.json is missing")
        errors, reference_errors = policy_errors(fresh)
        result.rule_errors += errors + reference_errors
        return result
    merged, notes = merge(fresh, stored, all_rows=all_rows)
    result.notes += notes
    same_python = stored.get("python") == fresh.get("python")
    if not same_python:
        result.notes.append(
            f"compat_matrix/ was produced with Python {stored.get('python')}, this "
            f"is Python {fresh.get('python')}: the files are not compared"
        )
    else:
        differences = _differences(merged, stored)
        if differences:
            shown = differences[:30]
            more = len(differences) - len(shown)
            result.file_errors.append(
                "compat_matrix/matrix.json differs from what the suite produces:\n  "
                + "\n  ".join(shown)
                + (f"\n  … and {more} more" if more > 0 else "")
            )
        if stored_markdown is None:
            result.file_errors.append("compat_matrix/MATRIX.md is missing")
        elif stored_markdown != render_markdown(merged):
            result.file_errors.append(
                "compat_matrix/MATRIX.md differs from what the suite produces"
            )
    errors, reference_errors = policy_errors(fresh)
    result.rule_errors += errors
    # What native asyncio does depends on the Python version: its rules are
    # checked only on the version the matrix was produced with.
    if same_python:
        result.rule_errors += reference_errors
    else:
        result.notes += reference_errors
    return result
