"""The check that runs after every test module (``conftest.py``): its views of
the open file descriptors and of the child processes see what they must."""

from __future__ import annotations

import socket
import subprocess
import sys

from conftest import child_pids, open_fds


def test_open_fds_sees_a_new_descriptor_and_not_its_own_listing() -> None:
    before = open_fds()
    assert open_fds() == before
    with socket.socket() as sock:
        assert open_fds() == before | {sock.fileno()}
    assert open_fds() == before


def test_child_pids_sees_a_child_until_it_is_reaped() -> None:
    before = child_pids()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert child_pids() == before | {child.pid}
    child.wait()
    assert child_pids() == before
