"""protoport's public namespace: ``__all__`` names exactly the public names of
``protoport/__init__.py``, each of them exists, re-exported classes and functions
say ``protoport`` is their module (as AnyIO's and Trio's do), and ``import
protoport`` works where Trio is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import protoport


def test_every_name_in_all_exists() -> None:
    missing = [name for name in protoport.__all__ if not hasattr(protoport, name)]
    assert not missing, f"in protoport.__all__ but not defined: {missing}"


def test_version_is_a_string() -> None:
    assert isinstance(protoport.__version__, str)
    assert protoport.__version__


def test_exported_classes_and_functions_belong_to_protoport() -> None:
    wrong = {
        name: getattr(value, "__module__", None)
        for name in protoport.__all__
        if callable(value := getattr(protoport, name))
        and getattr(value, "__module__", None) != "protoport"
    }
    assert not wrong, f"__module__ is not 'protoport': {wrong}"


def test_all_is_sorted_without_duplicates() -> None:
    assert list(protoport.__all__) == sorted(set(protoport.__all__))


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(protoport).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    exported = set(protoport.__all__)
    assert {name for name in exported if name.startswith("_")} == {"__version__"}
    exported.discard("__version__")
    assert exported == public, (
        f"public but not in __all__: {sorted(public - exported)}; "
        f"in __all__ but not public: {sorted(exported - public)}"
    )


def test_imports_without_trio() -> None:
    # A None entry in sys.modules makes ``import trio`` raise ImportError, as if
    # Trio were not installed. The child imports this same protoport.
    script = (
        "import sys\n"
        "sys.modules['trio'] = None\n"
        "import protoport\n"
        "print(protoport.__file__)\n"
    )
    source_root = str(Path(protoport.__file__).parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [source_root, *filter(None, [env.get("PYTHONPATH")])]
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == Path(protoport.__file__)
