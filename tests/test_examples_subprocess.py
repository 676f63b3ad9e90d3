"""The asyncio documentation's subprocess examples, ported, run from the command
line."""

from __future__ import annotations

import re

import pytest

from _helpers import BACKENDS, run_example

DATE = re.compile(r"^Current date: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\n$")


@pytest.mark.parametrize("backend", BACKENDS)
def test_subprocess_shell(backend: str) -> None:
    output = run_example("subprocess_shell.py", "--backend", backend, "ls /zzz")
    assert output.startswith("[{!r} exited with 2]\n[stderr]\nls: ".format("ls /zzz"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_subprocess_shell_with_output(backend: str) -> None:
    output = run_example("subprocess_shell.py", "--backend", backend, "echo hi")
    assert output == "['echo hi' exited with 0]\n[stdout]\nhi\n\n"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "example", ["subprocess_exec_date.py", "subprocess_protocol_date.py"]
)
def test_date_from_a_child(example: str, backend: str) -> None:
    assert DATE.match(run_example(example, "--backend", backend))
