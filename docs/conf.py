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

exclude_patterns = ["_build"]
nitpicky = False

autodoc_typehints = "description"
autodoc_member_order = "bysource"

html_theme = "alabaster"
html_title = f"protoport {release}"
