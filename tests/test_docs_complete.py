"""The API reference is complete: every name of ``protoport.__all__`` and every
public method and attribute of the public classes is documented by a directive of
the documentation's ``.rst`` files, protoport's own methods have docstrings (which
autodoc's ``:members:`` needs), and no documented signature shows a private
parameter.

The directives are read as autodoc reads them: an ``autoclass`` with ``:members:``
documents the members defined in the class that have a docstring (or the members
it lists), minus ``:exclude-members:``; nested ``automethod`` (and the like)
directives document the members they name; ``:ivar:`` and ``:cvar:`` fields of a
class docstring document attributes."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import protoport

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The classes whose public methods and attributes the reference documents.
CLASSES = [
    protoport.Loop,
    protoport.StreamTransport,
    protoport.DatagramTransport,
    protoport.ReadPipeTransport,
    protoport.WritePipeTransport,
    protoport.SubprocessTransport,
    protoport.Process,
    protoport.Server,
    protoport.WriteBuffer,
    protoport.SocketStream,
    protoport.StreamReader,
    protoport.StreamWriter,
    protoport.StreamReaderProtocol,
]

#: Public names the reference leaves out on purpose; the class docstring says
#: why (it names each of them).
LEFT_OUT = {
    # They serve the loop that owns the transport.
    "StreamTransport": {
        "start",
        "run",
        "finish",
        "hand_over",
        "belongs_to",
        "sendfile_socket",
        "sending_file",
        "is_writing_paused",
        "wait_flushed",
    },
    "DatagramTransport": {"start", "finish", "belongs_to"},
    "ReadPipeTransport": {"start", "finish", "belongs_to"},
    "WritePipeTransport": {"start", "finish", "belongs_to"},
    "SubprocessTransport": {
        "start",
        "abort",
        "finish",
        "add_exit_waiter",
        "wait_exited",
        "pipe_data_received",
        "pipe_connection_lost",
    },
    # AnyIO's constructor of its own socket streams.
    "SocketStream": {"from_socket"},
}

#: The directives that document one object each.
OBJECT_DIRECTIVES = {
    "autofunction",
    "autoclass",
    "automethod",
    "autoattribute",
    "autoproperty",
    "autodata",
    "py:function",
    "py:class",
    "py:method",
    "py:attribute",
    "py:property",
    "py:data",
}
#: The options of ``autoclass`` this check understands.
KNOWN_OPTIONS = {"members", "exclude-members", "no-index", "noindex"}

_DIRECTIVE = re.compile(
    r"^(?P<indent> *)\.\. (?P<kind>[\w:]+):: (?P<target>[\w.]+)(?P<args>\(.*\))?\s*$"
)
_OPTION = re.compile(r"^ *:(?P<name>[\w-]+):(?P<value>.*)$")
_FIELD_VARIABLE = re.compile(r":(?:ivar|cvar|var) (\w+):")


@dataclass
class Directive:
    kind: str
    #: The documented object's full name, e.g. ``protoport.Loop.call_soon``.
    target: str
    #: The signature written in the directive, or None.
    args: str | None
    options: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> list[Directive]:
    """The object directives of *text*, nested ones named in full."""
    directives: list[Directive] = []
    # The enclosing autoclass (its indentation and name), if any.
    enclosing: tuple[int, str] | None = None
    current: Directive | None = None
    option_indent = -1
    last_option: str | None = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if current is not None and line.strip() and indent >= option_indent:
            # The directive's options, up to the first blank line.
            option = _OPTION.match(line)
            if option is not None and indent == option_indent:
                last_option = option["name"]
                current.options[last_option] = option["value"].strip()
                continue
            if last_option is not None and indent > option_indent:
                current.options[last_option] += " " + line.strip()
                continue
        current = None
        last_option = None
        if not line.strip():
            continue
        if enclosing is not None and indent <= enclosing[0]:
            enclosing = None
        match = _DIRECTIVE.match(line)
        if match is None or match["kind"] not in OBJECT_DIRECTIVES:
            continue
        target = match["target"]
        if enclosing is not None and not target.startswith("protoport."):
            target = f"{enclosing[1]}.{target}"
        current = Directive(match["kind"], target, match["args"])
        directives.append(current)
        option_indent = indent + 3
        if match["kind"] in ("autoclass", "py:class"):
            enclosing = (indent, target)
    return directives


def read_directives() -> list[Directive]:
    directives = []
    for path in sorted(DOCS.rglob("*.rst")):
        if "_build" not in path.parts:
            directives += parse(path.read_text("utf-8"))
    return directives


def names(option: str) -> set[str]:
    return {name.strip() for name in option.split(",") if name.strip()}


def has_docstring(cls: type, name: str) -> bool:
    """Whether autodoc's ``:members:`` includes *name*, defined in *cls*: a
    method or property with a docstring (its own or the one it overrides)."""
    value = cls.__dict__[name]
    if isinstance(value, (classmethod, staticmethod)):
        value = value.__func__
    if isinstance(value, property):
        return bool(value.__doc__)
    if inspect.isroutine(value):
        return bool(inspect.getdoc(getattr(cls, name)))
    # Data attributes: autodoc cannot read the ``#:`` comments of a class whose
    # module is given as ``protoport``, so they are documented as fields.
    return False


def documented_members(cls: type, directives: list[Directive]) -> set[str]:
    prefix = f"protoport.{cls.__name__}"
    documented: set[str] = set()
    for directive in directives:
        if directive.target.startswith(prefix + "."):
            documented.add(directive.target[len(prefix) + 1 :])
        if directive.target != prefix or directive.kind != "autoclass":
            continue
        unknown = set(directive.options) - KNOWN_OPTIONS
        assert not unknown, f"{prefix}: options this check cannot read: {unknown}"
        documented |= set(_FIELD_VARIABLE.findall(cls.__doc__ or ""))
        if "members" not in directive.options:
            continue
        listed = names(directive.options["members"])
        if not listed:
            listed = {
                name
                for name in vars(cls)
                if not name.startswith("_") and has_docstring(cls, name)
            }
        documented |= listed - names(directive.options.get("exclude-members", ""))
    return documented


def public_names(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


DIRECTIVES = read_directives()


def test_every_exported_name_is_documented() -> None:
    documented = {directive.target for directive in DIRECTIVES}
    missing = [
        name for name in protoport.__all__ if f"protoport.{name}" not in documented
    ]
    assert not missing, f"not in the API reference: {missing}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_public_member_is_documented(cls: type) -> None:
    documented = documented_members(cls, DIRECTIVES)
    left_out = LEFT_OUT.get(cls.__name__, set())
    missing = public_names(cls) - documented - left_out
    assert not missing, f"{cls.__name__}: not in the API reference: {sorted(missing)}"
    # What is left out is left out everywhere, and the class says why.
    assert not documented & left_out
    unexplained = [name for name in left_out if f"{name}()" not in (cls.__doc__ or "")]
    assert not unexplained, f"{cls.__name__}'s docstring does not name {unexplained}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_documented_members_exist(cls: type) -> None:
    unknown = documented_members(cls, DIRECTIVES) - public_names(cls)
    assert not unknown, f"{cls.__name__} has no {sorted(unknown)}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_protoport_s_methods_have_docstrings(cls: type) -> None:
    undocumented = []
    for owner in cls.__mro__:
        if not owner.__module__.startswith("protoport"):
            continue
        for name, value in vars(owner).items():
            if isinstance(value, (classmethod, staticmethod)):
                value = value.__func__
            if name.startswith("_") or not (
                inspect.isroutine(value) or isinstance(value, property)
            ):
                continue
            if not (value.__doc__ or "").strip():
                undocumented.append(f"{owner.__qualname__}.{name}")
    assert not undocumented, f"methods without a docstring: {undocumented}"


def signature_of(obj: Any) -> list[str] | None:
    """The parameter names the reference shows for *obj*, None for an attribute."""
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    if not callable(obj) or isinstance(obj, property):
        return None
    return list(inspect.signature(obj).parameters)


def documented_signatures() -> dict[str, list[str]]:
    """The parameter names of every documented function, class and method,
    except where the directive writes the signature itself."""
    shown: dict[str, list[str]] = {}
    for directive in DIRECTIVES:
        if directive.args is not None or not directive.kind.startswith("auto"):
            continue
        obj: Any = protoport
        for part in directive.target.split(".")[1:]:
            obj = inspect.getattr_static(obj, part)
        if (parameters := signature_of(obj)) is not None:
            shown[directive.target] = parameters
    for cls in CLASSES:
        for name in documented_members(cls, DIRECTIVES):
            parameters = signature_of(inspect.getattr_static(cls, name))
            if parameters is not None:
                shown[f"protoport.{cls.__name__}.{name}"] = parameters
    return shown


def test_signatures_show_no_private_parameter() -> None:
    private = {
        target: [name for name in parameters if name.startswith("_")]
        for target, parameters in documented_signatures().items()
    }
    assert not {target: found for target, found in private.items() if found}


def test_the_check_reads_the_reference() -> None:
    # The parser finds the directives it is meant to find: nested ones named in
    # full, a class's :members: list continued on the next line.
    directives = parse(
        ".. autoclass:: protoport.Loop\n"
        "   :members: time,\n"
        "      call_soon\n"
        "\n"
        "   .. automethod:: call_at\n"
        "\n"
        ".. autofunction:: protoport.open_loop\n"
    )
    assert [(d.kind, d.target) for d in directives] == [
        ("autoclass", "protoport.Loop"),
        ("automethod", "protoport.Loop.call_at"),
        ("autofunction", "protoport.open_loop"),
    ]
    assert names(directives[0].options["members"]) == {"time", "call_soon"}
    documented = documented_members(protoport.Loop, directives)
    assert documented == {"time", "call_soon", "call_at"}
