"""Sphinx configuration for the protoport documentation."""

from __future__ import annotations

import re
import sys
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
# Let autodoc find the package even when it is not installed.
sys.path.insert(0, str(_root / "src"))

_version_file = (_root / "src" / "protoport" / "_version.py").read_text("utf-8")
_match = re.search(r'^__version__ = "([^"]+)"', _version_file, re.MULTILINE)

project = "protoport"
author = "the protoport authors"
copyright = "2026, the protoport authors"
release = _match.group(1) if _match else "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# Pages included by others, not documents of their own.
exclude_patterns = ["_build", "_generated"]
nitpicky = False

autodoc_typehints = "description"
# Types of the parameters an entry describes, and its return type: a list of
# every parameter's type alone would repeat the signature, and would show the
# constructor parameters of classes that only the loop makes.
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"

html_theme = "alabaster"
html_title = f"protoport {release}"


def _write_matrix_page() -> None:
    """Render compat_matrix/matrix.json into _generated/matrix.rst (included by
    matrix.rst); the file is rewritten only when its text changes."""
    import json

    from protoport.compat._report import render_rst

    source = _root / "compat_matrix" / "matrix.json"
    data = json.loads(source.read_text("utf-8")) if source.exists() else None
    target = Path(__file__).resolve().parent / "_generated" / "matrix.rst"
    target.parent.mkdir(exist_ok=True)
    text = render_rst(data)
    if not target.exists() or target.read_text("utf-8") != text:
        target.write_text(text, "utf-8")


_write_matrix_page()
