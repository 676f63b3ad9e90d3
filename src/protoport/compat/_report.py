"""The matrix as data (``matrix.json``) and its renderings: Markdown
(``MATRIX.md``), the terminal table, and reStructuredText for the documentation.

Every function here takes the JSON document (a dict), so that the documentation
can render ``compat_matrix/matrix.json`` without running anything.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._runner import SuiteResult

FORMAT = 1
SYMBOLS = {"pass": "✓", "fail": "✗", "unsupported": "—"}
#: The key of matrix.json that ``--check`` does not compare (versions of the
#: packages that produced it).
ENVIRONMENT_KEY = "environment"


def python_version() -> str:
    """The Python version the reference (native asyncio) ran on: results of
    native asyncio, and so the files, are compared only on the same version."""
    return "{}.{}.{}".format(*sys.version_info[:3])


def build_matrix(
    suite: SuiteResult, deviations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The JSON document of *suite*'s results (stable order, no timestamps)."""
    from ._deviations import deviation_for
    from ._implementations import BUILTIN_LABELS, is_protoport

    columns = suite.columns
    implementations = []
    for column in columns:
        entry: dict[str, Any] = {
            "name": column.name,
            "label": column.label,
            "reference": column.reference,
            "protoport": column.protoport,
            "available": column.available,
        }
        if not column.available:
            entry["reason"] = column.reason
        implementations.append(entry)

    # Documented deviations are listed for protoport's columns whether they ran
    # or not, so that a partial run compares with the files.
    protoport_columns = [name for name in BUILTIN_LABELS if is_protoport(name)]
    protoport_columns += [
        c.name for c in columns if c.protoport and c.name not in protoport_columns
    ]
    sections: list[dict[str, Any]] = []
    for scenario in suite.scenarios:
        if not sections or sections[-1]["title"] != scenario.section:
            sections.append({"title": scenario.section, "scenarios": []})
        results: dict[str, Any] = {}
        documented: dict[str, str] = {}
        for column in columns:
            outcome = suite.outcomes.get(column.name, {}).get(scenario.id)
            if outcome is None:
                results[column.name] = {"status": "unsupported", "reason": "not run"}
            else:
                results[column.name] = outcome.to_json()
        for name in protoport_columns:
            if deviations is not None:
                reason = deviations.get(f"{scenario.id}@{name}") or deviations.get(
                    scenario.id
                )
            else:
                reason = deviation_for(scenario.id, name)
            if reason:
                documented[name] = reason
        row: dict[str, Any] = {
            "id": scenario.id,
            "behaviour": scenario.behaviour,
            "requires": sorted(scenario.requires),
            "reference_deviation": scenario.reference_deviation,
            "deviations": documented,
            "results": results,
        }
        if scenario.since is not None:
            row["since"] = "{}.{}".format(*scenario.since)
        sections[-1]["scenarios"].append(row)

    return {
        "format": FORMAT,
        "generated_by": "protoport matrix",
        "python": python_version(),
        "implementations": implementations,
        "summary": summarize(implementations, sections),
        "sections": sections,
        ENVIRONMENT_KEY: {
            "note": "not compared by protoport matrix --check",
            "versions": {
                column.name: column.version for column in columns if column.version
            },
        },
    }


def summarize(
    implementations: Iterable[Mapping[str, Any]], sections: Iterable[Mapping[str, Any]]
) -> dict[str, dict[str, int]]:
    names = [str(impl["name"]) for impl in implementations]
    counts = {name: {"pass": 0, "fail": 0, "unsupported": 0} for name in names}
    for section in sections:
        for row in section["scenarios"]:
            for name in names:
                status = row["results"].get(name, {}).get("status", "unsupported")
                counts[name][status] = counts[name].get(status, 0) + 1
    return counts


def dumps(matrix: Mapping[str, Any]) -> str:
    """matrix.json's text."""
    return json.dumps(matrix, indent=2, ensure_ascii=False) + "\n"


def comparable(matrix: Mapping[str, Any]) -> dict[str, Any]:
    """*matrix* without what ``--check`` does not compare."""
    return {key: value for key, value in matrix.items() if key != ENVIRONMENT_KEY}


def rows(matrix: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """``(section title, row)`` for every row, in order."""
    for section in matrix["sections"]:
        for row in section["scenarios"]:
            yield section["title"], row


def cell_text(result: Mapping[str, Any]) -> str:
    """``"✓"``, ``"✗ reason"`` or ``"— reason"``."""
    symbol = SYMBOLS.get(str(result.get("status")), "?")
    reason = str(result.get("reason", ""))
    return f"{symbol} {reason}" if reason else symbol


def row_notes(row: Mapping[str, Any]) -> list[str]:
    """The notes of a row: the asyncio version that added what it checks,
    native asyncio's departure from its documentation, protoport's documented
    deviations."""
    notes = []
    if row.get("since"):
        notes.append(f"added in asyncio {row['since']}")
    if row.get("reference_deviation"):
        notes.append(
            f"native asyncio departs from its documentation: "
            f"{row['reference_deviation']}"
        )
    deviations: Mapping[str, str] = row.get("deviations") or {}
    reasons: dict[str, list[str]] = {}
    for name, reason in deviations.items():
        reasons.setdefault(reason, []).append(name)
    for reason, names in reasons.items():
        notes.append(f"documented protoport deviation ({', '.join(names)}): {reason}")
    return notes


# -- Markdown ---------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(matrix: Mapping[str, Any]) -> str:
    """MATRIX.md's text."""
    impls = matrix["implementations"]
    out = [
        "# Compatibility matrix",
        "",
        "Generated by `protoport matrix` from the compatibility suite "
        f"(`protoport.compat`) with Python {matrix['python']}. Do not edit: run "
        "the command again.",
        "",
        "Each row is one documented behaviour of asyncio's transports, protocols "
        "and streams; each column one implementation. ✓ behaves as documented, "
        "✗ does not (with the reason), — cannot be run there (with the reason). "
        "Native asyncio is the reference: where it departs from its own "
        "documentation, the row says so.",
        "",
        "| Implementation | ✓ | ✗ | — |",
        "|---|---:|---:|---:|",
    ]
    for impl in impls:
        counts = matrix["summary"][impl["name"]]
        label = impl["label"]
        if impl.get("reference"):
            label += " (reference)"
        if not impl.get("available", True):
            label += f" — {impl.get('reason', 'not available')}"
        out.append(
            f"| {_md(label)} | {counts['pass']} | {counts['fail']} | "
            f"{counts['unsupported']} |"
        )
    header = "| Behaviour | " + " | ".join(_md(i["label"]) for i in impls) + " |"
    rule = "|---|" + "---|" * len(impls)
    for section in matrix["sections"]:
        out += ["", f"## {section['title']}", "", header, rule]
        for row in section["scenarios"]:
            behaviour = f"{_md(row['behaviour'])}<br>`{row['id']}`"
            for note in row_notes(row):
                behaviour += f"<br>*{_md(note)}*"
            cells = [_md(cell_text(row["results"].get(i["name"], {}))) for i in impls]
            out.append(f"| {behaviour} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# -- terminal ---------------------------------------------------------------------


#: Column headings of the built-in implementations in the terminal.
SHORT_NAMES = {
    "asyncio": "asyncio",
    "uvloop": "uvloop",
    "trio-asyncio": "trio-aio",
    "protoport-trio": "pp-trio",
    "protoport-asyncio": "pp-aio",
}


def short_name(name: str) -> str:
    return SHORT_NAMES.get(name, name[:8])


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(0, width - 1)] + "…"


def render_terminal(
    matrix: Mapping[str, Any], width: int = 100, *, failures_only: bool = False
) -> str:
    """The matrix for a terminal: one line per row with a symbol per
    implementation, and under a row the reasons of its ✗ and — cells."""
    impls = matrix["implementations"]
    col = max(3, max(len(short_name(i["name"])) for i in impls))
    cols_width = (col + 1) * len(impls)
    text_width = max(30, width - cols_width - 2)
    lines: list[str] = []
    for section in matrix["sections"]:
        section_rows = section["scenarios"]
        if failures_only:
            section_rows = [
                row
                for row in section_rows
                if any(r.get("status") != "pass" for r in row["results"].values())
            ]
            if not section_rows:
                continue
        head = _fit(section["title"], text_width + 2)
        lines.append("")
        lines.append(head + " ".join(short_name(i["name"]).center(col) for i in impls))
        for row in section_rows:
            symbols = " ".join(
                SYMBOLS.get(
                    row["results"].get(i["name"], {}).get("status"), "?"
                ).center(col)
                for i in impls
            )
            lines.append("  " + _fit(row["behaviour"], text_width) + symbols)
            reasons: dict[str, list[str]] = {}
            for impl in impls:
                if not impl.get("available", True):
                    continue
                result = row["results"].get(impl["name"], {})
                if result.get("status") != "pass":
                    reasons.setdefault(cell_text(result), []).append(impl["name"])
            for reason, names in reasons.items():
                lines.append(f"      {', '.join(names)}: {reason}")
            for note in row_notes(row):
                lines.append(f"      note: {note}")
    lines.append("")
    for impl in impls:
        counts = matrix["summary"][impl["name"]]
        status = (
            ""
            if impl.get("available", True)
            else f"  ({impl.get('reason', 'not available')})"
        )
        lines.append(
            f"{short_name(impl['name']):<9}{impl['label']:<22} "
            f"✓ {counts['pass']:>4}   ✗ {counts['fail']:>4}   "
            f"— {counts['unsupported']:>4}{status}"
        )
    return "\n".join(lines) + "\n"


# -- reStructuredText (documentation) -----------------------------------------

_RST_SPECIAL = re.compile(r"([\\`*_|\[\]<>:])")


def _rst(text: str) -> str:
    return _RST_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def render_rst(matrix: Mapping[str, Any] | None) -> str:
    """The generated part of the documentation's matrix page."""
    if matrix is None:
        return (
            ".. note::\n\n   compat_matrix/matrix.json was not found: run "
            "``protoport matrix`` to produce it.\n"
        )
    impls = matrix["implementations"]
    out = [
        f"Produced with Python {matrix['python']}.",
        "",
        ".. list-table:: Summary",
        "   :header-rows: 1",
        "",
        "   * - Implementation",
        "     - ✓",
        "     - ✗",
        "     - —",
    ]
    for impl in impls:
        counts = matrix["summary"][impl["name"]]
        label = impl["label"] + (" (reference)" if impl.get("reference") else "")
        if not impl.get("available", True):
            label += f": {impl.get('reason', 'not available')}"
        out += [
            f"   * - {_rst(label)}",
            f"     - {counts['pass']}",
            f"     - {counts['fail']}",
            f"     - {counts['unsupported']}",
        ]

    deviation_rows = [
        (title, row) for title, row in rows(matrix) if row.get("deviations")
    ]
    out += ["", "Documented deviations of protoport", "-" * 34, ""]
    if deviation_rows:
        out.append(
            "Where a protoport row of the matrix does not pass, the reason is "
            "documented here:"
        )
        out.append("")
        for title, row in deviation_rows:
            for note in row_notes(row):
                if note.startswith("documented protoport deviation"):
                    out.append(
                        f"- {_rst(title)}: {_rst(row['behaviour'])} "
                        f"(``{row['id']}``) — {_rst(note)}"
                    )
    else:
        out.append("None: every protoport row of the matrix passes.")

    reference_rows = [
        (title, row) for title, row in rows(matrix) if row.get("reference_deviation")
    ]
    out += [
        "",
        "Where native asyncio departs from its documentation",
        "-" * 51,
        "",
    ]
    if reference_rows:
        for title, row in reference_rows:
            out.append(
                f"- {_rst(title)}: {_rst(row['behaviour'])} (``{row['id']}``) — "
                f"{_rst(row['reference_deviation'])}"
            )
    else:
        out.append("No such row.")

    for section in matrix["sections"]:
        title = section["title"]
        out += [
            "",
            _rst(title),
            "-" * max(len(_rst(title)), 3),
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - Behaviour",
        ]
        out += [f"     - {_rst(impl['label'])}" for impl in impls]
        for row in section["scenarios"]:
            behaviour = f"{_rst(row['behaviour'])} (``{row['id']}``)"
            out.append(f"   * - {behaviour}")
            for impl in impls:
                text = cell_text(row["results"].get(impl["name"], {}))
                out.append(f"     - {_rst(text)}")
    return "\n".join(out) + "\n"
