"""protoport's layers import only downward, as DESIGN.md's section "Layers" lays
out: ``_backends`` < ``_core`` < ``_transports`` < ``_loop`` < ``_streams``. A module
in a layer imports protoport modules of its own layer or of lower layers only; only
``_backends`` and the compatibility suite import ``trio``; the compatibility suite
uses protoport through its public names, never a private module. The top-level
modules (``__init__`` re-exports every layer) stand outside the layers.

The source is read with ``ast``, not imported, so every import statement counts:
those inside functions, under ``if TYPE_CHECKING:``, and ``importlib.import_module``
calls with a literal name. Relative imports are resolved to absolute module names;
``from package import name`` counts as importing ``package.name`` where that is a
module, else as importing ``package``."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

import protoport

PACKAGE = "protoport"
COMPAT = "protoport.compat"
# The layers, lowest first.
RANKS = {"_backends": 0, "_core": 1, "_transports": 2, "_loop": 3, "_streams": 4}
# The modules that belong to no layer and are not the compatibility suite.
TOP_LEVEL = {"protoport", "protoport.__main__", "protoport._cli", "protoport._version"}


@dataclass(frozen=True, order=True)
class Import:
    """*importer*, the module in the file *path*, imports *module* at *line*."""

    path: str
    line: int
    module: str
    importer: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} -> {self.module}"


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> str | None:
    """The layer *module* belongs to, or None outside the layers."""
    parts = module.split(".")
    if len(parts) > 1 and parts[0] == PACKAGE and parts[1] in RANKS:
        return parts[1]
    return None


def module_of(path: PurePosixPath) -> tuple[str, bool]:
    """The module defined by *path* (relative to the directory holding the package),
    and whether it is a package's ``__init__``."""
    parts = path.with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def resolve(name: str | None, level: int, package: str) -> str:
    """The absolute name of ``from <"." * level><name> import ...`` in *package*."""
    if level == 0:
        assert name is not None
        return name
    parts = package.split(".")
    if level > len(parts):
        raise ValueError(f"relative import beyond {PACKAGE}: level {level}")
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{name}" if name else base


def is_import_module(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return (
            func.attr == "import_module"
            and isinstance(func.value, ast.Name)
            and func.value.id == "importlib"
        )
    return isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}


def imports_in(
    source: str, path: str, known: Iterable[str] = frozenset()
) -> list[Import]:
    """Every import in *source*, the file *path* (``protoport/...``), resolved
    against the modules *known* to exist."""
    known = frozenset(known)
    importer, is_package = module_of(PurePosixPath(path))
    package = importer if is_package else importer.rpartition(".")[0]
    found: set[Import] = set()
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(Import(path, node.lineno, alias.name, importer))
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.module, node.level, package)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                module = submodule if submodule in known else base
                found.add(Import(path, node.lineno, module, importer))
        elif (
            isinstance(node, ast.Call)
            and is_import_module(node)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            found.add(Import(path, node.lineno, node.args[0].value, importer))
    return sorted(found)


@functools.cache
def package_files() -> dict[str, str]:
    """The source of every module of the package: ``{"protoport/...py": text}``."""
    root = Path(protoport.__file__).parent
    return {
        file.relative_to(root.parent).as_posix(): file.read_text(encoding="utf-8")
        for file in sorted(root.rglob("*.py"))
    }


@functools.cache
def all_imports() -> tuple[Import, ...]:
    files = package_files()
    known = {module_of(PurePosixPath(path))[0] for path in files}
    found: list[Import] = []
    for path, source in files.items():
        found += imports_in(source, path, known)
    return tuple(found)


# -- the rules, as functions of a list of imports ------------------------------------


def layer_violations(imports: Iterable[Import]) -> list[Import]:
    """Imports of protoport modules outside the importer's layer and those below."""
    bad = []
    for imp in imports:
        layer = layer_of(imp.importer)
        if layer is None or not within(imp.module, PACKAGE):
            continue
        target = layer_of(imp.module)
        if target is None or RANKS[target] > RANKS[layer]:
            bad.append(imp)
    return bad


def trio_violations(imports: Iterable[Import]) -> list[Import]:
    """Imports of ``trio`` outside ``_backends`` and the compatibility suite."""
    return [
        imp
        for imp in imports
        if within(imp.module, "trio")
        and not within(imp.importer, "protoport._backends")
        and not within(imp.importer, COMPAT)
    ]


def compat_violations(imports: Iterable[Import]) -> list[Import]:
    """Imports of private protoport modules by the compatibility suite."""
    return [
        imp
        for imp in imports
        if within(imp.importer, COMPAT) and imp.module.startswith(PACKAGE + "._")
    ]


def fail_message(rule: str, violations: list[Import]) -> str:
    return f"{rule}; offending imports:\n" + "\n".join(f"  {v}" for v in violations)


# -- the package ---------------------------------------------------------------------


@pytest.mark.parametrize("layer", list(RANKS))
def test_layer_imports_only_its_own_and_lower_layers(layer: str) -> None:
    lower = [name for name, rank in RANKS.items() if rank <= RANKS[layer]]
    mine = [imp for imp in all_imports() if layer_of(imp.importer) == layer]
    violations = layer_violations(mine)
    assert not violations, fail_message(
        f"protoport/{layer}/ may import protoport modules only from {lower}",
        violations,
    )


def test_only_backends_and_compat_import_trio() -> None:
    violations = trio_violations(all_imports())
    assert not violations, fail_message(
        "trio is imported only under protoport/_backends/ and protoport/compat/",
        violations,
    )


def test_compat_imports_no_private_protoport_module() -> None:
    violations = compat_violations(all_imports())
    assert not violations, fail_message(
        "protoport.compat uses protoport's public names, not protoport._* modules",
        violations,
    )


def test_every_module_is_in_a_layer_compat_or_top_level() -> None:
    modules = [module_of(PurePosixPath(path))[0] for path in package_files()]
    stray = [
        m
        for m in modules
        if layer_of(m) is None and not within(m, COMPAT) and m not in TOP_LEVEL
    ]
    assert not stray, (
        f"modules outside the layers, compat and {sorted(TOP_LEVEL)}: {stray}"
    )


# -- the extraction finds what it should ---------------------------------------------


def test_imports_are_found_in_every_layer_and_compat() -> None:
    imports = all_imports()
    for place in [*(f"{PACKAGE}.{layer}" for layer in RANKS), COMPAT]:
        internal = [
            imp
            for imp in imports
            if within(imp.importer, place) and within(imp.module, PACKAGE)
        ]
        assert internal, f"no import of a protoport module found in {place}"
    assert any(within(imp.module, "trio") for imp in imports), "no import of trio"
    assert any(
        imp.path == "protoport/__init__.py" and layer_of(imp.module) is not None
        for imp in imports
    ), "protoport/__init__.py imports no layer"


KNOWN = {
    "protoport",
    "protoport._backends",
    "protoport._backends._trio",
    "protoport._core",
    "protoport._core._host",
    "protoport._loop",
    "protoport._loop._loop",
    "protoport._streams",
    "protoport._streams._reader",
    "protoport.compat",
    "protoport.compat._env",
}

CORE_MODULE = """\
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .. import _backends, sentinel
from ._host import Host
from .._backends import _trio as trio_backend

if TYPE_CHECKING:
    from .._loop._loop import Loop


def later() -> None:
    import trio.lowlevel
    from . import not_a_module
    importlib.import_module("protoport._streams")
"""


def test_extraction_resolves_relative_and_nested_imports() -> None:
    found = [
        (imp.line, imp.module)
        for imp in imports_in(CORE_MODULE, "protoport/_core/_example.py", KNOWN)
    ]
    assert found == [
        (1, "__future__"),
        (3, "importlib"),
        (4, "typing"),
        (6, "protoport"),
        (6, "protoport._backends"),
        (7, "protoport._core._host"),
        (8, "protoport._backends._trio"),
        (11, "protoport._loop._loop"),
        (15, "trio.lowlevel"),
        (16, "protoport._core"),
        (17, "protoport._streams"),
    ]
    # In a package's __init__, "." is the package itself.
    found = [
        (imp.line, imp.module)
        for imp in imports_in(
            "from . import _trio\nfrom ._host import Host\n",
            "protoport/_backends/__init__.py",
            KNOWN,
        )
    ]
    assert found == [(1, "protoport._backends._trio"), (2, "protoport._backends._host")]


def test_rules_classify_synthetic_modules() -> None:
    core = imports_in(CORE_MODULE, "protoport/_core/_example.py", KNOWN)
    assert [str(imp) for imp in layer_violations(core)] == [
        "protoport/_core/_example.py:6 -> protoport",
        "protoport/_core/_example.py:11 -> protoport._loop._loop",
        "protoport/_core/_example.py:17 -> protoport._streams",
    ]
    assert [str(imp) for imp in trio_violations(core)] == [
        "protoport/_core/_example.py:15 -> trio.lowlevel"
    ]
    assert compat_violations(core) == []

    # The same imports in _backends: trio is allowed, the layers above are not.
    backends = imports_in(CORE_MODULE, "protoport/_backends/_example.py", KNOWN)
    assert trio_violations(backends) == []
    assert [imp.module for imp in layer_violations(backends)] == [
        "protoport",
        "protoport._loop._loop",
        "protoport._streams",
    ]

    compat = imports_in(
        "import protoport\n"
        "import trio\n"
        "from protoport import open_loop\n"
        "from . import _env\n"
        "from .. import _core\n"
        "from protoport._loop._loop import Loop\n",
        "protoport/compat/_example.py",
        KNOWN,
    )
    assert [str(imp) for imp in compat_violations(compat)] == [
        "protoport/compat/_example.py:5 -> protoport._core",
        "protoport/compat/_example.py:6 -> protoport._loop._loop",
    ]
    assert trio_violations(compat) == []
    assert layer_violations(compat) == []

    # The top-level __init__ re-exports every layer.
    top = imports_in(
        "from ._streams._reader import StreamReader\nfrom . import _backends\n",
        "protoport/__init__.py",
        KNOWN,
    )
    assert [imp.module for imp in top] == [
        "protoport._streams._reader",
        "protoport._backends",
    ]
    assert layer_violations(top) == []
