"""protoport, its compatibility suite and its command line load where the POSIX-only
modules ``termios`` and ``fcntl`` do not exist (as on Windows)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Run in a fresh interpreter, where the two modules cannot be imported (a None
# entry in sys.modules makes ``import`` raise ImportError), the way the command
# line runs: import everything, register every scenario, then call the entry
# point with the arguments given on the command line.
SCRIPT = """\
import sys

sys.modules["termios"] = None
sys.modules["fcntl"] = None

import protoport
import protoport.compat
from protoport._cli import main

scenarios = protoport.compat.load_scenarios()
print(f"{len(scenarios)} scenarios", file=sys.stderr)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["matrix", "--help"]], ids=["protoport", "matrix"]
)
def test_help_without_termios_and_fcntl(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "matrix" in result.stdout
    count = int(result.stderr.split()[0])
    assert count >= 100
