"""The packages that some scenarios need besides the implementations under test.

Without one of them, the scenarios that need it are unsupported ("—") with the
reason, and a run of the suite is incomplete.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._failures import Unsupported

#: package → the scenarios that need it
OPTIONAL_PACKAGES: dict[str, str] = {
    "trustme": "the TLS scenarios",
}


def optional_package(name: str) -> ModuleType:
    """Import the optional package *name*; :class:`Unsupported` when it is
    missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise Unsupported(
            f"{name} is not installed ({OPTIONAL_PACKAGES[name]} need it)"
        ) from None


def missing_packages() -> list[str]:
    """The optional packages that cannot be imported here, in the order of
    :data:`OPTIONAL_PACKAGES`."""
    missing = []
    for name in OPTIONAL_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing
